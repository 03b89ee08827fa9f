"""``retadm doctor``: what is wrong with a replication task, and what to run about it.

A diagnosis is a list of small checks, each a :class:`Check` — ``OK``, ``WARN`` or
``FAIL``, one line saying what was found and, where something is wrong, a hint that
names the command to run.  ``FAIL`` means the next run cannot succeed (or the chain is
broken) until someone acts; ``WARN`` means replication works now but something will
hurt later or needs a look.  A check whose premise could not be established — the
destination is unreachable, the replica is gone — is not run: it is reported as
``SKIP`` with the reason, after the one ``FAIL`` that explains it.

Doctor only reads.  The one exception is inherited from :meth:`Pair.observe` on ZFS
implementations that cannot list holds (zfs-fuse): there a hold is detected by trying
to place it, and the probe's new holds are released at once.

The checks, in order, are :data:`CHECKS` (``retadm doctor --help`` prints them).
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from .. import cron, options, services, settings
from ..hosts import AuthError, HostError, HostKeyError, HostUnreachable, LocalHost, SshHost
from ..zfs import Encryption, ZfsError, ZfsNode, pool_of, set_locally
from . import planner, preflight
from .executor import Pair
from .jobs import new_snapshot_name
from .leftovers import Receive, listing_argv, parse_receives
from .model import DestinationDiverged, NameClash, Observed, ObservedBookmark, ObservedSnapshot, Refusal, Rollback
from .progress import format_bytes, format_duration
from .runs import TaskLock, process_age
from .tasks import DECRYPTED, ERROR, IDLE, RAW, RUNNING_FULL, RUNNING_INC, Status, TaskRecord, effective_status

OK = "OK"
WARN = "WARN"
FAIL = "FAIL"
SKIP = "SKIP"
LEVELS = (OK, WARN, FAIL, SKIP)

#: a ``zfs receive`` older than this that no running transfer of the task explains is "hung"
HUNG_RECEIVE_AFTER = 3600
#: the lag may reach this many schedule intervals before it is a warning
LAG_INTERVALS = 3
#: the lag limit when no schedule gives an interval
DEFAULT_LAG_LIMIT = 3600
#: free space warnings: below this fraction of the pool, or below this many times the last run's bytes
FREE_FRACTION = 0.10
FREE_RUNS = 2

_SSH_TIMEOUT = 30
_ZFS_TIMEOUT = 60


@dataclass(frozen=True)
class Check:
    name: str
    level: str  # one of LEVELS
    message: str
    hint: str | None = None

    def line(self) -> str:
        """``  OK    ssh src→dst: passwordless`` / ``  FAIL  …: not found — hint: …``."""
        text = f"  {self.level:<5} {self.name}: {self.message}"
        return f"{text} — hint: {self.hint}" if self.hint else text


@dataclass(frozen=True)
class Diagnosis:
    record: TaskRecord
    checks: tuple[Check, ...]

    @property
    def failed(self) -> bool:
        return any(check.level == FAIL for check in self.checks)

    def counts(self) -> dict[str, int]:
        return {level: sum(c.level == level for c in self.checks) for level in LEVELS}

    def header(self) -> str:
        r = self.record
        return f"{r.dataset} -> {r.destination}:{r.remote_dataset}"

    def to_dict(self) -> dict:
        r = self.record
        return {"dataset": r.dataset, "destination": r.destination, "remote_dataset": r.remote_dataset,
                "failed": self.failed, "checks": [asdict(check) for check in self.checks]}


def summary(diagnoses: Sequence[Diagnosis]) -> str:
    totals = {level: sum(d.counts()[level] for d in diagnoses) for level in LEVELS}
    words = [f"{totals[level]} {level}" for level in LEVELS if totals[level] or level != SKIP]
    tasks = f"{len(diagnoses)} task" + ("s" if len(diagnoses) != 1 else "")
    return f"{tasks}: " + ", ".join(words)


def to_json(diagnoses: Sequence[Diagnosis]) -> str:
    return json.dumps([d.to_dict() for d in diagnoses], indent=2)


class Skip(Exception):
    """A check's premise is missing; the message says which."""


# -- pure checks --------------------------------------------------------------------------


def schedule_interval(schedule: str) -> int | None:
    """Seconds between the runs of a cron schedule, for the simple cases; None otherwise.

    ``*/N * * * *`` (and ``* * * * *``) every N minutes, ``M * * * *`` and ``@hourly``
    hourly, ``M H * * *``, ``@daily`` and ``@midnight`` daily.
    """
    words = schedule.split()
    if words == ["@hourly"]:
        return 3600
    if words in (["@daily"], ["@midnight"]):
        return 86400
    if len(words) != 5 or words[2:] != ["*", "*", "*"]:
        return None
    minute, hour = words[0], words[1]
    if hour == "*":
        if minute == "*":
            return 60
        step = re.fullmatch(r"\*/(\d+)", minute)
        if step and int(step.group(1)) > 0:
            return int(step.group(1)) * 60
        if minute.isdigit():
            return 3600
        return None
    if minute.isdigit() and hour.isdigit():
        return 86400
    return None


def lag_limit(schedules: Sequence[str]) -> tuple[int, str]:
    """How old the last success may get, and why: 3 × the shortest known schedule interval,
    else one hour."""
    known = [(interval, s) for s in schedules if (interval := schedule_interval(s)) is not None]
    if not known:
        return DEFAULT_LAG_LIMIT, "1h without a regular cron schedule to compare with"
    interval, schedule = min(known)
    return LAG_INTERVALS * interval, f"{LAG_INTERVALS} × the schedule '{schedule}'"


def check_lag(name: str, record: TaskRecord, status: Status, schedules: Sequence[str], now: float) -> Check:
    limit, why = lag_limit(schedules)
    if record.last_success is None:
        if status.word == RUNNING_FULL:
            return Check(name, OK, "no success yet: the full replication is running")
        return Check(name, WARN, "never replicated successfully",
                     f"'retadm inc {record.dataset}' finishes the full replication")
    lag = max(now - record.last_success, 0)
    text = f"last success {format_duration(lag)} ago (limit {format_duration(limit)}: {why})"
    if lag <= limit:
        return Check(name, OK, text)
    hint = (f"'retadm inc {record.dataset}' replicates now; if cron should have, see the cron checks "
            f"and {settings.repl_log_path()}")
    return Check(name, WARN, text, hint)


def check_space(name: str, available: int, used: int, last_bytes: int | None) -> Check:
    size = available + used
    fraction = available / size if size > 0 else 0.0
    text = f"{format_bytes(available)} free ({fraction:.0%} of {format_bytes(size)})"
    if last_bytes and available < FREE_RUNS * last_bytes:
        return Check(name, WARN, f"{text}, less than {FREE_RUNS} × the last run's {format_bytes(last_bytes)}",
                     "free space on the destination pool (or add capacity) before the next big change")
    if fraction < FREE_FRACTION:
        return Check(name, WARN, f"{text}, under {FREE_FRACTION:.0%}",
                     "free space on the destination pool (or add capacity)")
    return Check(name, OK, text)


def check_cron_service(name: str, option_on: bool, running: bool) -> Check:
    if option_on and running:
        return Check(name, OK, "cron.enable is on and the cron daemon is running")
    if option_on:
        return Check(name, WARN, "cron.enable is on but the cron daemon is not running: scheduled runs do not happen",
                     "'options cron.enable on' starts it again")
    if running:
        return Check(name, WARN, "the cron daemon runs but cron.enable is off (nothing keeps it running)",
                     "'options cron.enable on'")
    return Check(name, WARN, "cron is off: scheduled runs do not happen", "'options cron.enable on'")


def check_cron_line(name: str, dataset: str, entries: Sequence[cron.Entry]) -> tuple[Check, list[str]]:
    """The check, and the schedules of the lines that replicate ``dataset``."""
    mine = [e for e in entries if dataset in cron.replicated_datasets(e)]
    if not mine:
        return Check(name, WARN, f"no line in root's crontab runs 'retadm inc {dataset}'",
                     f"'edit-cron' and add e.g.: */5 * * * * {cron.CRON_COMMAND} {dataset}"), []
    lines = ", ".join(f"'{e.schedule}' (line {e.line})" for e in mine)
    return Check(name, OK, lines), [e.schedule for e in mine]


def check_receives(name: str, record: TaskRecord, receives: Sequence[Receive], run_age: float | None) -> Check:
    """``run_age``: how long the task's live run has been running (None: no live run)."""
    hung = [r for r in receives if r.seconds > HUNG_RECEIVE_AFTER
            and (run_age is None or r.seconds > run_age + 60)]
    if hung:
        r = max(hung, key=lambda r: r.seconds)
        return Check(name, WARN,
                     f"'{r.args}' (pid {r.pid}) has been running for {format_duration(r.seconds)}"
                     + (" and no run of this task is active" if run_age is None else
                        ", longer than the task's current run"),
                     f"if it is stuck, on {record.destination}: kill {r.pid} (the next run starts again from the "
                     "common snapshot)")
    if receives:
        r = max(receives, key=lambda r: r.seconds)
        return Check(name, OK, f"a receive is in progress (pid {r.pid}, {format_duration(r.seconds)})")
    return Check(name, OK, f"no zfs receive into {record.remote_dataset} is running")


def check_run(name: str, record: TaskRecord, status: Status, lock_holder: int | None) -> Check:
    runner_pid = (record.runner or {}).get("pid")
    if status.word in (RUNNING_FULL, RUNNING_INC):
        return Check(name, OK, f"{status.word} (pid {runner_pid})")
    if lock_holder is not None:
        return Check(name, WARN, f"the task's lock is held by pid {lock_holder}, which is not a recorded run; "
                     f"'retadm inc {record.dataset}' is refused (exit 75) while it holds it",
                     f"see what it is: ps -o pid,etime,args -p {lock_holder}")
    if status.word == ERROR and record.state in (RUNNING_FULL, RUNNING_INC):
        return Check(name, WARN, status.reason or "the last run died",
                     f"'retadm inc {record.dataset}' starts again from what landed (a transfer the dead run "
                     f"left behind may still be finishing); see {settings.repl_log_path()}")
    if status.word == ERROR:
        return Check(name, WARN, f"the last run failed: {status.reason}",
                     f"see {settings.repl_log_path()}; the other checks show whether the cause is still there")
    if not record.initialised:
        return Check(name, WARN, "the full replication did not complete",
                     f"'retadm inc {record.dataset}' finishes it")
    if status.word == IDLE:
        return Check(name, OK, "idle: the last run succeeded")
    return Check(name, OK, status.word)


def check_encryption(name: str, record: TaskRecord, source: Encryption | None, replica: Encryption | None) -> Check:
    """Whether an encrypted source's replica is encrypted too (sent raw), and whether its key
    is loaded there (promote needs it); a decrypted replica of an encrypted source is named."""
    dest, ds = record.destination, record.dataset
    if source is None or not source.encrypted:
        return Check(name, OK, "the source is not encrypted")
    again = (f"to have it encrypted: 'retadm reset {ds}', remove {record.remote_dataset} on {dest}, "
             f"'retadm init {ds}' (it is then sent raw)")
    if record.send_mode == RAW:
        if replica is None or not replica.encrypted:
            return Check(name, FAIL, f"the source is encrypted and sent raw, but {record.remote_dataset} on {dest} "
                         "is not encrypted", again)
        key = ("its key is loaded there" if replica.key_loaded else
               f"its key is not loaded on {dest} (it stays here): 'retadm promote --key-file' there needs it")
        return Check(name, OK, f"{source.encryption}, replicated raw: the replica is encrypted; {key}")
    why = ("replicated decrypted, as asked (--decrypted)" if record.send_mode == DECRYPTED else
           "set up before encrypted datasets were sent raw, so it goes on decrypted (a raw incremental onto its "
           "replica would fail)")
    return Check(name, WARN, f"{source.encryption} here, but {why}: {record.remote_dataset} on {dest} is not "
                 "encrypted", again)


def check_common(name: str, observed: Observed,
                 record: TaskRecord) -> tuple[Check, ObservedSnapshot | ObservedBookmark | None]:
    """The newest common snapshot (by guid) against the task record's; returns it too."""
    common = planner.find_common(observed.source, observed.destination or (), observed.source_bookmarks)
    if common is None:
        return Check(name, FAIL, f"{record.dataset} and {record.remote_dataset} have no snapshot in common",
                     f"'retadm repair {record.dataset}' keeps the old replica aside and sends in full"), None
    on_both = isinstance(common, ObservedSnapshot)
    mark = "@" if on_both else "#"
    where = "on both sides" if on_both else "(a bookmark here; the snapshot is gone on the source)"
    text = f"{mark}{common.name} (guid {common.guid}) {where}"
    recorded = record.last_guid
    if recorded is None or recorded == common.guid:
        return Check(name, OK, text + (", as recorded" if recorded else "")), common
    points: list[ObservedSnapshot | ObservedBookmark] = [*observed.source, *observed.source_bookmarks]
    src = {s.guid: s for s in points}
    dst = {s.guid for s in observed.destination or ()}
    if recorded in src and src[recorded].createtxg < common.createtxg:
        return Check(name, WARN, f"{text}: newer than the recorded @{record.last_snapshot} (a run's data landed "
                     "without its bookkeeping)", f"the next 'retadm inc {record.dataset}' records it"), common
    side = "source" if recorded not in src else "destination" if recorded not in dst else "record"
    return Check(name, WARN, f"{text}; the recorded @{record.last_snapshot} (guid {recorded}) is missing on the {side}",
                 f"'retadm inc {record.dataset}' goes on from @{common.name}"), common


def check_holds(name: str, observed: Observed, record: TaskRecord, common) -> Check:
    missing = []
    if isinstance(common, ObservedSnapshot) and common.name not in observed.source_holds:
        missing.append(("the source", f"{record.dataset}@{common.name}", "here"))
    on_dst = next((s.name for s in observed.destination or () if s.guid == common.guid), None)
    if on_dst is not None and on_dst not in observed.destination_holds:
        missing.append(("the destination", f"{record.remote_dataset}@{on_dst}", f"on {record.destination}"))
    tag = record.task().tag
    if not missing:
        return Check(name, OK, f"tag {tag} on @{common.name} on both sides")
    sides = " and ".join(side for side, _, _ in missing)
    fixes = "; ".join(f"zfs hold {tag} {full} ({where})" for _, full, where in missing)
    return Check(name, WARN, f"@{common.name} is not held (tag {tag}) on {sides}: nothing stops it being "
                 "destroyed, which would break the chain",
                 f"the next 'retadm inc {record.dataset}' holds the new common snapshot; now: {fixes}")


def check_readonly(name: str, observed: Observed, record: TaskRecord) -> Check:
    if observed.destination_readonly is True:
        return Check(name, OK, "readonly=on")
    if observed.destination_readonly is None:
        return Check(name, OK, "not known while mounted (this ZFS shows the mount's option, 'temporary'); "
                     "retadm sets readonly=on when it creates the replica")
    return Check(name, WARN, "readonly=off: anything written there makes the replica diverge",
                 f"on {record.destination}: zfs set readonly=on {record.remote_dataset} "
                 f"(the next 'retadm inc {record.dataset}' sets it too)")


def check_mountpoint(name: str, kind: str, mountpoint: str, where: str, record: TaskRecord) -> Check:
    """Where the replica is mounted: ``where`` is the mountpoint's source (``zfs get``)."""
    if kind != "filesystem":
        return Check(name, OK, "a zvol: no mountpoint")
    if where == "received":
        return Check(name, WARN, f"mounted at the source's mountpoint {mountpoint}, outside its pool: it may cover "
                     f"{record.destination}'s own files there",
                     f"the next 'retadm inc {record.dataset}' mounts it under its pool; now, on "
                     f"{record.destination}: zfs inherit mountpoint {record.remote_dataset}")
    if set_locally(where):
        return Check(name, OK, f"{mountpoint} (set on the replica itself)")
    return Check(name, OK, f"{mountpoint} (under its pool)")


def check_divergence(name: str, observed: Observed, record: TaskRecord) -> Check:
    task = record.task()
    plan = planner.plan_incremental(observed, task, new_snapshot_name(task))
    repair = (f"'retadm repair {record.dataset} --dry-run' shows what a rollback discards; "
              f"'retadm repair {record.dataset}' does it")
    if isinstance(plan, Refusal):
        conflict = plan.conflict
        if isinstance(conflict, DestinationDiverged):
            return Check(name, FAIL, conflict.describe(), repair)
        if isinstance(conflict, NameClash):
            return Check(name, FAIL, conflict.describe(),
                         f"rename or destroy those snapshots on the {conflict.side.value} (they are not the ones "
                         "the source has)")
        return Check(name, FAIL, conflict.describe(), repair)
    rollback = next((step for step in plan.steps if isinstance(step, Rollback)), None)
    if rollback is not None:
        lost = ", ".join(f"@{name}" for name in rollback.lost)
        return Check(name, WARN, f"the destination still has {lost} after @{rollback.snapshot}: tracking "
                     "snapshots the source no longer has",
                     f"the next 'retadm inc {record.dataset}' rolls {record.remote_dataset} back to "
                     f"@{rollback.snapshot} and replicates from there")
    if observed.destination_written:
        return Check(name, FAIL, f"{record.remote_dataset} was written on {record.destination} since its newest "
                     "snapshot: the next receive would fail", repair)
    return Check(name, OK, "the destination has nothing the source lacks")


def check_resume(name: str, observed: Observed, record: TaskRecord, running: bool) -> Check:
    if observed.resume_token is None:
        return Check(name, OK, "no interrupted transfer waiting")
    if running:
        return Check(name, OK, "a partial receive exists; the task's run is active and deals with it")
    if observed.resume_token_valid is False:
        return Check(name, WARN, f"a stale partial receive waits on {record.destination} (its source snapshot is gone)",
                     f"'retadm inc {record.dataset}' discards it and replicates")
    return Check(name, WARN, f"an interrupted transfer waits on {record.destination} (resume token)",
                 f"'retadm inc {record.dataset}' resumes it where it stopped")


@dataclass(frozen=True)
class CheckSpec:
    """One check of :class:`TaskDoctor`: its title (``{here}``, ``{dst}``, ``{pool}`` and
    ``{replica}`` are the task's), the method that runs it, what it looks at, its worst level."""

    title: str
    method: str
    looks_at: str
    worst: str


#: every check, in the order they run: the one list of them (``retadm doctor --help`` prints it)
CHECKS = (
    CheckSpec("local zfs", "local_zfs", "'zfs list DS' here: ZFS answers and the dataset exists", FAIL),
    CheckSpec("ssh {here}→{dst}", "ssh_forward", "'ssh dst true' with BatchMode (a password prompt fails)", FAIL),
    CheckSpec("ssh {dst}→{here}", "ssh_reverse", "from dst, ssh back to the address dst sees this node at", FAIL),
    CheckSpec("remote zfs on {dst}", "remote_zfs", "'zpool list' on dst", FAIL),
    CheckSpec("destination pool {pool}", "destination_pool", "the replica's pool exists and is ONLINE", FAIL),
    CheckSpec("free space on {pool}", "free_space",
              f"the pool's 'available' below {FREE_RUNS} × the last run's bytes or {FREE_FRACTION:.0%}", WARN),
    CheckSpec("replica {replica}", "replica", "the replica exists (the full send completed)", FAIL),
    CheckSpec("encryption", "encryption", "an encrypted source's replica is encrypted (sent raw), or decrypted "
              "by choice; whether its key is loaded on dst", FAIL),
    CheckSpec("common snapshot", "common_snapshot",
              "the newest snapshot with the same guid on both sides; it matches the task record", FAIL),
    CheckSpec("holds", "holds", "the task's hold on the common snapshot, on both sides", WARN),
    CheckSpec("read-only", "read_only", "readonly=on on the replica (unknown on zfs-fuse: a note)", WARN),
    CheckSpec("mountpoint", "mount_point", "the replica is mounted under its pool, not at the mountpoint it "
              "received from the source (made by an older retadm)", WARN),
    CheckSpec("divergence", "divergence", "the planner's view: snapshots on dst the source lacks, name clashes, "
              "a replica written since the common snapshot", FAIL),
    CheckSpec("resume token", "resume_token", "an interrupted resumable receive waiting on dst", WARN),
    CheckSpec("last run", "last_run",
              "a run that died, a failed last run, a lock held by a process that is not the task's run", WARN),
    CheckSpec("receive on {dst}", "receive_on_destination",
              "a 'zfs receive' into the replica running for over an hour that is not the task's transfer", WARN),
    CheckSpec("cron line", "cron_line", "root's crontab runs 'retadm inc DS'", WARN),
    CheckSpec("cron service", "cron_service", "cron.enable is on and the cron daemon runs", WARN),
    CheckSpec("lag", "lag", f"the last success against the schedule: {LAG_INTERVALS} × N minutes for a "
              "'*/N * * * *' line (hourly and daily lines alike); 1 hour without such a line", WARN),
)


def check_table() -> str:
    """:data:`CHECKS` as text, for ``retadm doctor --help`` (``DS`` the dataset, ``dst`` its
    destination)."""
    names = {"here": "here", "dst": "dst", "pool": "POOL", "replica": "REPLICA"}
    rows = [(spec.title.format(**names), spec.worst, spec.looks_at) for spec in CHECKS]
    width = max(len(title) for title, _, _ in rows)
    return "\n".join(f"  {title:<{width}}  {worst:<4}  {looks_at}" for title, worst, looks_at in rows)


# -- what every task shares ------------------------------------------------------------------


class Environment:
    """What the checks of every task share, read once: this node's name, root's crontab,
    the cron option and daemon."""

    def __init__(self):
        self._cache: dict[str, object] = {}

    def _once(self, key: str, compute: Callable[[], object]):
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def hostname(self) -> str:
        return self._once("hostname", lambda: socket.gethostname().split(".")[0] or "this node")

    def crontab(self) -> tuple[list[cron.Entry], str | None]:
        """Entries of root's crontab, and why it could not be read (None when it could)."""
        def read():
            try:
                return cron.parse(cron.Crontab().read())[0], None
            except cron.CrontabError as exc:
                return [], str(exc)
        return self._once("crontab", read)

    def cron_service(self) -> tuple[bool, bool]:
        """(``cron.enable`` is on, the cron daemon runs)."""
        return self._once("cron", lambda: (options.is_on("cron.enable"),
                                           services.service_manager().is_running(services.CRON)))


# -- one task --------------------------------------------------------------------------------


class TaskDoctor:
    """The checks of one task, in order; each later check may depend on facts an earlier
    one established, and is skipped (with the reason) when that one failed."""

    def __init__(self, record: TaskRecord, env: Environment | None = None, *,
                 source: ZfsNode | None = None, destination_host: SshHost | None = None,
                 now: Callable[[], float] = time.time):
        self.record = record
        self.env = env or Environment()
        self._source = source
        self._destination_host = destination_host
        self._now = now
        self._facts: dict[str, object] = {}
        self._missing: dict[str, str] = {}
        self._cause: str | None = None  # the first fact that could not be established, why
        self._status = effective_status(record)
        self._schedules: list[str] = []

    # -- facts -------------------------------------------------------------------------------

    def _need(self, *keys: str):
        for key in keys:
            if key not in self._facts:
                # a fact nobody could establish because its own premise was missing: that premise
                raise Skip(self._missing.get(key) or self._cause or f"{key} unknown")
        values = [self._facts[key] for key in keys]
        return values[0] if len(values) == 1 else values

    def _lack(self, key: str, reason: str) -> None:
        self._missing[key] = reason
        self._cause = self._cause or reason

    # -- running -----------------------------------------------------------------------------

    def checks(self) -> list[tuple[str, Callable[[str], Check]]]:
        """:data:`CHECKS` for this task: each one's title and the method that runs it."""
        names = {"here": self.env.hostname(), "dst": self.record.destination,
                 "pool": pool_of(self.record.remote_dataset), "replica": self.record.remote_dataset}
        return [(spec.title.format(**names), getattr(self, spec.method)) for spec in CHECKS]

    def run(self) -> Diagnosis:
        results = []
        for name, check in self.checks():
            try:
                result = check(name)
            except Skip as skip:
                result = Check(name, SKIP, f"not checked: {skip}")
            except (HostError, ZfsError, OSError, ValueError) as exc:
                result = Check(name, FAIL, f"could not check: {exc}")
            except Exception as exc:  # noqa: BLE001 - a bug in one check must not hide the others
                result = Check(name, FAIL, f"could not check: internal error: {type(exc).__name__}: {exc}")
            results.append(result)
        return Diagnosis(self.record, tuple(results))

    # -- the checks --------------------------------------------------------------------------

    def local_zfs(self, name: str) -> Check:
        node = self._source or ZfsNode(LocalHost(), timeout=_ZFS_TIMEOUT)
        dataset = self.record.dataset
        try:
            kind = node.dataset_type(dataset)
        except (HostError, ZfsError) as exc:
            self._lack("source", "local ZFS does not answer")
            return Check(name, FAIL, f"zfs does not answer here: {exc}",
                         "is the ZFS service running? 'zpool status' shows what it says")
        if kind is None:
            self._lack("source", f"{dataset} does not exist here")
            return Check(name, FAIL, f"{dataset} does not exist here",
                         f"it was destroyed or renamed; 'retadm reset {dataset}' drops the task")
        self._facts["source"] = node
        return Check(name, OK, f"answers; {dataset} is a {kind}")

    def ssh_forward(self, name: str) -> Check:
        dest = self.record.destination
        why = f"{dest} cannot be reached over ssh"
        try:
            host = self._destination_host or SshHost(dest)
            host.run(["true"], timeout=_SSH_TIMEOUT)
        except AuthError:
            self._lack("ssh", why)
            return Check(name, FAIL, "our key was refused (passwordless ssh is not set up)",
                         preflight.ssh_setup_commands(self.env.hostname(), dest))
        except HostKeyError as exc:
            self._lack("ssh", why)
            return Check(name, FAIL, str(exc), f"check the host key of {dest} (ssh root@{dest}) before going on")
        except HostUnreachable as exc:
            self._lack("ssh", why)
            return Check(name, FAIL, str(exc), f"is {dest} up, and its sshd running? ('ssh root@{dest}' says more)")
        except (HostError, ValueError) as exc:
            self._lack("ssh", why)
            return Check(name, FAIL, str(exc), f"'ssh root@{dest} true' by hand says more")
        self._facts["ssh"] = host
        return Check(name, OK, "passwordless")

    def ssh_reverse(self, name: str) -> Check:
        host = self._need("ssh")
        try:
            address = preflight.reverse_ssh(host)
        except preflight.PreflightError as exc:
            return Check(name, FAIL, exc.message, exc.hint or "set up the key in that direction (the guide's Step 1)")
        return Check(name, OK, f"passwordless (to {address}, as {self.record.destination} sees this node)")

    def remote_zfs(self, name: str) -> Check:
        host = self._need("ssh")
        node = ZfsNode(host, timeout=_ZFS_TIMEOUT)
        try:
            out = host.run(["zpool", "list", "-H", "-o", "name,health"], timeout=_ZFS_TIMEOUT).stdout
        except HostError as exc:
            self._lack("dest", f"zfs does not answer on {self.record.destination}")
            return Check(name, FAIL, f"zfs does not answer: {exc}",
                         f"on {self.record.destination}: is the ZFS service running? ('zpool status')")
        pools = dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)
        self._facts["dest"] = node
        self._facts["pools"] = pools
        return Check(name, OK, "answers; pools: " + (", ".join(sorted(pools)) or "none"))

    def destination_pool(self, name: str) -> Check:
        pools = self._need("pools")
        pool = pool_of(self.record.remote_dataset)
        dest = self.record.destination
        health = pools.get(pool)
        if health is None:
            self._lack("pool", f"pool {pool} is not on {dest}")
            return Check(name, FAIL, f"not found on {dest}",
                         f"on {dest}: 'zpool import {pool}' if it is exported ('service zfs start' imports all)")
        self._facts["pool"] = pool
        if health.strip() != "ONLINE":
            return Check(name, FAIL, f"{health.strip()}, not ONLINE", f"on {dest}: 'zpool status -x {pool}' says why")
        return Check(name, OK, "ONLINE")

    def free_space(self, name: str) -> Check:
        node, pool = self._need("dest", "pool")
        values = node.get_properties(pool, ["available", "used"])
        return check_space(name, int(values["available"]), int(values["used"]), self.record.last_bytes)

    def replica(self, name: str) -> Check:
        source, dest = self._need("source", "dest")
        self._need("pool")
        remote, ds = self.record.remote_dataset, self.record.dataset
        if not self.record.initialised:
            self._lack("replica", "the full replication has not completed")
            if self._status.word == RUNNING_FULL:
                return Check(name, OK, f"being created by the running full replication ('retadm watch {ds}')")
            return Check(name, WARN, "the full replication did not complete", f"'retadm inc {ds}' finishes it")
        pair = Pair(self.record.task(), source, dest)
        try:
            observed = pair.observe(self.record.last_guid)
        except (HostError, ZfsError) as exc:
            self._lack("replica", "the snapshots could not be read")
            return Check(name, FAIL, f"the snapshots could not be read: {exc}")
        if observed.destination is None:
            self._lack("replica", f"{remote} does not exist")
            return Check(name, FAIL, f"does not exist on {self.record.destination}",
                         f"it was destroyed or renamed there; 'retadm repair {ds}' sends it again in full")
        self._facts["observed"] = observed
        return Check(name, OK, f"exists; {len(observed.destination)} snapshot(s)")

    def encryption(self, name: str) -> Check:
        source, dest = self._need("source", "dest")
        self._need_observed()
        return check_encryption(name, self.record, source.encryption(self.record.dataset),
                                dest.encryption(self.record.remote_dataset))

    def common_snapshot(self, name: str) -> Check:
        observed = self._need_observed()
        check, common = check_common(name, observed, self.record)
        if common is None:
            self._lack("common", "no snapshot in common")
        else:
            self._facts["common"] = common
        return check

    def holds(self, name: str) -> Check:
        observed, common = self._need_observed("common")
        return check_holds(name, observed, self.record, common)

    def read_only(self, name: str) -> Check:
        observed = self._need_observed()
        return check_readonly(name, observed, self.record)

    def mount_point(self, name: str) -> Check:
        self._need_observed()
        props = self._need("dest").values_and_sources(self.record.remote_dataset, ["type", "mountpoint"])
        mountpoint, where = props["mountpoint"]
        return check_mountpoint(name, props["type"][0], mountpoint, where, self.record)

    def divergence(self, name: str) -> Check:
        observed, _common = self._need_observed("common")
        return check_divergence(name, observed, self.record)

    def resume_token(self, name: str) -> Check:
        observed = self._need_observed()
        return check_resume(name, observed, self.record, self._status.word in (RUNNING_FULL, RUNNING_INC))

    def _need_observed(self, *more: str):
        if "observed" not in self._facts:
            self._need("replica")
            self._need("observed")
        return self._need("observed", *more) if more else self._facts["observed"]

    def last_run(self, name: str) -> Check:
        return check_run(name, self.record, self._status, TaskLock(self.record.key).holder())

    def receive_on_destination(self, name: str) -> Check:
        host = self._need("ssh")
        result = host.run(listing_argv(), timeout=_SSH_TIMEOUT, check=False)
        if result.returncode != 0:
            return Check(name, WARN, f"cannot list its processes: {(result.stderr.strip() or 'ps failed')[:200]}")
        run_age = None
        if self._status.word in (RUNNING_FULL, RUNNING_INC):
            run_age = process_age(int((self.record.runner or {}).get("pid", 0)))
        return check_receives(name, self.record, parse_receives(result.stdout, self.record.remote_dataset), run_age)

    def cron_line(self, name: str) -> Check:
        entries, problem = self.env.crontab()
        if problem is not None:
            return Check(name, WARN, f"root's crontab cannot be read: {problem}", "is cron installed?")
        check, self._schedules = check_cron_line(name, self.record.dataset, entries)
        return check

    def cron_service(self, name: str) -> Check:
        return check_cron_service(name, *self.env.cron_service())

    def lag(self, name: str) -> Check:
        return check_lag(name, self.record, self._status, self._schedules, self._now())


def diagnose(records: Sequence[TaskRecord], env: Environment | None = None) -> list[Diagnosis]:
    env = env or Environment()
    return [TaskDoctor(record, env).run() for record in records]

"""The doctor's checks: pure functions over a task's facts (:mod:`.facts`), and
:data:`CHECKS`, the table of them in the order they run.

``check_*`` make one check from plain values; the private functions :data:`CHECKS`
names pick those values out of a task's facts, and skip the check (:class:`Skip`) when
a fact it needs is missing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TypeVar

from ... import cron, services, settings
from ...hosts import AuthError, HostError, HostKeyError, HostUnreachable
from ...zfs import Encryption, ZfsError, pool_of, set_locally
from .. import planner, preflight, retention
from ..leftovers import Receive, parse_receives
from ..model import (
    DestinationDiverged,
    NameClash,
    Observed,
    ObservedBookmark,
    ObservedSnapshot,
    Refusal,
    Rollback,
    Task,
)
from ..progress import format_bytes, format_duration
from ..task_run import new_snapshot_name
from ..task_store import DECRYPTED, ERROR, IDLE, RAW, RUNNING_FULL, RUNNING_INC, Status, TaskRecord
from .facts import Fact, Missing, TaskFacts

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


# -- checks over plain values ------------------------------------------------------------


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


def check_send_flags(name: str, record: TaskRecord) -> Check:
    """What the task's streams carry, as recorded at its set-up (never re-decided: ``-L``
    toggled within one chain is refused or corrupts the replica)."""
    if record.send_mode == RAW:
        return Check(name, OK, "raw (-w): the blocks travel as they are on disk, large and compressed")
    if record.send_flags is None:
        return Check(name, OK, "none recorded (the task was set up before stream flags): sent without them, "
                     "as it always was")
    if not record.send_flags:
        return Check(name, OK, "none: at set-up, one side or the other supported none of -L, -c and -e")
    return Check(name, OK, f"{' '.join(record.send_flags)}: the blocks travel as large and as compressed as "
                 "they are on disk")


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


def check_restore_points(name: str, observed: Observed, task: Task, common: str, dataset: str) -> Check:
    """The task's tracking snapshots on the replica besides the common one: the points in time
    it can go back to.  None kept by choice of policy is a warning: a source emptied or
    encrypted by mistake is replicated over at the next run."""
    points = [s for s in sorted(observed.destination or (), key=lambda s: s.createtxg)
              if task.owns(s.name) and s.name != common]
    policy = task.retention
    if not policy.keeps_any:
        return Check(name, WARN, "none kept: the replica holds one point in time, and a source emptied or "
                     "encrypted by mistake is replicated over at the next run",
                     f"'retadm edit {dataset} --retention {retention.DEFAULT.text}' keeps some")
    if not points:
        return Check(name, OK, f"none yet ({policy.text}: they accumulate run by run)")
    oldest = retention.snapshot_time(points[0].name)
    since = f", the oldest from {oldest:%Y-%m-%d %H:%M} UTC" if oldest else ""
    return Check(name, OK, f"{len(points)} kept ({policy.text}){since}")


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


# -- the checks of one task, over its facts --------------------------------------------------

T = TypeVar("T")


class Skip(Exception):
    """A check's premise is missing; the message says which."""


def need(fact: Fact[T]) -> T:
    """A fact a check needs: the check is skipped, with the reason, where it is missing."""
    if isinstance(fact, Missing):
        raise Skip(fact.reason)
    return fact


def own(fact: Fact[T]) -> T:
    """A fact that belongs to the check: what stopped its gathering fails the check as if the
    check had met it ("could not check: …"); a missing premise skips it."""
    if isinstance(fact, Missing) and fact.error is not None:
        raise fact.error
    return need(fact)


def _local_zfs(name: str, facts: TaskFacts) -> Check:
    dataset, kind = facts.record.dataset, facts.source_kind
    if isinstance(kind, Missing) and isinstance(kind.error, (HostError, ZfsError)):
        return Check(name, FAIL, f"zfs does not answer here: {kind.error}",
                     "is the ZFS service running? 'zpool status' shows what it says")
    if own(kind) is None:
        return Check(name, FAIL, f"{dataset} does not exist here",
                     f"it was destroyed or renamed; 'retadm reset {dataset}' drops the task")
    return Check(name, OK, f"answers; {dataset} is a {kind}")


def _children(name: str, facts: TaskFacts) -> Check:
    children = own(facts.unreplicated_children)
    if not children:
        return Check(name, OK, "none, or each replicated by a task of its own")
    return Check(name, WARN, preflight.children_note(facts.record.dataset, children))


def _ssh_forward(name: str, facts: TaskFacts) -> Check:
    dest, ssh = facts.record.destination, facts.ssh
    if isinstance(ssh, Missing):
        error = ssh.error
        if isinstance(error, AuthError):
            return Check(name, FAIL, "our key was refused (passwordless ssh is not set up)",
                         preflight.ssh_setup_commands(facts.environment.hostname, dest))
        if isinstance(error, HostKeyError):
            return Check(name, FAIL, str(error), f"check the host key of {dest} (ssh root@{dest}) before going on")
        if isinstance(error, HostUnreachable):
            return Check(name, FAIL, str(error), f"is {dest} up, and its sshd running? ('ssh root@{dest}' says more)")
        if isinstance(error, (HostError, ValueError)):
            return Check(name, FAIL, str(error), f"'ssh root@{dest} true' by hand says more")
        own(ssh)  # anything else: "could not check"
    return Check(name, OK, "passwordless")


def _ssh_reverse(name: str, facts: TaskFacts) -> Check:
    address = facts.reverse_address
    if isinstance(address, Missing) and isinstance(address.error, preflight.PreflightError):
        error = address.error
        return Check(name, FAIL, error.message, error.hint or "set up the key in that direction (the guide's Step 1)")
    return Check(name, OK, f"passwordless (to {own(address)}, as {facts.record.destination} sees this node)")


def _root_password_login(name: str, facts: TaskFacts) -> Check:
    """Once keys work both ways, a root password that still opens either node is a door left
    open: ``ssh.allow.root on`` is for the key exchange, ``keys`` for after it."""
    need(facts.ssh)
    need(facts.reverse_address)
    dest = facts.record.destination
    policies = {"here": own(facts.environment.root_login), dest: own(facts.destination_root_login)}
    open_on = [where for where, policy in policies.items() if policy in services.ROOT_PASSWORD_LOGIN]
    if not open_on:
        return Check(name, OK, "keys only")
    return Check(name, WARN, f"root may still log in with a password ({' and '.join(open_on)}) although keys work "
                             "both ways", f"'options ssh.allow.root keys' on {' and '.join(open_on)}")


def _remote_zfs(name: str, facts: TaskFacts) -> Check:
    pools = facts.pools
    if isinstance(pools, Missing) and isinstance(pools.error, HostError):
        return Check(name, FAIL, f"zfs does not answer: {pools.error}",
                     f"on {facts.record.destination}: is the ZFS service running? ('zpool status')")
    return Check(name, OK, "answers; pools: " + (", ".join(sorted(own(pools))) or "none"))


def _destination_pool(name: str, facts: TaskFacts) -> Check:
    pools = need(facts.pools)
    pool, dest = pool_of(facts.record.remote_dataset), facts.record.destination
    health = pools.get(pool)
    if health is None:
        return Check(name, FAIL, f"not found on {dest}",
                     f"on {dest}: 'zpool import {pool}' if it is exported ('service zfs start' imports all)")
    if health.strip() != "ONLINE":
        return Check(name, FAIL, f"{health.strip()}, not ONLINE", f"on {dest}: 'zpool status -x {pool}' says why")
    return Check(name, OK, "ONLINE")


def _free_space(name: str, facts: TaskFacts) -> Check:
    available, used = own(facts.pool_space)
    return check_space(name, available, used, facts.record.last_bytes)


def _replica(name: str, facts: TaskFacts) -> Check:
    record, observed = facts.record, facts.observed
    if isinstance(observed, Missing) and isinstance(observed.error, (HostError, ZfsError)):
        return Check(name, FAIL, f"the snapshots could not be read: {observed.error}")
    both = own(observed)
    if both is None:
        if facts.status.word == RUNNING_FULL:
            return Check(name, OK, f"being created by the running full replication ('retadm watch {record.dataset}')")
        return Check(name, WARN, "the full replication did not complete", f"'retadm inc {record.dataset}' finishes it")
    if both.destination is None:
        return Check(name, FAIL, f"does not exist on {record.destination}",
                     f"it was destroyed or renamed there; 'retadm repair {record.dataset}' sends it again in full")
    return Check(name, OK, f"exists; {len(both.destination)} snapshot(s)")


def _encryption(name: str, facts: TaskFacts) -> Check:
    return check_encryption(name, facts.record, own(facts.source_encryption), own(facts.replica_encryption))


def _send_flags(name: str, facts: TaskFacts) -> Check:
    return check_send_flags(name, facts.record)


def _common_snapshot(name: str, facts: TaskFacts) -> Check:
    return check_common(name, need(facts.replica), facts.record)[0]


def _common(observed: Observed) -> ObservedSnapshot | ObservedBookmark:
    """The common snapshot (or bookmark) the checks after ``common snapshot`` need."""
    common = planner.find_common(observed.source, observed.destination or (), observed.source_bookmarks)
    if common is None:
        raise Skip("no snapshot in common")
    return common


def _holds(name: str, facts: TaskFacts) -> Check:
    observed = need(facts.replica)
    return check_holds(name, observed, facts.record, _common(observed))


def _restore_points(name: str, facts: TaskFacts) -> Check:
    observed, record = need(facts.replica), facts.record
    common, task = _common(observed), record.task()
    if task.cascade:
        return Check(name, OK, "the replica keeps the restore points its source keeps (a cascade relays them)")
    return check_restore_points(name, observed, task, common.name, record.dataset)


def _read_only(name: str, facts: TaskFacts) -> Check:
    return check_readonly(name, need(facts.replica), facts.record)


def _mount_point(name: str, facts: TaskFacts) -> Check:
    mountpoint = own(facts.replica_mountpoint)
    return check_mountpoint(name, mountpoint.kind, mountpoint.value, mountpoint.source, facts.record)


def _divergence(name: str, facts: TaskFacts) -> Check:
    observed = need(facts.replica)
    _common(observed)
    return check_divergence(name, observed, facts.record)


def _resume_token(name: str, facts: TaskFacts) -> Check:
    return check_resume(name, need(facts.replica), facts.record, facts.status.word in (RUNNING_FULL, RUNNING_INC))


def _last_run(name: str, facts: TaskFacts) -> Check:
    return check_run(name, facts.record, facts.status, own(facts.lock_holder))


def _receive_on_destination(name: str, facts: TaskFacts) -> Check:
    listing = own(facts.destination_processes)
    if listing.returncode != 0:
        return Check(name, WARN, f"cannot list its processes: {(listing.stderr.strip() or 'ps failed')[:200]}")
    receives = parse_receives(listing.stdout, facts.record.remote_dataset)
    return check_receives(name, facts.record, receives, own(facts.run_age))


def _cron_line(name: str, facts: TaskFacts) -> Check:
    entries = facts.environment.crontab
    if isinstance(entries, Missing) and isinstance(entries.error, cron.CrontabError):
        return Check(name, WARN, f"root's crontab cannot be read: {entries.error}", "is cron installed?")
    return check_cron_line(name, facts.record.dataset, own(entries))[0]


def _cron_service(name: str, facts: TaskFacts) -> Check:
    env = facts.environment
    return check_cron_service(name, own(env.cron_enabled), own(env.cron_running))


def _config_capture(name: str, facts: TaskFacts) -> Check:
    not_captured = own(facts.environment.not_captured)
    if not not_captured:
        return Check(name, OK, "everything that serves a dataset is carried" if facts.environment.autosync is True
                     else "autosync is off")
    return Check(name, WARN, f"not carried to the partners: {'; '.join(not_captured)}",
                 "serve the dataset itself (its mountpoint, a zvol), or set it up on the partner by hand")


def _lag(name: str, facts: TaskFacts) -> Check:
    entries = facts.environment.crontab
    # the schedules of the cron line check (none where the crontab cannot be read)
    schedules = [] if isinstance(entries, Missing) else check_cron_line(name, facts.record.dataset, entries)[1]
    return check_lag(name, facts.record, facts.status, schedules, facts.now)


@dataclass(frozen=True)
class CheckSpec:
    """One check: its title (``{here}``, ``{dst}``, ``{pool}`` and ``{replica}`` are the
    task's), the function that makes it from the task's facts, what it looks at, its worst level."""

    title: str
    check: Callable[[str, TaskFacts], Check]
    looks_at: str
    worst: str


#: every check, in the order they run: the one list of them (``retadm doctor --help`` prints it)
CHECKS = (
    CheckSpec("local zfs", _local_zfs, "'zfs list DS' here: ZFS answers and the dataset exists", FAIL),
    CheckSpec("children", _children, "datasets under DS that no task replicates (its sends carry none of them)",
              WARN),
    CheckSpec("ssh {here}→{dst}", _ssh_forward, "'ssh dst true' with BatchMode (a password prompt fails)", FAIL),
    CheckSpec("ssh {dst}→{here}", _ssh_reverse, "from dst, ssh back to the address dst sees this node at", FAIL),
    CheckSpec("root login", _root_password_login, "sshd's PermitRootLogin on both nodes: no password once keys "
              "work (sshd -T)", WARN),
    CheckSpec("remote zfs on {dst}", _remote_zfs, "'zpool list' on dst", FAIL),
    CheckSpec("destination pool {pool}", _destination_pool, "the replica's pool exists and is ONLINE", FAIL),
    CheckSpec("free space on {pool}", _free_space,
              f"the pool's 'available' below {FREE_RUNS} × the last run's bytes or {FREE_FRACTION:.0%}", WARN),
    CheckSpec("replica {replica}", _replica, "the replica exists (the full send completed)", FAIL),
    CheckSpec("encryption", _encryption, "an encrypted source's replica is encrypted (sent raw), or decrypted "
              "by choice; whether its key is loaded on dst", FAIL),
    CheckSpec("send flags", _send_flags, "the stream flags the task recorded at its set-up (-L, -c, -e, or raw)",
              OK),
    CheckSpec("common snapshot", _common_snapshot,
              "the newest snapshot with the same guid on both sides; it matches the task record", FAIL),
    CheckSpec("holds", _holds, "the task's hold on the common snapshot, on both sides", WARN),
    CheckSpec("restore points", _restore_points, "the task's older snapshots the replica keeps by its retention "
              "policy (none kept: a warning)", WARN),
    CheckSpec("read-only", _read_only, "readonly=on on the replica (unknown on zfs-fuse: a note)", WARN),
    CheckSpec("mountpoint", _mount_point, "the replica is mounted under its pool, not at the mountpoint it "
              "received from the source (made by an older retadm)", WARN),
    CheckSpec("divergence", _divergence, "the planner's view: snapshots on dst the source lacks, name clashes, "
              "a replica written since the common snapshot", FAIL),
    CheckSpec("resume token", _resume_token, "an interrupted resumable receive waiting on dst", WARN),
    CheckSpec("last run", _last_run,
              "a run that died, a failed last run, a lock held by a process that is not the task's run", WARN),
    CheckSpec("receive on {dst}", _receive_on_destination,
              "a 'zfs receive' into the replica running for over an hour that is not the task's transfer", WARN),
    CheckSpec("cron line", _cron_line, "root's crontab runs 'retadm inc DS'", WARN),
    CheckSpec("cron service", _cron_service, "cron.enable is on and the cron daemon runs", WARN),
    CheckSpec("config capture", _config_capture, "what autosync could not take from this node's services "
              "(a LUN on a disk, a share of a directory …)", WARN),
    CheckSpec("lag", _lag, f"the last success against the schedule: {LAG_INTERVALS} × N minutes for a "
              "'*/N * * * *' line (hourly and daily lines alike); 1 hour without such a line", WARN),
)


def check_table() -> str:
    """:data:`CHECKS` as text, for ``retadm doctor --help`` (``DS`` the dataset, ``dst`` its
    destination)."""
    names = {"here": "here", "dst": "dst", "pool": "POOL", "replica": "REPLICA"}
    rows = [(spec.title.format(**names), spec.worst, spec.looks_at) for spec in CHECKS]
    width = max(len(title) for title, _, _ in rows)
    return "\n".join(f"  {title:<{width}}  {worst:<4}  {looks_at}" for title, worst, looks_at in rows)


def titles(record: TaskRecord, hostname: str) -> list[str]:
    """The titles of :data:`CHECKS` for this task, as its diagnosis shows them."""
    names = {"here": hostname, "dst": record.destination, "pool": pool_of(record.remote_dataset),
             "replica": record.remote_dataset}
    return [spec.title.format(**names) for spec in CHECKS]


def examine(facts: TaskFacts) -> Diagnosis:
    """Every check of :data:`CHECKS`, in order, over one task's facts."""
    results = []
    for spec, name in zip(CHECKS, titles(facts.record, facts.environment.hostname), strict=True):
        try:
            result = spec.check(name, facts)
        except Skip as skip:
            result = Check(name, SKIP, f"not checked: {skip}")
        except (HostError, ZfsError, OSError, ValueError, preflight.PreflightError) as exc:
            result = Check(name, FAIL, f"could not check: {exc}")
        except Exception as exc:  # noqa: BLE001 - a bug in one check must not hide the others
            result = Check(name, FAIL, f"could not check: internal error: {type(exc).__name__}: {exc}")
        results.append(result)
    return Diagnosis(facts.record, tuple(results))

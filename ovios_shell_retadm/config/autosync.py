"""autosync: push this node's configuration to every replication partner (the guide's section 8).

With ``options autosync.enable on``, ``/etc/ovios/config.json`` goes to the
``destination`` of every replication task whenever it changed since the last push:

- after every shell command (:func:`after_command`, a cmd2 post-command hook): it only
  compares the local version (generation + digest) with what each partner was last sent
  — no ssh — and when something is to be pushed it starts a detached background process
  (``python -m ovios_shell_retadm.config.autosync push PARTNER…``), so a partner that is
  down never blocks or slows the shell;
- at the start of ``retadm inc`` (:func:`push_before_inc`), synchronously with short
  timeouts: this catches changes made outside the shell (an edited config.json, other
  verbs); a failure is logged and never fails the run.

A failed push leaves the partner *pending* with the reason, and is tried again at the
next trigger.  On the partner, :mod:`.receive` keeps the copy atomically.  Every push and
receive is one line in ``/var/log/ovios/cluster-sync.log`` on its node::

    2026-11-26T09:00:01+0000 dst push end generation=7 digest=3f2a9c0d11e4b7a8 result=stored duration=0.31s
    2026-11-26T09:05:00+0000 dst push error generation=8 message='dst: unreachable: …' duration=3.0s

What was pushed to whom is kept in the store's ``config_sync`` table (direction
``push``), never among the options.  :func:`to_push` (who needs a push) and
:func:`status_text` (``retadm status``'s CONFIG column) are pure.
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TextIO

from .. import options, settings
from ..eventlog import log_sync
from ..fileio import make_private_dir
from ..hosts import HostError, InvalidHost, SshHost
from ..store import Store, StoreError
from . import files, receive
from .model import ConfigError, Configuration, digest, dump

OPTION = "autosync.enable"
PUSH = "push"

#: the background push: ssh's ConnectTimeout and the limit for the whole remote call
BACKGROUND_CONNECT_TIMEOUT = 10
BACKGROUND_TIMEOUT = 60.0
#: the push at the start of ``retadm inc``: short, a partner that is down costs seconds
INC_CONNECT_TIMEOUT = 3
INC_TIMEOUT = 10.0
#: a push loop ends after this many rounds even if the configuration keeps changing
_MAX_ROUNDS = 5


@dataclass(frozen=True)
class Version:
    generation: int
    digest: str

    def to_dict(self) -> dict:
        return {"generation": self.generation, "digest": self.digest}

    @classmethod
    def from_dict(cls, data: dict | None) -> Version | None:
        if not data:
            return None
        return cls(int(data["generation"]), str(data["digest"]))


def version_of(config: Configuration) -> Version:
    return Version(config.generation, digest(config))


@dataclass(frozen=True)
class PushRecord:
    """What this node knows about one partner's copy of its configuration."""

    partner: str
    #: what the partner holds (it said so at the last successful push); None: nothing yet
    pushed: Version | None = None
    pushed_at: float | None = None
    #: the last attempt: the version tried, when, and why it failed (None: it worked)
    attempted: Version | None = None
    attempted_at: float | None = None
    error: str | None = None

    @classmethod
    def from_dict(cls, partner: str, data: dict | None) -> PushRecord:
        data = data or {}
        return cls(partner, Version.from_dict(data.get("pushed")), data.get("pushed_at"),
                   Version.from_dict(data.get("attempted")), data.get("attempted_at"), data.get("error"))

    def to_dict(self) -> dict:
        return {"pushed": self.pushed.to_dict() if self.pushed else None, "pushed_at": self.pushed_at,
                "attempted": self.attempted.to_dict() if self.attempted else None,
                "attempted_at": self.attempted_at, "error": self.error}


# -- the pure decisions ----------------------------------------------------------------------


def partners_of(destinations: Iterable[str]) -> list[str]:
    """The partners to keep in sync: every task's destination, once each."""
    return sorted({d for d in destinations if d})


def to_push(enabled: bool, local: Version, partners: Iterable[str], records: dict[str, PushRecord],
            skip: dict[str, Version] | None = None) -> list[str]:
    """The partners whose copy is not ``local``: those never pushed to, behind, or pending
    after a failure.  ``skip``: partners already tried with exactly ``local`` by this
    process (``retadm inc`` pushed synchronously; its post-command hook does not try again).
    Nothing when autosync is off or there is no configuration yet (generation 0)."""
    if not enabled or local.generation < 1:
        return []
    skip = skip or {}
    wanted = []
    for partner in partners:
        record = records.get(partner)
        if record is not None and record.pushed == local:
            continue
        if skip.get(partner) == local:
            continue
        wanted.append(partner)
    return wanted


def status_text(enabled: bool, local: Version | None, record: PushRecord | None,
                local_error: str | None = None) -> str:
    """``retadm status``'s CONFIG column for one partner, from local records only."""
    if not enabled:
        return "-"
    if local is None:
        return f"pending: {local_error or 'the local configuration cannot be read'}"
    pushed = record.pushed if record else None
    if pushed == local:
        return "current"
    if local.generation < 1 and pushed is None:
        return "current"  # no configuration here yet: nothing to have
    if record is not None and record.error and record.attempted is not None:
        return f"pending: {record.error}"
    if pushed is None:
        return "pending: not pushed yet"
    return f"behind (pushed gen {pushed.generation}, have {local.generation})"


# -- records, log, lock ----------------------------------------------------------------------


def push_records(store: Store | None = None) -> dict[str, PushRecord]:
    return {peer: PushRecord.from_dict(peer, data) for peer, data in (store or Store()).all_sync(PUSH).items()}


def _record(store: Store, partner: str, **changes) -> PushRecord:
    def change(old: dict | None) -> dict:
        record = PushRecord.from_dict(partner, old).to_dict()
        record.update({k: (v.to_dict() if isinstance(v, Version) else v) for k, v in changes.items()})
        return record

    return PushRecord.from_dict(partner, store.update_sync(partner, PUSH, change))


class _PartnerLock:
    """One push to a partner at a time (background pushers, ``retadm inc``); never waits."""

    def __init__(self, partner: str):
        self.path = settings.run_dir() / "locks" / f"autosync-{partner.replace('/', '%')}.lock"
        self.handle: TextIO | None = None

    def try_acquire(self) -> bool:
        make_private_dir(self.path.parent)
        handle = open(self.path, "a")  # noqa: SIM115 - held open: it is the lock, until release()
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self.handle = handle
        return True

    def release(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


# -- pushing ---------------------------------------------------------------------------------


class PushFailed(Exception):
    """One line: why the partner did not take the configuration."""


def _answer(stdout: str) -> tuple[str, Version]:
    """The receiver's line: ``stored|kept generation=N digest=D``."""
    words = stdout.strip().split()
    try:
        fields = dict(word.split("=", 1) for word in words[1:])
        if words[0] not in ("stored", "kept"):
            raise ValueError
        return words[0], Version(int(fields["generation"]), fields["digest"])
    except (IndexError, KeyError, ValueError):
        raise PushFailed(f"the receiver answered {stdout.strip()[:80]!r}, not stored/kept") from None


def push_once(partner: str, config: Configuration, *, connect_timeout: int, timeout: float) -> tuple[str, Version]:
    """Send ``config`` to ``partner``'s receiver; (``stored``/``kept``, what it holds now)."""
    local = version_of(config)
    try:
        host = SshHost(partner, connect_timeout=connect_timeout)
        result = host.run(receive.remote_argv(local.digest), input=dump(config), timeout=timeout, check=False)
    except (HostError, InvalidHost) as exc:
        raise PushFailed(str(exc)) from None
    if result.returncode != 0:
        lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        raise PushFailed(f"{partner}: {lines[-1] if lines else f'the receiver exited {result.returncode}'}")
    word, held = _answer(result.stdout)
    if held.digest != local.digest:
        raise PushFailed(f"{partner} keeps generation {held.generation} of this node's configuration, newer than "
                         f"this node's {local.generation} (was config.json replaced?); remove "
                         f"/etc/ovios/synced/{config.node}.json there to take this one")
    return word, held


def sync_partner(partner: str, *, connect_timeout: int, timeout: float,
                 store: Store | None = None) -> PushRecord | None:
    """Bring ``partner``'s copy up to date, if it is not; the record afterwards.

    None when another process is pushing to it right now: that one looks at the
    configuration again when it is done, so no change is left behind."""
    store = store or Store()
    record = None
    for _ in range(_MAX_ROUNDS):
        lock = _PartnerLock(partner)
        if not lock.try_acquire():
            return record
        try:
            config = files.load()
            local = version_of(config)
            record = PushRecord.from_dict(partner, store.get_sync(partner, PUSH))
            if local.generation < 1 or record.pushed == local:
                return record
            started = time.monotonic()
            try:
                word, held = push_once(partner, config, connect_timeout=connect_timeout, timeout=timeout)
            except PushFailed as exc:
                message = str(exc).replace("\n", " ")
                record = _record(store, partner, attempted=local, attempted_at=time.time(), error=message)
                log_sync(partner, PUSH, "error", generation=local.generation, digest=local.digest,
                         message=message, duration=f"{time.monotonic() - started:.1f}s")
                return record
            now = time.time()
            record = _record(store, partner, pushed=local, pushed_at=now, attempted=local, attempted_at=now,
                             error=None)
            log_sync(partner, PUSH, "end", generation=local.generation, digest=local.digest, result=word,
                     partner_generation=held.generation, duration=f"{time.monotonic() - started:.2f}s")
        finally:
            lock.release()
        try:
            if version_of(files.load()) == local:
                return record
        except ConfigError:
            return record
    return record


# -- the triggers ----------------------------------------------------------------------------

#: partners this process already tried, with the version tried (see :func:`to_push`'s skip)
_attempted: dict[str, Version] = {}
#: background pushers this process started (reaped as they end)
_children: list[subprocess.Popen] = []


def spawn_background(partners: list[str]) -> int:
    """Start the detached pusher (its own session: it outlives the shell); its pid."""
    argv = [sys.executable, "-m", "ovios_shell_retadm.config.autosync", PUSH, *partners]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
    _children.append(proc)
    return proc.pid


def after_command(destinations: Callable[[], Iterable[str]], capture: Callable[[], object] = lambda: None
                  ) -> list[str]:
    """The post-command hook's work: the partners a background push was started for.
    ``destinations`` lists the partners replication sends to (asked only with autosync on);
    ``capture`` brings config.json up to date with the node's services first (with autosync on).

    Cheap when nothing changed (a look at the option, the services' files, config.json and
    the records; no ssh); never raises, never waits for a partner."""
    _children[:] = [child for child in _children if child.poll() is None]
    skip = dict(_attempted)
    _attempted.clear()  # only the command that tried is spared a second try; later ones retry
    try:
        store = Store()
        if not options.is_on(OPTION, store):
            return []
        capture()
        local = version_of(files.load())
        wanted = to_push(True, local, partners_of(destinations()), push_records(store), skip)
        if wanted:
            spawn_background(wanted)
        return wanted
    except (ConfigError, StoreError, OSError) as exc:
        log_sync("-", PUSH, "error", message=f"autosync not started: {exc}")
        return []


def push_before_inc(destinations: Iterable[str], capture: Callable[[], object] = lambda: None) -> None:
    """``retadm inc``'s push to the partners it replicates to (after ``capture``, as in
    :func:`after_command`): synchronous, short timeouts, logged; it never raises (a failed
    push must not fail the replication)."""
    try:
        store = Store()
        if not options.is_on(OPTION, store):
            return
        capture()
        local = version_of(files.load())
        for partner in to_push(True, local, partners_of(destinations), push_records(store)):
            _attempted[partner] = local
            record = sync_partner(partner, connect_timeout=INC_CONNECT_TIMEOUT, timeout=INC_TIMEOUT, store=store)
            if record is None:
                log_sync(partner, PUSH, "skip", reason="a push to it is in progress")
    except (ConfigError, StoreError, OSError) as exc:
        log_sync("-", PUSH, "error", message=f"autosync before inc: {exc}")


@dataclass(frozen=True)
class PartnerStatus:
    text: str
    local: Version | None
    record: PushRecord | None

    def to_json(self) -> dict:
        record = self.record
        return {
            "state": self.text.split(":")[0].split(" (")[0],
            "text": self.text,
            "local_generation": self.local.generation if self.local else None,
            "pushed_generation": record.pushed.generation if record and record.pushed else None,
            "pushed_at": record.pushed_at if record else None,
            "error": record.error if record else None,
        }


def partner_statuses(partners: Iterable[str], store: Store | None = None) -> dict[str, PartnerStatus]:
    """The CONFIG column for each partner: local files and records only, no ssh."""
    store = store or Store()
    enabled = options.is_on(OPTION, store)
    local, error = None, None
    if enabled:
        try:
            local = version_of(files.load())
        except ConfigError as exc:
            error = str(exc)
    records = push_records(store) if enabled else {}
    return {p: PartnerStatus(status_text(enabled, local, records.get(p), error), local, records.get(p))
            for p in partners}


def main(argv: list[str]) -> int:
    """``python -m ovios_shell_retadm.config.autosync push PARTNER…`` (the detached pusher)."""
    if len(argv) < 2 or argv[0] != PUSH:
        print("usage: python -m ovios_shell_retadm.config.autosync push PARTNER...", file=sys.stderr)
        return 2
    failed = 0
    for partner in argv[1:]:
        try:
            record = sync_partner(partner, connect_timeout=BACKGROUND_CONNECT_TIMEOUT, timeout=BACKGROUND_TIMEOUT)
        except (ConfigError, StoreError, OSError) as exc:
            log_sync(partner, PUSH, "error", message=str(exc))
            failed = 1
            continue
        if record is not None and record.error:
            failed = 1
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

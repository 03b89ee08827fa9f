"""Failover and failback: promote a replica, replicate it back, switch roles back.

Every replica carries two marks, user properties set *locally* on it (a received copy of
a mark describes the sender, and is ignored):

- :data:`ORIGIN_PROPERTY` ``<host>:<dataset>``: the source it is a copy of, with the host
  as this node reaches it (an IPv6 address bracketed; see :mod:`.origin`); written by the
  runs that replicate onto it;
- :data:`PROMOTED_PROPERTY` ``<UTC time>``: it was promoted; no run replicates onto it.

The life of a relationship, ``S:data/x`` replicated to ``D:repl/x``:

1. **promote** (on D, S may be down): ``repl/x`` marked promoted, writable, mounted; S's
   task marked ``broken`` when S can be reached (else S's next run finds the mark and
   refuses).  A replica lives under its pool (``/repl/x``) whatever mountpoint it received
   from S (see ``Pair.settle_mount``); promote mounts it at that mountpoint (``zfs inherit
   -S``) when the directory there is empty, and otherwise leaves it and says how.
2. **reverse** (on D, once S is back): a task ``repl/x`` → ``S:data/x``; the normal repair
   rolls ``data/x`` back to the last common snapshot after showing what that discards,
   then D replicates onto it (read-only, marked a replica of D).
3. **switchback** (on D, planned): ``repl/x`` read-only, a last incremental to S, then
   ``data/x`` promoted on S with S's original task idle again, and ``repl/x`` a replica
   again (D's reverse task gone), back under its pool; S's next run goes on from the
   snapshot they share.

Steps on the partner run its own copy of this module (:mod:`.partner`) over ssh.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..exit_status import FAILED
from ..hosts import CommandFailed, HostError, SshHost
from ..peer import module_argv
from ..zfs import NoSuchDataset, ZfsError, ZfsNode, readonly_of, set_locally, validate_dataset_name
from . import leftovers, preflight, retention
from .executor import Outcome
from .model import ORIGIN_PROPERTY, PROMOTED_PROPERTY, TRACKING_PREFIX, Plan, chain_identity, own_mark
from .origin import OriginError, format_origin, parse_origin
from .preflight import PreflightError
from .task_run import INC, REPAIR, RunFailed, TaskRun
from .task_store import IDLE, PLAIN, RAW, TaskRecord, TaskStore

#: how long a partner that is down may hold up a promote (it must work with the source gone)
PARTNER_TIMEOUT = 5


class FailoverError(Exception):
    """Refused or failed: one line for the user."""

    #: the exit status of the command that failed so
    status = FAILED


@dataclass(frozen=True)
class Replica:
    """A dataset on this node as failover sees it."""

    dataset: str
    kind: str  # "filesystem" or "volume"
    origin: str | None  # "<host>:<dataset>" (see :mod:`.origin`)
    promoted: str | None
    readonly: bool
    resume_token: bool
    #: an encrypted replica (sent raw) whose key is not loaded: the encryption root to load it for
    needs_key: str | None = None
    mountpoint: str = "-"  # where it is mounted (filesystems)
    #: the source's mountpoint, received but not in effect: promote mounts it there
    source_mountpoint: str | None = None

    @property
    def source(self) -> tuple[str, str]:
        """``(host, dataset)`` of the source; :class:`FailoverError` when the mark is missing
        or is not one."""
        if self.origin is None:
            raise FailoverError(f"{self.dataset} is not a replica made by retadm (it has no {ORIGIN_PROPERTY}); "
                                "it is writable as it is")
        try:
            return parse_origin(self.origin)
        except OriginError as exc:
            raise FailoverError(f"{self.dataset}: {exc}; set it to the source's <host>:<dataset> "
                                f"(zfs set {ORIGIN_PROPERTY}=… {self.dataset}), then try again") from None

    @property
    def source_host(self) -> str:
        return self.source[0]

    @property
    def source_dataset(self) -> str:
        return self.source[1]


def read_replica(node: ZfsNode, dataset: str) -> Replica:
    validate_dataset_name(dataset)
    if "/" not in dataset:
        raise FailoverError(f"{dataset} is a pool; give the replicated dataset (pool/name)")
    try:
        props = node.values_and_sources(dataset, ["type", "readonly", "mountpoint", ORIGIN_PROPERTY,
                                                  PROMOTED_PROPERTY])
    except NoSuchDataset:
        raise FailoverError(f"{dataset} does not exist on this node") from None
    mark = {p: own_mark(props[p]) for p in (ORIGIN_PROPERTY, PROMOTED_PROPERTY)}
    readonly = readonly_of(props["readonly"]) is not False  # (not known: promote sets it off all the same)
    encryption = node.encryption(dataset)
    needs_key = None if encryption is None or encryption.key_loaded else (encryption.encryptionroot or dataset)
    mountpoint, where = props["mountpoint"]
    wanted = None
    if props["type"][0] == "filesystem" and not set_locally(where):  # a local one is the administrator's
        received = node.received_value(dataset, "mountpoint")
        if received.startswith("/") and received != mountpoint:
            wanted = received
    return Replica(dataset, props["type"][0], mark[ORIGIN_PROPERTY], mark[PROMOTED_PROPERTY],
                   readonly, node.resume_token(dataset) is not None, needs_key, mountpoint, wanted)


@dataclass(frozen=True)
class Key:
    """The key of an encrypted replica, as ``promote`` is given it: a file (path) or a
    passphrase typed on the terminal.  Never on a command line, never logged."""

    file: str | None = None
    passphrase: str | None = field(default=None, repr=False)


def key_missing(replica: Replica) -> str:
    """The one line ``promote`` says when an encrypted replica's key is not loaded and not given."""
    return (f"{replica.dataset} is encrypted and its key is not loaded (it stays on the source): give it with "
            f"--key-file PATH, or run promote on a terminal to type the passphrase of {replica.needs_key}")


# -- promote --------------------------------------------------------------------------------


def promotion_steps(replica: Replica) -> list[str]:
    """What ``promote`` does, one line each (``--dry-run`` prints these)."""
    host, dataset = replica.source
    steps = []
    if replica.needs_key is not None:
        steps.append(f"load the encryption key of {replica.needs_key} (zfs load-key)")
    if replica.promoted is None:
        if replica.resume_token:
            steps.append(f"discard the partial receive into {replica.dataset} (zfs receive -A): its data never "
                         "completed a snapshot")
        steps.append(f"mark {replica.dataset} promoted ({PROMOTED_PROPERTY}): no replication onto it any more")
    if replica.readonly:
        steps.append(f"make {replica.dataset} writable (readonly=off)")
    if replica.source_mountpoint:
        steps.append(f"mount {replica.dataset} at the source's mountpoint {replica.source_mountpoint} if that "
                     f"directory is empty (else it stays at {replica.mountpoint})")
    elif replica.kind == "filesystem":
        steps.append(f"mount {replica.dataset} (if it is not)")
    steps.append(f"mark the task of {dataset} broken on {host} (if it answers)")
    return steps


def promote(node: ZfsNode, replica: Replica, partner: SshHost | None = None, key: Key | None = None) -> list[str]:
    """Promote ``replica`` here; returns notes: it stayed where it was mounted (the source's
    mountpoint is not free), the source could not be told.

    Everything promote needs is checked before anything changes: the origin mark (whom to
    tell, and about which dataset), the partner's address, that nothing is receiving, and
    an encrypted replica's key (loaded first: a replica that cannot be mounted is no failover).
    """
    host, dataset = replica.source
    if replica.needs_key is not None and key is None:
        raise FailoverError(key_missing(replica))
    if partner is None:
        try:
            partner = SshHost(host, connect_timeout=PARTNER_TIMEOUT)
        except ValueError as exc:  # InvalidHost: parse_origin validated it, so only a changed rule gets here
            raise FailoverError(f"{replica.dataset}: cannot reach the source {host!r}: {exc}") from None
    receiving = leftovers.parse_receives(node.host.run(leftovers.listing_argv()).stdout, replica.dataset)
    if receiving:
        r = receiving[0]
        raise FailoverError(f"'{r.args}' (pid {r.pid}) is receiving into {replica.dataset}: stop the source's run "
                            "or wait for it, then promote")
    if replica.needs_key is not None and key is not None:
        try:
            node.load_key(replica.needs_key, key_file=key.file, secret=key.passphrase)
        except CommandFailed as exc:
            raise FailoverError(f"the key of {replica.needs_key} was not loaded: {exc.reason()}; nothing was "
                                "changed") from None
    if replica.promoted is None:
        if replica.resume_token:
            node.abort_resume(replica.dataset)
        node.set_property(replica.dataset, PROMOTED_PROPERTY, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    if replica.readonly:
        node.set_property(replica.dataset, "readonly", "off")
    notes = []
    if replica.kind == "filesystem":
        if note := _mount_at_source_mountpoint(node, replica):
            notes.append(note)
        node.mount(replica.dataset)
        if readonly_of(node.value_and_source(replica.dataset, "readonly")) is None:
            node.remount(replica.dataset)  # zfs-fuse keeps the old mount's readonly option
    reason = f"the replica was promoted on its partner at {time.strftime('%Y-%m-%d %H:%M:%S %Z')}"
    # (the replica's name: the source marks only its task to this replica)
    if note := tell_partner(partner, ["broken", dataset, reason, replica.dataset]):
        notes.append(note)
    return notes


#: prints why a directory must not be mounted over: it holds files, or something is mounted
#: there; nothing when it is free (missing: ZFS creates it)
_OCCUPIED = ('test -e "$1" || exit 0; test -d "$1" || { echo "is not a directory"; exit 0; }; '
             'mountpoint -q "$1" && { echo "has something mounted on it"; exit 0; }; '
             'test -z "$(ls -A "$1")" || echo "is not empty"')


def _mount_at_source_mountpoint(node: ZfsNode, replica: Replica) -> str | None:
    """Move the promoted replica to the source's mountpoint (so the shares' paths work) unless
    that would cover something; then a note says so and how to move it later."""
    target = replica.source_mountpoint
    if target is None:
        return None
    why = node.host.run(["sh", "-c", _OCCUPIED, "sh", target]).stdout.strip()
    if why:
        return (f"{replica.dataset} stays mounted at {replica.mountpoint}: {target} {why}; once it is, "
                f"'zfs inherit -S mountpoint {replica.dataset}' mounts it there")
    node.revert_to_received(replica.dataset, "mountpoint")
    return None


def tell_partner(host: SshHost, args: list[str]) -> str | None:
    """Run :mod:`.partner` on ``host``; a note (not an error) when it cannot be reached."""
    try:
        host.run(module_argv("ovios_shell_retadm.replication.partner", *args), timeout=60)
    except HostError as exc:
        return f"{host.name} was not told ({exc}); its next run finds the mark and refuses"
    return None


def demote(node: ZfsNode, dataset: str, origin: str) -> None:
    """A promoted dataset becomes a replica again (switchback): read-only, marked so, and
    without the bookmarks it kept while it was a source (a replica's are never pruned)."""
    node.set_property(dataset, "readonly", "on")
    node.set_property(dataset, ORIGIN_PROPERTY, origin)
    _drop(node, dataset, PROMOTED_PROPERTY)
    if node.value_and_source(dataset, "mountpoint")[1] == "received":  # promote put it there
        _drop(node, dataset, "mountpoint")  # back under its pool: the source's mountpoint is the source's
        node.mount(dataset)
    for bookmark in node.bookmarks(dataset):
        if bookmark.name.startswith(TRACKING_PREFIX):
            node.destroy_bookmark(dataset, bookmark.name)


def take_over(node: ZfsNode, dataset: str) -> None:
    """A replica becomes a source again (switchback, on the original source): writable,
    mounted, no marks."""
    _drop(node, dataset, ORIGIN_PROPERTY)
    _drop(node, dataset, PROMOTED_PROPERTY)
    node.set_property(dataset, "readonly", "off")
    if node.dataset_type(dataset) == "filesystem":
        node.mount(dataset)


def _drop(node: ZfsNode, dataset: str, prop: str) -> None:
    try:
        node.inherit_property(dataset, prop)
    except ZfsError as exc:
        raise FailoverError(f"cannot clear {prop} on {dataset}: {exc}") from exc


# -- reverse --------------------------------------------------------------------------------


class ReverseRefused(FailoverError):
    """``reverse`` cannot go ahead; nothing was changed."""


class ReverseRunFailed(FailoverError):
    """The task replicating back exists, but its first run failed (``retadm inc`` tries again)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Reversal:
    """A checked ``reverse``: the task that replicates a promoted replica back to its old source."""

    node: ZfsNode  # this node, where the replica was promoted
    record: TaskRecord  # the task, not created yet: its destination is the old source
    partner: SshHost  # the old source
    here: str  # this node's address as the old source sees it

    def repair_run(self, tasks: TaskStore, confirmed: Plan | None = None) -> TaskRun:
        """The run that rolls the old source back to the last common snapshot and replicates onto
        it: previewed first, then run with the plan the preview ``confirmed``."""
        return TaskRun(self.record, REPAIR, tasks, source=self.node, destination=ZfsNode(self.partner),
                       confirmed=confirmed)


def prepare_reverse(node: ZfsNode, tasks: TaskStore, dataset: str, properties: bool) -> Reversal:
    """Check that the promoted replica ``dataset`` can be replicated back to its old source
    (ssh both ways included); :class:`ReverseRefused` says why not."""
    try:
        replica = read_replica(node, dataset)
    except (FailoverError, ZfsError, HostError) as exc:
        raise ReverseRefused(str(exc)) from exc
    if replica.origin is None or replica.promoted is None:
        raise ReverseRefused(f"{dataset} is not a promoted replica; 'retadm promote {dataset}' comes first")
    try:
        source_host, source_dataset = replica.source
    except FailoverError as exc:
        raise ReverseRefused(str(exc)) from exc
    if tasks.of(dataset):
        raise ReverseRefused(f"{dataset} already has a replication task (see 'retadm status')")
    try:
        partner = preflight.destination(source_host)
        here = preflight.reverse_ssh(partner)
    except PreflightError as exc:
        raise ReverseRefused(str(exc)) from exc
    record = TaskRecord(dataset=dataset, destination=source_host, remote_dataset=source_dataset,
                        properties=properties, initialised=True, state=IDLE, source_address=here,
                        identity=chain_identity([s.name for s in node.snapshots(dataset)]),
                        send_mode=_reverse_send_mode(node, dataset),
                        # the restore points this node holds as a replica are thinned, not dropped, by
                        # its runs, and the old source keeps some too ('retadm edit' changes it)
                        retention=retention.DEFAULT.text)
    return Reversal(node, record, partner, here)


def _reverse_send_mode(node: ZfsNode, dataset: str) -> str:
    """An encrypted promoted replica goes back raw, as it came (its old source's chain is raw)."""
    try:
        encryption = node.encryption(dataset)
    except (ZfsError, HostError) as exc:
        raise ReverseRefused(str(exc)) from exc
    return RAW if encryption is not None and encryption.encrypted else PLAIN


def reverse(tasks: TaskStore, reversal: Reversal, confirmed: Plan) -> tuple[Outcome, str | None]:
    """Create the task and run it with the plan its preview showed (``confirmed``): the old
    source's task is marked broken first.  Returns the run's outcome, and a note when the old
    source could not be told."""
    record = reversal.record
    if not tasks.create(record):
        raise ReverseRefused(f"{record.dataset} already has a replication task (see 'retadm status')")
    note = tell_partner(reversal.partner, ["broken", record.remote_dataset,
                                           f"replicated back from {reversal.here}:{record.dataset} (failback)",
                                           record.dataset])
    try:
        outcome = reversal.repair_run(tasks, confirmed).run()
    except RunFailed as exc:
        raise ReverseRunFailed(f"{exc} (the task stays: 'retadm inc {record.dataset}' tries again)",
                               exc.status) from exc
    return outcome, note


# -- switchback -----------------------------------------------------------------------------


class SwitchbackRefused(FailoverError):
    """``switchback`` cannot go ahead; nothing was changed."""


class FinalIncrementalFailed(FailoverError):
    """The last changes did not reach the original source; nothing was switched (the dataset is
    writable again unless undoing its ``readonly`` failed too: the message says which)."""


class TakeOverFailed(FailoverError):
    """The last changes reached the original source, but it did not take over; the dataset
    stays read-only here, and switchback can run again."""


class DemoteFailed(FailoverError):
    """The original source is the source again, but the dataset here was not made its replica."""


@dataclass(frozen=True)
class Switchback:
    """A checked ``switchback``: the task ``reverse`` set up, and the original source."""

    record: TaskRecord
    origin: str  # the original source, ``<host>:<dataset>`` (see :mod:`.origin`)

    @property
    def dataset(self) -> str:
        return self.record.dataset

    def steps(self) -> list[str]:
        """What :func:`switchback` does, one line each."""
        dataset, origin = self.dataset, self.origin
        return [f"make {dataset} read-only here (writes to it fail from now on: stop its services first)",
                f"send the last changes to {origin}",
                f"make {origin} writable there, and its own task go on from the snapshot both share",
                f"make {dataset} a replica of {origin} again; forget this node's task for it"]


def prepare_switchback(node: ZfsNode, tasks: TaskStore, dataset: str) -> Switchback:
    """Check that ``dataset`` is a promoted replica replicated back by ``reverse``, alone;
    :class:`SwitchbackRefused` says why not."""
    records = tasks.of(dataset)
    if len(records) > 1:
        raise SwitchbackRefused(f"{dataset} has {len(records)} replication tasks; switchback goes with the one "
                                "'retadm reverse' set up alone: 'retadm reset' the others first")
    try:
        replica = read_replica(node, dataset)
    except (FailoverError, ZfsError, HostError) as exc:
        raise SwitchbackRefused(str(exc)) from exc
    if not records or replica.promoted is None:
        raise SwitchbackRefused(f"{dataset} is not being replicated back ('retadm reverse {dataset}' first)")
    try:
        origin = format_origin(records[0].destination, records[0].remote_dataset)
    except OriginError as exc:
        raise SwitchbackRefused(str(exc)) from exc
    return Switchback(records[0], origin)


def switchback(node: ZfsNode, tasks: TaskStore, planned: Switchback, partner: SshHost | None = None) -> str:
    """Hand ``planned.dataset`` back to the original source (``partner``); returns the snapshot
    both share, from which the original source's own task goes on.

    In phases, each failing with its own error: the dataset read-only here and a last
    incremental (:class:`FinalIncrementalFailed`; the dataset is made writable again), the
    original source's take-over (:class:`TakeOverFailed`), the dataset here demoted to its
    replica (:class:`DemoteFailed`); then this node's task for it is forgotten.
    """
    dataset, origin = planned.dataset, planned.origin
    common, common_guid = _final_incremental(node, tasks, planned)
    if partner is None:
        partner = SshHost(planned.record.destination)
    try:
        partner.run(module_argv("ovios_shell_retadm.replication.partner", "take-over", planned.record.remote_dataset,
                                common, str(common_guid), dataset), timeout=120)
    except HostError as exc:
        raise TakeOverFailed(f"the last changes reached {origin}, but it did not take over: {exc}; {dataset} stays "
                             "read-only here; run switchback again") from exc
    try:
        demote(node, dataset, origin)
    except (FailoverError, ZfsError) as exc:
        raise DemoteFailed(f"{origin} is the source again, but {dataset} was not marked its replica: {exc}") from exc
    tasks.delete(planned.record.key)
    return common


def _final_incremental(node: ZfsNode, tasks: TaskStore, planned: Switchback) -> tuple[str, int | None]:
    """Make the dataset read-only and send its last changes: the snapshot both sides share then,
    and its guid.  On failure the dataset is made writable again."""
    dataset = planned.dataset
    try:
        node.set_property(dataset, "readonly", "on")
        current = tasks.get(planned.record.key)
        if current is None:
            raise RunFailed(f"the task of {dataset} was removed meanwhile")
        outcome = TaskRun(current, INC, tasks).run()
        if outcome.common is None:
            raise RunFailed(f"the run of {dataset} ended without a snapshot both sides share")
    except (RunFailed, ZfsError, HostError) as exc:
        try:
            node.set_property(dataset, "readonly", "off")
        except (ZfsError, HostError) as undo:
            raise FinalIncrementalFailed(f"{exc}; nothing was switched, but {dataset} stays read-only: {undo} "
                                         f"(zfs set readonly=off {dataset} makes it writable)") from exc
        raise FinalIncrementalFailed(f"{exc}; nothing was switched, {dataset} is writable again") from exc
    return outcome.common, outcome.common_guid

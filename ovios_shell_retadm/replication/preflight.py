"""The checks ``retadm init`` makes before anything is created or sent.

Each check raises :class:`PreflightError` with one line that says what is wrong
and, where there is one, a hint: what to run.  They read; they never change either node.
"""

from __future__ import annotations

import shlex
import socket
from collections.abc import Iterable

from ..hosts import (
    AuthError,
    Host,
    HostError,
    HostKeyError,
    HostKeyUnknown,
    HostUnreachable,
    SshHost,
    classify_ssh_failure,
    validate_hostname,
)
from ..zfs import (
    Candidate,
    InvalidName,
    Landing,
    NoSuchDataset,
    ZfsError,
    ZfsNode,
    pool_of,
    stream_flags,
)
from .model import ORIGIN_PROPERTY, PROMOTED_PROPERTY, own_mark
from .origin import OriginError, parse_origin
from .task_store import DECRYPTED, PLAIN, RAW, TaskRecord, TaskStore


class PreflightError(Exception):
    """What is wrong (``message``) and, where there is one, what to run about it (``hint``);
    ``str()`` gives both on one line, as ``retadm init`` says them."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(f"{message}; {hint}" if hint else message)
        self.message = message
        self.hint = hint


class RawImpossible(PreflightError):
    """An encrypted dataset cannot be replicated raw, and no decrypted replica was asked for."""


class InvalidValue(PreflightError):
    """A name or address that is not valid at all: a usage error (exit status 2)."""


class NoPasswordlessSsh(PreflightError):
    """Passwordless ssh is missing one way (a key refused, a host key not yet recorded):
    what a key exchange sets up (see :mod:`..key_exchange`).  ``forward``: whether this
    node already reaches the destination with its key."""

    def __init__(self, message: str, hint: str | None = None, *, forward: bool):
        super().__init__(message, hint)
        self.forward = forward


def ssh_setup_commands(local: str, remote: str) -> str:
    """The guide's Step 1, as the exact commands to run."""
    return (
        f"on this node: 'options ssh.allow.root on', 'ssh-keygen' (if no key yet), 'ssh-copy-id {remote}'; "
        f"on {remote}: 'options ssh.allow.root on', 'ssh-keygen', 'ssh-copy-id {local}'"
    )


#: what ``retadm init`` adds to the commands: on a terminal it offers the key exchange itself
TERMINAL_OFFER = "(or run 'retadm init' on a terminal: it offers to do it)"


def destination(address: str) -> SshHost:
    """Passwordless SSH to the destination works (BatchMode: a password prompt is a failure)."""
    try:
        host = SshHost(validate_hostname(address))
        host.run(["true"], timeout=30)
    except ValueError as exc:
        raise InvalidValue(str(exc)) from exc
    except AuthError as exc:
        raise NoPasswordlessSsh(
            f"passwordless SSH to {address} is not set up (our key was refused)",
            f"{ssh_setup_commands(_address_towards(address), address)} {TERMINAL_OFFER}", forward=False,
        ) from exc
    except HostKeyUnknown as exc:
        raise NoPasswordlessSsh(
            f"passwordless SSH to {address} is not set up (its host key is not recorded here)",
            f"{ssh_setup_commands(_address_towards(address), address)} {TERMINAL_OFFER}", forward=False,
        ) from exc
    except HostKeyError as exc:
        raise PreflightError(str(exc), f"check the host key of {address} (ssh root@{address}) before going on") from exc
    except HostUnreachable as exc:
        raise PreflightError(str(exc)) from exc
    return host


def _address_towards(address: str) -> str:
    """This node's address on the route to ``address``: what the peer's ssh-copy-id needs."""
    try:
        family, _, _, _, sockaddr = socket.getaddrinfo(address, 22, type=socket.SOCK_DGRAM)[0]
        with socket.socket(family, socket.SOCK_DGRAM) as udp:
            udp.connect(sockaddr)  # picks the route; a UDP connect sends nothing
            return udp.getsockname()[0]
    except OSError:
        return "<this node's address>"


#: on the destination: the address it sees this node at (sshd's ``SSH_CONNECTION``), then, when
#: there is one, the exit status of an ssh back there with the options given (its stderr is the
#: script's).  The outer ssh's own failures stay its own: the script itself always succeeds.
_REVERSE_PROBE = 'src=${SSH_CONNECTION%% *}; echo "$src"; [ -n "$src" ] || exit 0; ' \
                 'ssh "$@" "root@$src" true </dev/null; echo "$?"'


def reverse_ssh(host: Host) -> str:
    """Passwordless SSH from the destination back to this node; returns our address as it sees it.
    One call: the destination looks up the address and tries it."""
    options = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=10"]
    try:
        result = host.run(["sh", "-c", _REVERSE_PROBE, "sh", *options], timeout=30)
    except HostError as exc:
        raise PreflightError(str(exc)) from exc
    seen, _, status = result.stdout.partition("\n")
    seen = seen.strip()
    if not seen:
        raise PreflightError(f"{host.name} does not say which address it sees this node at")
    try:
        source = validate_hostname(seen)
    except ValueError as exc:
        raise PreflightError(f"{host.name} sees this node at {seen!r}, which is not an address: {exc}") from exc
    if status.strip() != "0":
        reason = (result.stderr.strip().splitlines() or ["failed"])[-1]
        message = f"passwordless SSH from {host.name} back to {source} does not work ({reason})"
        hint = f"on {host.name} run: {shlex.join(['ssh-copy-id', f'root@{source}'])} {TERMINAL_OFFER}"
        failure = classify_ssh_failure(result.stderr)
        if failure is not None and failure[0] in (AuthError, HostKeyUnknown):
            raise NoPasswordlessSsh(message, hint, forward=True)
        raise PreflightError(message, hint)
    return source


def landing(node: ZfsNode, remote_dataset: str) -> Landing:
    """What the destination has where the replica would land (one call): what
    :func:`remote_pool`, :func:`remote_absent`, :func:`send_mode` and :func:`send_flags` check."""
    try:
        return node.landing(remote_dataset)  # (which checks the names first)
    except (InvalidName, ValueError) as exc:
        raise InvalidValue(str(exc)) from exc
    except (HostError, ZfsError) as exc:
        raise PreflightError(f"zfs does not answer on {node.host.name}: {exc}") from exc


def remote_pool(landing: Landing, where: str) -> None:
    """The pool the replica would land in exists on ``where`` and is ONLINE."""
    if landing.health is None:
        raise PreflightError(f"{where} has no pool {landing.pool!r}")
    if landing.health != "ONLINE":
        raise PreflightError(f"pool {landing.pool} on {where} is {landing.health}, not ONLINE", "fix it first")


def remote_absent(landing: Landing, where: str) -> None:
    """The replica's name is free on ``where``, and what it would be received under exists."""
    if not landing.parent_exists:
        raise PreflightError(
            f"{landing.parent} does not exist on {where}; zfs receive needs it — "
            "create it there first or choose a name directly under the pool"
        )
    if landing.exists:
        raise PreflightError(
            f"{landing.dataset} already exists on {where}; retadm never overwrites it — "
            "choose another name or remove it there yourself"
        )


def candidate(node: ZfsNode, dataset: str) -> Candidate:
    """What this node has of ``dataset`` (one call): what :func:`source_dataset`,
    :func:`unreplicated_children`, :func:`is_replica`, :func:`send_mode` and :func:`send_flags`
    check."""
    try:
        return node.candidate(dataset, [ORIGIN_PROPERTY, PROMOTED_PROPERTY])
    except (InvalidName, ValueError) as exc:
        raise InvalidValue(str(exc)) from exc
    except (HostError, ZfsError) as exc:
        raise PreflightError(f"zfs does not answer here: {exc}") from exc


def source_dataset(candidate: Candidate) -> str:
    """The dataset exists here and is a filesystem or volume (not a pool).  It may have tasks
    already (to other destinations: fan-out; see :func:`new_target`)."""
    dataset, kind = candidate.dataset, candidate.kind
    if kind is None:
        raise PreflightError(f"dataset {dataset} does not exist")
    if kind not in ("filesystem", "volume"):
        raise PreflightError(f"{dataset} is a {kind}; retadm replicates filesystems and volumes")
    if pool_of(dataset) == dataset:
        raise PreflightError(f"{dataset} is a pool; retadm replicates datasets, not whole pools")
    return kind


def same_replica(node: ZfsNode, record: TaskRecord) -> None:
    """What a task's destination reached at a new address holds is the task's replica: its own
    origin mark names the task's dataset, it was not promoted, and it has the task's common
    snapshot (by guid: a copy made otherwise has other guids).  The mark's host part may differ
    (the partner may see this node at a new address too): the next run writes it anew."""
    remote, where = record.remote_dataset, node.host.name
    if record.last_guid is None:
        raise PreflightError(f"{record.dataset} has no common snapshot with its replica yet (its full replication "
                             "has not completed): nothing to check the replica at a new address by")
    try:
        marks = node.values_and_sources(remote, [ORIGIN_PROPERTY, PROMOTED_PROPERTY])
        guids = {snapshot.guid for snapshot in node.snapshots(remote)}
    except NoSuchDataset as exc:
        raise PreflightError(f"{remote} does not exist on {where}: that is not where the task's replica is") from exc
    except (HostError, ZfsError) as exc:
        raise PreflightError(f"zfs does not answer on {where}: {exc}") from exc
    mark = own_mark(marks[ORIGIN_PROPERTY])
    if mark is None or _origin_dataset(mark) != record.dataset:
        raise PreflightError(f"{remote} on {where} is not marked as a replica of {record.dataset} "
                             f"(its origin mark: {mark or 'none'}): that is not the task's replica")
    if own_mark(marks[PROMOTED_PROPERTY]) is not None:
        raise PreflightError(f"{remote} on {where} was promoted: it is no longer a replica to replicate onto")
    if record.last_guid not in guids:
        raise PreflightError(f"{remote} on {where} lacks the task's common snapshot @{record.last_snapshot} "
                             f"(guid {record.last_guid}): it is another copy, not the task's replica")


def _origin_dataset(mark: str) -> str | None:
    try:
        return parse_origin(mark)[1]
    except OriginError:
        return None


def new_target(dataset: str, destination: str, remote_dataset: str, tasks: TaskStore) -> None:
    """``dataset`` has no task to this destination and remote dataset yet (one to another is
    fine: a dataset may be replicated to several destinations)."""
    for record in tasks.of(dataset):
        if (record.destination, record.remote_dataset) != (destination, remote_dataset):
            continue
        if not record.initialised:
            raise PreflightError(f"{dataset} already has a task to {record.target} whose full replication did "
                                 "not complete", f"'retadm inc {dataset}' finishes it")
        raise PreflightError(f"{dataset} is already replicated to {record.target} (see 'retadm status')")


def send_mode(source: Candidate, landing: Landing, where: str, *, decrypted: bool) -> str:
    """How the task sends ``source`` (tasks.PLAIN, RAW or DECRYPTED), from its encryption.

    An encrypted dataset travels raw (``send -w``): the replica stays encrypted and the key
    never leaves this node.  That needs ``send -w`` here and ``feature@encryption`` on the
    destination pool (``landing``, on ``where``); where either is missing the task is refused
    with the reason, unless the administrator asked for a decrypted replica (``decrypted``).
    Asking for one for an encrypted dataset that can go raw is honoured too: it is the
    administrator's call.
    """
    encryption = source.encryption
    if encryption is None or not encryption.encrypted:
        return PLAIN
    if decrypted:
        return DECRYPTED
    if not source.capabilities.send_raw:
        why = "this node's zfs cannot send raw (zfs send -w)"
    elif not landing.capabilities.encryption_on(landing.pool):
        why = f"pool {landing.pool} on {where} cannot hold encrypted datasets (feature@encryption is not enabled)"
    else:
        return RAW
    raise RawImpossible(
        f"{source.dataset} is encrypted ({encryption.encryption}) and would be replicated decrypted: {why}",
        "use a destination pool with encryption, or --decrypted for an unencrypted replica",
    )


def send_flags(source: Candidate, landing: Landing, mode: str) -> list[str]:
    """The stream flags (``-L``, ``-c``, ``-e``) the task will send with for good: those both
    sides support (:func:`..zfs.stream_flags`), as init's looks at both just now saw them
    (they are decided once, so never on a stale answer).  None (an empty list) for a raw
    task: ``-w`` sends the blocks as they are on disk, large and compressed, by itself."""
    if mode == RAW:
        return []
    encrypted_replica = landing.parent_encryption is not None and landing.parent_encryption.encrypted
    return list(stream_flags(source.capabilities, pool_of(source.dataset), landing.capabilities, landing.pool,
                             encrypted_replica=encrypted_replica))


def is_replica(source: Candidate) -> bool:
    """Whether ``source`` is a replica (marked with its origin here) not promoted: a task from
    it is a cascade, which sends on what arrives and takes no snapshot of its own."""
    marks = source.properties
    return own_mark(marks[ORIGIN_PROPERTY]) is not None and own_mark(marks[PROMOTED_PROPERTY]) is None


def unreplicated_children(children: Iterable[str], tasks: TaskStore) -> list[str]:
    """Which of a dataset's ``children`` no task replicates: a task replicates one dataset,
    and its send carries none of its children."""
    taken = {record.dataset for record in tasks.all()}
    return [child for child in children if child not in taken]


def children_note(dataset: str, children: list[str]) -> str:
    """What a task does not replicate, and how to replicate it (init's warning, doctor's check)."""
    shown = ", ".join(children[:5]) + (f" and {len(children) - 5} more" if len(children) > 5 else "")
    return (f"{dataset} has child datasets this task does not replicate: {shown} (a task replicates one dataset; "
            f"give each child a task of its own: 'retadm init {children[0]}')")


def replicable_datasets(node: ZfsNode, tasks: TaskStore) -> list[str]:
    """The datasets the init wizard offers: not pools, not already replicated."""
    taken = {record.dataset for record in tasks.all()}
    return [d.name for d in node.list_datasets() if "/" in d.name and d.name not in taken]

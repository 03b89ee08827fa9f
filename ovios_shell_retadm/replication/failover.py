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
   refuses).
2. **reverse** (on D, once S is back): a task ``repl/x`` → ``S:data/x``; the normal repair
   rolls ``data/x`` back to the last common snapshot after showing what that discards,
   then D replicates onto it (read-only, marked a replica of D).
3. **switchback** (on D, planned): ``repl/x`` read-only, a last incremental to S, then
   ``data/x`` promoted on S with S's original task idle again, and ``repl/x`` a replica
   again (D's reverse task gone); S's next run goes on from the snapshot they share.

Steps on the partner run its own copy of this module (:mod:`.partner`) over ssh.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..hosts import HostError, SshHost
from ..peer import module_argv
from ..zfs import NoSuchDataset, ZfsError, ZfsNode, validate_dataset_name
from . import leftovers
from .model import ORIGIN_PROPERTY, PROMOTED_PROPERTY, TRACKING_PREFIX, own_mark
from .origin import OriginError, parse_origin

#: how long a partner that is down may hold up a promote (it must work with the source gone)
PARTNER_TIMEOUT = 5


class FailoverError(Exception):
    """Refused or failed: one line for the user."""


@dataclass(frozen=True)
class Replica:
    """A dataset on this node as failover sees it."""

    dataset: str
    kind: str  # "filesystem" or "volume"
    origin: str | None  # "<host>:<dataset>" (see :mod:`.origin`)
    promoted: str | None
    readonly: bool
    resume_token: bool

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
        props = node.values_and_sources(dataset, ["type", "readonly", ORIGIN_PROPERTY, PROMOTED_PROPERTY])
    except NoSuchDataset:
        raise FailoverError(f"{dataset} does not exist on this node") from None
    mark = {p: own_mark(props[p]) for p in (ORIGIN_PROPERTY, PROMOTED_PROPERTY)}
    value, source = props["readonly"]
    readonly = value == "on" or source == "temporary"  # zfs-fuse: a readonly mount hides the setting
    return Replica(dataset, props["type"][0], mark[ORIGIN_PROPERTY], mark[PROMOTED_PROPERTY],
                   readonly, node.resume_token(dataset) is not None)


# -- promote --------------------------------------------------------------------------------


def promotion_steps(replica: Replica) -> list[str]:
    """What ``promote`` does, one line each (``--dry-run`` prints these)."""
    host, dataset = replica.source
    steps = []
    if replica.promoted is None:
        if replica.resume_token:
            steps.append(f"discard the partial receive into {replica.dataset} (zfs receive -A): its data never "
                         "completed a snapshot")
        steps.append(f"mark {replica.dataset} promoted ({PROMOTED_PROPERTY}): no replication onto it any more")
    if replica.readonly:
        steps.append(f"make {replica.dataset} writable (readonly=off)")
    if replica.kind == "filesystem":
        steps.append(f"mount {replica.dataset} (if it is not)")
    steps.append(f"mark the task of {dataset} broken on {host} (if it answers)")
    return steps


def promote(node: ZfsNode, replica: Replica, partner: SshHost | None = None) -> str | None:
    """Promote ``replica`` here; returns a note when the source could not be told.

    Everything promote needs is checked before anything changes: the origin mark (whom to
    tell, and about which dataset), the partner's address, and that nothing is receiving.
    """
    host, dataset = replica.source
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
    if replica.promoted is None:
        if replica.resume_token:
            node.abort_resume(replica.dataset)
        node.set_property(replica.dataset, PROMOTED_PROPERTY, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    if replica.readonly:
        node.set_property(replica.dataset, "readonly", "off")
    if replica.kind == "filesystem":
        node.mount(replica.dataset)
        if node.value_and_source(replica.dataset, "readonly")[1] == "temporary":
            node.remount(replica.dataset)  # zfs-fuse keeps the old mount's readonly option
    reason = f"the replica was promoted on its partner at {time.strftime('%Y-%m-%d %H:%M:%S %Z')}"
    return tell_partner(partner, ["broken", dataset, reason, replica.dataset])  # the source's task to this replica


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

"""The partner's side of autosync: take a pushed configuration, atomically, or refuse it.

The source runs it over ssh with the configuration (format 1 JSON) on stdin (the command,
``ovios_shell_retadm.autosync_receive``, gathers the partners this node knows, which takes
the replication tasks and replicas, and calls :func:`check`)::

    python3 -m ovios_shell_retadm.autosync_receive --digest 3f2a9c0d11e4b7a8

It parses the text, checks that its :func:`~.model.digest` is the one the source
computed (a stream cut short or damaged on the way is refused, never half-stored) and
keeps it with :func:`.files.store_synced` (atomic; an older generation arriving late is
ignored).  It answers on stdout with one line, what this node now holds from that
source::

    stored generation=7 digest=3f2a9c0d11e4b7a8     # the push is the copy here now
    kept generation=9 digest=0b1c...               # the copy here was that generation or newer

and records it (the ``config_sync`` table, direction ``receive``, with the sender's
address) and logs it (``cluster-sync.log``).

The ``node`` a configuration names is believed only when the push comes from that node
(:class:`Peer`): the ssh client's address (``SSH_CONNECTION``'s first field) must be a partner
this node knows — the destination of one of its replication tasks, or the source host of a
replica here (the host part of its ``ovios:retadm.origin``), by address or by a name that
resolves to it — and the node's name must be that address here (the address itself, or a
name that resolves to it: DNS or ``/etc/hosts``).  A name that does not resolve here (nodes
that know each other by address, as in the guide) belongs to the address its first accepted
push came from, and to no other.  So a partner cannot replace the copy another partner
pushed.  Anything malformed is refused with one line on stderr and exit status 65
(EX_DATAERR), and the copy here stays as it was; a copy that cannot be written: exit 1.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass

from ..peer import module_argv
from . import files
from .model import ConfigError, Configuration, digest, parse

#: a configuration is kilobytes; refuse to read more than this from a partner
MAX_BYTES = 8 * 1024 * 1024

RECEIVE = "receive"


class Refused(Exception):
    """The pushed text is not a configuration this node will keep (one line)."""


def address(text: str) -> str:
    """An address as compared here: an IPv4 address seen on an IPv6 socket as IPv4, other
    addresses in their canonical form, names in lower case."""
    try:
        ip = ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return text.lower()
    mapped = getattr(ip, "ipv4_mapped", None)
    return str(mapped or ip)


def origin_splits(mark: str) -> list[tuple[str, str]]:
    """Every way to read an origin mark ``<host>:<dataset>`` (a ``:`` may be in both: an IPv6
    host, bracketed or not, and ZFS allows it in dataset names), host first; the caller keeps
    the reading whose host it knows."""
    splits = []
    for i, char in enumerate(mark):
        if char == ":" and 0 < i < len(mark) - 1:
            host = mark[:i]
            if host.startswith("[") and host.endswith("]"):
                host = host[1:-1]
            splits.append((host, mark[i + 1:]))
    return splits


def origin_hosts(mark: str) -> list[str]:
    return [host for host, _ in origin_splits(mark)]


def resolve(name: str) -> frozenset[str]:
    """The addresses ``name`` has here (DNS, /etc/hosts); none when it does not resolve."""
    try:
        found = socket.getaddrinfo(name, None)
    except (OSError, UnicodeError, ValueError):
        return frozenset()
    return frozenset(address(str(entry[4][0])) for entry in found)


@dataclass(frozen=True)
class Peer:
    """Who pushes, and whom this node knows: the ssh client's address (None: not over ssh),
    the partners (task destinations, replicas' origin hosts; names or addresses) and how a
    name is resolved (injected, so that :func:`check` stays a pure function of its inputs)."""

    address: str | None
    partners: frozenset[str]
    resolve: Callable[[str], frozenset[str]] = resolve
    #: the address a node's earlier pushes came from (None: none received yet)
    earlier_sender: Callable[[str], str | None] = lambda _node: None

    def addresses_of(self, name: str) -> frozenset[str]:
        try:
            ipaddress.ip_address(name.split("%")[0])
        except ValueError:
            return frozenset(address(a) for a in self.resolve(name))
        return frozenset({address(name)})


def _check_sender(node: str, peer: Peer) -> None:
    if not peer.address:
        raise Refused("not pushed over ssh (no SSH_CONNECTION): who sent it cannot be checked")
    sender = address(peer.address)
    if not any(sender in peer.addresses_of(address(p)) for p in peer.partners):
        raise Refused(f"{sender} is not a partner of this node (no replication task to it, no replica of its "
                      "datasets here)")
    known_as = peer.addresses_of(node)
    if known_as:
        if sender not in known_as:
            raise Refused(f"the configuration names node {node}, but comes from {sender}, which is not {node}'s "
                          f"address here ({node} is {', '.join(sorted(known_as))})")
        return
    # a name this node cannot resolve (nodes know each other by address, as in the guide):
    # it belongs to the partner whose push named it first, and to no other
    earlier = peer.earlier_sender(node)
    if earlier is not None and address(earlier) != sender:
        raise Refused(f"the configuration names node {node}, whose pushes came from {earlier}, but comes from "
                      f"{sender} ({node} does not resolve here; remove /etc/ovios/synced/{node}.json and its record "
                      "to let another address take it over)")


def check(text: str, expected_digest: str | None, this_node: str, peer: Peer) -> Configuration:
    """The configuration ``text`` describes, or :class:`Refused` with the reason. Pure (but
    for ``peer.resolve``)."""
    if not text.strip():
        raise Refused("empty input (no configuration was sent)")
    try:
        config = parse(text)
    except ConfigError as exc:
        raise Refused(str(exc)) from None
    if not config.node:
        raise Refused("the configuration names no node (\"node\" is empty)")
    try:
        files.synced_path(config.node)
    except ConfigError as exc:
        raise Refused(str(exc)) from None
    if config.node == this_node:
        raise Refused(f"the configuration is this node's own ({this_node}); a node does not sync to itself")
    _check_sender(config.node, peer)
    if config.generation < 1:
        raise Refused(f"generation {config.generation} is not a pushed generation (1 or more)")
    if expected_digest is not None and digest(config) != expected_digest:
        raise Refused(f"digest {digest(config)} is not the {expected_digest} the sender computed "
                      "(the configuration was damaged on the way)")
    return config


def remote_argv(expected_digest: str) -> list[str]:
    """The argv the source runs on the partner (through :class:`~..hosts.SshHost`), with
    the Python that has this package there (see :mod:`..peer`)."""
    return module_argv("ovios_shell_retadm.autosync_receive", "--digest", expected_digest)

"""The origin mark on a replica (:data:`.model.ORIGIN_PROPERTY`): which source it is a copy of.

The mark is ``<host>:<dataset>``.  Both parts may hold a ``:`` -- ZFS allows it in dataset
names, and an IPv6 address is made of them -- so the host is written so that the first
``:`` outside brackets ends it:

- a host name or an IPv4 address has no ``:``: ``192.168.0.149:data/smb:vol``;
- an IPv6 address is bracketed: ``[fd00::1]:data/smb:vol``.

Reading, in that order: a leading ``[...]`` is the host; an unbracketed mark whose part
before the *last* ``:`` is an IPv6 address is one written before brackets were (its dataset
has no ``:``, or the old reader could not have used it either); otherwise the host is
everything before the *first* ``:``.  Marks written before this module, with a name or an
IPv4 address, read as they always did.
"""

from __future__ import annotations

import ipaddress

from ..hosts import InvalidHost, validate_hostname
from ..zfs import InvalidName, ZfsNode, validate_dataset_name
from .model import ORIGIN_PROPERTY, PROMOTED_PROPERTY


class OriginError(ValueError):
    """A mark that is not ``<host>:<dataset>``: one line for the user."""


def format_origin(host: str, dataset: str) -> str:
    """The mark for ``dataset`` on ``host`` (an IPv6 address is bracketed)."""
    try:
        validate_hostname(host)
        validate_dataset_name(dataset)
    except (InvalidHost, InvalidName) as exc:
        raise OriginError(f"cannot write {ORIGIN_PROPERTY} for {host}:{dataset}: {exc}") from None
    return f"[{host}]:{dataset}" if ":" in host else f"{host}:{dataset}"


def parse_origin(mark: str) -> tuple[str, str]:
    """``(host, dataset)`` from a mark, both validated; :class:`OriginError` when it is not one."""
    host, dataset = _split(mark)
    try:
        validate_hostname(host)
        validate_dataset_name(dataset)
    except (InvalidHost, InvalidName) as exc:
        raise OriginError(f"{ORIGIN_PROPERTY} {mark!r} is not <host>:<dataset>: {exc}") from None
    return host, dataset


def _split(mark: str) -> tuple[str, str]:
    if mark.startswith("["):
        host, bracket, rest = mark[1:].partition("]")
        if not bracket or not rest.startswith(":") or not _is_ipv6(host):
            raise OriginError(f"{ORIGIN_PROPERTY} {mark!r} is not [<IPv6 address>]:<dataset>")
        return host, rest[1:]
    before_last, colon, after_last = mark.rpartition(":")
    if colon and _is_ipv6(before_last):
        return before_last, after_last  # an IPv6 host written before brackets were
    host, colon, dataset = mark.partition(":")
    if not colon:
        raise OriginError(f"{ORIGIN_PROPERTY} {mark!r} is not <host>:<dataset> (no ':')")
    return host, dataset


def _is_ipv6(text: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(text), ipaddress.IPv6Address)
    except ValueError:
        return False


def marked(node: ZfsNode) -> dict[str, dict[str, str]]:
    """The replicas on ``node`` (datasets carrying their own origin mark), by name, with their
    marks (:data:`ORIGIN_PROPERTY`, and :data:`PROMOTED_PROPERTY` once promoted): one ``zfs get``
    (a mark that was received describes the sender, not the copy)."""
    marks = node.set_here([ORIGIN_PROPERTY, PROMOTED_PROPERTY])
    return {name: found for name, found in sorted(marks.items()) if ORIGIN_PROPERTY in found}


def replicas(node: ZfsNode) -> dict[str, bool]:
    """The replicas on ``node``, each with whether it was promoted (see :func:`marked`)."""
    return {name: PROMOTED_PROPERTY in found for name, found in marked(node).items()}

"""A ``zfs receive`` that a dead run left running on the partner, and how to end it.

When the network is cut in the middle of a transfer, this node's ssh gives up (its
ServerAlive checks) and the run fails; but the partner's sshd is not told: it keeps the
session, and its ``zfs receive`` waits for the rest of a stream that will never come,
holding the replica busy (``cannot receive incremental stream: dataset is busy``) until
the partner's TCP gives up — minutes, or the two hours of TCP keepalive.

Such a receive is recognised without guessing: ``sshd`` puts the connection it serves
into the session's environment (``SSH_CONNECTION=client-ip client-port server-ip
server-port``), which ``env`` and ``zfs`` inherit.  A receive whose connection was made
from an address of this node, and which this node no longer has as an established TCP
connection, can never be fed again: nobody here holds the other end.  Only such a
receive is stopped.  A receive fed from another machine, or over a connection that is
still up (a transfer still running, or ending), is left alone.

The parsing and the decision are pure functions; :func:`listing_argv`'s script and the
kill run on the partner through :class:`~ovios_shell_retadm.hosts.Host`.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

#: (client address, client port, server address, server port), addresses normalised
Connection = tuple[str, int, str, int]

#: Every ``zfs`` process in the caller's network namespace (the only one where the
#: connection named in its environment means anything), one per line:
#: ``pid <TAB> seconds running <TAB> SSH_CONNECTION or empty <TAB> argv joined by spaces``.
_LIST_SCRIPT = r"""
me=$(readlink /proc/$$/ns/net)
ps -eo pid=,etimes=,comm= | while read -r pid secs comm; do
  [ "$comm" = zfs ] || continue
  [ "$(readlink /proc/$pid/ns/net 2>/dev/null)" = "$me" ] || continue
  conn=$(tr '\0' '\n' < /proc/$pid/environ 2>/dev/null | sed -n 's/^SSH_CONNECTION=//p')
  args=$(tr '\0' ' ' < /proc/$pid/cmdline 2>/dev/null)
  printf '%s\t%s\t%s\t%s\n' "$pid" "$secs" "$conn" "$args"
done
"""

#: ``sh -c _STOP_SCRIPT sh PID CONNECTION``: TERM the process only if it is still the one
#: served by that connection (a pid may have been reused since it was listed).
_STOP_SCRIPT = r"""
tr '\0' '\n' < /proc/$1/environ 2>/dev/null | grep -qxF "SSH_CONNECTION=$2" || exit 0
kill -TERM "$1"
"""


@dataclass(frozen=True)
class Receive:
    pid: int
    seconds: int
    #: the ssh connection that feeds it; None when it was not started over ssh (or unreadable)
    connection: Connection | None
    args: str


def listing_argv() -> list[str]:
    return ["sh", "-c", _LIST_SCRIPT]


def stop_argv(receive: Receive) -> list[str]:
    if receive.connection is None:
        raise ValueError("only a receive served by a known ssh connection is stopped")
    client, client_port, server, server_port = receive.connection
    return ["sh", "-c", _STOP_SCRIPT, "sh", str(receive.pid), f"{client} {client_port} {server} {server_port}"]


def _address(text: str) -> str:
    """An address in one spelling: IPv4-mapped IPv6 as IPv4, IPv6 compressed."""
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.compressed


def parse_connection(text: str) -> Connection | None:
    """``SSH_CONNECTION``'s value, or None when it is empty or not one."""
    words = text.split()
    if len(words) != 4:
        return None
    try:
        return _address(words[0]), int(words[1]), _address(words[2]), int(words[3])
    except ValueError:
        return None


def parse_receives(output: str, remote_dataset: str) -> list[Receive]:
    """``zfs receive``/``recv`` into ``remote_dataset`` in the listing script's output."""
    found = []
    for line in output.splitlines():
        fields = line.split("\t")
        if len(fields) != 4 or not fields[0].isdigit() or not fields[1].isdigit():
            continue
        argv = fields[3].split()
        if len(argv) < 3 or os.path.basename(argv[0]) != "zfs" or argv[1] not in ("receive", "recv"):
            continue
        if remote_dataset not in argv[2:]:
            continue
        found.append(Receive(int(fields[0]), int(fields[1]), parse_connection(fields[2]), " ".join(argv)))
    return found


def _proc_address(hex_address: str) -> str:
    """An address as ``/proc/net/tcp{,6}`` writes it: 32-bit words in host byte order."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(int.from_bytes(raw[i:i + 4], "little").to_bytes(4, "big") for i in range(0, len(raw), 4))
    return _address(str(ipaddress.ip_address(words)))


_ESTABLISHED = "01"


def established(tables: Iterable[str]) -> set[Connection]:
    """The established TCP connections in ``/proc/net/tcp`` and ``/proc/net/tcp6`` texts,
    as (local address, local port, remote address, remote port)."""
    found = set()
    for table in tables:
        for line in table.splitlines()[1:]:
            words = line.split()
            if len(words) < 4 or words[3] != _ESTABLISHED:
                continue
            try:
                (local, local_port), (remote, remote_port) = (w.split(":") for w in words[1:3])
                found.add((_proc_address(local), int(local_port, 16), _proc_address(remote), int(remote_port, 16)))
            except ValueError:
                continue
    return found


def orphaned(receives: Iterable[Receive], alive: set[Connection], is_local: Callable[[str], bool]) -> list[Receive]:
    """The receives whose ssh connection came from this node and is gone from it."""
    return [r for r in receives
            if r.connection is not None and is_local(r.connection[0]) and r.connection not in alive]


# -- this node ---------------------------------------------------------------------------------


def local_connections() -> set[Connection]:
    """This node's established TCP connections (its network namespace's)."""
    tables = []
    for name in ("tcp", "tcp6"):
        try:
            tables.append(Path("/proc/net", name).read_text())
        except OSError:
            continue
    return established(tables)


def is_local_address(address: str) -> bool:
    """Whether ``address`` is one of this node's own (it can bind to it)."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((address, 0))
        return True
    except (OSError, ValueError):
        return False

"""The partner's end of autosync: ``python3 -m ovios_shell_retadm.autosync_receive``.

The source runs it over ssh with its configuration on stdin (see :mod:`.config.receive`
for the protocol, the checks and the answers).  This command adds what the configuration
layer does not know: which partners this node has (its replication tasks' destinations
and its replicas' origin hosts) and what it received before; it records and logs what it
kept.  Refused: one line on stderr, exit status 65; a copy that cannot be written: 1.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time

from .config import files
from .config.model import ConfigError, digest
from .config.receive import MAX_BYTES, RECEIVE, Peer, Refused, check, origin_hosts, resolve
from .eventlog import log_sync
from .exit_status import DATA_REFUSED, FAILED
from .hosts import HostError, LocalHost
from .replication.model import ORIGIN_PROPERTY, own_mark
from .replication.task_store import TaskStore
from .store import Store, StoreError


def _log(peer: str, event: str, **fields: object) -> None:
    log_sync(peer, RECEIVE, event, **fields)


def _ssh_client() -> str | None:
    """The ssh client's address (``SSH_CONNECTION``'s first field); None: not run over ssh."""
    fields = os.environ.get("SSH_CONNECTION", "").split()
    return fields[0] if fields else None


def _sender() -> str:
    """Who pushed, for the log."""
    return _ssh_client() or "local"


def _earlier_sender(node: str) -> str | None:
    try:
        record = Store().get_sync(node, RECEIVE)
    except StoreError:
        return None
    sender = (record or {}).get("sender")
    return sender if isinstance(sender, str) and sender != "local" else None


def known_partners(store: Store | None = None) -> frozenset[str]:
    """The partners this node knows: its tasks' destinations and its replicas' origin hosts."""
    partners: set[str] = set()
    with contextlib.suppress(StoreError):
        partners.update(record.destination for record in TaskStore(store).all() if record.destination)
    try:  # (no -t: zfs-fuse has none; snapshots and inherited or received values are skipped)
        result = LocalHost().run(["zfs", "get", "-H", "-o", "name,value,source", ORIGIN_PROPERTY],
                                 timeout=30, check=False)
    except HostError:
        return frozenset(partners)
    if result.returncode == 0:
        rows = (line.split("\t") for line in result.stdout.splitlines())
        marks = (own_mark((row[1], row[2])) for row in rows if len(row) == 3 and "@" not in row[0])
        partners.update(host for mark in marks if mark is not None for host in origin_hosts(mark))
    return frozenset(partners)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m ovios_shell_retadm.autosync_receive",
                                     description="Keep a configuration a partner pushes on stdin (autosync).")
    parser.add_argument("--digest", help="the digest the sender computed; a mismatch is refused")
    args = parser.parse_args(argv)
    started = time.monotonic()
    data = sys.stdin.buffer.read(MAX_BYTES + 1)
    this_node = os.uname().nodename
    try:
        if len(data) > MAX_BYTES:
            raise Refused(f"more than {MAX_BYTES} bytes: not a configuration")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise Refused("not UTF-8 text") from None
        config = check(text, args.digest, this_node, Peer(_ssh_client(), known_partners(), resolve,
                                                          _earlier_sender))
    except Refused as exc:
        _log("-", "refused", sender=_sender(), reason=str(exc))
        print(f"autosync receive: refused: {exc}", file=sys.stderr)
        return DATA_REFUSED
    try:
        stored = files.store_synced(config)
        have = config if stored else files.load(files.synced_path(config.node))
        version = {"generation": have.generation, "digest": digest(have)}
        Store().update_sync(config.node, RECEIVE, lambda old: {
            **version, "received_at": time.time(), "sender": _sender(),
            "offered_generation": config.generation, "stored": stored})
    except (ConfigError, StoreError, OSError) as exc:
        message = str(exc).replace("\n", " ")
        _log(config.node, "error", generation=config.generation, sender=_sender(), message=message)
        print(f"autosync receive: cannot keep the configuration of {config.node}: {message}", file=sys.stderr)
        return FAILED
    word = "stored" if stored else "kept"
    _log(config.node, "end", result=word, generation=version["generation"], digest=version["digest"],
         offered=config.generation, sender=_sender(), duration=f"{time.monotonic() - started:.2f}s")
    print(f"{word} generation={version['generation']} digest={version['digest']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

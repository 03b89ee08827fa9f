"""The node's event logs, one line per event, from any number of processes:
``/var/log/ovios/repl.log`` (replication, :func:`log_event`) and ``cluster-sync.log``
(autosync, :func:`log_sync`).

Each line goes out in a single ``write`` on a descriptor opened with ``O_APPEND``,
so lines from concurrent runs (cron, the background full send, the shell) never
interleave inside a line.  Format::

    2026-11-26T06:10:00+0000 data/smbvol inc start to=dst:repl/smbvol pid=4242
    2026-11-26T06:10:01+0000 data/smbvol inc step what='hold @before upgrade on the source'

A value is written as it is when it is one plain word; otherwise (empty, whitespace
anywhere -- a snapshot may be named ``before upgrade`` -- quotes, backslashes, anything
unprintable) it is quoted as a Python string literal, which keeps it on one line and
says exactly what it was (``ast.literal_eval`` reads it back).
"""

from __future__ import annotations

import os
import sys
import time

from . import settings


def _format_value(value: object) -> str:
    text = str(value)
    plain = text and text.isprintable() and not any(ch.isspace() or ch in "'\"\\" for ch in text)
    return text if plain else repr(text)


def format_event(dataset: str, kind: str, event: str, fields: dict[str, object]) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    parts = [stamp, dataset, kind, event] + [f"{k}={_format_value(v)}" for k, v in fields.items()]
    return " ".join(parts) + "\n"


def log_event(dataset: str, kind: str, event: str, **fields: object) -> None:
    """Append one event line; a log that cannot be written never stops a replication."""
    append_line(settings.repl_log_path(), format_event(dataset, kind, event, fields))


def log_sync(peer: str, kind: str, event: str, **fields: object) -> None:
    """One line in ``cluster-sync.log`` (``repl.log``'s format); never raises."""
    append_line(settings.cluster_sync_log_path(), format_event(peer, kind, event, fields))


def append_line(path, text: str) -> None:
    """Append ``text`` (one whole line) to the log at ``path`` in one ``O_APPEND`` write;
    a failure is a warning on stderr, never an exception."""
    line = text.encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    except OSError as exc:
        print(f"warning: cannot write {path}: {exc.strerror}", file=sys.stderr)

"""Where the configuration lives on a node, written so that no reader sees half of it.

- ``/etc/ovios/config.json`` — this node's configuration (:func:`local_path`);
- ``/etc/ovios/synced/<node>.json`` — the copy a partner pushed here with autosync
  (:func:`synced_path`), what ``restore`` applies after a failover.

Every write goes to a temporary file in the same directory, is fsynced, then renamed over
the old file (and the directory fsynced): a reader, or a crash, sees the old file or the
new one.  Read-modify-write (:func:`update`) holds an ``flock`` on a lock file beside it, so
two writers never lose each other's change; each change adds one to ``generation``.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from .. import settings
from ..fileio import make_private_dir, write_atomically
from .model import ConfigError, Configuration, dump, node_name_problem, parse


def local_path() -> Path:
    return settings.etc_dir() / "config.json"


def synced_dir() -> Path:
    return settings.etc_dir() / "synced"


def synced_path(node: str) -> Path:
    problem = node_name_problem(node)
    if problem:
        raise ConfigError(problem)
    return synced_dir() / f"{node}.json"


def load(path: Path | None = None) -> Configuration:
    """The configuration in ``path`` (this node's by default); empty when there is none."""
    path = path or local_path()
    try:
        text = path.read_text()
    except FileNotFoundError:
        return Configuration()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return parse(text)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    make_private_dir(path.parent)  # /etc/ovios, /etc/ovios/synced: NT hashes are secrets
    with open(path.with_name(f".{path.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def update(change: Callable[[Configuration], Configuration], node: str | None = None,
           path: Path | None = None) -> Configuration:
    """Apply ``change`` to this node's configuration and save it as the next generation.

    Nothing is written (and the generation stays) when ``change`` changes nothing."""
    path = path or local_path()
    with _locked(path):
        old = load(path)
        new = change(old)
        if new.content() == old.content():
            return old
        new = replace(new, node=node or old.node or os.uname().nodename, generation=old.generation + 1,
                      updated=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        write_atomically(path, dump(new), mode=0o600)  # NT hashes are secrets
        return new


def store_synced(config: Configuration) -> bool:
    """Keep a partner's pushed configuration; False (and nothing written) when the copy
    here is already that generation or newer — an older push arriving late is ignored."""
    path = synced_path(config.node)
    with _locked(path):
        have = load(path) if path.exists() else None
        if have is not None and have.generation >= config.generation:
            return False
        write_atomically(path, dump(config), mode=0o600)
        return True

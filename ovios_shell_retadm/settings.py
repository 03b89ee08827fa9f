"""Where the product keeps its files.

Every path the product touches comes from here, so tests (and the lab) can move
them all at once.  Each directory has its own environment override; ``OVIOS_ROOT``
prefixes all of the defaults (``OVIOS_ROOT=/tmp/x`` gives ``/tmp/x/etc/ovios`` …).

The values are read on every call, not at import time, so a test can change the
environment and see the change without reloading modules.
"""

from __future__ import annotations

import os
from pathlib import Path


def _root() -> Path:
    return Path(os.environ.get("OVIOS_ROOT", "/"))


def _dir(env: str, default: str) -> Path:
    value = os.environ.get(env)
    if value:
        return Path(value)
    return _root() / default.lstrip("/")


def etc_dir() -> Path:
    """Configuration and state: the options store lives here.

    Private (0700 when the product creates it, the store's files 0600): the synced
    configurations hold NT password hashes."""
    return _dir("OVIOS_ETC_DIR", "/etc/ovios")


def log_dir() -> Path:
    """Logs: ``repl.log`` and friends."""
    return _dir("OVIOS_LOG_DIR", "/var/log/ovios")


def run_dir() -> Path:
    """Volatile runtime files: per-task locks, ssh control sockets.

    It and its subdirectories (``locks``, ``ssh``, ``progress``, ``zfs-caps``) are created
    0700 by :func:`fileio.make_private_dir`, whatever the umask."""
    return _dir("OVIOS_RUN_DIR", "/run/ovios")


def store_path() -> Path:
    return etc_dir() / "ovios.db"


def repl_log_path() -> Path:
    return log_dir() / "repl.log"


def cluster_sync_log_path() -> Path:
    """autosync's log: one line per configuration push (source) or receive (partner)."""
    return log_dir() / "cluster-sync.log"


def sshd_config_path() -> Path:
    """The sshd configuration that ``ssh.allow.root`` edits."""
    return Path(os.environ.get("OVIOS_SSHD_CONFIG", str(_root() / "etc/ssh/sshd_config")))

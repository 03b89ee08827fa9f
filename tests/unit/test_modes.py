"""Modes of the product's private files and directories, whatever the umask.

``/etc/ovios`` holds the options store and the synced configurations (NT password hashes),
``/run/ovios`` the task locks, progress files and ssh control sockets: both directories and
their subdirectories are 0700, the SQLite store and its ``-wal``/``-shm`` files 0600, even when
the process runs with a permissive umask (and never less than that with a restrictive one).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ovios_shell_retadm import settings
from ovios_shell_retadm.config import files
from ovios_shell_retadm.config.autosync import _PartnerLock
from ovios_shell_retadm.config.model import Configuration
from ovios_shell_retadm.hosts import SshHost
from ovios_shell_retadm.replication.progress import Progress, write_progress
from ovios_shell_retadm.replication.task_lock import TaskLock
from ovios_shell_retadm.store import Store, TaskKey
from ovios_shell_retadm.zfs import Capabilities, _CapabilityCache

KEY = TaskKey("data/smbvol", "dst", "repl/smbvol")

UMASKS = [0o000, 0o022, 0o077]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=UMASKS, ids=lambda u: f"umask{u:03o}")
def umask(request) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


@pytest.fixture
def node(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A node root short enough for ssh control sockets under its run directory."""
    root = Path(tempfile.mkdtemp(prefix="rtm-", dir="/tmp"))
    monkeypatch.setenv("OVIOS_ROOT", str(root / "node"))
    yield root / "node"
    shutil.rmtree(root)


def test_store_directory_database_wal_and_shm(node: Path, umask: int) -> None:
    store = Store()
    store.create_task(KEY, {"n": 0})
    seen: dict[str, int] = {}

    def look(record: dict) -> dict:  # inside a write transaction: the -wal and -shm files exist
        for path in settings.etc_dir().iterdir():
            seen[path.name] = mode(path)
        return {"n": record["n"] + 1}

    store.update_task(KEY, look)
    assert mode(node / "etc") == 0o700  # created on the way: not left to the umask either
    assert mode(settings.etc_dir()) == 0o700
    assert seen == {"ovios.db": 0o600, "ovios.db-wal": 0o600, "ovios.db-shm": 0o600}
    assert store.get_task(KEY) == {"n": 1}


def test_store_files_of_an_earlier_version_are_made_private(node: Path) -> None:
    """A store created with the default 0644 (as before) is 0600 after the next access."""
    etc = settings.etc_dir()
    etc.mkdir(parents=True)
    with sqlite3.connect(settings.store_path()) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE kept (x)")
        held = sqlite3.connect(settings.store_path())  # keeps the -wal and -shm files
        held.execute("SELECT * FROM kept").fetchall()
    try:
        for path in etc.iterdir():
            path.chmod(0o644)
        assert Store().get_option("cron.enable") is None
        assert {path.name: mode(path) for path in etc.iterdir()} == {
            "ovios.db": 0o600, "ovios.db-wal": 0o600, "ovios.db-shm": 0o600}
    finally:
        held.close()


def test_synced_configuration_directories(node: Path, umask: int) -> None:
    files.update(lambda config: Configuration(node="src", generation=config.generation))
    assert mode(settings.etc_dir()) == 0o700
    assert files.store_synced(Configuration(node="dst", generation=1))
    assert mode(files.synced_dir()) == 0o700
    assert mode(files.synced_path("dst")) == 0o600


def test_run_directory_and_its_subdirectories(node: Path, umask: int) -> None:
    lock = TaskLock(KEY)
    lock.acquire()
    assert mode(node / "run") == 0o700
    assert mode(settings.run_dir()) == 0o700
    assert mode(settings.run_dir() / "locks") == 0o700
    write_progress(Progress("data/smbvol", "full", {}, 0.0, 0.0, 0), KEY.file_name)
    assert mode(settings.run_dir() / "progress") == 0o700
    assert _PartnerLock("dst").try_acquire()
    _CapabilityCache("dst").store(Capabilities())
    assert mode(settings.run_dir() / "zfs-caps") == 0o700
    SshHost("192.0.2.1").argv_for(["true"])
    assert mode(settings.run_dir() / "ssh") == 0o700
    assert {p.name for p in settings.run_dir().iterdir()} == {"locks", "progress", "zfs-caps", "ssh"}


@pytest.mark.parametrize("where", ["etc", "run"])
def test_each_first_creator_makes_the_directory_private(node: Path, where: str) -> None:
    """Whichever part of the product creates /etc/ovios or /run/ovios first (here with umask 0)."""
    old = os.umask(0)
    try:
        if where == "etc":
            Store().get_option("x")
            top = settings.etc_dir()
        else:
            SshHost("192.0.2.1").argv_for(["true"])
            top = settings.run_dir()
    finally:
        os.umask(old)
    assert mode(top) == 0o700

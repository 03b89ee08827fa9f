"""The node's persistent state: one SQLite file under ``/etc/ovios``.

The directory is created 0700 and the database with its ``-wal`` and ``-shm`` files is 0600
(:meth:`Store._make_private`), whatever the umask.

Three tables: ``options`` (name → value text), ``tasks`` (source dataset, destination
host and remote dataset → JSON record: a dataset may be replicated to several
destinations; a store from before keyed it by the dataset alone, and is migrated when
opened) and ``config_sync`` (autosync's per-partner records: what was pushed to a
partner, what was received from one; kept apart so that ``options`` lists only
options).  SQLite gives us transactions, so concurrent cron runs and shell
sessions neither lose updates nor see half-written values, and a process killed
in the middle of a write leaves the previous value in place.  Read-modify-write
of a task record runs inside ``BEGIN IMMEDIATE`` (see :meth:`Store.update_task`).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from . import settings
from .fileio import make_private_dir, make_private_file

_TASKS_TABLE = """
CREATE TABLE IF NOT EXISTS tasks (
    dataset        TEXT NOT NULL,
    destination    TEXT NOT NULL,
    remote_dataset TEXT NOT NULL,
    record         TEXT NOT NULL,
    PRIMARY KEY (dataset, destination, remote_dataset)
)"""
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS options (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
{_TASKS_TABLE};
CREATE TABLE IF NOT EXISTS config_sync (
    peer      TEXT NOT NULL,
    direction TEXT NOT NULL,
    record    TEXT NOT NULL,
    PRIMARY KEY (peer, direction)
);
"""

#: the longest task file name: room left for ".lock", ".json" and a temporary file's prefix and suffix
_FILE_NAME_MAX = 200

# How long a writer waits for another writer before giving up (seconds).
_BUSY_TIMEOUT = 30.0


class TaskKey(NamedTuple):
    """What tells a replication task from every other: its source dataset and where it goes."""

    dataset: str
    destination: str
    remote_dataset: str

    @property
    def file_name(self) -> str:
        """The task's name for its files (run lock, progress): one per task, ``/`` as ``%``.

        Two dataset names can be 255 bytes each, a file name no more than 255: a long one is cut
        and ends in a digest of the whole, so that it still names one task alone."""
        name = f"{self.dataset}@{self.destination}:{self.remote_dataset}".replace("/", "%")
        if len(name.encode()) <= _FILE_NAME_MAX:
            return name
        digest = hashlib.sha256(name.encode()).hexdigest()[:16]
        return name.encode()[:_FILE_NAME_MAX - 17].decode(errors="ignore") + "~" + digest


class StoreError(Exception):
    """The store cannot be opened or written (permissions, disk full, corruption)."""


class Store:
    def __init__(self, path: str | os.PathLike[str] | None = None):
        self.path = Path(path) if path is not None else settings.store_path()

    def _make_private(self) -> None:
        """The directory 0700 when it is created, the database and its ``-wal``/``-shm`` files
        0600 (also those of a store made before, with SQLite's default 0644).

        SQLite gives a new ``-wal`` or ``-shm`` file the database file's mode, so the database
        is created here, empty, before SQLite opens it."""
        make_private_dir(self.path.parent)
        make_private_file(self.path)
        for suffix in ("-wal", "-shm"):
            make_private_file(self.path.with_name(self.path.name + suffix), create=False)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            self._make_private()
            conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open {self.path}: {exc}") from exc
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(_SCHEMA)
            _migrate_tasks(conn)
            yield conn
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from exc
        finally:
            conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # -- options -----------------------------------------------------------------

    def get_option(self, name: str) -> str | None:
        with self._connect() as conn:
            row = conn.execute("SELECT value FROM options WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def set_option(self, name: str, value: str) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO options(name, value) VALUES(?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                (name, value),
            )

    def all_options(self) -> dict[str, str]:
        with self._connect() as conn:
            return dict(conn.execute("SELECT name, value FROM options ORDER BY name"))

    # -- replication task records ------------------------------------------------

    def get_task(self, key: TaskKey) -> dict[str, Any] | None:
        with self._connect() as conn:
            row = conn.execute(f"SELECT record FROM tasks WHERE {_KEY_MATCH}", key).fetchone()
        return json.loads(row[0]) if row else None

    def tasks_of(self, dataset: str) -> list[dict[str, Any]]:
        """The records of every task of ``dataset`` (one per destination)."""
        with self._connect() as conn:
            rows = conn.execute("SELECT record FROM tasks WHERE dataset = ? ORDER BY destination, remote_dataset",
                                (dataset,)).fetchall()
        return [json.loads(record) for (record,) in rows]

    def all_tasks(self) -> list[dict[str, Any]]:
        with self._connect() as conn:
            rows = conn.execute("SELECT record FROM tasks ORDER BY dataset, destination, remote_dataset").fetchall()
        return [json.loads(record) for (record,) in rows]

    def create_task(self, key: TaskKey, record: dict[str, Any]) -> bool:
        """Insert a new task; False (and nothing written) if one with the same key already exists."""
        with self._transaction() as conn:
            exists = conn.execute(f"SELECT 1 FROM tasks WHERE {_KEY_MATCH}", key).fetchone()
            if exists:
                return False
            conn.execute("INSERT INTO tasks(dataset, destination, remote_dataset, record) VALUES(?, ?, ?, ?)",
                         (*key, json.dumps(record)))
            return True

    def update_task(
        self, key: TaskKey, change: Callable[[dict[str, Any]], dict[str, Any] | None]
    ) -> dict[str, Any] | None:
        """Atomically read, change and write one task record.

        ``change`` gets the current record (a copy) and returns the new one, or None
        to leave it as it is.  Returns the record as stored afterwards, or None when
        the task does not exist.
        """
        with self._transaction() as conn:
            row = conn.execute(f"SELECT record FROM tasks WHERE {_KEY_MATCH}", key).fetchone()
            if row is None:
                return None
            record = json.loads(row[0])
            new = change(dict(record))
            if new is None:
                return record
            conn.execute(f"UPDATE tasks SET record = ? WHERE {_KEY_MATCH}", (json.dumps(new), *key))
            return new

    def delete_task(self, key: TaskKey) -> bool:
        with self._transaction() as conn:
            cur = conn.execute(f"DELETE FROM tasks WHERE {_KEY_MATCH}", key)
            return cur.rowcount > 0

    # -- autosync records (config_sync) -------------------------------------------

    def get_sync(self, peer: str, direction: str) -> dict[str, Any] | None:
        with self._connect() as conn:
            row = conn.execute("SELECT record FROM config_sync WHERE peer = ? AND direction = ?",
                               (peer, direction)).fetchone()
        return json.loads(row[0]) if row else None

    def all_sync(self, direction: str) -> dict[str, dict[str, Any]]:
        with self._connect() as conn:
            rows = conn.execute("SELECT peer, record FROM config_sync WHERE direction = ? ORDER BY peer",
                                (direction,)).fetchall()
        return {peer: json.loads(record) for peer, record in rows}

    def update_sync(self, peer: str, direction: str,
                    change: Callable[[dict[str, Any] | None], dict[str, Any]]) -> dict[str, Any]:
        """Atomically read, change and write one autosync record (``change`` gets None
        when there is none yet); returns the record written."""
        with self._transaction() as conn:
            row = conn.execute("SELECT record FROM config_sync WHERE peer = ? AND direction = ?",
                               (peer, direction)).fetchone()
            new = change(json.loads(row[0]) if row else None)
            conn.execute("INSERT INTO config_sync(peer, direction, record) VALUES(?, ?, ?) "
                         "ON CONFLICT(peer, direction) DO UPDATE SET record = excluded.record",
                         (peer, direction, json.dumps(new)))
            return new


_KEY_MATCH = "dataset = ? AND destination = ? AND remote_dataset = ?"


def _migrate_tasks(conn: sqlite3.Connection) -> None:
    """A store written before fan-out keys ``tasks`` by the dataset alone (one task per
    dataset): rewrite the table with the new key, every record as it was, in one transaction
    (a second process that got here too finds the work done once it has the lock)."""
    if _tasks_keyed_by_dataset_alone(conn):
        conn.execute("BEGIN IMMEDIATE")
        try:
            if _tasks_keyed_by_dataset_alone(conn):
                rows = conn.execute("SELECT dataset, record FROM tasks").fetchall()
                conn.execute("ALTER TABLE tasks RENAME TO tasks_by_dataset")
                conn.execute(_TASKS_TABLE)
                for dataset, record in rows:
                    data = json.loads(record)
                    conn.execute("INSERT INTO tasks(dataset, destination, remote_dataset, record) VALUES(?, ?, ?, ?)",
                                 (dataset, str(data.get("destination", "")), str(data.get("remote_dataset", "")),
                                  record))
                conn.execute("DROP TABLE tasks_by_dataset")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def _tasks_keyed_by_dataset_alone(conn: sqlite3.Connection) -> bool:
    columns = {row[1] for row in conn.execute("PRAGMA table_info(tasks)")}
    return "destination" not in columns

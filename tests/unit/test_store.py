"""The options/task store under real concurrency and real crashes (separate processes)."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from ovios_shell_retadm.store import Store, StoreError, TaskKey

KEY = TaskKey("data/smbvol", "dst", "repl/smbvol")

WRITERS = 20


def _set_option_at(path: str, name: str, value: str, start: float) -> None:
    time.sleep(max(0.0, start - time.time()))
    Store(path).set_option(name, value)


def _increment(path: str, rounds: int, start: float) -> None:
    time.sleep(max(0.0, start - time.time()))
    store = Store(path)
    for _ in range(rounds):
        store.update_task(KEY, lambda r: {**r, "counter": r["counter"] + 1})


def _blob(generation: int) -> str:
    return f"<{generation:06d}>" * 100_000  # 800 kB: the record spans some 200 pages


def _rewrite_then_stop_mid_write(path: str, pipe, complete: int) -> None:
    """``complete`` whole rewrites of the task (each one the next generation), then one more
    that stops inside its write: it sends the generation it is writing to ``pipe`` and waits
    there to be killed.

    The stop is at COMMIT, after the UPDATE ran.  This process gives SQLite a page cache of a
    few pages, so by then SQLite has already written part of the new record to the disk (a
    cache spill): the kill lands on a write that is on the disk but not committed."""
    real_connect = sqlite3.connect
    updates = 0
    writing = None

    def trace(sql: str) -> None:
        nonlocal updates
        statement = sql.strip().upper()
        if statement.startswith("UPDATE TASKS"):
            updates += 1
        elif statement == "COMMIT" and updates > complete:
            pipe.send(writing)
            threading.Event().wait()  # until the SIGKILL

    def connect(*args, **kwargs):
        conn = real_connect(*args, **kwargs)
        conn.execute("PRAGMA cache_size=8")
        conn.set_trace_callback(trace)
        return conn

    def next_generation(record):
        nonlocal writing
        writing = record["generation"] + 1
        return {"generation": writing, "blob": _blob(writing)}

    sqlite3.connect = connect  # in this process only: it is spawned for the test
    store = Store(path)
    while True:
        store.update_task(KEY, next_generation)


def _on_disk(store_path: str, data: bytes) -> bool:
    """Whether ``data`` is in the store's files (the database, its WAL or journal)."""
    store = Path(store_path)
    return any(data in f.read_bytes() for f in store.parent.iterdir() if f.name.startswith(store.name))


def _processes(target, args_list):
    ctx = multiprocessing.get_context("spawn")  # no inherited sqlite state
    procs = [ctx.Process(target=target, args=args) for args in args_list]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    return procs


@pytest.fixture
def store_path(tmp_path):
    return str(tmp_path / "etc" / "ovios.db")


def test_values_persist_across_store_objects(store_path):
    Store(store_path).set_option("cron.enable", "on")
    assert Store(store_path).get_option("cron.enable") == "on"
    assert Store(store_path).all_options() == {"cron.enable": "on"}


def test_twenty_processes_setting_different_options_lose_no_update(store_path):
    Store(store_path).set_option("warm", "up")  # create the file first, as a running node has
    start = time.time() + 1.5
    _processes(_set_option_at, [(store_path, f"opt{i}", f"value{i}", start) for i in range(WRITERS)])
    stored = Store(store_path).all_options()
    assert {f"opt{i}": f"value{i}" for i in range(WRITERS)}.items() <= stored.items()


def test_concurrent_read_modify_write_of_a_task_loses_no_update(store_path):
    Store(store_path).create_task(KEY, {"counter": 0})
    start = time.time() + 1.5
    _processes(_increment, [(store_path, 10, start) for _ in range(WRITERS)])
    assert Store(store_path).get_task(KEY)["counter"] == WRITERS * 10


def test_process_killed_while_writing_leaves_a_whole_value(store_path):
    store = Store(store_path)
    store.create_task(KEY, {"generation": 0, "blob": _blob(0)})
    ctx = multiprocessing.get_context("spawn")
    committed = 0
    for complete in (0, 1, 3, 0, 2, 1):  # whole rewrites before the one that is killed
        reader, writer_end = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_rewrite_then_stop_mid_write, args=(store_path, writer_end, complete))
        proc.start()
        writer_end.close()
        try:
            # a bound that only catches a writer that never gets into its write (a hang)
            assert reader.poll(120), "the writer never got into the middle of a write"
            writing = reader.recv()
            assert writing == committed + complete + 1
            # the kill lands mid-write: part of the new record is on the disk, not committed
            assert _on_disk(store_path, _blob(writing)[:160].encode()), "nothing of the new record was written"
            assert store.get_task(KEY)["generation"] == committed + complete
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.join()
        assert proc.exitcode == -signal.SIGKILL
        committed += complete
        # the last committed value, whole: not the one being written, nor a mix of the two
        assert store.get_task(KEY) == {"generation": committed, "blob": _blob(committed)}
    with sqlite3.connect(store_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_create_task_refuses_a_second_task_to_the_same_destination_and_remote_dataset(store_path):
    store = Store(store_path)
    assert store.create_task(KEY, {"n": 1})
    assert not store.create_task(KEY, {"n": 2})
    assert store.get_task(KEY) == {"n": 1}


def test_a_dataset_has_a_task_per_destination_each_read_changed_and_removed_alone(store_path):
    """Fan-out: one dataset replicated to two hosts, and to two remote datasets on one host."""
    store = Store(store_path)
    other_host, other_name = KEY._replace(destination="third"), KEY._replace(remote_dataset="repl/fanout")
    for n, key in enumerate((KEY, other_host, other_name)):
        assert store.create_task(key, {"n": n})
    assert store.create_task(TaskKey("esx/lun01", "dst", "repl/lun01"), {"n": 9})
    assert store.tasks_of("data/smbvol") == [{"n": 2}, {"n": 0}, {"n": 1}]  # by destination, then remote
    assert store.update_task(other_name, lambda r: {**r, "n": 20}) == {"n": 20}
    assert (store.get_task(KEY), store.get_task(other_host), store.get_task(other_name)) == ({"n": 0}, {"n": 1},
                                                                                             {"n": 20})
    assert store.delete_task(other_host)
    assert store.tasks_of("data/smbvol") == [{"n": 20}, {"n": 0}]
    assert store.all_tasks() == [{"n": 20}, {"n": 0}, {"n": 9}]


def _old_store(path: Path, records: dict[str, dict]) -> None:
    """A store as the schema before fan-out wrote it: ``tasks(dataset PRIMARY KEY, record)``."""
    with sqlite3.connect(path) as conn:
        conn.executescript("CREATE TABLE options (name TEXT PRIMARY KEY, value TEXT NOT NULL);"
                           "CREATE TABLE tasks (dataset TEXT PRIMARY KEY, record TEXT NOT NULL);"
                           "INSERT INTO options VALUES ('cron.enable', 'on');")
        conn.executemany("INSERT INTO tasks VALUES (?, ?)",
                         [(dataset, json.dumps(record)) for dataset, record in records.items()])
    conn.close()


def test_a_store_from_before_fan_out_is_migrated_in_place_losing_no_record(store_path):
    smbvol = {"dataset": "data/smbvol", "destination": "dst", "remote_dataset": "repl/smbvol", "properties": True,
              "state": "idle", "identity": "aaaaaaaa", "last_snapshot": "retadm_aaaaaaaa_20261202T100000.000Z"}
    lun = {"dataset": "esx/lun01", "destination": "10.0.0.2", "remote_dataset": "repl/lun01", "properties": False,
           "state": "error", "error": "why"}
    Path(store_path).parent.mkdir(parents=True, exist_ok=True)
    _old_store(Path(store_path), {"data/smbvol": smbvol, "esx/lun01": lun})
    store = Store(store_path)
    assert store.all_tasks() == [smbvol, lun]
    assert store.get_task(KEY) == smbvol
    assert store.get_task(TaskKey("esx/lun01", "10.0.0.2", "repl/lun01")) == lun
    assert store.get_option("cron.enable") == "on"
    # the migrated table takes a second task of the dataset, and the migration is done once
    assert store.create_task(KEY._replace(remote_dataset="repl/fanout"), {**smbvol, "remote_dataset": "repl/fanout"})
    assert [r["remote_dataset"] for r in Store(store_path).tasks_of("data/smbvol")] == ["repl/fanout", "repl/smbvol"]
    with sqlite3.connect(store_path) as conn:
        assert [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                               "ORDER BY name")] == ["config_sync", "options", "tasks"]
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()


def test_update_and_delete_of_a_missing_task(store_path):
    store = Store(store_path)
    assert store.update_task(TaskKey("nope/ds", "dst", "repl/ds"), lambda r: r) is None
    assert store.delete_task(TaskKey("nope/ds", "dst", "repl/ds")) is False


def test_unopenable_store_is_a_store_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="cannot open"):
        Store(blocker / "ovios.db").get_option("x")


def test_a_task_file_name_fits_a_file_system_and_names_one_task():
    short = TaskKey("data/smbvol", "dst", "repl/smbvol")
    assert short.file_name == "data%smbvol@dst:repl%smbvol"
    long_name = "tank/" + "d" * 250
    one, other = TaskKey(long_name, "dst", long_name), TaskKey(long_name, "dst", long_name + "x")
    assert len(one.file_name.encode()) <= 200 and len(other.file_name.encode()) <= 200
    assert one.file_name != other.file_name and "/" not in one.file_name

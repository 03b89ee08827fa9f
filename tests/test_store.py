"""The options/task store under real concurrency and real crashes (separate processes)."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import sqlite3
import time

import pytest

from ovios_shell_retadm.store import Store, StoreError

WRITERS = 20


def _set_option_at(path: str, name: str, value: str, start: float) -> None:
    time.sleep(max(0.0, start - time.time()))
    Store(path).set_option(name, value)


def _increment(path: str, rounds: int, start: float) -> None:
    time.sleep(max(0.0, start - time.time()))
    store = Store(path)
    for _ in range(rounds):
        store.update_task("data/smbvol", lambda r: {**r, "counter": r["counter"] + 1})


def _rewrite_forever(path: str) -> None:
    store = Store(path)
    generation = 0
    while True:
        generation += 1
        blob = str(generation) * 200_000  # ~1 MB per write: kills land inside writes
        store.update_task("data/smbvol", lambda r: {"generation": generation, "blob": blob})


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
    Store(store_path).create_task("data/smbvol", {"counter": 0})
    start = time.time() + 1.5
    _processes(_increment, [(store_path, 10, start) for _ in range(WRITERS)])
    assert Store(store_path).get_task("data/smbvol")["counter"] == WRITERS * 10


def test_process_killed_while_writing_leaves_a_whole_value(store_path):
    store = Store(store_path)
    store.create_task("data/smbvol", {"generation": 0, "blob": ""})
    ctx = multiprocessing.get_context("spawn")
    rng = random.Random(1234)
    for _ in range(8):
        proc = ctx.Process(target=_rewrite_forever, args=(store_path,))
        proc.start()
        time.sleep(0.6 + rng.random() * 0.4)
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        record = store.get_task("data/smbvol")  # parses: never a torn JSON record
        generation = record["generation"]
        assert record["blob"] == (str(generation) * 200_000 if generation else "")
    with sqlite3.connect(store_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_create_task_refuses_a_second_task_for_the_same_dataset(store_path):
    store = Store(store_path)
    assert store.create_task("data/smbvol", {"destination": "dst"})
    assert not store.create_task("data/smbvol", {"destination": "other"})
    assert store.get_task("data/smbvol") == {"destination": "dst"}


def test_update_and_delete_of_a_missing_task(store_path):
    store = Store(store_path)
    assert store.update_task("nope/ds", lambda r: r) is None
    assert store.delete_task("nope/ds") is False


def test_unopenable_store_is_a_store_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="cannot open"):
        Store(blocker / "ovios.db").get_option("x")

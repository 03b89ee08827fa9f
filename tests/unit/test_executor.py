"""Fewer calls to the partner: which of a plan's destination steps ride on its last receive's
connection, which are let go of at once, and the scripts that run them there (under the real
``sh``)."""

from __future__ import annotations

import subprocess

from ovios_shell_retadm import zfs
from ovios_shell_retadm.hosts import LocalHost
from ovios_shell_retadm.replication.executor import Pair, Riders, _lands_target, _letting_go_from
from ovios_shell_retadm.replication.model import (
    CreateBookmark,
    CreateSnapshot,
    DestroyBookmark,
    DestroySnapshot,
    Hold,
    MarkOrigin,
    ObservedSnapshot,
    Plan,
    RecordCommon,
    Release,
    ResumeSend,
    SendFull,
    SendIncremental,
    SetReadonly,
    Side,
    Task,
)

SRC, DST = Side.SOURCE, Side.DESTINATION
COMMON = ObservedSnapshot("retadm_1", 1, 1)


def test_the_new_snapshots_hold_and_the_origin_mark_ride_on_the_last_receive():
    steps = (
        CreateSnapshot("retadm_2"),
        SendIncremental("retadm_1", False, "retadm_2", True),
        Hold(SRC, "retadm_2"),
        Hold(DST, "retadm_2"),
        CreateBookmark("retadm_2", "retadm_2"),
        MarkOrigin("src:data/x"),
        RecordCommon("retadm_2", None),
        Release(DST, "retadm_1"),
        Hold(DST, "monday"),  # not the new common snapshot: keeps its place
        DestroySnapshot(DST, "retadm_1"),
    )
    riders = Pair._riders(Plan(steps, COMMON, "retadm_2"), 1)
    # the release before the other hold is not the plan's tail: it keeps its place too
    assert riders == Riders({3: Hold(DST, "retadm_2"), 5: MarkOrigin("src:data/x")},
                            {9: DestroySnapshot(DST, "retadm_1")})


def test_the_destinations_letting_go_rides_too_the_sources_does_not():
    steps = (
        CreateSnapshot("retadm_2"),
        SendIncremental("retadm_1", False, "retadm_2", True),
        Hold(SRC, "retadm_2"),
        Hold(DST, "retadm_2"),
        RecordCommon("retadm_2", None),
        Release(SRC, "retadm_1"),
        Release(DST, "retadm_1"),
        DestroySnapshot(SRC, "retadm_1"),
        DestroySnapshot(DST, "retadm_1"),
        DestroySnapshot(DST, "other_9"),
        DestroyBookmark("retadm_1"),
    )
    riders = Pair._riders(Plan(steps, COMMON, "retadm_2"), 1)
    assert riders.protect == {3: Hold(DST, "retadm_2")}
    assert riders.let_go == {6: Release(DST, "retadm_1"), 8: DestroySnapshot(DST, "retadm_1"),
                             9: DestroySnapshot(DST, "other_9")}


def test_a_full_sends_readonly_rides_on_its_receive():
    steps = (CreateSnapshot("retadm_1"), SendFull("retadm_1", False), SetReadonly(), Hold(DST, "retadm_1"),
             MarkOrigin("src:data/x"), Hold(SRC, "retadm_1"), RecordCommon("retadm_1", None))
    riders = Pair._riders(Plan(steps, None, "retadm_1"), 1)
    assert riders == Riders({2: SetReadonly(), 3: Hold(DST, "retadm_1"), 4: MarkOrigin("src:data/x")})


def test_nothing_rides_on_a_receive_that_another_send_follows():
    steps = (SendFull("monday", False), SendIncremental("monday", False, "retadm_2", False), Hold(DST, "retadm_2"))
    plan = Plan(steps, None, "retadm_2")
    assert Pair._riders(plan, 0) == Riders()
    assert Pair._riders(plan, 1) == Riders({2: Hold(DST, "retadm_2")})


def _run(argv: list[str], stream: bytes) -> subprocess.CompletedProcess:
    return subprocess.run(argv, input=stream, capture_output=True, check=False)


def test_the_commands_after_a_receive_run_only_once_it_succeeded_each_with_its_status():
    receive = ["sh", "-c", "wc -c"]  # reads the whole stream, as zfs receive does
    after = [["sh", "-c", "echo held"], ["sh", "-c", "echo refused >&2; exit 2"], ["true"]]
    done = _run(zfs.receive_then(receive, after), b"x" * 70000)
    assert done.returncode == 0
    outputs, statuses = zfs.parts_of(done.stdout.decode())
    assert statuses == [0, 2, 0]
    assert outputs[0].split() == ["70000", "held"]  # the receive's own output comes first
    assert "refused" in done.stderr.decode()

    failed = _run(zfs.receive_then(["sh", "-c", "cat >/dev/null; echo 'cannot receive' >&2; exit 1"], after), b"x")
    assert failed.returncode == 1
    assert zfs.parts_of(failed.stdout.decode()) == ([], [])  # nothing ran after a failed receive


def test_the_gated_commands_run_only_when_every_command_before_succeeded_the_looks_always():
    receive = ["sh", "-c", "cat >/dev/null"]
    gated = [["sh", "-c", "echo released"], ["sh", "-c", "exit 4"]]
    looks = [["sh", "-c", "echo looked"]]
    all_ok = _run(zfs.receive_then(receive, [["true"]], gated, looks), b"x")
    outputs, statuses = zfs.parts_of(all_ok.stdout.decode())
    assert statuses == [0, 0, 4, 0]
    assert (outputs[1], outputs[3]) == ("released", "looked")

    one_failed = _run(zfs.receive_then(receive, [["true"], ["false"]], gated, looks), b"x")
    outputs, statuses = zfs.parts_of(one_failed.stdout.decode())
    assert statuses == [0, 1, zfs.SKIPPED, zfs.SKIPPED, 0]
    assert "released" not in one_failed.stdout.decode() and outputs[-1] == "looked"


def test_a_part_cut_short_has_no_status():
    text = f"a\n{zfs.PART_END} 0\nb\n{zfs.PART_END} 1\nhalf a line"
    assert zfs.parts_of(text) == (["a", "b"], [0, 1])


def test_the_letting_go_is_the_plans_tail_of_releases_and_destroys():
    settle = (Hold(DST, "retadm_2"), RecordCommon("retadm_2", None), Release(SRC, "retadm_1"),
              Release(DST, "retadm_1"), DestroySnapshot(SRC, "retadm_1"), DestroySnapshot(DST, "retadm_1"),
              DestroyBookmark("retadm_1"))
    assert _letting_go_from(Plan(settle, COMMON, "retadm_2")) == 2
    # a release that something else follows (a plan that goes on after it) is not letting go
    assert _letting_go_from(Plan((Release(DST, "a"), Hold(DST, "b")), COMMON, "b")) is None
    assert _letting_go_from(Plan((), COMMON, "retadm_1")) is None


def test_commands_run_each_whatever_the_ones_before_did():
    node = zfs.ZfsNode(LocalHost())
    assert node.run_each([["true"], ["false"], ["sh", "-c", "echo noise; exit 0"], ["sh", "-c", "exit 3"]]) == \
        [True, False, True, False]


def test_only_the_last_send_of_a_plan_lands_its_new_snapshot_and_a_resume_never_does():
    sends = (SendFull("monday", False), SendIncremental("monday", False, "retadm_2", False), Hold(DST, "retadm_2"))
    plan = Plan(sends, None, "retadm_2")
    assert [_lands_target(plan, i) for i in range(2)] == [None, "retadm_2"]
    resume = Plan((ResumeSend("1-abc-def"),), None, "")
    assert _lands_target(resume, 0) is None


class _EstimatingNode:
    """A source that can estimate a send, and counts how often it is asked to."""

    def __init__(self) -> None:
        self.host = type("H", (), {"name": "src", "argv_for": staticmethod(list)})()
        self.asked: list[list[str]] = []

    def capabilities(self) -> zfs.Capabilities:
        return zfs.Capabilities(send_estimate=True)

    def estimate_send_size(self, send: list[str]) -> int:
        self.asked.append(send)
        return 123


def _history(written: int) -> zfs.History:
    snapshots = (zfs.Snapshot("data/x", "monday", 7, 10, 0), zfs.Snapshot("data/x", "retadm_1", 8, 11, 0, userrefs=1))
    return zfs.History(snapshots, (), written_bytes=written, kind="filesystem")


def test_a_small_send_from_the_newest_snapshot_is_not_estimated_first():
    """What ``written`` says was written after the newest snapshot is what a cron run sends from it:
    under 64 MiB, ZFS is not asked for an estimate (one ``zfs`` call fewer); from an older snapshot,
    or more than that, it is."""
    source = _EstimatingNode()
    pair = Pair(Task("data/x", "dst", "repl/x", False), source, source)
    pair._learn(_history(written=1 << 20))
    assert pair.estimate_send(SendIncremental("retadm_1", False, "retadm_2", False)) is None
    assert source.asked == []
    assert pair.estimate_send(SendIncremental("monday", False, "retadm_2", False)) == 123
    assert pair.estimate_send(SendFull("retadm_2", False)) == 123
    pair._learn(_history(written=200 << 20))
    assert pair.estimate_send(SendIncremental("retadm_1", False, "retadm_2", False)) == 123
    assert len(source.asked) == 3

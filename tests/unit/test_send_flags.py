"""Stream flags (``send -L -c -e``): probed on both sides, decided once at ``init``, recorded
with the task and used by every later send; a task recorded without them never gets them."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, strategies as st

from ovios_shell_retadm import zfs
from ovios_shell_retadm.replication import preflight
from ovios_shell_retadm.replication.doctor import OK
from ovios_shell_retadm.replication.doctor.checks import check_send_flags
from ovios_shell_retadm.replication.executor import Pair
from ovios_shell_retadm.replication.model import ResumeSend, SendFull, SendIncremental, Task
from ovios_shell_retadm.replication.task_run import INC, TaskRun
from ovios_shell_retadm.replication.task_store import PLAIN, RAW, TaskRecord
from ovios_shell_retadm.zfs import Capabilities, Encryption, Unsupported, parse_probe, send_argv, stream_flags

ALL = ("-L", "-c", "-e")
POOL = frozenset({"bookmarks", "extensible_dataset", "large_blocks", "embedded_data", "lz4_compress",
                  "zstd_compress", "encryption"})
OPENZFS = Capabilities(version="zfs-2.3.2-1", bookmarks=True, resume_tokens=True, receive_u=True, send_estimate=True,
                       send_large_blocks=True, send_compressed=True, send_embedded=True, send_raw=True,
                       encryption=True, pool_features={"data": POOL, "repl": POOL})
ZFS_FUSE = Capabilities(receive_u=True)


# -- the probe ---------------------------------------------------------------------------------


def test_the_probe_asks_for_send_e_and_the_compression_features() -> None:
    assert "zfs send -e" in zfs.PROBE_SCRIPT
    assert "feature@lz4_compress" in zfs.PROBE_SCRIPT and "feature@zstd_compress" in zfs.PROBE_SCRIPT
    openzfs = parse_probe("@@properties\n\treadonly        YES      YES   on | off\n"
                          "@@send_large_blocks\nmissing snapshot argument\n"
                          "@@send_compressed\nmissing snapshot argument\n"
                          "@@send_embedded\nmissing snapshot argument\nusage:\n"
                          "@@features\nrepl\tfeature@large_blocks\tenabled\nrepl\tfeature@lz4_compress\tactive\n"
                          "repl\tfeature@embedded_data\tactive\nrepl\tfeature@zstd_compress\tdisabled\n")
    assert openzfs.send_large_blocks and openzfs.send_compressed and openzfs.send_embedded
    assert openzfs.pool_features["repl"] == {"large_blocks", "lz4_compress", "embedded_data"}
    assert Capabilities.from_json(openzfs.to_json()) == openzfs


def test_zfs_fuse_says_it_has_none_of_them() -> None:
    # what zfs-fuse 0.7's zfs says (its getopt knows none of -L, -c, -e; zpool get knows no features)
    fuse = parse_probe("@@properties\n\treadonly        YES      YES   on | off\n"
                       "@@send_large_blocks\ninvalid option 'L'\nusage:\n@@send_compressed\ninvalid option 'c'\n"
                       "@@send_embedded\ninvalid option 'e'\nusage:\n@@features\nbad property list: invalid property "
                       "'feature@bookmarks'\n")
    assert not (fuse.send_large_blocks or fuse.send_compressed or fuse.send_embedded)
    assert stream_flags(fuse, "data", fuse, "repl") == ()


# -- argv ----------------------------------------------------------------------------------------


def test_send_argv_with_the_stream_flags() -> None:
    assert send_argv("data/x", "s1", caps=OPENZFS, large_blocks=True, compressed=True, embedded=True) == \
        ["zfs", "send", "-L", "-c", "-e", "data/x@s1"]
    assert send_argv("data/x", "s2", "s1", properties=True, caps=OPENZFS, embedded=True) == \
        ["zfs", "send", "-p", "-e", "-I", "data/x@s1", "data/x@s2"]
    with pytest.raises(Unsupported, match="-L"):
        send_argv("data/x", "s1", caps=ZFS_FUSE, large_blocks=True)
    with pytest.raises(Unsupported, match="-c"):
        send_argv("data/x", "s1", caps=ZFS_FUSE, compressed=True)
    with pytest.raises(Unsupported, match="-e"):
        send_argv("data/x", "s1", caps=ZFS_FUSE, embedded=True)


# -- what both sides support ---------------------------------------------------------------------


def without(caps: Capabilities, pool: str, *features: str) -> Capabilities:
    return replace(caps, pool_features={**caps.pool_features, pool: caps.pool_features[pool] - set(features)})


def test_openzfs_on_both_sides_sends_large_compressed_embedded() -> None:
    assert stream_flags(OPENZFS, "data", OPENZFS, "repl") == ALL


@pytest.mark.parametrize(("source", "destination", "flags"), [
    (OPENZFS, ZFS_FUSE, ()),  # zfs-fuse receives none of them
    (ZFS_FUSE, OPENZFS, ()),  # nor sends them
    (OPENZFS, without(OPENZFS, "repl", "large_blocks"), ("-c", "-e")),
    (OPENZFS, without(OPENZFS, "repl", "embedded_data"), ("-L", "-c")),
    # a receiving ZFS older than 0.7 understands no compressed stream
    (OPENZFS, replace(OPENZFS, send_compressed=False), ("-L", "-e")),
    # zstd blocks sent as they are need zstd on the receiving pool
    (OPENZFS, without(OPENZFS, "repl", "zstd_compress"), ("-L",)),
    (without(OPENZFS, "data", "zstd_compress"), without(OPENZFS, "repl", "zstd_compress"), ALL),
    (replace(OPENZFS, send_embedded=False), OPENZFS, ("-L", "-c")),
])
def test_each_flag_needs_both_sides(source, destination, flags) -> None:
    assert stream_flags(source, "data", destination, "repl") == flags


def test_no_embedded_data_into_a_replica_that_would_be_encrypted() -> None:
    assert stream_flags(OPENZFS, "data", OPENZFS, "repl", encrypted_replica=True) == ("-L", "-c")


# -- init's decision --------------------------------------------------------------------------------


class Node:
    def __init__(self, caps: Capabilities, parent_encryption: Encryption | None = None, name: str = "dst"):
        self.caps = caps
        self.parent_encryption = parent_encryption
        self.host = type("H", (), {"name": name, "argv_for": staticmethod(list)})()

    def capabilities(self, refresh: bool = False) -> Capabilities:
        return self.caps

    def encryption(self, dataset: str) -> Encryption | None:
        return self.parent_encryption


def decide(source: Capabilities, dest: Node, mode: str = PLAIN) -> list[str]:
    landing = zfs.Landing("repl/x", "ONLINE", False, True, dest.parent_encryption, dest.caps)
    return preflight.send_flags(zfs.Candidate("data/x", "filesystem", (), {}, None, source), landing, mode)


def test_init_decides_on_what_its_look_at_the_destination_saw() -> None:
    assert decide(OPENZFS, Node(OPENZFS, Encryption("off", "", ""))) == list(ALL)
    assert decide(OPENZFS, Node(ZFS_FUSE)) == []
    assert decide(OPENZFS, Node(OPENZFS, Encryption("aes-256-gcm", "repl", "available"))) == ["-L", "-c"]
    assert decide(OPENZFS, Node(OPENZFS), RAW) == []  # -w carries the blocks as they are by itself


# -- the record and the sends --------------------------------------------------------------------------


def test_a_record_carries_its_flags_and_an_old_one_none() -> None:
    record = TaskRecord("data/x", "dst", "repl/x", False, send_mode=PLAIN, send_flags=list(ALL))
    assert TaskRecord.from_dict(record.to_dict()) == record
    assert record.task().send_flags == ALL
    old = record.to_dict()
    del old["send_flags"]  # written before stream flags existed
    again = TaskRecord.from_dict(old)
    assert again.send_flags is None and again.task().send_flags == ()
    assert TaskRecord.from_dict(again.to_dict()).send_flags is None


def pair(flags: tuple[str, ...], caps: Capabilities = OPENZFS, raw: bool = False) -> Pair:
    task = Task("data/x", "dst", "repl/x", properties=False, raw=raw, send_flags=flags)
    return Pair(task, Node(caps, name="src"), Node(caps))  # type: ignore[arg-type]


def test_every_send_of_a_task_carries_its_recorded_flags() -> None:
    flagged = pair(ALL)
    assert flagged.send_argv(SendFull("s1", False)) == ["zfs", "send", "-L", "-c", "-e", "data/x@s1"]
    assert flagged.send_argv(SendIncremental("s1", False, "s2", False)) == \
        ["zfs", "send", "-L", "-c", "-e", "-I", "data/x@s1", "data/x@s2"]
    assert flagged.send_argv(SendIncremental("b1", True, "s2", False)) == \
        ["zfs", "send", "-L", "-c", "-e", "-i", "data/x#b1", "data/x@s2"]
    # a resume sends the token's own stream: its flags are in it
    assert flagged.send_argv(ResumeSend("1-abc-def")) == ["zfs", "send", "-t", "1-abc-def"]
    # raw: -w alone
    assert pair(ALL, raw=True).send_argv(SendFull("s1", False, True)) == ["zfs", "send", "-w", "data/x@s1"]


def test_a_task_without_flags_sends_as_before_whatever_both_sides_support() -> None:
    plain = pair(())
    assert plain.send_argv(SendFull("s1", False)) == ["zfs", "send", "data/x@s1"]
    assert plain.send_argv(SendIncremental("s1", False, "s2", True)) == \
        ["zfs", "send", "-p", "-I", "data/x@s1", "data/x@s2"]


def test_recorded_flags_the_source_lost_stop_the_run_rather_than_being_dropped() -> None:
    with pytest.raises(Unsupported, match="-L"):
        pair(ALL, replace(OPENZFS, send_large_blocks=False)).send_argv(SendIncremental("s1", False, "s2", False))


steps = st.one_of(
    st.builds(SendFull, st.sampled_from(["s1", "s2"]), st.booleans()),
    st.builds(SendIncremental, st.sampled_from(["s1", "b1"]), st.booleans(), st.just("s2"), st.booleans()),
)


@given(recorded=st.sets(st.sampled_from(("-c", "-e"))), step=steps)
def test_L_never_comes_to_a_task_recorded_without_it(recorded, step) -> None:
    flags = tuple(f for f in ALL if f in recorded)
    argv = pair(flags).send_argv(step)
    assert "-L" not in argv
    assert [a for a in argv if a in ALL] == list(flags)


@given(step=steps)
def test_a_task_set_up_before_flags_sends_none_of_them(step) -> None:
    old = TaskRecord("data/x", "dst", "repl/x", False)  # send_flags None
    argv = Pair(old.task(), Node(OPENZFS, name="src"), Node(OPENZFS)).send_argv(step)  # type: ignore[arg-type]
    assert not set(argv) & set(ALL)


# -- a run records "none" for an old task; doctor says what the task sends with -------------------------


def test_the_first_run_of_an_old_task_records_that_it_sends_without_flags() -> None:
    source = Node(OPENZFS, Encryption("off", "", ""), name="localhost")
    old = TaskRecord("data/x", "dst", "repl/x", False, send_mode=PLAIN)
    assert TaskRun(old, INC, source=source, destination=Node(OPENZFS))._recorded_mode() == {"send_flags": []}  # type: ignore[arg-type]
    new = replace(old, send_flags=list(ALL))
    assert TaskRun(new, INC, source=source, destination=Node(OPENZFS))._recorded_mode() == {}  # type: ignore[arg-type]


def test_doctor_shows_the_flags() -> None:
    record = TaskRecord("data/x", "dst", "repl/x", False, send_mode=PLAIN, send_flags=list(ALL))
    assert check_send_flags("send flags", record).message.startswith("-L -c -e: ")
    assert check_send_flags("send flags", replace(record, send_flags=[])).message.startswith("none: ")
    assert "set up before" in check_send_flags("send flags", replace(record, send_flags=None)).message
    assert check_send_flags("send flags", replace(record, send_mode=RAW, send_flags=[])).message.startswith("raw")
    assert check_send_flags("send flags", record).level == OK

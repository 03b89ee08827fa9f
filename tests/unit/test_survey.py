"""``ZfsNode.survey``: the replica's listing with its marks, and its holds, in one call.

The survey is a shell script run on the partner.  Here it runs under the real ``sh``,
``awk``, ``tr`` and ``xargs``, with a ``zfs`` on PATH that answers as OpenZFS 2.x does
(the outputs below are its own formats: ``zfs get -H -p``, ``zfs holds -H``) or, for the hold
probe where holds cannot be listed, as zfs-fuse words ``zfs hold``'s messages, so that the
script's part statuses, its choice of which snapshots to ask about and the parsing are all
checked without a pool.  The lab tests run it against real ZFS.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from ovios_shell_retadm.hosts import CommandFailed, Host
from ovios_shell_retadm.zfs import Capabilities, NoSuchDataset, ZfsNode

LISTING = """\
repl/x\ttype\tfilesystem\t-
repl/x\tguid\t101\t-
repl/x\tcreatetxg\t5\t-
repl/x\tcreation\t1700000000\t-
repl/x\twritten\t0\t-
repl/x\treadonly\ton\tlocal
repl/x\treceive_resume_token\t-\t-
repl/x@daily\ttype\tsnapshot\t-
repl/x@daily\tguid\t201\t-
repl/x@daily\tcreatetxg\t7\t-
repl/x@daily\tcreation\t1700000100\t-
repl/x@daily\tuserrefs\t0\t-
repl/x@daily\twritten\t12288\t-
repl/x@daily\treadonly\toff\tdefault
repl/x@retadm_1\ttype\tsnapshot\t-
repl/x@retadm_1\tguid\t202\t-
repl/x@retadm_1\tcreatetxg\t9\t-
repl/x@retadm_1\tcreation\t1700000200\t-
repl/x@retadm_1\tuserrefs\t2\t-
repl/x@retadm_1\twritten\t4096\t-
repl/x/child\tguid\t300\t-
repl/x/child\treadonly\toff\tlocal
"""
HOLDS = "repl/x@retadm_1\tretadm\tTue Dec  1 10:00 2026\nrepl/x@retadm_1\tsomeone\tTue Dec  1 10:01 2026\n"

FAKE_ZFS = r"""#!/bin/sh
# answers the survey's commands from files: <part>.out, <part>.err, <part>.status
case "$*" in
  *"-d 1"*) part=listing ;;
  holds*) part=holds ;;
  hold*) part=hold ;;
  release*) part=release ;;
  *) echo "unexpected: zfs $*" >&2; exit 99 ;;
esac
echo "$part $*" >> "$FAKE_DIR/calls"
[ -f "$FAKE_DIR/$part.out" ] && cat "$FAKE_DIR/$part.out"
[ -f "$FAKE_DIR/$part.err" ] && cat "$FAKE_DIR/$part.err" >&2
exit "$(cat "$FAKE_DIR/$part.status" 2>/dev/null || echo 0)"
"""


class FakeZfsHost(Host):
    """Runs commands here, with the fake ``zfs`` first on PATH."""

    name = "dst"

    def __init__(self, directory: Path):
        self.directory = directory

    def argv_for(self, argv: Sequence[str]) -> list[str]:
        return ["env", f"PATH={self.directory}:/usr/bin:/bin", f"FAKE_DIR={self.directory}", "LC_ALL=C", *argv]


@pytest.fixture
def fake(tmp_path: Path):
    zfs = tmp_path / "zfs"
    zfs.write_text(FAKE_ZFS)
    zfs.chmod(0o755)
    for part, out in (("listing", LISTING), ("holds", HOLDS)):
        (tmp_path / f"{part}.out").write_text(out)
    node = ZfsNode(FakeZfsHost(tmp_path))
    node._caps = Capabilities(holds_list=True, written=True, resume_tokens=True)
    return node, tmp_path


def calls(directory: Path) -> list[str]:
    return (directory / "calls").read_text().splitlines()


def test_one_call_gives_history_marks_and_this_tasks_holds(fake):
    node, directory = fake
    survey = node.survey("repl/x", ["readonly", "receive_resume_token"], "retadm")
    assert survey is not None
    assert [(s.name, s.guid, s.createtxg, s.userrefs) for s in survey.history.snapshots] == [
        ("daily", 201, 7, 0), ("retadm_1", 202, 9, 2)]
    assert survey.history.written is False  # the dataset's own `written`, not its snapshots'
    assert survey.history.kind == "filesystem"
    # the marks are the dataset's own, not its snapshots' or its child's
    assert survey.properties == {"readonly": ("on", "local"), "receive_resume_token": ("-", "-")}
    assert survey.holds == {"repl/x@retadm_1": {"retadm"}}  # another tag's hold is not reported
    listing, holds = calls(directory)
    assert listing.startswith("listing get -H -p -d 1 -o name,property,value,source ") \
        and listing.endswith(",readonly,receive_resume_token repl/x"), listing
    # the holds are asked of the held snapshots only (userrefs > 0), never of the child
    assert holds == "holds holds -H repl/x@retadm_1"


def test_no_held_snapshot_asks_for_no_holds(fake):
    node, directory = fake
    (directory / "listing.out").write_text(LISTING.replace("userrefs\t2", "userrefs\t0"))
    survey = node.survey("repl/x", ["readonly"], "retadm")
    assert survey is not None and survey.holds == {}
    assert [call.split()[0] for call in calls(directory)] == ["listing"]


# zfs-fuse cannot list holds: the same call probes them, holding the tag on the held snapshots
# (its messages, as zfs-fuse words them, say which carried it already)
LISTING_TWO_HELD = LISTING.replace("userrefs\t0", "userrefs\t1")
CARRIED = "cannot hold 'repl/x@retadm_1': tag already exists on this dataset\n"


@pytest.fixture
def fuse(fake):
    node, directory = fake
    node._caps = Capabilities(resume_tokens=True)
    (directory / "hold.err").write_text(CARRIED)
    (directory / "hold.status").write_text("1")
    return node, directory


def test_where_holds_cannot_be_listed_one_call_lists_and_probes(fuse):
    node, directory = fuse
    survey = node.survey("repl/x", ["readonly"], "retadm")
    assert survey is not None and survey.properties == {"readonly": ("on", "local")}
    assert survey.holds == {"repl/x@retadm_1": {"retadm"}}
    listing, hold = calls(directory)
    assert listing.startswith("listing get ") and hold == "hold hold retadm repl/x@retadm_1"


def test_the_probe_releases_only_the_holds_it_added(fuse):
    """Another's held snapshot did not carry the tag: the probe added it there, and one more
    call takes it off again; the task's own hold stays."""
    node, directory = fuse
    (directory / "listing.out").write_text(LISTING_TWO_HELD)
    survey = node.survey("repl/x", ["readonly"], "retadm")
    assert survey is not None and survey.holds == {"repl/x@retadm_1": {"retadm"}}
    assert calls(directory)[1:] == ["hold hold retadm repl/x@daily repl/x@retadm_1",
                                    "release release retadm repl/x@daily"]


def test_the_probe_of_a_snapshot_gone_meanwhile_means_look_again(fuse):
    node, directory = fuse
    (directory / "listing.out").write_text(LISTING_TWO_HELD)
    (directory / "hold.err").write_text(CARRIED + "cannot hold 'repl/x@daily': dataset does not exist\n")
    with pytest.raises(NoSuchDataset):
        node.survey("repl/x", ["readonly"], "retadm")
    assert calls(directory)[-1].startswith("hold ")  # nothing of ours to release: @daily is gone


def test_where_holds_cannot_be_listed_no_held_snapshot_is_probed(fuse):
    node, directory = fuse
    (directory / "listing.out").write_text(LISTING.replace("userrefs\t2", "userrefs\t0"))
    survey = node.survey("repl/x", ["readonly"], "retadm")
    assert survey is not None and survey.holds == {}
    assert [call.split()[0] for call in calls(directory)] == ["listing"]


def test_an_unreadable_probe_message_leaves_every_hold_in_place(fuse):
    """A message that names no snapshot: which holds are new cannot be told, so none is
    released (an extra hold only protects; releasing another's would not be harmless)."""
    node, directory = fuse
    (directory / "hold.err").write_text("internal error: out of memory\n")
    with pytest.raises(CommandFailed) as raised:
        node.survey("repl/x", ["readonly"], "retadm")
    assert "out of memory" in raised.value.short()
    assert [call.split()[0] for call in calls(directory)] == ["listing", "hold"]


def test_a_missing_replica_is_none(fake):
    node, directory = fake
    (directory / "listing.out").write_text("")
    (directory / "listing.err").write_text("cannot open 'repl/x': dataset does not exist\n")
    (directory / "listing.status").write_text("1")
    assert node.survey("repl/x", ["readonly"], "retadm") is None
    assert [call.split()[0] for call in calls(directory)] == ["listing"]  # nothing after a failed listing


def test_a_snapshot_gone_before_its_holds_are_read_means_look_again(fake):
    node, directory = fake
    (directory / "holds.err").write_text("cannot open 'repl/x@retadm_1': dataset does not exist\n")
    (directory / "holds.status").write_text("1")
    with pytest.raises(NoSuchDataset):
        node.survey("repl/x", ["readonly"], "retadm")


def test_a_failed_part_is_reported_as_its_own_zfs_command(fake):
    node, directory = fake
    (directory / "holds.err").write_text("cannot list holds: permission denied\n")
    (directory / "holds.status").write_text("2")
    with pytest.raises(CommandFailed) as raised:
        node.survey("repl/x", ["readonly"], "retadm")
    assert not isinstance(raised.value, NoSuchDataset)
    assert raised.value.short() == "dst: zfs holds failed: cannot list holds: permission denied"
    assert raised.value.returncode == 123  # xargs's status when the command it ran failed


def test_a_failed_listing_is_reported_as_zfs_get(fake):
    node, directory = fake
    (directory / "listing.err").write_text("bad property list: invalid property 'readonly'\n")
    (directory / "listing.status").write_text("2")
    with pytest.raises(CommandFailed) as raised:
        node.survey("repl/x", ["readonly"], "retadm")
    assert not isinstance(raised.value, NoSuchDataset)
    assert raised.value.short() == "dst: zfs get failed: bad property list: invalid property 'readonly'"

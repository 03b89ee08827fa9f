"""The origin mark ``<host>:<dataset>`` on a replica, and promote's use of it.

Dataset names may hold ``:`` (ZFS allows it), so the mark is read as: a leading
``[IPv6]`` is the host, an old unbracketed IPv6 mark still reads as written, otherwise
the host is everything before the *first* ``:``.  Promote checks all it needs before it
changes anything on the replica.
"""

from __future__ import annotations

import pytest

from ovios_shell_retadm.hosts import Result
from ovios_shell_retadm.replication import failover
from ovios_shell_retadm.replication.failover import FailoverError, Replica
from ovios_shell_retadm.replication.origin import OriginError, format_origin, parse_origin


@pytest.mark.parametrize("mark, host, dataset", [
    ("192.168.0.149:data/smbvol", "192.168.0.149", "data/smbvol"),  # marks written so far
    ("src:data/smbvol", "src", "data/smbvol"),
    ("192.168.0.149:data/smb:vol", "192.168.0.149", "data/smb:vol"),
    ("nas.example.com:data/a:b:c", "nas.example.com", "data/a:b:c"),
    ("src:pool:x/y", "src", "pool:x/y"),
    ("[fd00::1]:data/smb:vol", "fd00::1", "data/smb:vol"),
    ("[fd00::1]:data/smbvol", "fd00::1", "data/smbvol"),
    ("fd00::1:data/smbvol", "fd00::1", "data/smbvol"),  # unbracketed IPv6, as written before brackets
    ("2001:db8::149:data/smbvol", "2001:db8::149", "data/smbvol"),
])
def test_marks_are_read(mark, host, dataset):
    assert parse_origin(mark) == (host, dataset)


@pytest.mark.parametrize("host, dataset, mark", [
    ("192.168.0.149", "data/smb:vol", "192.168.0.149:data/smb:vol"),
    ("src", "data/smbvol", "src:data/smbvol"),
    ("fd00::1", "data/smb:vol", "[fd00::1]:data/smb:vol"),
])
def test_marks_are_written_unambiguously_and_read_back(host, dataset, mark):
    assert format_origin(host, dataset) == mark
    assert parse_origin(mark) == (host, dataset)


@pytest.mark.parametrize("mark", [
    "", "data/smbvol", ":data/smbvol", "src:", "[fd00::1]data/x", "[fd00::1:data/x", "[src]:data/x",
    "bad host:data/x", "-oProxyCommand=x:data/x", "src:data/a b", "src:data/x@snap",
])
def test_what_is_not_a_mark_is_refused_in_one_line(mark):
    with pytest.raises(OriginError) as info:
        parse_origin(mark)
    assert "ovios:retadm.origin" in str(info.value) and "\n" not in str(info.value)


def test_a_mark_is_never_written_from_what_could_not_be_read_back():
    for host, dataset in (("bad host", "data/x"), ("src", "data/x@s"), ("src", "")):
        with pytest.raises(OriginError):
            format_origin(host, dataset)


def test_the_replicas_source_with_a_colon_in_its_name():
    replica = Replica("repl/smb:vol", "filesystem", "192.168.0.149:data/smb:vol", None, True, False)
    assert (replica.source_host, replica.source_dataset) == ("192.168.0.149", "data/smb:vol")
    assert failover.promotion_steps(replica)[-1] == \
        "mark the task of data/smb:vol broken on 192.168.0.149 (if it answers)"


class FakeHost:
    name = "localhost"

    def run(self, argv, **_kwargs):
        return Result(0, "", "", tuple(argv))  # no zfs receive running


class RecordingNode:
    """What promote does to the replica, call by call."""

    def __init__(self):
        self.host = FakeHost()
        self.changes: list[tuple] = []

    def abort_resume(self, dataset):
        self.changes.append(("receive -A", dataset))

    def set_property(self, dataset, prop, value):
        self.changes.append(("set", dataset, prop, value))

    def mount(self, dataset):
        self.changes.append(("mount", dataset))

    def value_and_source(self, dataset, prop):
        return ("off", "local")


class FakePartner:
    name = "192.168.0.149"

    def __init__(self):
        self.calls: list[list[str]] = []

    def run(self, argv, **_kwargs):
        self.calls.append(list(argv))
        return Result(0, "", "", tuple(argv))


def test_promote_tells_the_source_about_the_whole_dataset_name():
    node, partner = RecordingNode(), FakePartner()
    replica = Replica("repl/smb:vol", "filesystem", "192.168.0.149:data/smb:vol", None, True, False)
    assert failover.promote(node, replica, partner) == []
    assert [[call[-4], call[-3], call[-1]] for call in partner.calls] == [["broken", "data/smb:vol", "repl/smb:vol"]]


@pytest.mark.parametrize("origin", [None, "nohost", "bad host:data/x", "src:data/x@s", "[fd00::1:data/x"])
def test_promote_changes_nothing_when_the_mark_cannot_be_used(origin):
    node = RecordingNode()
    replica = Replica("repl/x", "filesystem", origin, None, True, True)
    with pytest.raises(FailoverError) as info:
        failover.promote(node, replica)
    assert node.changes == [], node.changes
    assert "\n" not in str(info.value)
    with pytest.raises(FailoverError):
        failover.promotion_steps(replica)


class MountHost(FakeHost):
    """Answers promote's look at the source's mountpoint with ``why`` (empty: free)."""

    def __init__(self, why: str):
        self.why = why

    def run(self, argv, **_kwargs):
        if failover._OCCUPIED in argv:
            return Result(0, self.why, "", tuple(argv))
        return super().run(argv)


class MountNode(RecordingNode):
    def __init__(self, why: str):
        super().__init__()
        self.host = MountHost(why)

    def revert_to_received(self, dataset, prop):
        self.changes.append(("inherit -S", dataset, prop))


def _at_pool(**kwargs) -> Replica:
    return Replica("repl/smbvol", "filesystem", "192.168.0.149:data/smbvol", None, True, False,
                   mountpoint="/repl/smbvol", source_mountpoint="/srv/share", **kwargs)


def test_promote_mounts_a_replica_at_the_sources_mountpoint_when_it_is_free():
    node = MountNode("")
    assert "mount repl/smbvol at the source's mountpoint /srv/share if that directory is empty (else it stays " \
           "at /repl/smbvol)" in failover.promotion_steps(_at_pool())
    assert failover.promote(node, _at_pool(), FakePartner()) == []
    assert ("inherit -S", "repl/smbvol", "mountpoint") in node.changes
    assert node.changes[-1] == ("mount", "repl/smbvol")


@pytest.mark.parametrize("why", ["is not empty", "has something mounted on it", "is not a directory"])
def test_promote_never_mounts_over_something_and_says_how_in_one_line(why):
    node = MountNode(why + "\n")
    notes = failover.promote(node, _at_pool(), FakePartner())
    assert notes == [f"repl/smbvol stays mounted at /repl/smbvol: /srv/share {why}; once it is, "
                     "'zfs inherit -S mountpoint repl/smbvol' mounts it there"]
    assert not [c for c in node.changes if c[0] == "inherit -S"]
    assert node.changes[-1] == ("mount", "repl/smbvol")

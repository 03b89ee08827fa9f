"""zfs.py on a real ZFS: Debian's zfs-fuse, run privately by ovios_lab.zfsdev in a mount
namespace of its own with a file-backed pool; an sshd in the same namespace lets the same
checks run through :class:`SshHost`.  (The builders and parsers: tests/unit/test_zfs.py.)"""

from __future__ import annotations

import itertools
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from ovios_lab import zfsdev
from ovios_shell_retadm.hosts import Host, SshHost
from ovios_shell_retadm.replication.executor import Pair, PlanOutdated
from ovios_shell_retadm.replication.model import (
    DestroySnapshot,
    Plan,
    Rollback,
    SendFull,
    SendIncremental,
    SetReadonly,
    Side,
    Task,
)
from ovios_shell_retadm.zfs import (
    Capabilities,
    Dataset,
    DatasetBusy,
    InvalidName,
    NoSuchDataset,
    Unsupported,
    ZfsNode,
    receive_argv,
    send_argv,
)

from tiers import cannot_run

ZFS_FUSE = Capabilities(receive_u=True)

HOSTILE = [
    "tank/a;touch {marker}",
    "tank/$(touch {marker})",
    "tank/`touch {marker}`",
    "tank/a b",
    "tank/'a'",
    'tank/"a"',
    "tank/a\ntouch {marker}",
    "tank/a|touch {marker}",
    "tank/a&&touch {marker}",
    "tank/a>{marker}",
    "-o tank",
    "--help",
]


class CountingHost(Host):
    """Delegates to another host and counts the commands it runs."""

    def __init__(self, inner: Host):
        self.inner = inner
        self.name = inner.name
        self.calls: list[list[str]] = []

    def argv_for(self, argv):
        self.calls.append(list(argv))
        return self.inner.argv_for(argv)


@pytest.fixture(scope="module")
def lab():
    reason = zfsdev.missing_requirements("zfs-fuse", "zfs", "zpool", "sshd", "ssh-keygen")
    if reason is None and not Path("/dev/fuse").exists():
        reason = "/dev/fuse is missing"
    if reason:
        cannot_run("a private zfs-fuse", reason)
    with zfsdev.namespace() as ns, zfsdev.zfs_fuse(ns) as zfs, zfsdev.sshd(ns) as sshd:
        zfs.create_pool("tank")
        yield ns, sshd


@pytest.fixture(autouse=True)
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Capability caches go to a per-test directory."""
    monkeypatch.setenv("OVIOS_RUN_DIR", str(tmp_path / "run"))
    return tmp_path / "run"


@pytest.fixture
def ns(lab):
    return lab[0]


@pytest.fixture
def node(ns) -> ZfsNode:
    return ZfsNode(ns.host())


_numbers = itertools.count()


@pytest.fixture
def fs(ns) -> str:
    """A fresh filesystem with a child, for one test."""
    name = f"tank/t{next(_numbers)}"
    ns.run("zfs", "create", name)
    ns.run("zfs", "create", f"{name}/child")
    return name


def zfs_value(ns, prop: str, name: str) -> str:
    return ns.run("zfs", "get", "-H", "-p", "-o", "value", prop, name).stdout.strip()


def test_capabilities_of_zfs_fuse(ns) -> None:
    host = CountingHost(ns.host())
    caps = ZfsNode(host).capabilities()
    # verified by hand against zfs-fuse 0.7.0: see the zfs.py docstring
    assert caps == Capabilities(receive_u=True)
    assert len(host.calls) == 1
    again = CountingHost(ns.host())
    assert ZfsNode(again).capabilities() == caps  # from the disk cache
    assert again.calls == []
    assert ZfsNode(again).capabilities(refresh=True) == caps and len(again.calls) == 1


def test_list_datasets(node: ZfsNode, fs: str) -> None:
    datasets = node.list_datasets()
    assert Dataset("tank", "filesystem") in datasets  # the pool: callers filter it
    assert Dataset(fs, "filesystem") in datasets and Dataset(f"{fs}/child", "filesystem") in datasets
    assert all(d.type in ("filesystem", "volume") for d in datasets)
    node.snapshot(fs, "s1")
    assert Dataset(f"{fs}@s1", "snapshot") in node.list_datasets(types=("snapshot",))
    with pytest.raises(ValueError):
        node.list_datasets(types=("pool",))


def test_snapshots_in_creation_order_with_guids(ns, node: ZfsNode, fs: str) -> None:
    for name in ("b", "a", "c"):
        node.snapshot(fs, name)
    node.snapshot(f"{fs}/child", "a")
    sibling = fs + "x"  # a name sharing the prefix must not leak in
    ns.run("zfs", "create", sibling)
    node.snapshot(sibling, "z")
    snaps = node.snapshots(fs)
    assert [s.name for s in snaps] == ["b", "a", "c"]
    assert [s.full for s in snaps] == [f"{fs}@b", f"{fs}@a", f"{fs}@c"]
    for snap in snaps:
        assert snap.guid == int(zfs_value(ns, "guid", snap.full))
        assert snap.createtxg == int(zfs_value(ns, "createtxg", snap.full))
        assert snap.creation == int(zfs_value(ns, "creation", snap.full))
    assert snaps[0].createtxg < snaps[1].createtxg < snaps[2].createtxg
    assert len({s.guid for s in snaps}) == 3
    assert node.bookmarks(fs) == []
    assert node.snapshots(f"{fs}/child")[0].name == "a"


def test_exists_and_type(node: ZfsNode, fs: str) -> None:
    node.snapshot(fs, "s1")
    assert node.exists(fs) and node.exists(f"{fs}@s1")
    assert node.dataset_type(fs) == "filesystem" and node.dataset_type(f"{fs}@s1") == "snapshot"
    assert not node.exists("tank/nope") and node.dataset_type(f"{fs}@nope") is None
    with pytest.raises(NoSuchDataset):
        node.snapshots("tank/nope")
    with pytest.raises(NoSuchDataset):
        node.get_properties("tank/nope", ["readonly"])


def test_holds_round_trip(ns, node: ZfsNode, fs: str) -> None:
    snaps = [node.snapshot(fs, name) for name in ("s1", "s2", "s3")]
    ns.run("zfs", "hold", "someone-else", snaps[2])
    tag = "retadm-test"
    node.hold(tag, snaps[:2])
    node.hold(tag, snaps[:2])  # already held: fine
    found = node.holds(snaps, tags=[tag, "someone-else", "nobody"])
    assert found == {snaps[0]: {tag}, snaps[1]: {tag}, snaps[2]: {"someone-else"}}
    # the zfs-fuse probe (hold, then release where new) leaves no trace
    assert [zfs_value(ns, "userrefs", s) for s in snaps] == ["1", "1", "1"]
    with pytest.raises(Unsupported):
        node.holds(snaps)  # zfs-fuse cannot list unknown tags
    with pytest.raises(DatasetBusy, match="busy"):
        node.destroy_snapshot(fs, "s1")
    node.release(tag, snaps)  # s3 never had it: fine
    node.release(tag, snaps)
    assert node.holds(snaps, tags=[tag]) == {s: set() for s in snaps}
    assert [zfs_value(ns, "userrefs", s) for s in snaps] == ["0", "0", "1"]
    node.destroy_snapshot(fs, "s1")
    assert [s.name for s in node.snapshots(fs)] == ["s2", "s3"]


def test_a_prune_keeps_a_snapshot_someone_else_holds(ns, node: ZfsNode, fs: str) -> None:
    """A run's prune leaves a busy tracking snapshot in place, says so, and goes on."""
    held, free = node.snapshot(fs, "retadm_1"), node.snapshot(fs, "retadm_2")
    ns.run("zfs", "hold", "backup", held)  # another tool's (or a killed `zfs send -I`'s on zfs-fuse)
    lines: list[str] = []
    pair = Pair(Task(fs, "localhost", "tank/replica", False), node, node, log=lines.append)
    plan = Plan((DestroySnapshot(Side.SOURCE, "retadm_1"), DestroySnapshot(Side.SOURCE, "retadm_2")), None, "")
    outcome = pair.execute(plan)
    assert outcome.kept == ["@retadm_1 on the source"]
    assert "kept @retadm_1 on the source: it is busy (held by another tag, or being sent)" in lines
    assert [s.name for s in node.snapshots(fs)] == ["retadm_1"]
    ns.run("zfs", "release", "backup", held)
    assert free not in [f"{fs}@{s.name}" for s in node.snapshots(fs)]


def test_hold_reports_missing_snapshots(ns, node: ZfsNode, fs: str) -> None:
    s1 = node.snapshot(fs, "s1")
    with pytest.raises(NoSuchDataset, match="nope"):
        node.hold("t", [s1, f"{fs}@nope"])
    with pytest.raises(NoSuchDataset):
        node.holds([s1, f"{fs}@nope"], tags=["t"])
    node.release("t", [s1])
    assert zfs_value(ns, "userrefs", s1) == "0"


def test_destroy_snapshot_never_destroys_a_dataset(node: ZfsNode, fs: str) -> None:
    node.snapshot(fs, "s1")
    node.snapshot(fs, "s2")
    attempts = [
        (fs, ""),
        (f"{fs}@s1", "s1"),
        (fs, "s1,s2"),
        (fs, "s1%s2"),
        (fs, "-r"),
        (fs, "s1 -r"),
        (fs, f"s1/../../{fs.split('/')[1]}"),
        ("-r", "s1"),
        (fs.split("/")[0], ""),
    ]
    for dataset, name in attempts:
        # "s1 -r" is a valid snapshot name (spaces are): one argument, which zfs does not find
        with pytest.raises(NoSuchDataset if name == "s1 -r" else InvalidName):
            node.destroy_snapshot(dataset, name)
    assert node.exists(fs) and node.exists(f"{fs}/child")
    assert [s.name for s in node.snapshots(fs)] == ["s1", "s2"]


@pytest.mark.parametrize("template", HOSTILE)
def test_hostile_names_never_reach_a_shell(ns, node: ZfsNode, fs: str, tmp_path: Path, template: str) -> None:
    marker = tmp_path / "pwned"
    hostile = template.format(marker=marker)
    calls = [
        lambda: node.snapshot(hostile, "s1"),
        lambda: node.snapshot(fs, hostile),
        lambda: node.snapshots(hostile),
        lambda: node.exists(hostile),
        lambda: node.get_properties(hostile, ["readonly"]),
        lambda: node.set_property(fs, hostile, "on"),
        lambda: node.hold(hostile, [f"{fs}@s1"]),
        lambda: node.destroy_snapshot(fs, hostile),
        lambda: node.pool_health(hostile),
        lambda: send_argv(fs, "s1", hostile, caps=ZFS_FUSE),
        lambda: receive_argv(hostile, ZFS_FUSE),
    ]
    for call in calls:
        with pytest.raises(InvalidName):
            call()
    # Even unvalidated, a name passes through env/nsenter as one argument:
    # zfs itself rejects it and no shell ever sees it.
    result = node.host.run(["zfs", "list", "-H", hostile], check=False)
    assert result.returncode != 0
    assert not marker.exists()


def test_properties(ns, node: ZfsNode, fs: str) -> None:
    value = "a value with spaces, 'quotes' and $(touch /tmp/never)"
    node.set_property(fs, "ovios:note", value)
    assert node.get_properties(fs, ["ovios:note", "readonly"]) == {"ovios:note": value, "readonly": "off"}
    assert zfs_value(ns, "ovios:note", fs) == value
    # (not readonly: zfs-fuse reports a mounted dataset's readonly as "off, temporary")
    node.set_property(fs, "atime", "off")
    assert zfs_value(ns, "atime", fs) == "off"
    node.snapshot(fs, "s1")
    assert node.get_properties(f"{fs}@s1", ["userrefs"]) == {"userrefs": "0"}
    assert node.get_properties(fs, []) == {}
    with pytest.raises(InvalidName):
        node.set_property(fs, "ovios:note", "two\nlines")
    assert not Path("/tmp/never").exists()


def test_pool_and_feature_queries(node: ZfsNode, fs: str) -> None:
    assert node.pool_health("tank") == "ONLINE"
    assert node.pool_health("nopool") is None
    # zfs-fuse: no `written`, no resume tokens, no bookmarks, no estimates
    assert node.history(fs).written is None
    assert node.resume_token(fs) is None
    node.snapshot(fs, "s1")
    with pytest.raises(Unsupported):
        node.bookmark(fs, "s1", "b1")
    assert node.estimate_send_size(send_argv(fs, "s1", caps=ZFS_FUSE)) is None


def test_the_landing_of_a_new_replica_is_seen_in_one_call(ns, fs: str) -> None:
    host = CountingHost(ns.host())
    node = ZfsNode(host)
    free = node.landing(f"{fs}/new")
    assert (free.health, free.exists, free.parent_exists, free.pool, free.parent) == ("ONLINE", False, True, "tank", fs)
    assert free.parent_encryption is None  # zfs-fuse has no native encryption
    assert free.capabilities == Capabilities(receive_u=True) == node.capabilities()  # probed with the rest
    assert len(host.calls) == 1
    again = CountingHost(ns.host())
    assert ZfsNode(again).landing(f"{fs}/new") == free and len(again.calls) == 1  # probed before: asked again
    assert node.landing(f"{fs}/child").exists
    assert not node.landing(f"{fs}/missing/new").parent_exists
    nowhere = node.landing("nopool/new")
    assert (nowhere.health, nowhere.exists, nowhere.parent_exists) == (None, False, False)
    with pytest.raises(InvalidName):
        node.landing("tank")


def test_a_candidate_source_is_seen_in_one_call(ns, fs: str) -> None:
    node = ZfsNode(CountingHost(ns.host()))
    node.capabilities()  # (cached: init's look at the source reads them, it does not probe)
    ns.run("zfs", "create", f"{fs}/child/grandchild")
    ns.run("zfs", "snapshot", f"{fs}/child@s1")
    ns.run("zfs", "set", "ovios:note=kept", fs)
    host = CountingHost(ns.host())
    seen = ZfsNode(host).candidate(fs, ["ovios:note", "ovios:other"])
    assert len(host.calls) == 1
    assert (seen.kind, seen.encryption, seen.capabilities) == ("filesystem", None, Capabilities(receive_u=True))
    assert sorted(seen.descendants) == [f"{fs}/child", f"{fs}/child/grandchild"]  # no snapshots
    assert seen.properties == {"ovios:note": ("kept", "local"), "ovios:other": ("-", "-")}
    assert ZfsNode(ns.host()).candidate(f"{fs}/child", []).kind == "filesystem"
    missing = ZfsNode(ns.host()).candidate(f"{fs}/missing", ["ovios:note"])
    assert (missing.kind, missing.descendants, missing.properties) == (None, (), {"ovios:note": ("-", "-")})
    with pytest.raises(InvalidName):
        ZfsNode(ns.host()).candidate(f"{fs}@s1", [])


def pipe(host: Host, send: list[str], receive: list[str]) -> None:
    """``send | receive`` through an OS pipe, as the pipeline does."""
    sender = subprocess.Popen(host.argv_for(send), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    assert sender.stdout is not None
    receiver = subprocess.run(
        host.argv_for(receive), check=False, stdin=sender.stdout, capture_output=True, text=True, timeout=60
    )
    sender.stdout.close()
    assert sender.wait(timeout=60) == 0
    assert receiver.returncode == 0, receiver.stderr


def test_send_receive_with_builders(ns, node: ZfsNode, fs: str) -> None:
    caps = node.capabilities()
    mountpoint = Path(zfs_value(ns, "mountpoint", fs))
    for i, snap in enumerate(("s1", "s2", "s3")):
        ns.run("dd", "if=/dev/urandom", f"of={mountpoint}/file{i}", "bs=64k", "count=4")
        node.snapshot(fs, snap)
    copy = fs.replace("tank/", "tank/copy-")
    pipe(node.host, send_argv(fs, "s1", caps=caps), receive_argv(copy, caps))
    pipe(node.host, send_argv(fs, "s3", base="s1", caps=caps), receive_argv(copy, caps))
    source, target = node.snapshots(fs), node.snapshots(copy)
    assert [(s.name, s.guid) for s in source] == [(s.name, s.guid) for s in target]
    assert zfs_value(ns, "mounted", copy) == "no"  # receive -u works on zfs-fuse
    assert [zfs_value(ns, "userrefs", s.full) for s in source] == ["0", "0", "0"]


def test_a_replica_is_mounted_under_its_pool_not_at_the_mountpoint_it_received(ns, node: ZfsNode, fs: str) -> None:
    """With properties, the stream carries the source's own mountpoint: a run's receive
    must not mount the replica there (here the source itself is mounted there: zfs-fuse
    refused the mount and failed the receive before), incrementals must not move it back,
    and the received value stays for promote."""
    share = f"/run/share-{fs.rsplit('/', 1)[1]}"  # the namespace's own /run
    ns.run("zfs", "set", f"mountpoint={share}", fs)
    ns.run("sh", "-c", f"echo one > {share}/one.txt")
    node.snapshot(fs, "s1")
    copy = fs.replace("tank/", "tank/copy-")
    lines: list[str] = []
    pair = Pair(Task(fs, "here", copy, True), node, node, log=lines.append)
    pair.execute(Plan((SendFull("s1", True), SetReadonly()), None, ""))  # read-only, as a run's plan makes it
    # readonly rides on the receive's connection, so it is set before the look at the mount
    assert lines == [SendFull("s1", True).describe(), f"{SetReadonly().describe()} (with the receive)",
                     f"mount {copy} under its pool, not at the source's mountpoint {share} (promote mounts it there)"]
    under_pool = f"{zfs_value(ns, 'mountpoint', 'tank')}/{copy.split('/', 1)[1]}"
    assert [zfs_value(ns, p, copy) for p in ("mountpoint", "mounted")] == [under_pool, "yes"]
    assert node.received_value(copy, "mountpoint") == share
    assert ns.run("cat", f"{under_pool}/one.txt").stdout == "one\n"
    assert zfs_value(ns, "mounted", fs) == "yes" and ns.run("cat", f"{share}/one.txt").stdout == "one\n"

    ns.run("sh", "-c", f"echo two > {share}/two.txt")
    node.snapshot(fs, "s2")
    pair.execute(Plan((SendIncremental("s1", False, "s2", True),), None, "s1"))
    assert [zfs_value(ns, p, copy) for p in ("mountpoint", "mounted")] == [under_pool, "yes"]
    assert ns.run("cat", f"{under_pool}/two.txt").stdout == "two\n"
    assert len(lines) == 4  # nothing more to move
    ns.run("zfs", "set", f"mountpoint={share}-moved", fs)  # the directory is free now
    node.revert_to_received(copy, "mountpoint")  # what promote does when the directory is free
    assert zfs_value(ns, "mountpoint", copy) == share


def test_zfs_node_over_ssh(lab, node: ZfsNode, fs: str, tmp_path: Path) -> None:
    _ns, sshd = lab
    control = Path(tempfile.mkdtemp(prefix="rtz-", dir="/tmp"))
    remote = SshHost(
        "127.0.0.1",
        port=sshd.port,
        identity=sshd.path("client_key"),
        known_hosts=sshd.path("known_hosts"),
        config="/dev/null",
        control_dir=control,
    )
    try:
        over_ssh = ZfsNode(remote)
        node.snapshot(fs, "s1")
        over_ssh.snapshot(fs, "s2")
        assert over_ssh.snapshots(fs) == node.snapshots(fs)
        assert over_ssh.capabilities() == node.capabilities()
        marker = tmp_path / "pwned"
        result = remote.run(["zfs", "list", "-H", f"tank/$(touch {marker})"], check=False)
        assert result.returncode == 1 and f"tank/$(touch {marker})" in result.stderr
        assert not marker.exists()
    finally:
        remote.close()
        shutil.rmtree(control)


def test_a_rollback_destroys_exactly_what_its_step_lists_or_nothing(node: ZfsNode, fs: str) -> None:
    """The executor reads the destination again right before ``rollback -r``: a snapshot
    taken since the plan was made (not in the step's list) stops it, and nothing is lost."""
    replica = f"{fs}/child"
    for name in ("common", "listed", "later"):
        node.snapshot(replica, name)
    pair = Pair(Task(fs, "here", replica, False), node, node)
    with pytest.raises(PlanOutdated, match=rf"^not rolling {replica} back to @common: that would destroy "
                                           r"@listed, @later, the plan listed @listed$"):
        pair.execute(Plan((Rollback("common", ("listed",)),), None, "common"))
    assert [s.name for s in node.snapshots(replica)] == ["common", "listed", "later"]
    with pytest.raises(PlanOutdated, match="@gone is no longer there"):
        pair.execute(Plan((Rollback("gone", ()),), None, "gone"))
    pair.execute(Plan((Rollback("common", ("listed", "later")),), None, "common"))
    assert [s.name for s in node.snapshots(replica)] == ["common"]


def test_a_user_snapshot_with_a_space_is_held_sent_received_and_rolled_back_to(ns, node: ZfsNode, fs: str) -> None:
    """ZFS allows spaces in snapshot names: such a snapshot, held by someone else, oldest
    and then the common one, goes through everything a run does with it."""
    mountpoint = Path(zfs_value(ns, "mountpoint", fs))
    ns.run("zfs", "snapshot", f"{fs}@before upgrade")
    ns.run("zfs", "hold", "backup", f"{fs}@before upgrade")
    ns.run("dd", "if=/dev/urandom", f"of={mountpoint}/file", "bs=64k", "count=2")
    node.snapshot(fs, "retadm_1")
    copy = fs.replace("tank/", "tank/copy-")
    pair = Pair(Task(fs, "here", copy, False), node, node)
    observed = pair.observe()  # holds are probed on every held snapshot: the spaced one too
    assert [s.name for s in observed.source] == ["before upgrade", "retadm_1"]
    assert observed.source_holds == frozenset() and observed.destination is None
    caps = node.capabilities()
    pipe(node.host, send_argv(fs, "before upgrade", caps=caps), receive_argv(copy, caps))  # the oldest, in full
    pipe(node.host, send_argv(fs, "retadm_1", base="before upgrade", caps=caps), receive_argv(copy, caps))
    node.hold("retadm", [f"{fs}@before upgrade", f"{copy}@before upgrade"])
    assert node.holds([f"{fs}@before upgrade"], tags=["retadm", "backup"]) == {
        f"{fs}@before upgrade": {"retadm", "backup"}}
    assert pair.observe().source_holds == frozenset({"before upgrade"})
    node.release("retadm", [f"{fs}@before upgrade", f"{copy}@before upgrade"])
    node.rollback(copy, "before upgrade")  # the common snapshot, as a rollback target
    assert [s.name for s in node.snapshots(copy)] == ["before upgrade"]
    assert [zfs_value(ns, "userrefs", f"{n}@before upgrade") for n in (fs, copy)] == ["1", "0"]
    ns.run("zfs", "release", "backup", f"{fs}@before upgrade")
    node.destroy_snapshot(fs, "before upgrade")
    assert [s.name for s in node.snapshots(fs)] == ["retadm_1"]


# -- resume tokens: valid, stale (ZFS says its snapshot is gone) or unknown ------------------

#: ``zfs send -n -v -t <token>`` on OpenZFS: the token's contents on stdout, then libzfs's
#: error (zfs_send_resume_impl) on stderr

"""zfs.py: names and command builders (pure), then everything else on a real ZFS.

The real ZFS is Debian's zfs-fuse, run privately by ovios_lab.zfsdev in a mount
namespace of its own with a file-backed pool; an sshd in the same namespace
lets the same checks run through :class:`SshHost`.  OpenZFS behaviour is covered
here only by the builders and by parsing recorded output; the OpenZFS VM lab
is where it runs for real.
"""

from __future__ import annotations

import itertools
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from ovios_lab import zfsdev
from ovios_shell_retadm.hosts import Host, SshHost
from ovios_shell_retadm.replication.executor import Pair, PlanOutdated
from ovios_shell_retadm.replication.model import Plan, Rollback, SendFull, SendIncremental, SetReadonly, Task
from ovios_shell_retadm.zfs import (
    MAX_NAME_LEN,
    PROBE_SCRIPT,
    Capabilities,
    Dataset,
    DatasetBusy,
    InvalidName,
    NoSuchDataset,
    Unsupported,
    ZfsError,
    ZfsNode,
    parse_probe,
    parse_send_size,
    pool_of,
    readonly_of,
    receive_argv,
    resume_send_argv,
    send_argv,
    send_size_estimate_argv,
    split_snapshot,
    validate_dataset_name,
    validate_property_name,
    validate_snapshot_name,
    validate_tag,
)

from tiers import cannot_run

ZFS_FUSE = Capabilities(receive_u=True)
OPENZFS = Capabilities(
    version="zfs-2.3.2-1",
    bookmarks=True,
    resume_tokens=True,
    receive_u=True,
    receive_o=True,
    receive_x=True,
    send_estimate=True,
    send_large_blocks=True,
    send_compressed=True,
    written=True,
    zvols=True,
    holds_list=True,
    pool_features={"repl": frozenset({"bookmarks", "extensible_dataset"}), "old": frozenset()},
)

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


# -- names ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tank", "tank/fs", "data/smbvol", "p/a_b.c:d-e", "Pool9/x/y/z", "t/" + "a" * 253])
def test_valid_dataset_names(name: str) -> None:
    assert validate_dataset_name(name) == name


@pytest.mark.parametrize(
    "name, why",
    [
        ("", "non-empty"),
        ("tank/fs@snap", "snapshot"),
        ("tank/fs#bm", "bookmark"),
        ("tank//fs", "empty"),
        ("tank/", "empty"),
        ("/tank", "empty"),
        ("tank/./fs", "'.'"),
        ("tank/..", "'..'"),
        ("-tank", "begin with a letter"),
        ("9tank/fs", "begin with a letter"),
        ("_tank", "begin with a letter"),
        ("tank/a;b", "';'"),
        ("tank/$(touch /tmp/x)", "'$'"),
        ("tank/`id`", "'`'"),
        ("tank/a b", "' '"),
        ("tank/it's", '"\'"'),
        ('tank/"x"', "'\"'"),
        ("tank/a\nb", "'\\n'"),
        ("tank/a\tb", "'\\t'"),
        ("tank/a%b", "'%'"),
        ("tank/a,b", "','"),
        ("tank/é", "'é'"),
        ("t/" + "a" * 254, "longer than 255"),
    ],
)
def test_invalid_dataset_names(name: str, why: str) -> None:
    with pytest.raises(InvalidName) as info:
        validate_dataset_name(name)
    assert why in str(info.value)
    assert "\n" not in str(info.value)


def test_snapshot_tag_and_property_names() -> None:
    assert validate_snapshot_name("retadm-20260101-0000") == "retadm-20260101-0000"
    for bad in ("", "a@b", "a/b", "-r", ".hidden", "..", "a;b", "$(x)", "a%b", "a,b", "a#b", "a\tb", "a\nb", "it's"):
        with pytest.raises(InvalidName):
            validate_snapshot_name(bad)
    # ZFS allows spaces in snapshot names (zfs snapshot 'data/smbvol@before upgrade'); so do we
    assert validate_snapshot_name("before upgrade") == "before upgrade"
    assert split_snapshot("data/smbvol@before upgrade") == ("data/smbvol", "before upgrade")
    assert send_argv("data/smbvol", "retadm_2", base="before upgrade", caps=ZFS_FUSE) == [
        "zfs", "send", "-I", "data/smbvol@before upgrade", "data/smbvol@retadm_2"]
    for bad_dataset in ("data/smb vol", "data smbvol"):  # datasets and tags stay strict
        with pytest.raises(InvalidName):
            validate_dataset_name(bad_dataset)
    assert validate_tag("retadm:data/smbvol".replace("/", "_")) == "retadm:data_smbvol"
    for bad in (".keep", "-x", "a b", ""):
        with pytest.raises(InvalidName):
            validate_tag(bad)
    assert validate_property_name("readonly") == "readonly"
    assert validate_property_name("ovios:retadm.task") == "ovios:retadm.task"
    assert validate_property_name("written@retadm_1") == "written@retadm_1"  # the dry run's estimate
    for bad in ("Readonly", "a=b", "a b", "-o", "", "written@", "written@a@b", "@x"):
        with pytest.raises(InvalidName):
            validate_property_name(bad)


def test_split_snapshot_and_length_limit() -> None:
    assert split_snapshot("tank/fs@s1") == ("tank/fs", "s1")
    assert pool_of("tank/fs@s1") == "tank" and pool_of("tank") == "tank" and pool_of("t#b") == "t"
    for bad in ("tank/fs", "tank/fs@", "@s1", "tank/fs@a@b", "tank/fs@a/b"):
        with pytest.raises(InvalidName):
            split_snapshot(bad)
    dataset = "t/" + "a" * 250  # 252 characters
    split_snapshot(dataset + "@ab")  # 255
    with pytest.raises(InvalidName, match="longer than"):
        split_snapshot(dataset + "@abc")  # 256
    assert MAX_NAME_LEN == 255


# -- builders ---------------------------------------------------------------------


def test_send_argv() -> None:
    assert send_argv("tank/fs", "s2", caps=ZFS_FUSE) == ["zfs", "send", "tank/fs@s2"]
    assert send_argv("tank/fs", "s2", "s1", caps=ZFS_FUSE) == ["zfs", "send", "-I", "tank/fs@s1", "tank/fs@s2"]
    assert send_argv("tank/fs", "s2", "s1", intermediates=False, properties=True, caps=ZFS_FUSE) == [
        "zfs", "send", "-p", "-i", "tank/fs@s1", "tank/fs@s2",
    ]  # fmt: skip
    assert send_argv(
        "tank/fs", "s2", "b1", base_is_bookmark=True, intermediates=False, caps=OPENZFS,
        compressed=True, large_blocks=True, progress=True,
    ) == ["zfs", "send", "-L", "-c", "-v", "-P", "-i", "tank/fs#b1", "tank/fs@s2"]  # fmt: skip


def test_send_argv_refusals() -> None:
    with pytest.raises(ValueError, match="bookmark"):
        send_argv("tank/fs", "s2", "b1", base_is_bookmark=True, caps=OPENZFS)
    with pytest.raises(Unsupported):
        send_argv("tank/fs", "s2", "b1", base_is_bookmark=True, intermediates=False, caps=ZFS_FUSE)
    with pytest.raises(Unsupported):
        send_argv("tank/fs", "s2", caps=ZFS_FUSE, compressed=True)
    with pytest.raises(Unsupported):
        send_argv("tank/fs", "s2", caps=ZFS_FUSE, large_blocks=True)
    with pytest.raises(Unsupported):
        send_argv("tank/fs", "s2", caps=ZFS_FUSE, progress=True)
    with pytest.raises(InvalidName):
        send_argv("tank/fs", "s2; rm -rf /", caps=ZFS_FUSE)
    with pytest.raises(InvalidName):
        send_argv("tank/fs", "s2", "-R", caps=ZFS_FUSE)


def test_receive_argv() -> None:
    assert receive_argv("repl/fs", ZFS_FUSE) == ["zfs", "receive", "-u", "repl/fs"]
    assert receive_argv("repl/fs", Capabilities()) == ["zfs", "receive", "repl/fs"]
    assert receive_argv("repl/fs", OPENZFS, props={"readonly": "on"}) == [
        "zfs", "receive", "-s", "-u", "-o", "readonly=on", "repl/fs",
    ]  # fmt: skip
    # resumable only where the destination pool has extensible_dataset
    assert receive_argv("old/fs", OPENZFS, force=True) == ["zfs", "receive", "-u", "-F", "old/fs"]
    assert receive_argv("repl/fs", OPENZFS, resumable=False, no_mount=False) == ["zfs", "receive", "repl/fs"]
    with pytest.raises(Unsupported):
        receive_argv("repl/fs", ZFS_FUSE, resumable=True)
    with pytest.raises(Unsupported):
        receive_argv("repl/fs", ZFS_FUSE, props={"readonly": "on"})
    with pytest.raises(InvalidName):
        receive_argv("repl/fs", OPENZFS, props={"readonly": "on\n"})
    with pytest.raises(InvalidName):
        receive_argv("repl/fs@x", OPENZFS)
    # -x: the received value is kept (zfs get -o received) but the dataset inherits
    assert receive_argv("repl/fs", OPENZFS, exclude=("mountpoint",)) == [
        "zfs", "receive", "-s", "-u", "-x", "mountpoint", "repl/fs",
    ]  # fmt: skip
    with pytest.raises(Unsupported, match="receive -x"):
        receive_argv("repl/fs", ZFS_FUSE, exclude=("mountpoint",))
    with pytest.raises(InvalidName):
        receive_argv("repl/fs", OPENZFS, exclude=("mountpoint -F",))


class _TypedNode:
    """Just what Pair.receive_argv asks of its nodes."""

    def __init__(self, kind: str, caps: Capabilities):
        self.kind, self.caps, self.host = kind, caps, self

    def argv_for(self, argv: list[str]) -> list[str]:
        return argv

    def dataset_type(self, _name: str) -> str:
        return self.kind

    def capabilities(self) -> Capabilities:
        return self.caps


@pytest.mark.parametrize("kind, caps, argv", [
    ("filesystem", OPENZFS, ["zfs", "receive", "-s", "-u", "-x", "mountpoint", "repl/fs"]),
    ("volume", OPENZFS, ["zfs", "receive", "-s", "-u", "repl/fs"]),  # -x mountpoint fails on a zvol
    ("filesystem", ZFS_FUSE, ["zfs", "receive", "-u", "repl/fs"]),  # settle_mount inherits after
])
def test_a_run_never_lets_a_receive_mount_the_replica(kind, caps, argv) -> None:
    node = _TypedNode(kind, caps)
    pair = Pair(Task("data/fs", "dst", "repl/fs", True), node, node)  # type: ignore[arg-type]
    assert pair.receive_argv() == argv


def test_resume_and_estimate_argv() -> None:
    token = "1-e604ea4bf-e0-789c63a2"
    assert resume_send_argv(token, caps=OPENZFS) == ["zfs", "send", "-t", token]
    with pytest.raises(InvalidName):
        resume_send_argv("1-abc; reboot", caps=OPENZFS)
    with pytest.raises(Unsupported):
        resume_send_argv(token, caps=ZFS_FUSE)
    send = send_argv("tank/fs", "s2", "s1", caps=OPENZFS, progress=True)
    assert send_size_estimate_argv(send, caps=OPENZFS) == [
        "zfs", "send", "-n", "-v", "-P", "-I", "tank/fs@s1", "tank/fs@s2",
    ]  # fmt: skip
    assert send_size_estimate_argv(resume_send_argv(token, caps=OPENZFS), caps=OPENZFS)[-2:] == ["-t", token]
    with pytest.raises(Unsupported):
        send_size_estimate_argv(send, caps=ZFS_FUSE)
    with pytest.raises(ValueError):
        send_size_estimate_argv(["zfs", "receive", "x"], caps=OPENZFS)


def test_parse_send_size() -> None:
    # OpenZFS 2.x `zfs send -n -v -P -I a b` (one line per snapshot, then the total)
    text = "incremental\ts1\ttank/fs@s2\t5240\nincremental\ts2\ttank/fs@s3\t4000\nsize\t9240\n"
    assert parse_send_size(text) == 9240
    assert parse_send_size("full\ttank/fs@s1\t12345\n") == 12345
    assert parse_send_size("nothing useful") is None


# -- capability probe parsing ---------------------------------------------------------------

OPENZFS_PROBE = """\
@@version
zfs-2.3.2-1
zfs-kmod-2.3.2-1
@@properties
missing property argument
usage:
\tget [-rHp] [-d max] [-o "all" | field[,...]]

The following properties are supported:

\tPROPERTY       EDIT  INHERIT   VALUES

\tavailable        NO       NO   <size>
\treceive_resume_token  NO       NO   <string token>
\twritten          NO       NO   <size>
\treadonly        YES      YES   on | off
@@receive_u
missing snapshot argument
usage:
@@receive_s
missing snapshot argument
@@receive_o
missing snapshot argument
@@receive_x
missing snapshot argument
@@send_estimate
missing snapshot argument
@@send_large_blocks
missing snapshot argument
@@send_compressed
missing snapshot argument
@@bookmark
missing snapshot argument
@@holds
missing snapshot argument
@@dev_zfs
present
@@features
repl\tfeature@bookmarks\tenabled
repl\tfeature@extensible_dataset\tactive
repl\tfeature@large_blocks\tdisabled
"""


def test_parse_probe_openzfs() -> None:
    caps = parse_probe(OPENZFS_PROBE)
    assert caps.version == "zfs-2.3.2-1"
    assert caps.bookmarks and caps.resume_tokens and caps.receive_u and caps.receive_o and caps.receive_x
    assert caps.send_estimate and caps.send_large_blocks and caps.send_compressed
    assert caps.written and caps.zvols and caps.holds_list
    assert caps.pool_features == {"repl": frozenset({"bookmarks", "extensible_dataset"})}
    assert caps.bookmarks_on("repl") and caps.resumable_on("repl")
    assert not caps.bookmarks_on("other") and not caps.resumable_on("other")
    assert Capabilities.from_json(caps.to_json()) == caps


def test_parse_probe_without_zfs() -> None:
    missing = "".join(f"@@{key}\nsh: 1: zfs: not found\n" for key in ("version", "properties", "receive_u"))
    with pytest.raises(ZfsError, match="missing"):
        parse_probe(missing)


def test_probe_script_is_constant_and_harmless() -> None:
    words = shlex.split(PROBE_SCRIPT.replace(";", " ; "))
    for dangerous in ("destroy", "create", "rollback", "set", "hold", "release", "snapshot"):
        assert dangerous not in words


# -- real ZFS (zfs-fuse in a private namespace) ---------------------------------------------------


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
    from ovios_shell_retadm.replication.executor import Pair
    from ovios_shell_retadm.replication.model import DestroySnapshot, Plan, Side, Task

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
    assert node.written_since_newest(fs) is None
    assert node.resume_token(fs) is None
    node.snapshot(fs, "s1")
    with pytest.raises(Unsupported):
        node.bookmark(fs, "s1", "b1")
    assert node.estimate_send_size(send_argv(fs, "s1", caps=ZFS_FUSE)) is None


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
    assert lines == [SendFull("s1", True).describe(),
                     f"mount {copy} under its pool, not at the source's mountpoint {share} (promote mounts it there)",
                     SetReadonly().describe()]
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
_TOKEN_CONTENTS = """resume token contents:
nvlist version: 0
\tfromguid = 0x595d9f81aa9dddab
\tobject = 0x1
\toffset = 0x0
\tbytes = 0x0
\ttoguid = 0x854f02a2dd32cf0d
\ttoname = pool1/test@b
"""


@pytest.mark.parametrize("stderr", [
    "cannot resume send: 'pool1/test@b' used in the initial send no longer exists",
    "cannot resume send: 'pool1/test@b' is no longer the same snapshot used in the initial send",
    "cannot resume send: incremental source 0x595d9f81aa9dddab no longer exists",
    "cannot resume send: 'data/smbvol@before upgrade' used in the initial send no longer exists",
])
def test_a_token_whose_snapshot_zfs_says_is_gone_is_stale(stderr: str) -> None:
    from ovios_shell_retadm.zfs import RESUME_STALE, classify_resume_check

    check = classify_resume_check(1, _TOKEN_CONTENTS + "\n" + stderr + "\n")
    assert (check.state, check.detail) == (RESUME_STALE, stderr)


@pytest.mark.parametrize("returncode, output", [
    (1, "cannot resume send: resume token is corrupt (invalid format)"),
    (1, "cannot resume send: resume token is corrupt (invalid version 2)"),
    (1, _TOKEN_CONTENTS + "cannot resume send: unable to access 'pool1/test@b'"),
    (1, _TOKEN_CONTENTS + "cannot resume send: resume token is corrupt"),
    (1, "internal error: Input/output error"),
    (1, "cannot open 'pool1/test': pool I/O is currently suspended"),
    (255, "ssh: connect to host src port 22: Connection refused"),
    (-9, ""),
    (None, "timed out after 60 s"),
])
def test_any_other_failure_of_the_check_is_unknown(returncode, output) -> None:
    from ovios_shell_retadm.zfs import RESUME_UNKNOWN, classify_resume_check

    check = classify_resume_check(returncode, output)
    assert check.state == RESUME_UNKNOWN and check.detail and "\n" not in check.detail


def test_a_token_the_source_can_send_from_is_valid() -> None:
    from ovios_shell_retadm.zfs import RESUME_VALID, classify_resume_check

    assert classify_resume_check(0, _TOKEN_CONTENTS + "full\tpool1/test@b\t1234\n").state == RESUME_VALID


class _ResumeHost(Host):
    """A sending node whose ``zfs send -n -v -t`` answers as given; no other command runs."""

    def __init__(self, returncode: int, stderr: str, name: str = "src"):
        self.name = name
        self.answer = (returncode, stderr)
        self.calls: list[list[str]] = []

    def argv_for(self, argv):
        return list(argv)

    def run(self, argv, *, timeout=None, check=True, input=None):
        from ovios_shell_retadm.hosts import Result

        self.calls.append(list(argv))
        return Result(self.answer[0], _TOKEN_CONTENTS, self.answer[1], tuple(argv))


@pytest.mark.parametrize("returncode, stderr, expected", [
    (0, "", True),
    (1, "cannot resume send: 'pool1/test@b' used in the initial send no longer exists", False),
    (1, "cannot resume send: unable to access 'pool1/test@b'", None),
])
def test_a_run_discards_a_partial_receive_only_when_zfs_says_its_snapshot_is_gone(returncode, stderr, expected):
    from ovios_shell_retadm.zfs import ResumeCheckFailed

    source = ZfsNode(_ResumeHost(returncode, stderr))
    source._caps = Capabilities(resume_tokens=True)
    pair = Pair(Task("pool1/test", "dst", "repl/test", False), source, ZfsNode(_ResumeHost(0, "", "dst")))
    if expected is None:
        with pytest.raises(ResumeCheckFailed) as info:
            pair._resume_token_valid("1-abc-def")
        assert str(info.value) == (
            "cannot tell whether the interrupted transfer into repl/test on dst can be resumed (zfs send -n -v -t: "
            "cannot resume send: unable to access 'pool1/test@b'); its partial receive was kept: the next run "
            "checks again ('zfs receive -A repl/test' on dst discards it)")
    else:
        assert pair._resume_token_valid("1-abc-def") is expected
    assert source.host.calls == [["zfs", "send", "-n", "-v", "-t", "1-abc-def"]]


@pytest.mark.parametrize(("value_and_source", "readonly"), [
    (("on", "local"), True), (("off", "default"), False), (("on", "received"), True),
    # a mounted filesystem's own mount option hides the setting (zfs-fuse): not known
    (("on", "temporary"), None), (("off", "temporary"), None),
])
def test_readonly_is_not_known_where_a_mount_option_hides_it(value_and_source, readonly) -> None:
    assert readonly_of(value_and_source) is readonly

"""zfs.py: names and command builders, capability probes and recorded output, with no ZFS
at all.  Everything else runs on a real ZFS in tests/fuse_lab/test_zfs.py; OpenZFS behaviour
runs for real in the OpenZFS lab."""

from __future__ import annotations

import itertools
import shlex
import subprocess
from dataclasses import replace

import pytest

from ovios_shell_retadm.hosts import Host, Result
from ovios_shell_retadm.replication.executor import Pair
from ovios_shell_retadm.replication.model import Task
from ovios_shell_retadm.zfs import (
    MAX_NAME_LEN,
    PROBE_SCRIPT,
    REPROBE_SCRIPT,
    RESUME_STALE,
    RESUME_UNKNOWN,
    RESUME_VALID,
    Capabilities,
    InvalidName,
    ResumeCheckFailed,
    Unsupported,
    ZfsError,
    ZfsNode,
    classify_resume_check,
    mount_due,
    parse_probe,
    parse_reprobe,
    parse_send_size,
    parse_settled,
    pool_of,
    readonly_of,
    receive_argv,
    resume_send_argv,
    send_argv,
    send_size_estimate_argv,
    set_locally,
    settle_argv,
    split_snapshot,
    validate_dataset_name,
    validate_property_name,
    validate_snapshot_name,
    validate_tag,
)

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


# a `zfs` whose getopt knows the options in $KNOWN (as OpenZFS's does: with no operand, every
# known option ends in "missing snapshot argument", the first unknown one in "invalid option");
# it logs each run, so the test sees how many the probe made
_GETOPT_ZFS = r"""#!/bin/sh
echo "$*" >> "$ZFS_RUNS"
case $1 in version) echo zfs-2.3.2-1; exit 0;; get) printf '\treadonly  YES  YES  on | off\n'; exit 2;; esac
shift
while [ $# -gt 0 ]; do
    case $1 in
        -o|-x) shift;;
        -*) flags=${1#-}
            while [ -n "$flags" ]; do
                f=${flags%"${flags#?}"}; flags=${flags#?}
                case " $KNOWN " in *" $f "*) ;; *) echo "invalid option '$f'"; exit 2;; esac
            done;;
    esac
    shift
done
echo "missing snapshot argument"; exit 2
"""


@pytest.mark.parametrize("known, runs, raw", [
    ("H u s o x n v P L c e w", 6, True),  # one run answers each subcommand's options
    ("H u s o x n v P L c e", 11, False),  # -w refused: each send option asked on its own
])
def test_the_probe_asks_a_subcommands_options_together_and_one_by_one_where_one_is_refused(
        tmp_path, known: str, runs: int, raw: bool) -> None:
    fake = tmp_path / "zfs"
    fake.write_text(_GETOPT_ZFS)
    fake.chmod(0o755)
    log = tmp_path / "runs"
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "KNOWN": known, "ZFS_RUNS": str(log)}
    out = subprocess.run(["sh", "-c", PROBE_SCRIPT], env=env, capture_output=True, text=True, check=False).stdout
    caps = parse_probe(out)
    assert (caps.receive_u, caps.resume_tokens, caps.receive_o, caps.receive_x) == (True, False, True, True)
    assert caps.send_estimate and caps.send_large_blocks and caps.send_compressed and caps.send_embedded
    assert caps.send_raw is raw
    assert caps.bookmarks and caps.holds_list and caps.version == "zfs-2.3.2-1"
    assert len(log.read_text().splitlines()) == runs


# a `zfs` that answers `zfs get` with the replica's mount facts in $FACTS (as OpenZFS prints
# them: one tab-separated line each) and a snapshot's guid, logs a `zfs mount`, and says the
# replica is mounted once it was
_MOUNT_FACTS_ZFS = r"""#!/bin/sh
case $1 in
get) if [ -s "$MOUNTS" ]; then printf 'repl/x\tmounted\tyes\t-\n'
     else printf '%b' "$FACTS"; printf 'repl/x@s1\tguid\t42\t-\n'; fi;;
mount) echo "$*" >> "$MOUNTS";;
*) exit 2;;
esac
"""


@pytest.fixture
def mount_facts_zfs(tmp_path):
    """The directory of a fake :data:`_MOUNT_FACTS_ZFS` named ``zfs``."""
    fake = tmp_path / "zfs"
    fake.write_text(_MOUNT_FACTS_ZFS)
    fake.chmod(0o755)
    return tmp_path


def test_the_mount_after_a_receive_follows_the_rule_a_run_mounts_by(mount_facts_zfs, tmp_path) -> None:
    """The partner decides in shell (on the receive's connection) what :func:`mount_due` decides
    in Python (settle_mount, when that look failed): the two must agree on every replica."""
    mounts = tmp_path / "mounts"
    cases = itertools.product(["on", "off", "noauto"], ["yes", "no"], ["/repl/x", "/srv/a b", "none", "legacy"],
                              ["default", "received", "local", "inherited from repl"])
    decided = []
    for canmount, mounted, mountpoint, where in cases:
        facts = {"mountpoint": (mountpoint, where), "canmount": (canmount, "default"), "mounted": (mounted, "-")}
        mounts.write_text("")
        lines = "".join(f"repl/x\t{prop}\t{value}\t{source}\n" for prop, (value, source) in facts.items())
        env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "FACTS": lines, "MOUNTS": str(mounts)}
        done = subprocess.run(settle_argv("repl/x", ["repl/x@s1"], mount=True), env=env, capture_output=True,
                              text=True, check=False)
        assert done.returncode == 0, done.stderr
        due = mount_due(facts)
        assert mounts.read_text().split() == (["mount", "repl/x"] if due else []), facts
        seen, guids = parse_settled(done.stdout, "repl/x")
        assert seen == ({**facts, "mounted": ("yes", "-")} if due else facts)
        assert guids == {"repl/x@s1": 42}
        decided.append(due)
    assert decided.count(True) == 6  # on, no, a path of its own: 2 paths x 3 sources not received


def test_a_replica_is_not_mounted_unless_asked(mount_facts_zfs, tmp_path) -> None:
    mounts = tmp_path / "mounts"
    lines = "repl/x\tmountpoint\t/repl/x\tdefault\nrepl/x\tcanmount\ton\tdefault\nrepl/x\tmounted\tno\t-\n"
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "FACTS": lines, "MOUNTS": str(mounts)}
    done = subprocess.run(settle_argv("repl/x", [], mount=False), env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0 and not mounts.exists()
    assert parse_settled(done.stdout, "repl/x")[0] == {
        "mountpoint": ("/repl/x", "default"), "canmount": ("on", "default"), "mounted": ("no", "-")}


def test_what_the_look_after_a_receive_read_is_kept_when_part_of_it_failed() -> None:
    # the new snapshot was destroyed before the look: zfs says so (stderr, in the same output)
    # and prints the rest
    out = ("cannot open 'repl/x@s2': dataset does not exist\n"
           "repl/x\tmountpoint\t/repl/x\tdefault\nrepl/x\tcanmount\ton\tdefault\nrepl/x\tmounted\tyes\t-\n"
           "repl/x\tguid\t7\t-\n")
    facts, guids = parse_settled(out, "repl/x")
    assert facts is not None and facts["mounted"] == ("yes", "-") and guids == {}
    assert parse_settled("cannot open 'repl/x': dataset does not exist\n", "repl/x") == (None, {})


_FEATURES_ZPOOL = r"""#!/bin/sh
echo "zpool $*" >> "$ZFS_RUNS"
printf 'repl\tfeature@bookmarks\tenabled\nnew\tfeature@encryption\tenabled\n'
"""


@pytest.mark.parametrize("version_before, runs", [
    ("zfs-2.3.2-1", ["version", "zpool get"]),  # the same ZFS: only the pools are read again
    ("zfs-2.1.5-1", ["version", "version", "get", "bookmark", "holds", "zpool get", "receive", "send"]),  # upgraded
])
def test_a_probe_again_reads_only_the_pools_unless_the_zfs_changed(tmp_path, version_before, runs) -> None:
    for name, text in (("zfs", _GETOPT_ZFS), ("zpool", _FEATURES_ZPOOL)):
        (tmp_path / name).write_text(text)
        (tmp_path / name).chmod(0o755)
    log = tmp_path / "runs"
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "KNOWN": "H u s o x n v P L c e w", "ZFS_RUNS": str(log)}
    before = Capabilities(version=version_before, bookmarks=True, pool_features={"repl": frozenset()})
    out = subprocess.run(["sh", "-c", REPROBE_SCRIPT, "sh", before.version], env=env, capture_output=True, text=True,
                         check=False).stdout
    caps = parse_reprobe(out, before)
    assert [" ".join(line.split()[:2]) if line.startswith("zpool") else line.split()[0]
            for line in log.read_text().splitlines()] == runs
    assert caps.pool_features == {"repl": frozenset({"bookmarks"}), "new": frozenset({"encryption"})}
    if len(runs) == 2:
        assert caps == replace(before, pool_features=caps.pool_features)
    else:
        assert caps.version == "zfs-2.3.2-1" and caps.send_raw and caps.holds_list


@pytest.mark.parametrize("script", [PROBE_SCRIPT, REPROBE_SCRIPT])
def test_probe_script_is_constant_and_harmless(script: str) -> None:
    words = shlex.split(script.replace(";", " ; "))
    for dangerous in ("destroy", "create", "rollback", "set", "hold", "release", "snapshot"):
        assert dangerous not in words


# -- real ZFS (zfs-fuse in a private namespace) ---------------------------------------------------


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
    check = classify_resume_check(returncode, output)
    assert check.state == RESUME_UNKNOWN and check.detail and "\n" not in check.detail


def test_a_token_the_source_can_send_from_is_valid() -> None:
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

        self.calls.append(list(argv))
        return Result(self.answer[0], _TOKEN_CONTENTS, self.answer[1], tuple(argv))


@pytest.mark.parametrize("returncode, stderr, expected", [
    (0, "", True),
    (1, "cannot resume send: 'pool1/test@b' used in the initial send no longer exists", False),
    (1, "cannot resume send: unable to access 'pool1/test@b'", None),
])
def test_a_run_discards_a_partial_receive_only_when_zfs_says_its_snapshot_is_gone(returncode, stderr, expected):
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


@pytest.mark.parametrize(("source", "local"), [
    ("local", True), ("received", False), ("default", False), ("inherited from repl", False), ("temporary", False),
    ("-", False),
])
def test_only_a_value_set_on_the_dataset_itself_is_local(source, local) -> None:
    assert set_locally(source) is local

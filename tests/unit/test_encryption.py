"""Encrypted datasets without ZFS: raw sends (``send -w``) in argv, capabilities, the planner,
init's decision (preflight), task records and promote's key handling."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from cmd2.py_bridge import PyBridge

from ovios_shell_retadm import zfs
from ovios_shell_retadm.config.model import Configuration, Export, with_export
from ovios_shell_retadm.exit_status import CommandError
from ovios_shell_retadm.hosts import CommandFailed, Result
from ovios_shell_retadm.plain_init import InitWizard
from ovios_shell_retadm.replication import failover, preflight
from ovios_shell_retadm.replication.doctor import FAIL, OK, WARN
from ovios_shell_retadm.replication.doctor.checks import check_encryption
from ovios_shell_retadm.replication.executor import Pair
from ovios_shell_retadm.replication.failover import FailoverError, Key, Replica
from ovios_shell_retadm.replication.model import (
    Observed,
    ObservedBookmark,
    ObservedSnapshot,
    PairCapabilities,
    Plan,
    SendFull,
    SendIncremental,
    Task,
)
from ovios_shell_retadm.replication.planner import plan_full, plan_incremental
from ovios_shell_retadm.replication.task_store import DECRYPTED, IDLE, PLAIN, RAW, TaskRecord, TaskStore
from ovios_shell_retadm.restore import planner as restore
from ovios_shell_retadm.restore.nfs import NfsState
from ovios_shell_retadm.shell import OviosShell
from ovios_shell_retadm.zfs import Candidate, Capabilities, Encryption, Landing, Unsupported, parse_probe, send_argv

OPENZFS = Capabilities(version="zfs-2.3.2-1", bookmarks=True, resume_tokens=True, receive_u=True, receive_o=True,
                       send_estimate=True, send_raw=True, encryption=True,
                       pool_features={"repl": frozenset({"bookmarks", "extensible_dataset", "encryption"}),
                                      "plain": frozenset({"bookmarks", "extensible_dataset"}),
                                      "data": frozenset({"bookmarks", "encryption"})})
ZFS_FUSE = Capabilities(receive_u=True)


# -- argv and capabilities --------------------------------------------------------------------


def test_raw_send_argv() -> None:
    assert send_argv("data/x", "s1", caps=OPENZFS, raw=True) == ["zfs", "send", "-w", "data/x@s1"]
    assert send_argv("data/x", "s2", "s1", properties=True, caps=OPENZFS, raw=True) == \
        ["zfs", "send", "-p", "-w", "-I", "data/x@s1", "data/x@s2"]
    assert send_argv("data/x", "s2", "b1", base_is_bookmark=True, intermediates=False, caps=OPENZFS, raw=True) == \
        ["zfs", "send", "-w", "-i", "data/x#b1", "data/x@s2"]
    # not raw: nothing changes
    assert send_argv("data/x", "s1", caps=OPENZFS) == ["zfs", "send", "data/x@s1"]
    with pytest.raises(Unsupported, match="-w"):
        send_argv("data/x", "s1", caps=ZFS_FUSE, raw=True)


PROBE = """\
@@version
zfs-2.3.2-1
@@properties
missing property argument
\tPROPERTY       EDIT  INHERIT   VALUES

\tencryption       NO      YES   on | off | aes-128-ccm | aes-192-ccm | aes-256-ccm | aes-128-gcm
\treadonly        YES      YES   on | off
@@send_raw
missing snapshot argument
@@features
repl\tfeature@encryption\tenabled
plain\tfeature@encryption\tdisabled
data\tfeature@encryption\tactive
"""


def test_the_probe_finds_raw_sends_and_the_pools_that_can_hold_encrypted_datasets() -> None:
    caps = parse_probe(PROBE)
    assert caps.send_raw and caps.encryption
    assert caps.encryption_on("repl") and caps.encryption_on("data")
    assert not caps.encryption_on("plain") and not caps.encryption_on("nopool")
    assert "send -w" in zfs.PROBE_SCRIPT and "feature@encryption" in zfs.PROBE_SCRIPT


def test_zfs_fuse_has_no_raw_send_and_no_encryption() -> None:
    fuse = "@@properties\n\treadonly        YES      YES   on | off\n@@send_raw\ninvalid option 'w'\nusage:\n"
    caps = parse_probe(fuse)
    assert not caps.send_raw and not caps.encryption and not caps.encryption_on("tank")


def test_a_capability_cache_of_an_older_version_is_probed_again(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OVIOS_RUN_DIR", str(tmp_path))
    cache = zfs._CapabilityCache("dst")
    cache.store(OPENZFS)
    assert cache.load() == OPENZFS
    old = json.loads(OPENZFS.to_json())
    del old["send_raw"], old["encryption"]  # written before raw sends were probed
    cache.path.write_text(json.dumps(old))
    assert cache.load() is None  # not "this node cannot send raw"


def test_encryption_state() -> None:
    assert not Encryption("off", "", "").encrypted and Encryption("off", "", "").key_loaded
    locked = Encryption("aes-256-gcm", "repl/x", "unavailable")
    assert locked.encrypted and not locked.key_loaded
    assert Encryption("aes-256-gcm", "data/x", "available").key_loaded


# -- the planner -------------------------------------------------------------------------------


RAW_TASK = Task("data/secret", "dst", "repl/secret", properties=False, raw=True)


def snaps(*names: str) -> tuple[ObservedSnapshot, ...]:
    return tuple(ObservedSnapshot(name, guid, guid) for guid, name in enumerate(names, start=1))


def sends(plan) -> list:
    assert isinstance(plan, Plan), plan
    return [step for step in plan.steps if isinstance(step, SendFull | SendIncremental)]


def test_a_raw_task_sends_raw_in_full_and_incrementally() -> None:
    full = plan_full(Observed(snaps("daily"), None), RAW_TASK, "retadm_1")
    assert sends(full) == [SendFull("daily", False, True), SendIncremental("daily", False, "retadm_1", False, True)]
    assert "raw" in full.describe()[1]
    obs = Observed(snaps("retadm_1", "daily"), snaps("retadm_1"), written=True, destination_readonly=True)
    assert all(step.raw for step in sends(plan_incremental(obs, RAW_TASK, "retadm_2")))
    # from a bookmark: -i to the first snapshot after it, then -I, raw both
    obs = Observed(snaps("x", "daily"), (ObservedSnapshot("retadm_1", 9, 1),), written=True,
                   destination_readonly=True, source_bookmarks=(ObservedBookmark("retadm_1", 9, 1),),
                   capabilities=PairCapabilities(bookmarks=True))
    steps = sends(plan_incremental(obs, RAW_TASK, "retadm_2"))
    assert len(steps) == 2 and all(step.raw for step in steps)


def test_a_task_that_is_not_raw_sends_as_before() -> None:
    plain = replace(RAW_TASK, raw=False)
    assert not any(step.raw for step in sends(plan_full(Observed(snaps("daily"), None), plain, "retadm_1")))
    assert "raw" not in " ".join(plan_full(Observed((), None), plain, "retadm_1").describe())


def test_a_cascade_of_a_raw_replica_sends_raw() -> None:
    cascade = replace(RAW_TASK, cascade=True)
    assert all(step.raw for step in sends(plan_full(Observed(snaps("retadm_a_1", "retadm_a_2"), None), cascade, None)))


class Node:
    """A ZfsNode stand-in: capabilities and one dataset's encryption."""

    def __init__(self, caps: Capabilities, encryption: Encryption | None = None, name: str = "dst"):
        self.caps = caps
        self._encryption = encryption
        self.host = type("H", (), {"name": name, "argv_for": staticmethod(list)})()
        self.keys: list[tuple] = []
        self.changes: list[tuple] = []

    def capabilities(self, refresh: bool = False) -> Capabilities:
        return self.caps

    def encryption(self, dataset: str) -> Encryption | None:
        return self._encryption


def test_the_executor_sends_a_raw_step_with_w() -> None:
    src = Node(OPENZFS, name="src")
    pair = Pair(RAW_TASK, src, Node(OPENZFS))  # type: ignore[arg-type]
    assert pair.send_argv(SendFull("s1", False, True)) == ["zfs", "send", "-w", "data/secret@s1"]
    assert pair.send_argv(SendIncremental("s1", False, "s2", True, True)) == \
        ["zfs", "send", "-p", "-w", "-I", "data/secret@s1", "data/secret@s2"]


# -- init's decision -----------------------------------------------------------------------------


ENCRYPTED = Encryption("aes-256-gcm", "data/secret", "available")


def landing(caps: Capabilities, pool: str = "repl") -> Landing:
    """The destination as init's one look there sees it (a free name, an unencrypted parent)."""
    return Landing(f"{pool}/secret", "ONLINE", False, True, Encryption("off", "", ""), caps)


def candidate(caps: Capabilities, encryption: Encryption | None) -> Candidate:
    """The source as init's one look here sees it."""
    return Candidate("data/secret", "filesystem", (), {}, encryption, caps)


def mode(source: Candidate, dest: Capabilities, pool: str = "repl", decrypted: bool = False) -> str:
    return preflight.send_mode(source, landing(dest, pool), "dst", decrypted=decrypted)


def test_an_encrypted_dataset_goes_raw() -> None:
    assert mode(candidate(OPENZFS, ENCRYPTED), OPENZFS) == RAW


def test_an_unencrypted_dataset_is_plain_whatever_the_pools() -> None:
    assert mode(candidate(OPENZFS, Encryption("off", "", "")), OPENZFS, "plain") == PLAIN
    assert mode(candidate(ZFS_FUSE, None), ZFS_FUSE) == PLAIN  # zfs-fuse: no encryption at all


def test_a_destination_pool_without_encryption_is_refused_with_the_reason() -> None:
    with pytest.raises(preflight.RawImpossible) as info:
        mode(candidate(OPENZFS, ENCRYPTED), OPENZFS, "plain")
    message = str(info.value)
    assert "feature@encryption" in message and "plain" in message and "--decrypted" in message
    assert "\n" not in message
    assert mode(candidate(OPENZFS, ENCRYPTED), OPENZFS, "plain", decrypted=True) == DECRYPTED


def test_a_source_that_cannot_send_raw_is_refused() -> None:
    with pytest.raises(preflight.RawImpossible, match="send -w"):
        mode(candidate(replace(OPENZFS, send_raw=False), ENCRYPTED), OPENZFS)
    with pytest.raises(preflight.RawImpossible, match="feature@encryption"):
        mode(candidate(OPENZFS, ENCRYPTED), ZFS_FUSE)  # a destination without encryption at all


# -- task records ----------------------------------------------------------------------------------


def test_records_carry_the_mode_and_old_ones_keep_theirs() -> None:
    record = TaskRecord("data/secret", "dst", "repl/secret", False, send_mode=RAW)
    assert record.task().raw
    assert TaskRecord.from_dict(record.to_dict()).send_mode == RAW
    old = record.to_dict()
    del old["send_mode"]  # written before send modes existed
    again = TaskRecord.from_dict(old)
    assert again.send_mode is None and not again.task().raw  # never raw onto a non-raw replica
    assert not TaskRecord("d/x", "dst", "r/x", False, send_mode=DECRYPTED).task().raw


# -- promote ----------------------------------------------------------------------------------------


class PromoteNode(Node):
    def __init__(self, fail_key: bool = False):
        super().__init__(OPENZFS, name="localhost")
        self.fail_key = fail_key
        self.host = type("H", (), {"name": "localhost",
                                   "run": lambda _self, argv, **kw: Result(0, "", "", tuple(argv))})()

    def load_key(self, dataset, *, key_file=None, secret=None):
        if self.fail_key:
            raise CommandFailed(["zfs", "load-key", "-L", "prompt", dataset], 255,
                                f"Key load error: Incorrect key provided for '{dataset}'.", "localhost")
        self.changes.append(("load-key", dataset, key_file, secret))

    def set_property(self, dataset, prop, value):
        self.changes.append(("set", dataset, prop))

    def mount(self, dataset):
        self.changes.append(("mount", dataset))

    def value_and_source(self, dataset, prop):
        return ("off", "local")


class Partner:
    name = "src"

    def run(self, argv, **_kwargs):
        return Result(0, "", "", tuple(argv))


LOCKED = Replica("repl/secret", "filesystem", "src:data/secret", None, True, False, needs_key="repl/secret")


def test_promote_of_a_locked_replica_without_its_key_says_so_and_changes_nothing() -> None:
    node = PromoteNode()
    with pytest.raises(FailoverError) as info:
        failover.promote(node, LOCKED, Partner())  # type: ignore[arg-type]
    assert "\n" not in str(info.value) and "--key-file" in str(info.value) and "encrypted" in str(info.value)
    assert node.changes == []
    assert failover.promotion_steps(LOCKED)[0] == "load the encryption key of repl/secret (zfs load-key)"


def test_promote_loads_the_key_first_then_mounts() -> None:
    node = PromoteNode()
    failover.promote(node, LOCKED, Partner(), key=Key(passphrase="s3cret"))  # type: ignore[arg-type]
    assert node.changes[0] == ("load-key", "repl/secret", None, "s3cret")
    assert ("mount", "repl/secret") in node.changes
    assert "s3cret" not in repr(Key(passphrase="s3cret"))


def test_a_wrong_key_is_one_line_and_nothing_changes() -> None:
    node = PromoteNode(fail_key=True)
    with pytest.raises(FailoverError) as info:
        failover.promote(node, LOCKED, Partner(), key=Key(file="/root/k"))  # type: ignore[arg-type]
    assert "Incorrect key" in str(info.value) and "\n" not in str(info.value)
    assert node.changes == []


def test_load_key_never_puts_the_secret_on_a_command_line() -> None:
    calls: list[tuple] = []

    class Host:
        name = "localhost"

        def run(self, argv, *, input=None, timeout=None, check=True):
            calls.append((list(argv), input))
            return Result(0, "", "", tuple(argv))

    node = zfs.ZfsNode(Host())  # type: ignore[arg-type]
    node.load_key("repl/secret", secret="pass phrase")
    node.load_key("repl/secret", key_file="/root/secret.key")
    assert calls == [(["zfs", "load-key", "-L", "prompt", "repl/secret"], "pass phrase\n"),
                     (["zfs", "load-key", "-L", "file:///root/secret.key", "repl/secret"], None)]
    with pytest.raises(zfs.InvalidName):
        node.load_key("repl/secret", key_file="relative/key")


# -- restore and doctor name a replica whose key is not loaded ----------------------------------------


def test_restore_names_an_encrypted_replica_whose_key_is_not_loaded() -> None:
    def notes(key_loaded: bool) -> list[str]:
        info = restore.DatasetInfo("repl/secret", "filesystem", mountpoint="/repl/secret", mounted=key_loaded,
                                   readonly=True, origin="192.168.0.149:repl/secret", key_loaded=key_loaded)
        seen = restore.Observed(datasets={info.name: info}, nfs=NfsState())
        partner = restore.Partner("src", frozenset({"192.168.0.149"}))
        want, _ = restore.desired(with_export(Configuration(), Export("repl/secret", "*")), seen.datasets, partner)
        return restore.plan(("exports",), want, seen).notes

    locked = [n for n in notes(False) if "encrypted" in n]
    assert locked == ["repl/secret is encrypted and its key is not loaded here: it cannot be mounted or served "
                      "until it is (retadm promote repl/secret --key-file PATH loads it)"]
    assert not any("encrypted" in n for n in notes(True))


def test_doctor_names_the_mode_and_the_key() -> None:
    src = Encryption("aes-256-gcm", "data/secret", "available")
    locked = Encryption("aes-256-gcm", "repl/secret", "unavailable")
    plain = Encryption("off", "", "")

    def record(mode):
        return TaskRecord("data/secret", "dst", "repl/secret", False, send_mode=mode)

    check = check_encryption("encryption", record(RAW), src, locked)
    assert check.level == OK and "key is not loaded on dst" in check.message
    assert check_encryption("encryption", record(RAW), src, plain).level == FAIL
    check = check_encryption("encryption", record(DECRYPTED), src, plain)
    assert check.level == WARN and "--decrypted" in check.message and "not encrypted" in check.message
    check = check_encryption("encryption", record(None), src, plain)  # a task from before raw sends
    assert check.level == WARN and "set up before" in check.message and check.hint and "retadm reset" in check.hint
    assert check_encryption("encryption", record(PLAIN), plain, plain).level == OK
    assert check_encryption("encryption", record(None), None, None).level == OK  # zfs-fuse


# -- the commands (the shell, its parsing, lines and statuses are real; ZFS is not asked) ---------------


@pytest.fixture
def shell(tmp_path, monkeypatch):


    monkeypatch.setenv("OVIOS_ROOT", str(tmp_path))
    return PyBridge(OviosShell())


def test_status_says_which_replicas_are_raw_and_which_decrypted(shell) -> None:
    store = TaskStore()
    for dataset, mode_ in (("data/a", RAW), ("data/b", DECRYPTED), ("data/c", PLAIN), ("data/d", None)):
        assert store.create(TaskRecord(dataset, "dst", f"repl/{dataset[5:]}", False, state=IDLE, initialised=True,
                                       send_mode=mode_))
    result = shell("retadm status")
    lines = [line for line in result.stdout.splitlines() if "encrypted" in line]
    assert lines == [
        "data/a: encrypted, replicated raw: the replica stays encrypted, its key is only here ('retadm promote' "
        "on the partner needs it)",
        "data/b: encrypted, but replicated DECRYPTED: the replica on dst is not encrypted",
    ]
    rows = json.loads(shell("retadm status --json").stdout)
    assert [row["send_mode"] for row in rows] == [RAW, DECRYPTED, PLAIN, None]


def test_promote_without_a_terminal_or_with_a_missing_key_file_is_one_line(shell, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(failover, "read_replica", lambda node, dataset: LOCKED)
    result = shell("retadm promote repl/secret")
    assert result.stderr.splitlines() == [f"retadm promote: {failover.key_missing(LOCKED)}"]
    assert result.data == 1
    result = shell(f"retadm promote repl/secret --key-file {tmp_path}/missing.key")
    assert result.stderr.splitlines() == [f"retadm promote: --key-file {tmp_path}/missing.key: no readable file there"]
    assert result.data == 2
    dry = shell("retadm promote repl/secret --dry-run")
    assert dry.data == 0 and "load the encryption key of repl/secret (zfs load-key)" in dry.stdout


@pytest.mark.parametrize(("answer", "expected"), [("yes", DECRYPTED), ("no", None), ("", None)])
def test_the_wizard_asks_before_a_decrypted_replica(answer, expected) -> None:
    prompts: list[str] = []

    class Terminal:
        def read_input(self, prompt: str, **_completion) -> str:
            prompts.append(prompt)
            return answer

        def select(self, opts, prompt):
            raise AssertionError("nothing to pick here")

    wizard = InitWizard(lambda _text: None, lambda _text: None, Terminal())
    source = candidate(OPENZFS, ENCRYPTED)
    if expected is None:
        with pytest.raises(CommandError, match="not replicated decrypted without a yes"):
            wizard.send_mode(source, landing(OPENZFS, "plain"), "dst", False)
    else:
        assert wizard.send_mode(source, landing(OPENZFS, "plain"), "dst", False) == expected
    assert prompts == ["Replicate it decrypted (the replica is not encrypted)? (yes/no) [no]: "]
    # raw possible: nothing asked
    prompts.clear()
    assert wizard.send_mode(source, landing(OPENZFS), "dst", False) == RAW
    assert prompts == []

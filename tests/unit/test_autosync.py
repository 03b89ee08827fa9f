"""autosync without a lab: who gets a push, the CONFIG column, the receiver, the hook's cost."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ovios_shell_retadm import exit_status
from ovios_shell_retadm.config import autosync, files, receive
from ovios_shell_retadm.config.autosync import PushRecord, Version, status_text, to_push
from ovios_shell_retadm.config.model import Configuration, Share, digest, dump, with_lun, with_share
from ovios_shell_retadm.plain_commands import replication_partners
from ovios_shell_retadm.replication.task_store import IDLE, TaskRecord, TaskStore
from ovios_shell_retadm.store import Store

IQN = "iqn.2026-11.com.ovios:esx"
V5 = Version(5, "aaaa")
V7 = Version(7, "bbbb")


@pytest.fixture(autouse=True)
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("OVIOS_ROOT", str(tmp_path))
    autosync._attempted.clear()
    return tmp_path


# -- who gets a push ---------------------------------------------------------------------------

def test_nothing_is_pushed_when_autosync_is_off_or_there_is_no_configuration():
    assert to_push(False, V7, ["dst"], {}) == []
    assert to_push(True, Version(0, "x"), ["dst"], {}) == []


def test_partners_never_pushed_to_behind_or_pending_get_a_push_and_current_ones_do_not():
    records = {
        "current": PushRecord("current", pushed=V7),
        "behind": PushRecord("behind", pushed=V5),
        "pending": PushRecord("pending", pushed=V5, attempted=V7, error="pending: unreachable"),
        "same-generation-other-content": PushRecord("same-generation-other-content", pushed=Version(7, "cccc")),
    }
    partners = ["current", "behind", "pending", "new", "same-generation-other-content"]
    assert to_push(True, V7, partners, records) == ["behind", "pending", "new", "same-generation-other-content"]


def test_the_command_that_already_tried_is_spared_a_second_try_of_the_same_version_only():
    records = {"dst": PushRecord("dst", pushed=V5, attempted=V7, error="down")}
    assert to_push(True, V7, ["dst"], records, skip={"dst": V7}) == []
    assert to_push(True, Version(8, "dddd"), ["dst"], records, skip={"dst": V7}) == ["dst"]


def test_partners_are_the_tasks_destinations_once_each():
    assert autosync.partners_of(["dst", "b", "dst", ""]) == ["b", "dst"]


# -- the CONFIG column ------------------------------------------------------------------------

@pytest.mark.parametrize("enabled, local, record, text", [
    (False, V7, PushRecord("dst", pushed=V5), "-"),
    (True, V7, PushRecord("dst", pushed=V7), "current"),
    (True, V7, PushRecord("dst", pushed=V5), "behind (pushed gen 5, have 7)"),
    (True, V7, PushRecord("dst", pushed=V5, attempted=V7, error="dst: unreachable: No route to host"),
     "pending: dst: unreachable: No route to host"),
    (True, V7, None, "pending: not pushed yet"),
    (True, Version(0, "e"), None, "current"),
])
def test_status_text(enabled, local, record, text):
    assert status_text(enabled, local, record) == text


def test_status_text_says_why_when_the_local_configuration_cannot_be_read():
    assert status_text(True, None, None, "config.json: not JSON") == "pending: config.json: not JSON"


# -- the receiver -------------------------------------------------------------------------------

def sample(node: str = "src", generation: int = 3) -> Configuration:
    config = with_share(with_lun(Configuration(), IQN, 0, "esx/lun01"), Share("smbvol", "data/smbvol"))
    return Configuration(node=node, generation=generation, updated="2026-11-26T09:00:00Z",
                         targets=config.targets, shares=config.shares)


#: the push comes from src, a partner this node knows (see test_receive.py for who is believed)
SRC = receive.Peer("192.168.0.149", frozenset({"src"}), lambda name: frozenset({"192.168.0.149"}))


def test_receiver_check_accepts_a_configuration_whose_digest_matches():
    config = sample()
    assert receive.check(dump(config), digest(config), "dst", SRC) == config


@pytest.mark.parametrize("text, expected_digest, message", [
    ("", None, "empty input"),
    ('{"format": 1, "node": "src", "generation": 3', None, "not JSON"),
    (dump(sample(node="")), None, "names no node"),
    (dump(sample(node="..")), None, "is not a node name"),
    (dump(sample(node="dst")), None, "this node's own (dst)"),
    (dump(sample(generation=0)), None, "generation 0 is not a pushed generation"),
    (dump(sample()), "0000000000000000", "was damaged on the way"),
    (dump(sample()).replace('"esx/lun01"', '"esx"'), None, "is not a dataset name"),
])
def test_receiver_check_refuses_malformed_input_naming_why(text, expected_digest, message):
    with pytest.raises(receive.Refused, match=None) as caught:
        receive.check(text, expected_digest, "dst", SRC)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def run_receiver(root, text: str, expected_digest: str | None):
    """The receiver as ssh runs it, pushed from 127.0.0.1: "localhost", a task's destination here."""
    argv = [sys.executable, "-m", "ovios_shell_retadm.autosync_receive"]
    if expected_digest:
        argv += ["--digest", expected_digest]
    if not TaskStore().of("data/pushed"):
        TaskStore().create(TaskRecord("data/pushed", "localhost", "data/pushed", True, state=IDLE))
    return subprocess.run(argv, check=False, input=text, capture_output=True, text=True, timeout=30,
                          env=dict(os.environ, OVIOS_ROOT=str(root), SSH_CONNECTION="127.0.0.1 40000 127.0.0.1 22"))


def test_the_receiver_process_stores_keeps_refuses_records_and_logs(root):
    first = sample(node="localhost", generation=3)
    result = run_receiver(root, dump(first), digest(first))
    assert (result.returncode, result.stdout, result.stderr) == (0, f"stored generation=3 digest={digest(first)}\n", "")
    assert files.load(files.synced_path("localhost")) == first

    # a late, older generation: the copy stays, and the answer says what is kept
    older = sample(node="localhost", generation=2)
    result = run_receiver(root, dump(older), digest(older))
    assert (result.returncode, result.stdout) == (0, f"kept generation=3 digest={digest(first)}\n")

    # malformed: one line, EX_DATAERR, and the old copy untouched
    before = files.synced_path("localhost").read_bytes()
    for text in ('{"format": 1, "node": "localhost", "generation": 9, "users": {}}',
                 dump(sample(node="localhost", generation=9))[:-40]):
        result = run_receiver(root, text, None)
        assert result.returncode == exit_status.DATA_REFUSED and result.stdout == ""
        assert result.stderr.startswith("autosync receive: refused: ") and result.stderr.count("\n") == 1
    assert files.synced_path("localhost").read_bytes() == before

    record = Store().get_sync("localhost", receive.RECEIVE)
    assert (record["generation"], record["digest"], record["stored"]) == (3, digest(first), False)
    log = (root / "var/log/ovios/cluster-sync.log").read_text().splitlines()
    assert [line.split()[1:4] for line in log] == [["localhost", "receive", "end"], ["localhost", "receive", "end"],
                                                  ["-", "receive", "refused"], ["-", "receive", "refused"]]
    assert "result=stored generation=3" in log[0] and "result=kept generation=3 digest=" in log[1]


# -- the hook, and where the records live --------------------------------------------------------

def _task(destination: str) -> None:
    TaskStore().create(TaskRecord("data/smbvol", destination, "data/smbvol", True, state=IDLE))


def test_the_hook_does_nothing_when_off_and_spawns_nothing_when_current(root):
    Store().set_option("autosync.enable", "off")
    _task("dst.invalid")
    files.update(lambda c: with_lun(c, IQN, 0, "esx/lun01"), node="src")
    assert autosync.after_command(replication_partners) == []  # off
    Store().set_option("autosync.enable", "on")
    local = autosync.version_of(files.load())
    Store().update_sync("dst.invalid", autosync.PUSH, lambda old: PushRecord("dst.invalid", pushed=local).to_dict())
    assert autosync.after_command(replication_partners) == [] and autosync._children == []
    assert not (root / "var/log/ovios/cluster-sync.log").exists()  # no attempt, nothing to log


def test_a_change_is_pushed_in_the_background_and_a_failure_stays_pending(root):
    Store().set_option("autosync.enable", "on")
    _task("dst.invalid")  # cannot resolve: the push fails at once
    files.update(lambda c: with_lun(c, IQN, 0, "esx/lun01"), node="src")
    assert autosync.after_command(replication_partners) == ["dst.invalid"]
    child = autosync._children[-1]
    assert child.wait(timeout=30) == 1
    record = autosync.push_records()["dst.invalid"]
    assert record.pushed is None and "Could not resolve hostname" in record.error
    text = autosync.partner_statuses(["dst.invalid"])["dst.invalid"].text
    assert text.startswith("pending: dst.invalid: unreachable: ")
    assert autosync.after_command(replication_partners) == ["dst.invalid"]  # the next trigger tries again
    autosync._children[-1].wait(timeout=30)


def test_push_records_do_not_show_among_the_options(root):
    Store().update_sync("dst", autosync.PUSH, lambda old: PushRecord("dst", pushed=V7).to_dict())
    result = subprocess.run([sys.executable, "-m", "ovios_shell_retadm.shell", "options"], check=False,
                            capture_output=True, text=True, timeout=60, env=dict(os.environ, OVIOS_ROOT=str(root)))
    assert result.returncode == 0
    assert [line.split()[0] for line in result.stdout.splitlines()[2:]] == \
        ["autosync.enable", "cron.enable", "retadm.parallel", "retadm.parallel.partner", "retadm.stall.timeout",
        "ssh.allow.root"]
    assert Store().all_options() == {} and autosync.push_records()["dst"].pushed == V7


def test_status_json_and_table_carry_the_config_column(root):
    Store().set_option("autosync.enable", "on")
    _task("dst.invalid")
    local = autosync.version_of(files.update(lambda c: with_lun(c, IQN, 0, "esx/lun01"), node="src"))
    Store().update_sync("dst.invalid", autosync.PUSH,
                        lambda old: PushRecord("dst.invalid", pushed=Version(local.generation, local.digest)).to_dict())
    env = dict(os.environ, OVIOS_ROOT=str(root))
    shell = [sys.executable, "-m", "ovios_shell_retadm.shell", "retadm", "status"]
    rows = json.loads(subprocess.run([*shell, "--json"], check=False, capture_output=True, text=True, env=env).stdout)
    assert rows[0]["config"] == "current" and rows[0]["config_sync"]["pushed_generation"] == 1
    files.update(lambda c: with_lun(c, IQN, 1, "esx/lun02"))
    table = subprocess.run(shell, check=False, capture_output=True, text=True, env=env).stdout.splitlines()
    assert table[0].split()[-1] == "CONFIG" and table[2].endswith("behind (pushed gen 1, have 2)")
    Store().set_option("autosync.enable", "off")
    table = subprocess.run(shell, check=False, capture_output=True, text=True, env=env).stdout.splitlines()
    assert table[2].split()[-1] == "-"

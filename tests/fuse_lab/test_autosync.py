"""autosync on the lab: configuration changed on src arrives on dst over real ssh, through the
receiver, atomically; a partner that is down does not hold the shell up.

Run with a lab of your own: ``OVIOS_LAB_NAME=sync pytest tests/fuse_lab/test_autosync.py``.
"""

from __future__ import annotations

import json
import re
import time

import pexpect
import pytest

from ovios_lab.fuse_lab import node_env

from replication_helpers import init, node_python, sh, shell, status

IQN = "iqn.2026-11.com.ovios:esx"
SYNCED = "/etc/ovios/synced/src.json"
LOG = "/var/log/ovios/cluster-sync.log"
PROMPT = "ovios-shell ➤"


def change_config(lab, lun: int) -> int:
    """Map one more LUN on src with the library API (no shell command); the new generation."""
    code = ("from ovios_shell_retadm.config import files, model; "
            f"print(files.update(lambda c: model.with_lun(c, '{IQN}', {lun}, 'esx/lun{lun:02d}')).generation)")
    return int(node_python(lab, "src", code).stdout)


def wait_no_pusher(lab, timeout: float = 120) -> None:
    """Until no background autosync pusher runs on src (the bound only catches a hang)."""
    sh(lab, "src", f"for i in $(seq {int(timeout * 10)}); do"
                   " pgrep -f '[o]vios_shell_retadm.config.autosync' >/dev/null || exit 0; sleep 0.1; done;"
                   " echo 'an autosync pusher is still running' >&2; exit 1")


def synced_generation(lab) -> int | None:
    result = lab.exec("dst", ["cat", SYNCED])
    return json.loads(result.stdout)["generation"] if result.returncode == 0 else None


def wait_synced(lab, generation: int, timeout: float = 60) -> float:
    """Seconds until dst holds ``generation`` of src's configuration (fails after ``timeout``)."""
    started = time.monotonic()
    while synced_generation(lab) != generation:
        if time.monotonic() - started > timeout:
            raise AssertionError(f"generation {generation} did not reach dst in {timeout}s "
                                 f"(dst has {synced_generation(lab)}); src log: {log(lab, 'src')}")
        time.sleep(0.2)
    return time.monotonic() - started


def wait_config_column(lab, prefix: str, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = status(lab)["data/smbvol"]["config"]
        if text.startswith(prefix):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"CONFIG did not become {prefix!r} in {timeout}s: {text!r}")
        time.sleep(1)


def log(lab, node: str) -> list[str]:
    return lab.exec(node, ["sh", "-c", f"cat {LOG} 2>/dev/null || true"]).stdout.splitlines()


def same_config(lab) -> bool:
    src = json.loads(lab.exec("src", ["cat", "/etc/ovios/config.json"], check=True).stdout)
    dst = json.loads(lab.exec("dst", ["cat", SYNCED], check=True).stdout)
    return src == dst


@pytest.fixture
def synced_lab(fresh_lab):
    """data/smbvol replicated to dst (properties yes), autosync on, no configuration yet."""
    init(fresh_lab, "data/smbvol", "smbvol", properties="yes")
    assert shell(fresh_lab, "src", "options", "autosync.enable", "on").returncode == 0
    return fresh_lab


def test_a_change_arrives_on_the_partner_after_a_shell_command(synced_lab):
    lab = synced_lab
    assert status(lab)["data/smbvol"]["config"] == "current"  # nothing configured yet: nothing to have
    generation = change_config(lab, 0)

    started = time.monotonic()
    result = shell(lab, "src", "options")
    took = time.monotonic() - started
    assert result.returncode == 0 and re.search(r"^autosync\.enable +on ", result.stdout, re.M), result.stdout
    arrived = wait_synced(lab, generation)
    print(f"one-shot 'options' took {took:.2f}s; the change was on dst {arrived:.2f}s after it returned")
    assert same_config(lab)
    assert status(lab)["data/smbvol"]["config"] == "current"

    src_log, dst_log = log(lab, "src"), log(lab, "dst")
    assert len(src_log) == 1 and src_log[0].split()[1:4] == ["dst", "push", "end"]
    assert f"generation={generation}" in src_log[0] and "result=stored" in src_log[0]
    assert len(dst_log) == 1 and dst_log[0].split()[1:4] == ["src", "receive", "end"]
    assert "result=stored" in dst_log[0] and "sender=192.168.0.149" in dst_log[0]

    # nothing changed: the next command pushes nothing (no new line on either side).  A pusher
    # is started by the command's hook before the command returns, so once none runs on src,
    # whatever the command set off has finished and logged.
    assert shell(lab, "src", "retadm", "status").stdout.splitlines()[2].endswith("current")
    wait_no_pusher(lab)
    assert len(log(lab, "src")) == 1 and len(log(lab, "dst")) == 1
    # the partner's copy is only readable by root (NT hashes are secrets)
    assert sh(lab, "dst", f"stat -c %a {SYNCED}").stdout.strip() == "600"


def test_inc_pushes_changes_made_outside_the_shell_first(synced_lab):
    lab = synced_lab
    generation = change_config(lab, 1)  # e.g. config.json edited by another verb: no shell hook ran
    result = shell(lab, "src", "retadm", "inc", "data/smbvol")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", ""), result.stderr
    assert synced_generation(lab) == generation  # synchronous: there when inc returns
    assert same_config(lab)
    push = [line for line in log(lab, "src") if " dst push end " in line]
    assert len(push) == 1 and f"generation={generation}" in push[0]
    # the push came before the replication started
    inc_start = next(line for line in sh(lab, "src", "cat /var/log/ovios/repl.log").stdout.splitlines()
                     if " data/smbvol inc start " in line)
    assert push[0].split()[0] <= inc_start.split()[0]


def test_a_partner_that_is_down_does_not_block_the_shell_and_gets_the_change_later(synced_lab):
    lab = synced_lab
    first = change_config(lab, 0)
    started = time.monotonic()
    assert shell(lab, "src", "options").returncode == 0
    partner_up_took = time.monotonic() - started
    wait_synced(lab, first)
    wait_config_column(lab, "current", timeout=30)  # the answer is back and recorded on src too

    env = dict(node_env(), PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm", NO_COLOR="1")
    argv = lab.exec_argv("src", ["ovios-shell"])
    session = pexpect.spawn(argv[0], argv[1:], env=env, encoding="utf-8", timeout=120,  # a hang, not speed
                            dimensions=(40, 200))
    sh(lab, "dst", "ip link set eth0 down")
    try:
        session.expect_exact(PROMPT)
        second = change_config(lab, 2)
        timings = []
        for _ in range(3):  # each command is a trigger; none may wait for the partner
            started = time.monotonic()
            session.sendline("options autosync.enable")
            session.expect_exact("autosync.enable on")
            session.expect_exact(PROMPT)
            timings.append(time.monotonic() - started)

        started = time.monotonic()
        one_shot = shell(lab, "src", "options")
        one_shot_took = time.monotonic() - started
        print(f"partner down: interactive commands took {', '.join(f'{t:.2f}s' for t in timings)}; "
              f"one-shot 'options' {one_shot_took:.2f}s (partner up: {partner_up_took:.2f}s)")
        assert one_shot.returncode == 0
        # none of them waited for the partner: when all had returned, the push the first one
        # started had not failed yet (over the ssh master the first push left, a dead link is
        # noticed after ServerAlive's ~40 s).  How fast they are is a figure of
        # benchmarks/bench_commands.py, not a limit asserted here.
        assert not [line for line in log(lab, "src") if " dst push error " in line]

        pending = wait_config_column(lab, "pending: ")
        print(f"status while down: {pending}")
        assert "dst" in pending
        assert synced_generation(lab) == first
        errors = [line for line in log(lab, "src") if " dst push error " in line]
        assert errors and f"generation={second}" in errors[0]
    finally:
        sh(lab, "dst", "ip link set eth0 up")

    # the next trigger (a command in the same session) delivers it
    session.sendline("options autosync.enable")
    session.expect_exact(PROMPT)
    arrived = wait_synced(lab, second)
    print(f"after the link came back, the change was on dst {arrived:.2f}s after the next command")
    assert same_config(lab)
    assert wait_config_column(lab, "current", timeout=10) == "current"
    session.sendline("quit")
    session.expect(pexpect.EOF)


def test_a_malformed_push_is_refused_and_the_old_copy_stays(synced_lab):
    lab = synced_lab
    generation = change_config(lab, 0)
    assert shell(lab, "src", "options").returncode == 0
    wait_synced(lab, generation)
    before = lab.exec("dst", ["cat", SYNCED], check=True).stdout

    push = ("import sys; from ovios_shell_retadm.hosts import SshHost; "
            "from ovios_shell_retadm.config import receive; "
            "r = SshHost('dst').run(receive.remote_argv(sys.argv[1]), input=sys.stdin.read(), check=False); "
            "print(r.returncode); print(r.stderr, end='')")
    bad = [
        ("0" * 16, '{"format": 1, "node": "src", "generation": 99, "iscsi": {"targets": [{"iqn": "x"}]}}',
         "iscsi.targets[0].iqn: 'x' is not an iSCSI qualified name"),
        ("0" * 16, before.replace('"generation": 1', '"generation": 99'), "damaged on the way"),
        ("0" * 16, before[: len(before) // 2], "not JSON"),
    ]
    for digest, text, reason in bad:
        result = node_python(lab, "src", push, digest, input=text)
        code, *stderr = result.stdout.splitlines()
        assert code == "65" and len(stderr) == 1, result.stdout
        assert stderr[0].startswith("autosync receive: refused: ") and reason in stderr[0]
    assert lab.exec("dst", ["cat", SYNCED], check=True).stdout == before
    refused = [line for line in log(lab, "dst") if " receive refused " in line]
    assert len(refused) == 3 and all("sender=192.168.0.149" in line for line in refused)


def test_init_warns_when_autosync_is_on_and_names_or_properties_differ(synced_lab):
    lab = synced_lab
    args = ("retadm", "init", "esx/lun01", "--dest", "dst", "--remote-pool", "repl", "--dry-run")
    warned = shell(lab, "src", *args, "--properties", "no")
    assert warned.returncode == 0, warned.stderr
    lines = warned.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: autosync is on but the replica will be repl/lun01, "
                                                   "not esx/lun01 and properties are not replicated")
    assert shell(lab, "src", "options", "autosync.enable", "off").returncode == 0
    quiet = shell(lab, "src", *args, "--properties", "no")
    assert quiet.returncode == 0 and quiet.stderr == ""

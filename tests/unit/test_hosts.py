"""hosts.py: validation, ssh options and failure classification, local runs.  ssh against a
real sshd: tests/fuse_lab/test_hosts.py."""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import pytest

from ovios_shell_retadm import hosts
from ovios_shell_retadm.hosts import (
    AuthError,
    CommandFailed,
    CommandTimedOut,
    HostKeyChanged,
    HostKeyUnknown,
    HostUnreachable,
    InvalidHost,
    LocalHost,
    SshHost,
    classify_ssh_failure,
    host_names,
    validate_hostname,
)

from hostile_input import HOSTILE_ARGS

# -- validation -----------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["192.168.0.111", "10.0.0.1", "::1", "fe80::1", "2001:db8::42", "node2", "node-2.example.com", "node2.", "a" * 63],
)
def test_valid_hosts(name: str) -> None:
    assert validate_hostname(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "-oProxyCommand=touch /tmp/x",
        "-p",
        "root@node2",
        "node 2",
        "node2;reboot",
        "$(touch /tmp/x)",
        "`id`",
        "node2\n",
        "node_2",
        "-node2",
        "node2-",
        "a..b",
        "[::1]",
        "a" * 64,
        "x." * 127 + "x",
    ],
)
def test_invalid_hosts(name: str) -> None:
    with pytest.raises(InvalidHost):
        validate_hostname(name)


@pytest.mark.parametrize("kwargs", [{"user": "-oProxyCommand=x"}, {"user": "ro ot"}, {"port": 0}, {"port": 70000}])
def test_ssh_host_refuses_bad_user_or_port(kwargs: dict) -> None:
    with pytest.raises(InvalidHost):
        SshHost("node2", **kwargs)


def test_ssh_argv_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OVIOS_RUN_DIR", "/run/ovios-test")
    argv = SshHost("192.168.0.149").argv_for(["zfs", "list", "-H", "pool/a b"])
    assert argv[0] == "ssh"
    options = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-o"]
    for expected in (
        "BatchMode=yes",
        "StrictHostKeyChecking=yes",
        "ConnectTimeout=10",
        "ServerAliveInterval=10",
        "ServerAliveCountMax=3",
        "ControlMaster=auto",
        "ControlPath=/run/ovios-test/ssh/%C",
        f"ControlPersist={hosts.CONTROL_PERSIST}",
    ):
        assert expected in options
    # destination after "--", then exactly one command string, shell-quoted
    assert argv[-3:-1] == ["--", "192.168.0.149"]
    assert shlex.split(argv[-1]) == ["env", f"PATH={hosts.SAFE_PATH}", "LC_ALL=C", "zfs", "list", "-H", "pool/a b"]
    assert argv[argv.index("-l") + 1] == "root"


def test_policy_options_cannot_be_overridden() -> None:
    for key in ("StrictHostKeyChecking", "batchmode"):
        with pytest.raises(ValueError):
            SshHost("node2", options={key: "no"})


def test_command_failed_is_plain_data() -> None:
    exc = CommandFailed(["zfs", "destroy", "tank/fs@s1"], 1, "cannot destroy 'tank/fs@s1': dataset is busy\n")
    assert str(exc) == "zfs destroy tank/fs@s1: exit 1: cannot destroy 'tank/fs@s1': dataset is busy"
    assert exc.short() == "zfs destroy failed: cannot destroy 'tank/fs@s1': dataset is busy"
    assert hosts.Result(0, "out", "").argv == ()


def test_long_control_dir_disables_multiplexing() -> None:
    host = SshHost("node2", control_dir="/tmp/" + "d" * 60)
    assert not host.multiplexed
    options = host.ssh_options()
    assert "ControlPath=none" in options and "ControlMaster=no" in options


@pytest.mark.parametrize(
    "stderr, expected",
    [
        ("ssh: connect to host 10.1.1.1 port 22: Connection refused\r\n", HostUnreachable),
        ("ssh: connect to host 10.1.1.1 port 22: Connection timed out\r\n", HostUnreachable),
        ("ssh: connect to host 10.1.1.1 port 22: No route to host\r\n", HostUnreachable),
        ("ssh: Could not resolve hostname nodex: Name or service not known\r\n", HostUnreachable),
        ("kex_exchange_identification: read: Connection reset by peer\r\n", HostUnreachable),
        ("Host key verification failed.\r\n", HostKeyUnknown),
        ("No ED25519 host key is known for node2 and you have requested strict checking.\r\n", HostKeyUnknown),
        ("@@@@@\r\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\r\n"
         "Host key verification failed.\r\n", HostKeyChanged),
        ("root@node2: Permission denied (publickey).\r\n", AuthError),
        ("cannot open 'pool/x': dataset does not exist\n", None),
        ("", None),
    ],
)
def test_classify_ssh_failure(stderr: str, expected: type | None) -> None:
    found = classify_ssh_failure(stderr)
    assert (found[0] if found else None) is expected
    if found:
        assert "\n" not in found[1]


@pytest.mark.parametrize(
    "returncode, stderr, expected, words",
    [
        # the multiplexing client of a master that died (ServerAlive): 255, silent
        (255, "", HostUnreachable, "node2: connection lost during the transfer"),
        (255, "Host key verification failed.\r\n", HostKeyUnknown, "node2: host key unknown"),
        (255, "Timeout, server node2 not responding.\r\n", HostUnreachable, "node2: unreachable: Timeout"),
        (255, "internal error: something zfs said\n", None, ""),  # the remote command's own 255
        (1, "cannot receive incremental stream: out of space\n", None, ""),
        (0, "", None, ""),
    ],
)
def test_why_ssh_ended_a_stream(returncode: int, stderr: str, expected: type | None, words: str) -> None:
    failure = SshHost("node2").stream_failure(returncode, stderr)
    assert (type(failure) if failure else None) is expected
    if failure:
        assert str(failure).startswith(words) and "\n" not in str(failure)


# -- local ----------------------------------------------------------------------


def test_local_run_passes_arguments_verbatim(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    args = [a.format(marker=marker) for a in HOSTILE_ARGS]
    result = LocalHost().run(["printf", "%s\\0", *args])
    assert result.stdout.split("\0")[:-1] == args
    assert not marker.exists()


def test_local_run_input_and_path() -> None:
    local = LocalHost()
    assert local.run(["cat"], input="hello\nworld\n").stdout == "hello\nworld\n"
    path = local.run(["sh", "-c", 'echo "$PATH"']).stdout.strip().split(":")
    assert "/usr/sbin" in path and "/sbin" in path
    assert local.run(["sh", "-c", 'echo "$LC_ALL"']).stdout.strip() == "C"


def test_local_failure_is_one_line() -> None:
    with pytest.raises(CommandFailed) as info:
        LocalHost().run(["sh", "-c", "echo first >&2; echo 'the reason' >&2; exit 3"])
    exc = info.value
    assert exc.returncode == 3 and "the reason" in exc.stderr
    assert exc.short() == "localhost: sh -c failed: the reason"
    assert "\n" not in str(exc) and "\n" not in exc.short()
    result = LocalHost().run(["sh", "-c", "exit 4"], check=False)
    assert result.returncode == 4


def test_local_run_without_input_gives_end_of_file_and_decodes_what_it_can() -> None:
    local = LocalHost()
    # stdin is closed at once: a command that reads it ends instead of waiting (the 60 s bound
    # only catches a hang)
    assert local.run(["cat"], timeout=60).stdout == ""
    assert local.run(["sh", "-c", r"printf 'caf\303\251 \377\n'; printf 'err\377' >&2"]).stdout == "café \ufffd\n"
    assert local.run(["sh", "-c", r"printf 'err\377' >&2"]).stderr == "err\ufffd"
    killed = local.run(["sh", "-c", "kill -9 $$"], check=False)
    assert killed.returncode == -9


def test_local_timeout() -> None:
    start = time.monotonic()
    with pytest.raises(CommandTimedOut) as info:
        LocalHost().run(["sleep", "300"], timeout=0.5)
    assert time.monotonic() - start < 120  # not the sleep's 300 s: the timeout ended it
    assert "timed out" in info.value.short()


def test_refuses_option_or_assignment_as_program() -> None:
    for argv in (["-i", "x"], ["PATH=/tmp", "zfs"], []):
        with pytest.raises(ValueError):
            LocalHost().argv_for(argv)


# -- ssh against a real sshd ------------------------------------------------------------


def test_host_names_for_completion() -> None:
    etc_hosts = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0 ip6-localnet\n"
                 "ff02::1 ip6-allnodes\n10.0.0.1\tsrc src.lan  # this node\n10.0.0.2\tdst dst.lan\n")
    known_hosts = ("dst,10.0.0.2 ssh-ed25519 AAAA\n|1|hashed=|x= ssh-ed25519 BBBB\n[backup]:2222 ssh-ed25519 CCCC\n"
                   "@revoked old ssh-ed25519 DDDD\n*.lan ssh-ed25519 EEEE\n# a comment\n")
    assert host_names(etc_hosts, known_hosts, "src") == ["dst", "dst.lan", "10.0.0.2", "backup"]

"""hosts.py: validation, local runs, and ssh against a real sshd on loopback.

The sshd runs in a private mount namespace (ovios_lab.zfsdev) with its own host
key and an authorized key for root in a temporary directory; the client side
uses ``-F /dev/null``, an explicit identity and known_hosts file, so nothing of
the machine's own ssh setup is read or changed.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from ovios_lab import zfsdev
from ovios_shell_retadm import hosts
from ovios_shell_retadm.hosts import (
    AuthError,
    CommandFailed,
    CommandTimedOut,
    HostError,
    HostKeyError,
    HostUnreachable,
    InvalidHost,
    LocalHost,
    SshHost,
    classify_ssh_failure,
    validate_hostname,
)

from tiers import cannot_run

HOSTILE_ARGS = [
    "a b  c",
    "it's \"quoted\"",
    "$(touch {marker})",
    "`touch {marker}`",
    "; touch {marker}",
    "| touch {marker}",
    "&& touch {marker} &",
    "line1\nline2",
    "$HOME ${{PATH}} \\ * ? [x] ~ #",
    "-n",
    "",
]


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
        ("Host key verification failed.\r\n", HostKeyError),
        ("No ED25519 host key is known for node2 and you have requested strict checking.\r\n", HostKeyError),
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
        (255, "Host key verification failed.\r\n", HostKeyError, "node2: host key unknown"),
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


@pytest.fixture(scope="module")
def private_sshd():
    reason = zfsdev.missing_requirements("sshd", "ssh", "ssh-keygen")
    if reason:
        cannot_run("a private sshd", reason)
    with zfsdev.namespace() as ns, zfsdev.sshd(ns) as sshd:
        yield sshd


@pytest.fixture
def control_dir():
    """A fresh, short control directory: no master is shared between tests."""
    path = Path(tempfile.mkdtemp(prefix="rtc-", dir="/tmp"))
    yield path
    for sock in path.rglob("*"):
        if sock.is_socket():
            exit_master = ["ssh", "-F", "/dev/null", "-o", f"ControlPath={sock}", "-O", "exit", "x"]
            subprocess.run(exit_master, check=False, capture_output=True, timeout=10)
    shutil.rmtree(path)


@pytest.mark.parametrize("mode, owner", [(0o777, 0), (0o770, 0), (0o720, 0), (0o702, 0), (0o1777, 0),
                                         (0o700, 65534), (0o755, 65534)])
def test_an_unsafe_control_dir_is_refused(control_dir: Path, mode: int, owner: int) -> None:
    """An existing control directory someone else owns or may write to: another user could put
    their own socket where ssh looks for the master's, so ssh is never run with it."""
    os.chown(control_dir, owner, -1)
    control_dir.chmod(mode)
    host = SshHost("192.0.2.1", control_dir=control_dir)
    assert host.multiplexed
    for attempt in (lambda: host.argv_for(["true"]), lambda: host.run(["true"]), host.master_running):
        with pytest.raises(HostError) as info:
            attempt()
        assert str(info.value) == (
            f"192.0.2.1: unsafe ssh control directory {control_dir} (owner uid {owner}, mode {mode & 0o7777:04o}): "
            f"it must belong to uid {os.geteuid()} and be writable by it alone")


@pytest.mark.parametrize("mode", [0o700, 0o755, 0o500])
def test_a_control_dir_of_ours_that_only_we_write_is_used(control_dir: Path, mode: int) -> None:
    control_dir.chmod(mode)
    argv = SshHost("192.0.2.1", control_dir=control_dir).argv_for(["true"])
    assert f"ControlPath={control_dir}/%C" in argv


def make_host(server, control_dir: Path | None, **overrides) -> SshHost:
    options = {
        "port": server.port,
        "identity": server.path("client_key"),
        "known_hosts": server.path("known_hosts"),
        "config": "/dev/null",
        "control_dir": control_dir,
    }
    options.update(overrides)
    return SshHost("127.0.0.1", **options)


def test_ssh_arguments_arrive_verbatim(private_sshd, control_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    args = [a.format(marker=marker) for a in HOSTILE_ARGS]
    host = make_host(private_sshd, control_dir)
    result = host.run(["printf", "%s\\0", *args])
    assert result.stdout.split("\0")[:-1] == args
    assert not marker.exists()


def test_ssh_input_path_and_status(private_sshd, control_dir: Path) -> None:
    host = make_host(private_sshd, control_dir)
    assert host.run(["cat"], input="data over ssh\n").stdout == "data over ssh\n"
    path = host.run(["sh", "-c", 'echo "$PATH"']).stdout.strip().split(":")
    assert "/usr/sbin" in path
    assert host.run(["sh", "-c", "exit 7"], check=False).returncode == 7
    # 255 from the remote command is the command's status, not an ssh failure
    with pytest.raises(CommandFailed) as info:
        host.run(["sh", "-c", "echo remote trouble >&2; exit 255"])
    assert type(info.value) is CommandFailed and info.value.returncode == 255
    assert info.value.short() == f"127.0.0.1:{private_sshd.port}: sh -c failed: remote trouble"


def test_ssh_master_is_reused(private_sshd, control_dir: Path) -> None:
    host = make_host(private_sshd, control_dir)
    before = private_sshd.logins()
    host.run(["true"])
    assert host.master_running()
    assert len(list(control_dir.iterdir())) == 1
    for _ in range(3):
        host.run(["true"])
    assert private_sshd.logins() == before + 1  # one authentication for four commands
    host.close()
    assert not host.master_running()


def test_ssh_timeout(private_sshd, control_dir: Path) -> None:
    host = make_host(private_sshd, control_dir)
    start = time.monotonic()
    with pytest.raises(CommandTimedOut):
        host.run(["sleep", "300"], timeout=1)
    assert time.monotonic() - start < 120  # not the sleep's 300 s: the timeout ended it


def test_ssh_changed_host_key(private_sshd, control_dir: Path) -> None:
    host = make_host(private_sshd, control_dir, known_hosts=private_sshd.path("wrong_known_hosts"))
    with pytest.raises(HostKeyError) as info:
        host.run(["true"])
    assert "CHANGED" in str(info.value) and "\n" not in str(info.value)


def test_ssh_unknown_host_key(private_sshd, control_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(HostKeyError, match="unknown"):
        make_host(private_sshd, control_dir, known_hosts=empty).run(["true"])
    assert empty.read_text() == ""  # never accepted


def test_ssh_wrong_key(private_sshd, control_dir: Path) -> None:
    with pytest.raises(AuthError):
        make_host(private_sshd, control_dir, identity=private_sshd.path("wrong_key")).run(["true"])


def test_ssh_closed_port_is_refused(private_sshd, control_dir: Path) -> None:
    host = make_host(private_sshd, control_dir, port=zfsdev.free_port())
    with pytest.raises(HostUnreachable) as info:
        host.run(["true"], timeout=120)  # a hang, not speed: refused at once, not timed out
    assert "Connection refused" in str(info.value)


def test_ssh_unreachable_even_without_check(private_sshd, control_dir: Path) -> None:
    with pytest.raises(HostUnreachable):
        make_host(private_sshd, control_dir, port=zfsdev.free_port()).run(["true"], check=False)


def test_ssh_default_control_dir_from_settings(private_sshd, monkeypatch: pytest.MonkeyPatch,
                                               control_dir: Path) -> None:
    monkeypatch.setenv("OVIOS_RUN_DIR", str(control_dir))
    host = make_host(private_sshd, None)
    host.run(["true"])
    assert [p.name for p in (control_dir / "ssh").iterdir()] and host.master_running()
    assert (control_dir / "ssh").stat().st_mode & 0o777 == 0o700
    host.close()

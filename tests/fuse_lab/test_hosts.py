"""hosts.py: ssh against a real sshd on loopback.

The sshd runs in a private mount namespace (ovios_lab.zfsdev) with its own host
key and an authorized key for root in a temporary directory; the client side
uses ``-F /dev/null``, an explicit identity and known_hosts file, so nothing of
the machine's own ssh setup is read or changed."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from ovios_lab import zfsdev
from ovios_shell_retadm.hosts import (
    AuthError,
    CommandFailed,
    CommandTimedOut,
    HostError,
    HostKeyError,
    HostUnreachable,
    SshHost,
)

from hostile_input import HOSTILE_ARGS
from tiers import cannot_run


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

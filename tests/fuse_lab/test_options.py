"""`options ssh.allow.root`: the policy it writes, as a real sshd (in a private mount
namespace) reads it, and what is rolled back when sshd refuses it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ovios_lab import zfsdev
from ovios_shell_retadm import options, services
from ovios_shell_retadm.store import Store

from tiers import cannot_run


@pytest.fixture
def node(tmp_path, monkeypatch):
    monkeypatch.setenv("OVIOS_ROOT", str(tmp_path))
    return tmp_path


class PrivateSshd:
    """This test's own sshd, reading the sshd_config under OVIOS_ROOT that ``options`` edits.

    It runs in a mount namespace of its own (ovios_lab.zfsdev) whose ``/run`` is private: there
    ``/run/sshd.pid`` (what :func:`services.set_root_login` reloads) is this sshd's, and neither
    the machine's sshd pid file nor ``/run/systemd`` exists.  ``ovios-shell`` runs there
    (:meth:`ovios_shell`), so it reloads this sshd and can never signal the machine's; the
    machine's ``/run/sshd`` is not created either.  It listens on a free port of 127.0.0.1
    with a host key and root's authorized key in the test's directory.
    """

    def __init__(self, ns: zfsdev.Namespace, root: Path):
        self.ns = ns
        self.config = root / "etc/ssh/sshd_config"
        self.dir = root / "sshd"
        self.dir.mkdir(mode=0o700)
        for key in ("host_key", "client_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", key, "-f", str(self.dir / key)],
                           check=True, capture_output=True)
        shutil.copy(self.dir / "client_key.pub", self.dir / "authorized_keys")
        self.port = zfsdev.free_port()
        kind, blob = (self.dir / "host_key.pub").read_text().split()[:2]
        (self.dir / "known_hosts").write_text(f"[127.0.0.1]:{self.port} {kind} {blob}\n")
        self.pidfile = ns.private("/run") / "sshd.pid"  # /run/sshd.pid inside the namespace
        self.log = self.dir / "sshd.log"
        self.pid: int | None = None

    def write_config(self, include: bool) -> Path:
        """Root may log in (``yes``), with a key; with ``include``, Debian's drop-in directory first."""
        self.config.parent.mkdir(parents=True)
        header = f"Include {self.config.parent}/sshd_config.d/*.conf\n" if include else ""
        self.config.write_text(header + "PermitRootLogin yes\nPasswordAuthentication yes\n" + "".join(
            f"{line}\n" for line in (
                f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {self.dir / 'host_key'}",
                "PidFile /run/sshd.pid", f"AuthorizedKeysFile {self.dir / 'authorized_keys'}",
                "KbdInteractiveAuthentication no", "UsePAM no",
                "StrictModes no",  # the keys are under /tmp, which is world-writable
            )))
        return self.config

    def start(self) -> None:
        self.ns.start_daemon(["/usr/sbin/sshd", "-f", str(self.config), "-E", str(self.log)], self.pidfile,
                             self.dir / "start.log")
        self.pid = int(self.pidfile.read_text())
        self.wait_listening(reloads=0)

    def reloads(self) -> int:
        return self.log.read_text().count("Received SIGHUP; restarting.")

    def wait_listening(self, reloads: int) -> None:
        """Until sshd has been reloaded ``reloads`` times and listens again (same process: a
        reload re-executes sshd in place).  The bound only catches a reload that never came."""
        deadline = time.monotonic() + 60
        while not (self.reloads() == reloads and self.log.read_text().count("Server listening on") == reloads + 1
                   and self.pidfile.exists() and self.pidfile.read_text().strip() == str(self.pid)):
            assert time.monotonic() < deadline, f"sshd not reloaded {reloads} time(s) and listening:\n" \
                                                f"{self.log.read_text()}"
            time.sleep(0.05)

    def in_namespace(self, *argv: str) -> subprocess.CompletedProcess:
        """``argv`` in the namespace, with this test's environment (its OVIOS_ROOT)."""
        return subprocess.run(["nsenter", "-t", str(self.ns.pid), "-m", "--", *argv], capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL, check=False)

    def ovios_shell(self, *args: str) -> subprocess.CompletedProcess:
        return self.in_namespace(sys.executable, "-m", "ovios_shell_retadm.shell", *args)

    def policy(self) -> str:
        """:func:`services.root_login_policy`: what ``sshd -T -f CONFIG`` says for root."""
        result = self.in_namespace(sys.executable, "-c",
                                   "from ovios_shell_retadm import services; print(services.root_login_policy())")
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def root_login(self) -> subprocess.CompletedProcess:
        """A real login as root with the authorized key."""
        return subprocess.run(
            ["ssh", "-F", "/dev/null", "-p", str(self.port), "-i", str(self.dir / "client_key"),
             "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
             "-o", f"UserKnownHostsFile={self.dir / 'known_hosts'}", "-o", "UpdateHostKeys=no",
             "-o", "ConnectTimeout=30", "root@127.0.0.1", "echo", "logged in"],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, check=False)


@pytest.fixture
def private_sshd(node):
    reason = zfsdev.missing_requirements(services.SSH.binary, "ssh", "ssh-keygen")
    if reason:
        cannot_run("a private sshd", reason)
    with zfsdev.namespace() as ns:
        yield PrivateSshd(ns, node)  # its sshd is stopped with the namespace (pid file registered there)


@pytest.mark.parametrize("include", [True, False])
def test_ssh_allow_root_sets_a_policy_that_sshd_reads(private_sshd, include):
    sshd = private_sshd
    sshd.write_config(include)
    sshd.start()
    logged_in = sshd.root_login()
    assert (logged_in.returncode, logged_in.stdout) == (0, "logged in\n"), logged_in.stderr

    changed = sshd.ovios_shell("options", "ssh.allow.root", "off")
    assert (changed.returncode, changed.stdout) == (0, "Configuration ssh.allow.root updated.\n"), changed.stderr
    assert sshd.policy() == "no"
    sshd.wait_listening(reloads=1)  # the running sshd was told
    refused = sshd.root_login()
    assert refused.returncode == 255 and "Permission denied" in refused.stderr, refused

    assert sshd.ovios_shell("options", "ssh.allow.root", "keys").returncode == 0
    assert sshd.policy() == "without-password"  # sshd -T's name for prohibit-password: key only
    sshd.wait_listening(reloads=2)
    logged_in = sshd.root_login()
    assert (logged_in.returncode, logged_in.stdout) == (0, "logged in\n"), logged_in.stderr
    assert options.get("ssh.allow.root") == "keys"

    # the guide's value: a password too, for ssh-copy-id (a login with one: tests/fuse_lab/test_key_exchange.py)
    assert sshd.ovios_shell("options", "ssh.allow.root", "on").returncode == 0
    assert sshd.policy() == "yes"
    sshd.wait_listening(reloads=3)
    logged_in = sshd.root_login()
    assert (logged_in.returncode, logged_in.stdout) == (0, "logged in\n"), logged_in.stderr
    assert options.get("ssh.allow.root") == "on"


def test_an_sshd_config_sshd_rejects_is_rolled_back(private_sshd):
    sshd = private_sshd
    config = sshd.write_config(include=False)
    sshd.start()
    config.write_text(config.read_text() + "NoSuchKeyword 1\n")
    before = config.read_text()
    result = sshd.ovios_shell("options", "ssh.allow.root", "off")
    assert result.returncode == 1
    assert "not changed" in result.stderr and "Traceback" not in result.stderr
    assert config.read_text() == before
    assert options.get("ssh.allow.root") == "off"
    # the running sshd was left alone: not reloaded (it would not come back with this file),
    # and still lets root in as before
    logged_in = sshd.root_login()
    assert (logged_in.returncode, logged_in.stdout) == (0, "logged in\n"), logged_in.stderr
    assert sshd.reloads() == 0


def test_ssh_allow_root_off_with_a_lowercase_match_block(private_sshd):
    """``match`` starts a block as ``Match`` does: the global setting must go before it."""
    sshd = private_sshd
    config = sshd.write_config(include=False)
    text = config.read_text().replace("PermitRootLogin yes\n", "")  # sshd's default: key-only root login
    config.write_text(text + "match User nobody\n  X11Forwarding no\n")
    sshd.start()
    assert sshd.policy() == "without-password"

    changed = sshd.ovios_shell("options", "ssh.allow.root", "off")
    assert (changed.returncode, changed.stdout) == (0, "Configuration ssh.allow.root updated.\n"), changed.stderr
    assert sshd.policy() == "no"
    sshd.wait_listening(reloads=1)
    refused = sshd.root_login()
    assert refused.returncode == 255 and "Permission denied" in refused.stderr, refused


def test_a_policy_sshd_would_not_apply_is_rolled_back_and_not_stored(private_sshd):
    """Another drop-in that sshd reads before ours keeps root login on: ``sshd -T`` shows it, so
    ``options`` says so in one line, exits 1, undoes its change and stores nothing."""
    sshd = private_sshd
    config = sshd.write_config(include=True)
    dropins = config.parent / "sshd_config.d"
    dropins.mkdir()
    (dropins / "00-aaa-site.conf").write_text("PermitRootLogin yes\n")
    sshd.start()

    result = sshd.ovios_shell("options", "ssh.allow.root", "off")
    assert result.returncode == 1, result
    assert result.stderr.splitlines() == [
        "options: ssh.allow.root not changed: sshd would still apply PermitRootLogin yes, not no "
        f"(an earlier setting in {config} or a file it includes wins); the change was undone"], result.stderr
    assert sorted(p.name for p in dropins.iterdir()) == ["00-aaa-site.conf"]
    assert sshd.policy() == "yes"
    assert Store().get_option("ssh.allow.root") is None
    assert sshd.reloads() == 0
    logged_in = sshd.root_login()
    assert (logged_in.returncode, logged_in.stdout) == (0, "logged in\n"), logged_in.stderr

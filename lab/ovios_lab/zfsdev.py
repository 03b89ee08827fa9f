"""Private ZFS and sshd for single-host tests, in a mount namespace of their own.

Used by the product's tests of the zfs, hosts and options modules (tests/test_zfs.py,
test_hosts.py, test_options.py): they run the product's code against a real zfs-fuse and a
real sshd without a two-node lab.

Other people run labs and tests on the same machine, so nothing here touches
the host's ``/run``, ``/etc/zfs``, ``/var/lib/zfs``, ``/etc/ssh`` or
``/root/.ssh``.  A background ``unshare --mount`` process *holds* a private mount
namespace in which a per-test-session directory is bind-mounted over those
paths; daemons (zfs-fuse, sshd) are started inside it with ``nsenter``, and
:class:`NamespaceHost` runs commands there.  Pools are files in the session
directory.  Stopping kills what was started, by pid, and removes the directory;
the namespace and its mounts vanish with their last process.

The pattern is also what the two-node lab does, minus the network namespace and the
assembled root filesystem (:mod:`.holder`): here the namespace sees the machine's own files,
with three directories made private.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ovios_shell_retadm.hosts import LocalHost

from .osutil import is_zombie, read_pidfile, wait_for
from .spec import LabError

#: Paths the namespace gets private copies of (empty directories to start with).
PRIVATE_DIRS = ("/run", "/etc/zfs", "/var/lib/zfs")


def missing_requirements(*programs: str) -> str | None:
    """Why these tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (mount namespaces, zfs-fuse, sshd)"
    for program in ("unshare", "nsenter", *programs):
        if shutil.which(program, path="/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin") is None:
            return f"{program} is not installed"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(predicate, timeout: float, what: str) -> None:
    if not wait_for(predicate, timeout, interval=0.05):
        raise LabError(f"timed out waiting for {what}")


def _kill(pid: int, signals: Sequence[int] = (15, 9), timeout: float = 5.0) -> None:
    """Signal one process we started (by default SIGTERM, then SIGKILL); wait until it is gone."""
    for sig in signals:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if wait_for(lambda: is_zombie(pid), timeout, interval=0.05):
            return


class NamespaceHost(LocalHost):
    """Runs commands inside the mount namespace of process ``pid``."""

    def __init__(self, pid: int):
        self.pid = pid
        self.name = f"ns{pid}"

    def argv_for(self, argv: Sequence[str]) -> list[str]:
        return ["nsenter", "-t", str(self.pid), "-m", "--", *super().argv_for(argv)]


class Namespace:
    """A held private mount namespace with its own ``/run``, ``/etc/zfs``, ``/var/lib/zfs``."""

    def __init__(self, prefix: str = "zfsdev-"):
        self.dir = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
        self.proc: subprocess.Popen[bytes] | None = None
        self._daemons: list[Path] = []  # pid files, to stop in reverse order

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def private(self, path: str) -> Path:
        """Where a private path of the namespace lives, seen from outside."""
        return self.dir / "private" / path.strip("/").replace("/", "_")

    def start(self) -> None:
        binds = []
        for path in PRIVATE_DIRS:
            self.private(path).mkdir(parents=True)
            binds.append(f"mount --bind {self.private(path)} {path}")
        for sub in ("lock", "zfs", "sshd"):
            (self.private("/run") / sub).mkdir(mode=0o755)
        ready = self.dir / "ready"
        script = " && ".join([*binds, f"touch {ready}", "exec sleep infinity"])
        with open(self.dir / "holder.log", "wb") as log:
            # unshare execs sh, which execs sleep: proc.pid is the holder.
            self.proc = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            _wait_for(lambda: ready.exists() or self.proc.poll() is not None, 10, "the namespace")
        except LabError:
            self.stop()
            raise
        if not ready.exists():
            reason = (self.dir / "holder.log").read_text().strip()
            self.stop()
            raise LabError(f"cannot create a mount namespace: {reason}")

    def host(self) -> NamespaceHost:
        return NamespaceHost(self.pid)

    def run(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a setup command in the namespace; fail loudly."""
        proc = subprocess.run(
            self.host().argv_for(argv), check=False, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=timeout,
        )
        if proc.returncode != 0:
            raise LabError(f"{' '.join(argv)}: exit {proc.returncode}: {proc.stderr.strip()}")
        return proc

    def start_daemon(self, argv: Sequence[str], pidfile: Path, log: Path) -> None:
        """Start a self-daemonizing program in the namespace and wait for its pid file.

        Its output goes to a file, never to a pipe: a daemon holding our pipe
        open would make the caller wait forever.
        """
        with open(log, "ab") as out:
            subprocess.run(
                self.host().argv_for(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=30, check=True
            )
        self._daemons.append(pidfile)
        _wait_for(lambda: read_pidfile(pidfile) is not None, 10, f"{argv[0]} to start")

    def stop_daemon(self, pidfile: Path, signals: Sequence[int] = (15, 9)) -> None:
        self._daemons.remove(pidfile)
        pid = read_pidfile(pidfile)
        if pid is not None:
            _kill(pid, signals)

    def stop(self) -> None:
        while self._daemons:
            self.stop_daemon(self._daemons[-1])
        if self.proc is not None:
            _kill(self.proc.pid)
            self.proc.wait(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class ZfsFuse:
    """A zfs-fuse daemon in a namespace, with file-backed pools."""

    ns: Namespace

    @property
    def pidfile(self) -> Path:
        return self.ns.private("/run") / "zfs-fuse.pid"

    def start(self) -> None:
        self.ns.start_daemon(
            ["zfs-fuse", "--no-kstat-mount", "-p", "/run/zfs-fuse.pid", "-m", "64"],
            self.pidfile,
            self.ns.dir / "zfs-fuse.log",
        )

        def answers() -> bool:
            probe = subprocess.run(self.ns.host().argv_for(["zpool", "list"]), check=False, capture_output=True,
                                   timeout=10)
            return probe.returncode == 0

        _wait_for(answers, 10, "zfs-fuse to answer")

    def create_pool(self, name: str, size_mb: int = 128) -> Path:
        """A pool on a sparse file, mounted under the session directory."""
        disk = self.ns.dir / f"{name}.img"
        with open(disk, "wb") as handle:
            handle.truncate(size_mb << 20)
        self.ns.run("zpool", "create", "-m", str(self.ns.dir / "mnt" / name), name, str(disk))
        return disk

    def stop(self) -> None:
        """Export every pool, then stop the daemon.

        With nothing imported there is nothing to flush, so SIGKILL is safe and
        saves the ~4 s zfs-fuse spends shutting down on SIGTERM.
        """
        host = self.ns.host()
        pools = host.run(["zpool", "list", "-H", "-o", "name"], check=False).stdout.split()
        exported = all(
            host.run(["zpool", "export", pool], check=False, timeout=30).returncode == 0 for pool in pools
        )
        self.ns.stop_daemon(self.pidfile, (9,) if exported else (15, 9))


@dataclass
class Sshd:
    """An sshd on 127.0.0.1:port inside a namespace, with its own keys.

    ``client_key`` is authorized for root; ``known_hosts`` holds the real host
    key; ``wrong_key`` and ``wrong_known_hosts`` are deliberately not.
    """

    ns: Namespace
    port: int = 0

    def path(self, name: str) -> Path:
        return self.ns.dir / "ssh" / name

    @property
    def log(self) -> Path:
        return self.path("sshd.log")

    def start(self) -> None:
        self.path("").mkdir(mode=0o700)
        for key in ("host_key", "client_key", "wrong_key", "other_host_key"):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", key, "-f", str(self.path(key))], check=True
            )
        self.port = self.port or free_port()
        shutil.copy(self.path("client_key.pub"), self.path("authorized_keys"))
        self.path("sshd_config").write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {self.path('host_key')}",
                    f"PidFile {self.path('sshd.pid')}",
                    f"AuthorizedKeysFile {self.path('authorized_keys')}",
                    "PermitRootLogin prohibit-password",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    # The keys live under /tmp, which is world-writable.
                    "StrictModes no",
                    "LogLevel INFO",
                    "",
                ]
            )
        )
        for name, key in (("known_hosts", "host_key"), ("wrong_known_hosts", "other_host_key")):
            kind, blob = self.path(f"{key}.pub").read_text().split()[:2]
            self.path(name).write_text(f"[127.0.0.1]:{self.port} {kind} {blob}\n")
        self.ns.start_daemon(
            ["/usr/sbin/sshd", "-f", str(self.path("sshd_config")), "-E", str(self.log)],
            self.path("sshd.pid"),
            self.ns.dir / "sshd.start.log",
        )

    def logins(self) -> int:
        """How many sessions sshd has authenticated so far (new connections)."""
        return self.log.read_text().count("Accepted publickey")


@contextmanager
def namespace() -> Iterator[Namespace]:
    ns = Namespace()
    ns.start()
    try:
        yield ns
    finally:
        ns.stop()


@contextmanager
def zfs_fuse(ns: Namespace) -> Iterator[ZfsFuse]:
    zfs = ZfsFuse(ns)
    zfs.start()
    try:
        yield zfs
    finally:
        zfs.stop()


@contextmanager
def sshd(ns: Namespace) -> Iterator[Sshd]:
    server = Sshd(ns)
    server.start()
    yield server  # stopped with the namespace (its pid file is registered there)

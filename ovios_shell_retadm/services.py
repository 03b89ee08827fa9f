"""The node's system services that options act on: sshd and cron.

OviOS nodes run systemd; the test lab (namespaces on one machine) runs no service
manager at all, so each daemon is then started, stopped and reloaded directly
through its pid file.  :func:`service_manager` picks the one the node has.
"""

from __future__ import annotations

import fnmatch
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from . import settings
from .fileio import write_atomically


class ServiceError(Exception):
    """A service could not be changed; the message is one line for the user."""


@dataclass(frozen=True)
class Daemon:
    """How to run one daemon without a service manager."""

    unit: str  # systemd unit name
    binary: str
    pidfile: str  # relative to / (settings.OVIOS_ROOT does not apply: it is the OS's)
    args: tuple[str, ...] = ()


SSH = Daemon(unit="ssh", binary="/usr/sbin/sshd", pidfile="/run/sshd.pid")
CRON = Daemon(unit="cron", binary="/usr/sbin/cron", pidfile="/run/crond.pid")


def _run(argv: list[str], what: str) -> None:
    try:
        proc = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServiceError(f"{what}: {exc}") from exc
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise ServiceError(f"{what} failed: {detail[-1] if detail else f'exit {proc.returncode}'}")


class Systemd:
    """A node booted with systemd."""

    def is_running(self, daemon: Daemon) -> bool:
        return subprocess.run(["systemctl", "is-active", "--quiet", daemon.unit], check=False).returncode == 0

    def start(self, daemon: Daemon, *, persistent: bool = True) -> None:
        verb = ["enable", "--now"] if persistent else ["start"]
        _run(["systemctl", *verb, daemon.unit], f"starting {daemon.unit}")

    def stop(self, daemon: Daemon, *, persistent: bool = True) -> None:
        verb = ["disable", "--now"] if persistent else ["stop"]
        _run(["systemctl", *verb, daemon.unit], f"stopping {daemon.unit}")

    def reload(self, daemon: Daemon) -> None:
        if self.is_running(daemon):
            _run(["systemctl", "reload", daemon.unit], f"reloading {daemon.unit}")


class DirectDaemons:
    """No service manager (the lab): daemons are handled through their pid files."""

    def _pid(self, daemon: Daemon) -> int | None:
        try:
            pid = int(Path(daemon.pidfile).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        exe = Path(f"/proc/{pid}/exe")
        try:
            if os.path.basename(os.readlink(exe)) != os.path.basename(daemon.binary):
                return None  # a recycled pid
        except OSError:
            pass
        return pid

    def is_running(self, daemon: Daemon) -> bool:
        return self._pid(daemon) is not None

    def start(self, daemon: Daemon, *, persistent: bool = True) -> None:
        if self.is_running(daemon):
            return
        _run([daemon.binary, *daemon.args], f"starting {daemon.unit}")
        self._wait(daemon, running=True)

    def stop(self, daemon: Daemon, *, persistent: bool = True) -> None:
        pid = self._pid(daemon)
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        self._wait(daemon, running=False)

    def reload(self, daemon: Daemon) -> None:
        pid = self._pid(daemon)
        if pid is not None:
            os.kill(pid, signal.SIGHUP)

    def _wait(self, daemon: Daemon, *, running: bool, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.is_running(daemon) == running:
                return
            time.sleep(0.05)
        state = "start" if running else "stop"
        raise ServiceError(f"{daemon.unit} did not {state} within {timeout:.0f} s")


def service_manager() -> Systemd | DirectDaemons:
    if Path("/run/systemd/system").is_dir():
        return Systemd()
    return DirectDaemons()


# -- sshd's root-login policy ------------------------------------------------------

#: ``options ssh.allow.root`` value -> sshd's PermitRootLogin: ``on`` lets root log in with a
#: password too (the guide's ``ssh-copy-id`` needs it while keys are exchanged), ``keys`` with
#: a key only (once they are), ``off`` not at all
ROOT_LOGIN = {"on": "yes", "keys": "prohibit-password", "off": "no"}
#: sshd -T's PermitRootLogin -> the option's value (OpenSSH 9.2 still says without-password)
ROOT_LOGIN_VALUE = {"yes": "on", "prohibit-password": "keys", "without-password": "keys", "no": "off"}
_DROPIN_NAME = "00-ovios-root-login.conf"
PRIVSEP_DIR = Path("/run/sshd")


def _keyword(line: str) -> str:
    """The keyword an sshd_config line starts with, lower-cased ("" for blank lines and comments).

    sshd's keywords are case-insensitive and end at white space or at an ``=`` (``Match=all``,
    ``PermitRootLogin=no`` are valid), as :func:`strdelim` in OpenSSH reads them."""
    found = _KEYWORD.match(line)
    return "" if found is None or found.group(1).startswith("#") else found.group(1).lower()


_KEYWORD = re.compile(r"\s*([^\s=]+)")


def _included_first(config: Path, dropin: Path) -> bool:
    """Whether ``config`` includes ``dropin`` before any setting of its own."""
    try:
        lines = config.read_text().splitlines()
    except OSError:
        return False
    for line in lines:
        keyword = _keyword(line)
        if not keyword:
            continue
        if keyword != "include":
            return False
        for pattern in line.replace("=", " ", 1).split()[1:]:
            path = pattern if os.path.isabs(pattern) else str(config.parent / pattern)
            if fnmatch.fnmatch(str(dropin), path):
                return True
    return False


def _rewrite_permit_root_login(text: str, policy: str) -> str:
    """Set PermitRootLogin in the global part of an sshd_config (before any Match block,
    however ``Match`` is spelt), replacing every global PermitRootLogin line."""
    lines = text.splitlines()
    match_at = next((i for i, line in enumerate(lines) if _keyword(line) == "match"), len(lines))
    setting = f"PermitRootLogin {policy}"
    global_part: list[str] = []
    for line in lines[:match_at]:
        if _keyword(line) == "permitrootlogin":
            if setting not in global_part:  # sshd reads only the first one: drop the others
                global_part.append(setting)
        else:
            global_part.append(line)
    if setting not in global_part:
        global_part.append(setting)
    return "\n".join(global_part + lines[match_at:]) + "\n"


#: what ``sshd -T`` prints for each policy we set (OpenSSH 9.2 still says without-password)
_EFFECTIVE = {"yes": ("yes",), "prohibit-password": ("prohibit-password", "without-password"), "no": ("no",)}


def set_root_login(value: str) -> None:
    """Root login as ``options ssh.allow.root`` ``value`` says (:data:`ROOT_LOGIN`),
    validated, then sshd reloaded.

    Debian's sshd_config includes ``sshd_config.d/*.conf`` before anything else and
    sshd keeps the first value it reads, so the setting goes into a drop-in there;
    without such an Include the main file's global part is edited.  ``sshd -t`` checks the
    result, then ``sshd -T`` must show the policy asked for (another file sshd reads first
    would override it) before sshd is reloaded; otherwise the change is rolled back and sshd
    is left as it was.
    """
    policy = ROOT_LOGIN[value]
    config = settings.sshd_config_path()
    dropin = config.parent / "sshd_config.d" / _DROPIN_NAME
    if _included_first(config, dropin):
        target = dropin
        new_text = f"# Managed by ovios-shell (options ssh.allow.root)\nPermitRootLogin {policy}\n"
    else:
        target = config
        try:
            new_text = _rewrite_permit_root_login(config.read_text(), policy)
        except OSError as exc:
            raise ServiceError(f"cannot read {config}: {exc.strerror}") from exc
    old_text = target.read_text() if target.exists() else None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(target, new_text)
    except OSError as exc:
        raise ServiceError(f"cannot write {target}: {exc.strerror}") from exc
    try:
        if Path(SSH.binary).exists():
            PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)  # sshd -t insists on it, as Debian's init does
            _run([SSH.binary, "-t", "-f", str(config)], "checking the sshd configuration")
            effective = root_login_policy()
            if effective not in _EFFECTIVE[policy]:
                raise ServiceError(
                    f"sshd would still apply PermitRootLogin {effective or '(unknown: sshd -T failed)'}, "
                    f"not {policy} (an earlier setting in {config} or a file it includes wins); "
                    "the change was undone")
    except ServiceError:
        if old_text is None:
            target.unlink()
        else:
            write_atomically(target, old_text)
        raise
    service_manager().reload(SSH)


def root_login_policy() -> str | None:
    """What sshd would do for root now (``sshd -T``), or None when it cannot tell."""
    try:
        proc = subprocess.run(
            [SSH.binary, "-T", "-f", str(settings.sshd_config_path())], check=False,
            capture_output=True, text=True, timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return permit_root_login_of(proc.stdout)


def permit_root_login_of(effective_config: str) -> str | None:
    """PermitRootLogin in ``sshd -T``'s output (None when it is not there)."""
    for line in effective_config.splitlines():
        key, _, value = line.partition(" ")
        if key == "permitrootlogin":
            return value
    return None


#: ``sshd -T``'s PermitRootLogin values that let root log in with a password
ROOT_PASSWORD_LOGIN = frozenset({"yes"})


def set_cron(enabled: bool) -> None:
    manager = service_manager()
    if enabled:
        manager.start(CRON)
    else:
        manager.stop(CRON)

"""Where a command runs: this node, or a partner node over ssh.

A :class:`Host` turns an argv into a *local* argv (:meth:`Host.argv_for`) and runs
it (:meth:`Host.run`).  The pipeline uses ``argv_for`` to build OS-level pipes such
as ``zfs send | ssh peer zfs receive`` without Python in the data path; everything
else uses ``run``.

Why it is built this way:

* **No shell on our side, quoted arguments on theirs.**  Local commands are exec'd
  from an argv list.  ssh can only carry one command *string*, which the remote
  login shell parses, so every remote argument goes through :func:`shlex.join`;
  nothing is ever concatenated from user input.
* **Predictable environment.**  cron and ssh non-login shells often lack
  ``/usr/sbin`` (where ``zfs`` lives), and localized messages would defeat the
  parsing of error text.  Every command therefore runs under
  ``env PATH=<sane PATH> LC_ALL=C`` on whichever node it runs.
* **One ssh connection per peer, reused.**  A new ssh connection costs up to
  seconds (key exchange, authentication); a call over an open master costs a
  fraction of that.  ``ControlMaster=auto`` with a ``%C`` socket under
  ``settings.run_dir()/ssh`` shares one master per peer between every call of a
  run and between consecutive runs (see :data:`CONTROL_PERSIST`).
* **Errors say what to fix, in one line.**  ssh reports its own failures with exit
  status 255, which a remote command may also use; the class of failure is
  therefore read from ssh's stderr (OpenSSH 9.2 wording), and an unrecognised 255
  is treated as the remote command's own status.

* **Commands run through ``sh``** (:func:`_execute`): output captured whole, stdin
  text written then closed, every exit status returned as a value (``_ok_code``),
  stdout never a pty (``_tty_out=False``: ``zfs`` output must not change with the
  terminal).  The time limit is a timer of ours that SIGKILLs the process, as
  ``_timeout`` would: ``_timeout`` makes sh poll the process every 0.1 s, which
  measured here 119 ms per command instead of 16 ms, on calls a run makes a dozen of.
  The replication byte stream does not come here: see ``replication/pipeline.py``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import shlex
import signal
import stat
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import settings
from .fileio import make_private_dir

#: Default limit for one command.  Generous because ``zfs destroy`` of a large
#: snapshot or a busy pool can take a while; pipelines do not go through ``run``.
DEFAULT_TIMEOUT = 120.0

#: PATH every command runs with, local or remote: ``zfs``/``zpool`` live in sbin.
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: Seconds an idle ssh master stays up.  Ten minutes covers every cron cadence
#: up to ``*/10``, so consecutive incremental runs to the same partner skip the
#: connection cost entirely; an idle master costs one TCP connection and one
#: sshd process on the peer, and it dies with the peer (ServerAlive below).
CONTROL_PERSIST = 600

#: A dead peer (cable pulled, node crashed) is noticed after about
#: ``ALIVE_INTERVAL * ALIVE_COUNT`` seconds instead of hanging a send forever.
ALIVE_INTERVAL = 10
ALIVE_COUNT = 3

#: ssh's ConnectTimeout: how long an unreachable partner may stall a run.
CONNECT_TIMEOUT = 10

# A Unix socket path must fit sun_path (108 bytes with the NUL).  ssh binds the
# master to "<ControlPath>.<16 random chars>" before renaming it, and %C expands
# to 40 hex digits, so the directory gets what is left.
_SUN_PATH_MAX = 107
_CONTROL_NAME_LEN = 1 + 40 + 17


@dataclass(frozen=True)
class Result:
    """What a finished command left behind (text, decoded as UTF-8 with replacement)."""

    returncode: int
    stdout: str
    stderr: str
    argv: tuple[str, ...] = ()


class HostError(Exception):
    """A command could not be run where it should, or failed there.

    ``str(exc)`` is always one line fit for the user and for cron mail.
    """

    def __init__(self, host: str, message: str):
        super().__init__(f"{host}: {message}" if host else message)
        self.host = host


class HostUnreachable(HostError):
    """No connection: refused, timed out, no route, unknown name, connection lost."""


class HostKeyError(HostError):
    """The peer's host key is unknown or changed; we never accept it blindly."""


class HostKeyChanged(HostKeyError):
    """The peer shows another host key than the one recorded for it."""


class HostKeyUnknown(HostKeyError):
    """No host key is recorded for the peer yet."""


class AuthError(HostError):
    """The peer refused our key: passwordless ssh is not set up (for this user)."""


class CommandFailed(HostError):
    """The command ran and exited non-zero."""

    def __init__(self, argv: Sequence[str], returncode: int | None, stderr: str, host: str = ""):
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(host, f"{shlex.join(self.argv)}: {self._status()}: {self.reason()}")

    def _status(self) -> str:
        return f"exit {self.returncode}"

    def reason(self) -> str:
        """The command's own explanation: the last non-empty line of its stderr."""
        lines = [line.strip() for line in self.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else "(no error message)"

    def short(self) -> str:
        """One line naming the command (program and subcommand) and why it failed."""
        what = " ".join(self.argv[:2])
        return f"{self.host}: {what} failed: {self.reason()}" if self.host else f"{what} failed: {self.reason()}"


class CommandTimedOut(CommandFailed):
    """The command did not finish in time and was killed."""

    def __init__(self, argv: Sequence[str], timeout: float, host: str = ""):
        self.timeout = timeout
        super().__init__(argv, None, f"timed out after {timeout:g} s", host)

    def _status(self) -> str:
        return "killed"


class InvalidHost(ValueError):
    """A host name, user name or port that we refuse to hand to ssh."""


_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")


def validate_hostname(value: str) -> str:
    """Return ``value`` if it is an IPv4/IPv6 address or an RFC 1123 host name.

    Anything else is refused, in particular what could be read as an ssh option
    (a leading ``-``), a ``user@host`` form, spaces and shell metacharacters.
    """
    if not isinstance(value, str) or not value:
        raise InvalidHost("empty host name")
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    name = value[:-1] if value.endswith(".") else value
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in name.split(".")):
        raise InvalidHost(
            f"invalid host {value!r}: use an IP address or a host name "
            "(letters, digits, '-' and '.', not starting with '-')"
        )
    return value


def host_names(etc_hosts: str, known_hosts: str, own: str) -> list[str]:
    """The other nodes this one knows by name or address, for completion: the names in
    ``/etc/hosts`` (not loopback's, nor this node's ``own``) and the hosts ``known_hosts``
    records in clear (hashed ones cannot be read back; ``[host]:port`` gives the host)."""
    found: list[str] = []
    for line in etc_hosts.splitlines():
        fields = line.partition("#")[0].split()
        if len(fields) < 2 or _not_a_partner(fields[0]):
            continue
        found += [name for name in fields[1:] if name.split(".")[0] != own.split(".")[0]]
    for line in known_hosts.splitlines():
        fields = line.split()
        if not fields or fields[0].startswith(("#", "@", "|")):
            continue
        for host in fields[0].split(","):
            found.append(host[1:].partition("]")[0] if host.startswith("[") else host)
    valid = []
    for name in dict.fromkeys(found):
        try:
            valid.append(validate_hostname(name))
        except InvalidHost:
            continue  # a pattern (*, ?, !) or a name ssh would not take
    return valid


def _not_a_partner(address: str) -> bool:
    """Loopback, and what Debian's /etc/hosts names besides (ip6-allnodes & co.)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return True
    return ip.is_loopback or ip.is_multicast or ip.is_reserved or ip.is_link_local


def validate_user(value: str) -> str:
    """Return ``value`` if it is a plausible Unix login name (no options, no '@')."""
    if not isinstance(value, str) or not _USER.fullmatch(value):
        raise InvalidHost(f"invalid ssh user {value!r}")
    return value


def env_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` prefixed so that it runs with :data:`SAFE_PATH` and C messages."""
    argv = list(argv)
    if not argv or not all(isinstance(arg, str) for arg in argv):
        raise ValueError(f"argv must be a non-empty list of strings, got {argv!r}")
    if "=" in argv[0] or argv[0].startswith("-"):
        # env would take it for a variable assignment or an option.
        raise ValueError(f"refusing program name {argv[0]!r}")
    return ["env", f"PATH={SAFE_PATH}", "LC_ALL=C", *argv]


def safe_environ() -> dict[str, str]:
    """This process's environment with :data:`SAFE_PATH` and C messages: what :func:`env_argv`
    gives a command, for the few started with :mod:`subprocess` or :mod:`pexpect`."""
    return {**os.environ, "PATH": SAFE_PATH, "LC_ALL": "C"}


class Host(ABC):
    """A place where commands run.  Subclasses only decide how argv gets there."""

    #: Short name for messages ("localhost", "192.168.0.111", ...).
    name: str

    @abstractmethod
    def argv_for(self, argv: Sequence[str]) -> list[str]:
        """The local argv that runs ``argv`` on this host (for OS-level pipelines)."""

    def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        check: bool = True,
    ) -> Result:
        """Run ``argv`` here and wait for it.

        ``check=False`` returns a non-zero result instead of raising
        :class:`CommandFailed`; failures to *reach* the host always raise.
        """
        local = self.argv_for(argv)
        import sh  # (here, not above: a command that runs none, status --json, starts without it)
        try:
            returncode, stdout, stderr = _execute(local, input, timeout)
        except _TimedOut:
            raise CommandTimedOut(argv, timeout, self.name) from None
        except (sh.CommandNotFound, OSError) as exc:
            raise HostError(self.name, f"cannot start {local[0]}: {getattr(exc, 'strerror', None) or exc}") from exc
        self._check_transport(returncode, stderr)
        if check and returncode != 0:
            raise CommandFailed(argv, returncode, stderr, self.name)
        return Result(returncode, stdout, stderr, tuple(argv))

    def _check_transport(self, returncode: int, stderr: str) -> None:  # noqa: B027 - a hook, SshHost overrides it
        """Raise if the command never reached the host.  Local commands always do."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class _TimedOut(Exception):
    pass


#: every exit status is a value for the caller to judge, a killing signal's (negative) too
_ANY_STATUS = tuple(range(-64, 256))


def _execute(argv: Sequence[str], input: str | None, timeout: float) -> tuple[int, str, str]:
    """Run ``argv`` (a local argv, no shell) to its end through ``sh``: (exit status, stdout,
    stderr), decoded as UTF-8 with replacement.  stdin is ``input``, or empty (closed at
    once, so a command that reads it gets end-of-file, never a wait).  Past ``timeout``
    seconds the process is killed and :class:`_TimedOut` raised."""
    import sh  # (see Host.run)
    process = sh.Command(argv[0])(*argv[1:], _in=input or "", _tty_out=False, _ok_code=_ANY_STATUS,
                                  _bg=True, _bg_exc=False, _return_cmd=True)
    expired = threading.Event()

    def kill() -> None:
        expired.set()
        with contextlib.suppress(Exception):  # (it may have ended meanwhile: nothing to kill)
            process.signal(signal.SIGKILL)

    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        process.wait()
    finally:
        timer.cancel()
    if expired.is_set() and process.exit_code == -signal.SIGKILL:  # (not one that ended just in time)
        raise _TimedOut()
    return (process.exit_code, process.stdout.decode("utf-8", "replace"),
            process.stderr.decode("utf-8", "replace"))


class LocalHost(Host):
    """This node."""

    name = "localhost"

    def argv_for(self, argv: Sequence[str]) -> list[str]:
        return env_argv(argv)


# (exception class, pattern over ssh's stderr, message; "{}" is what ssh said).
# Order matters: a changed host key prints a long banner before its verdict.
_SSH_FAILURES: tuple[tuple[type[HostError], re.Pattern[str], str], ...] = (
    (
        HostKeyChanged,
        re.compile(r"REMOTE HOST IDENTIFICATION HAS CHANGED|Host key for .* has changed"),
        "host key CHANGED, refusing to connect (possible man-in-the-middle; if the node was "
        "reinstalled, verify its new key and remove the old one with ssh-keygen -R)",
    ),
    (
        HostKeyUnknown,
        re.compile(r"Host key verification failed|host key is known for .* requested strict checking"),
        "host key unknown, refusing to connect (connect once by hand with ssh to verify and record it)",
    ),
    (
        AuthError,
        re.compile(r"Permission denied \(|Too many authentication failures|No more authentication methods"),
        "ssh login refused (passwordless ssh for this user is not set up: see ssh-copy-id)",
    ),
    (
        HostUnreachable,
        re.compile(
            r"ssh: connect to host .*"
            r"|ssh: Could not resolve hostname .*"
            r"|Connection timed out during banner exchange"
            r"|kex_exchange_identification: .*"
            r"|Connection (?:closed|reset) by .*"
            r"|Connection to .* closed by remote host"
            r"|Timeout, server .* not responding"
            r"|client_loop: send disconnect: .*"
        ),
        "unreachable: {}",
    ),
)

#: Options that carry the security policy: not overridable through ``options``.
_POLICY_OPTIONS = frozenset({"batchmode", "stricthostkeychecking"})


def classify_ssh_failure(stderr: str) -> tuple[type[HostError], str] | None:
    """The error class and one-line message for ssh's own failure, or None.

    None means stderr does not look like ssh failed, so exit status 255 came
    from the remote command.
    """
    for cls, pattern, message in _SSH_FAILURES:
        match = pattern.search(stderr)
        if match:
            return cls, message.format(match.group(0).removeprefix("ssh: ").strip())
    return None


class SshHost(Host):
    """A partner node reached with OpenSSH as ``user`` (root by default).

    ``identity``, ``known_hosts``, ``config`` and ``options`` (extra ``-o``
    settings) exist for labs and tests; production uses the user's ordinary ssh
    setup (the guide's ``ssh-copy-id`` and first manual ``ssh`` record the key
    and host key).
    ``control_dir`` defaults to ``settings.run_dir()/ssh``.
    """

    def __init__(
        self,
        address: str,
        user: str = "root",
        port: int | None = None,
        *,
        identity: str | os.PathLike[str] | None = None,
        known_hosts: str | os.PathLike[str] | None = None,
        config: str | os.PathLike[str] | None = None,
        options: Mapping[str, str] | None = None,
        control_dir: str | os.PathLike[str] | None = None,
        connect_timeout: int = CONNECT_TIMEOUT,
        persist: int = CONTROL_PERSIST,
    ):
        self.address = validate_hostname(address)
        self.user = validate_user(user)
        if port is not None and not (isinstance(port, int) and 0 < port < 65536):
            raise InvalidHost(f"invalid ssh port {port!r}")
        self.port = port
        self.identity = Path(identity) if identity is not None else None
        self.known_hosts = Path(known_hosts) if known_hosts is not None else None
        self.config = Path(config) if config is not None else None
        self.options = dict(options or {})
        if _POLICY_OPTIONS & {key.lower() for key in self.options}:
            raise ValueError("BatchMode and StrictHostKeyChecking are not negotiable")
        self.control_dir = Path(control_dir) if control_dir is not None else settings.run_dir() / "ssh"
        self.connect_timeout = connect_timeout
        self.persist = persist
        if port is None:
            self.name = self.address
        elif ":" in self.address:
            self.name = f"[{self.address}]:{port}"
        else:
            self.name = f"{self.address}:{port}"

    @property
    def multiplexed(self) -> bool:
        """Whether calls share a master connection.

        False when the control directory is too long for a Unix socket path (or
        holds blanks or quotes, which ssh would split): every call then opens
        its own connection (correct, only slower).
        """
        path = str(self.control_dir)
        if any(ch.isspace() or ch in "\"'" for ch in path):
            return False  # ssh would split the option value
        return len(os.fsencode(path)) + _CONTROL_NAME_LEN <= _SUN_PATH_MAX

    def ssh_options(self) -> list[str]:
        """Every ssh option except the destination: the policy in one place."""
        opts = {
            "BatchMode": "yes",
            "StrictHostKeyChecking": "yes",
            "ConnectTimeout": str(self.connect_timeout),
            "ServerAliveInterval": str(ALIVE_INTERVAL),
            "ServerAliveCountMax": str(ALIVE_COUNT),
        }
        if self.multiplexed:
            opts |= {
                "ControlMaster": "auto",
                "ControlPath": f"{str(self.control_dir).replace('%', '%%')}/%C",
                "ControlPersist": str(self.persist),
            }
        else:
            opts["ControlMaster"] = "no"
            opts["ControlPath"] = "none"
        if self.identity is not None:
            opts["IdentitiesOnly"] = "yes"
        if self.known_hosts is not None:
            opts["UserKnownHostsFile"] = str(self.known_hosts)
        opts |= self.options
        argv: list[str] = []
        if self.config is not None:
            argv += ["-F", str(self.config)]
        if self.identity is not None:
            argv += ["-i", str(self.identity)]
        for key, value in opts.items():
            argv += ["-o", f"{key}={value}"]
        argv += ["-l", self.user, "-T"]
        if self.port is not None:
            argv += ["-p", str(self.port)]
        return argv

    def _ssh(self, *args: str) -> list[str]:
        if self.multiplexed:
            self._check_control_dir()
        return ["ssh", *self.ssh_options(), *args]

    def _check_control_dir(self) -> None:
        """Create the control directory (0700) or, when it exists, make sure it is ours and that
        no one else may write to it: ssh would otherwise talk through a socket another user
        could have put there (or replace)."""
        try:
            make_private_dir(self.control_dir)
            info = self.control_dir.stat()
        except OSError as exc:
            raise HostError(self.name, f"ssh control directory {self.control_dir}: {exc.strerror}") from exc
        uid = os.geteuid()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid or info.st_mode & 0o022:
            raise HostError(self.name, f"unsafe ssh control directory {self.control_dir} (owner uid {info.st_uid}, "
                                       f"mode {stat.S_IMODE(info.st_mode):04o}): it must belong to uid {uid} "
                                       "and be writable by it alone")

    def argv_for(self, argv: Sequence[str]) -> list[str]:
        return self._ssh("--", self.address, shlex.join(env_argv(argv)))

    def _check_transport(self, returncode: int, stderr: str) -> None:
        if returncode != 255:
            return
        failure = classify_ssh_failure(stderr)
        if failure is not None:
            cls, message = failure
            raise cls(self.name, message)

    def stream_failure(self, returncode: int, stderr: str) -> HostError | None:
        """Why a pipeline's remote stage (``argv_for``, e.g. ``zfs receive``) ended, if ssh
        ended it rather than the remote command; None otherwise.

        ssh's own failures are classified as for :meth:`run`.  A multiplexing client whose
        master died (its ServerAlive checks found the partner gone: down, or the network
        cut) exits 255 without a word: over a stream whose remote command has its own
        messages, that silence is the lost connection.
        """
        if returncode != 255:
            return None
        failure = classify_ssh_failure(stderr)
        if failure is not None:
            cls, message = failure
            return cls(self.name, message)
        if not stderr.strip():
            return HostUnreachable(self.name, "connection lost during the transfer (the partner stopped answering: "
                                              "down, or the network cut)")
        return None

    def master_running(self) -> bool:
        """Whether a master connection to this peer is up (``ssh -O check``)."""
        if not self.multiplexed:
            return False
        return self._control("check")

    def close(self) -> None:
        """Stop the master connection, if any (e.g. after the peer's key changed)."""
        if self.master_running():
            self._control("exit")

    def _control(self, command: str) -> bool:
        """``ssh -O <command>`` to the master: whether it succeeded (in time)."""
        try:
            return _execute(self._ssh("-O", command, "--", self.address), None, CONNECT_TIMEOUT)[0] == 0
        except _TimedOut:
            return False

"""Passwordless ssh between this node and a partner, set up on the spot (the guide's Step 1).

What the guide has the administrator type on both nodes (``ssh-keygen``, ``ssh-copy-id``
both ways, a first ``ssh`` that records the host key), done from one node in one
password-authenticated session:

1. :func:`scan` reads the partner's host keys (``ssh-keyscan``).  Keys already recorded
   for it must match (a changed key is refused, never replaced); new ones are shown as
   fingerprints for the administrator to confirm before anything is sent to the partner.
2. :meth:`KeyExchange.install` logs in as root with the password, driven by pexpect
   (the password goes through the pseudo-terminal ssh reads it from: never an argv, a
   file or a log), against exactly the confirmed keys.  One script on the partner checks
   before it changes anything (a host key it already has for this node must be ours),
   then creates the partner's key if it has none, authorises ours and records our host
   keys.  Here, the partner's key is authorised and its confirmed host keys recorded.
3. Both directions are then tried with ``BatchMode``; where one fails, what was added on
   either side is taken out again.

When passwordless ssh already works one way (``forward``), the session uses it and no
password is asked.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pexpect

from .hosts import safe_environ, validate_hostname

#: how long a connection may take before the exchange gives up
CONNECT_TIMEOUT = 10
#: where root's keys live (this node's; the partner's is its own ``$HOME``)
SSH_DIR = Path.home() / ".ssh"
#: this node's host keys, as sshd presents them
HOST_KEYS_GLOB = "ssh_host_*_key.pub"
HOST_KEYS_DIR = Path("/etc/ssh")
#: the key types looked for, preferred first (ed25519 is what a new key gets)
KEY_NAMES = ("id_ed25519", "id_ecdsa", "id_rsa")

_MARK = "::retadm-key-exchange::"
_PASSWORD_PROMPT = re.compile(r"(?i)password:")


class KeyExchangeError(Exception):
    """Why the exchange did not happen, in one line; nothing is left half-installed."""


@dataclass(frozen=True)
class HostKey:
    """One of a host's keys: ``type`` (``ssh-ed25519`` …) and ``blob`` (base64)."""

    type: str
    blob: str

    def line(self, host: str) -> str:
        return f"{host} {self.type} {self.blob}"


@dataclass(frozen=True)
class ScannedKeys:
    """The partner's host keys as it presents them, and whether this node already trusts them."""

    address: str
    keys: tuple[HostKey, ...]
    #: ``ssh-keygen -l`` lines, one a key: what the administrator compares
    fingerprints: tuple[str, ...]
    #: every key it presents is recorded here already: nothing to confirm
    known: bool


def _run(argv: Sequence[str], stdin: str | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(list(argv), input=stdin, capture_output=True, text=True, timeout=timeout,
                              check=False, env=safe_environ())
    except FileNotFoundError as exc:
        raise KeyExchangeError(f"{argv[0]} is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise KeyExchangeError(f"{argv[0]} did not answer within {timeout:.0f} s") from exc


def parse_key_lines(text: str) -> tuple[HostKey, ...]:
    """Keys from ``known_hosts``-style or ``.pub``-style lines (``[host] type blob [comment]``);
    comments, markers (``@revoked`` …) and blank lines are skipped."""
    keys: list[HostKey] = []
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0].startswith(("#", "@")):
            continue
        at = next((i for i, field in enumerate(fields) if field.startswith(("ssh-", "ecdsa-", "sk-"))), None)
        if at is not None and at + 1 < len(fields):
            keys.append(HostKey(fields[at], fields[at + 1]))
    return tuple(dict.fromkeys(keys))


def recorded_keys(address: str, known_hosts: Path | None = None) -> tuple[HostKey, ...]:
    """The host keys ``known_hosts`` records for ``address`` (hashed names included)."""
    path = known_hosts or SSH_DIR / "known_hosts"
    if not path.exists():
        return ()
    return parse_key_lines(_run(["ssh-keygen", "-F", address, "-f", str(path)]).stdout)


def scan(address: str, known_hosts: Path | None = None) -> ScannedKeys:
    """The partner's host keys, checked against what this node records for it."""
    address = validate_hostname(address)
    result = _run(["ssh-keyscan", "-T", str(CONNECT_TIMEOUT), address], timeout=CONNECT_TIMEOUT * 4)
    keys = parse_key_lines(result.stdout)
    if not keys:
        raise KeyExchangeError(f"{address} does not answer on the ssh port (ssh-keyscan found no host key)")
    recorded = recorded_keys(address, known_hosts)
    recorded_types = {key.type: key for key in recorded}
    for key in keys:
        if key.type in recorded_types and recorded_types[key.type] != key:
            raise KeyExchangeError(
                f"the {key.type} host key of {address} has CHANGED since it was recorded (possible "
                f"man-in-the-middle); nothing was changed — if {address} was reinstalled, verify its new key "
                f"and remove the old one with 'ssh-keygen -R {address}'")
    lines = "".join(key.line(address) + "\n" for key in keys)
    printed = _run(["ssh-keygen", "-l", "-f", "-"], stdin=lines).stdout.splitlines()
    return ScannedKeys(address, keys, tuple(printed), known=all(key in recorded for key in keys))


@dataclass(frozen=True)
class OwnKey:
    """This node's root public key line; ``pending``: where a key made for the exchange waits
    (a private directory beside ``~/.ssh``'s files) until the partner took it."""

    line: str
    pending: Path | None = None

    def keep(self, ssh_dir: Path) -> bool:
        """Put a pending key in its place; whether there was one."""
        if self.pending is None:
            return False
        for name in (KEY_NAMES[0], f"{KEY_NAMES[0]}.pub"):
            os.rename(self.pending / name, ssh_dir / name)
        self.pending.rmdir()
        return True

    def discard(self) -> None:
        if self.pending is not None:
            shutil.rmtree(self.pending, ignore_errors=True)


def own_key(ssh_dir: Path | None = None) -> OwnKey:
    """This node's root key; where it has none, a new one (ed25519, no passphrase: a cron job
    cannot type one), pending until :meth:`OwnKey.keep`."""
    directory = ssh_dir or SSH_DIR
    for name in KEY_NAMES:
        public = directory / f"{name}.pub"
        if public.exists() and (directory / name).exists():
            return OwnKey(public.read_text().strip())
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    pending = Path(tempfile.mkdtemp(prefix=".retadm-new-key-", dir=directory))
    created = _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(pending / KEY_NAMES[0])])
    if created.returncode != 0:
        shutil.rmtree(pending, ignore_errors=True)
        raise KeyExchangeError(f"ssh-keygen could not create a key: {created.stderr.strip()}")
    return OwnKey((pending / f"{KEY_NAMES[0]}.pub").read_text().strip(), pending)


def own_host_keys(directory: Path | None = None) -> tuple[HostKey, ...]:
    """This node's host keys, as its sshd presents them to the partner."""
    found = sorted((directory or HOST_KEYS_DIR).glob(HOST_KEYS_GLOB))
    return parse_key_lines("".join(path.read_text() for path in found))


# The partner's part.  Arguments: this node's public key, then its host keys (type, blob
# pairs).  It checks everything first and changes nothing when a check fails (exit 3 with
# the reason); then it creates the partner's key where there is none, authorises ours and
# records our host keys under the address it sees us at; it prints its public key and that
# address after the mark.
_PARTNER_SCRIPT = r"""
set -eu
mark=$1 ours=$2; shift 2
seen=${SSH_CONNECTION%% *}
dir=$HOME/.ssh known=$HOME/.ssh/known_hosts authorized=$HOME/.ssh/authorized_keys
if [ -f "$known" ]; then
    recorded=$(ssh-keygen -F "$seen" -f "$known" 2>/dev/null | awk '!/^#/ { print $2, $3 }')
    offered=$(printf '%s %s\n' "$@")
    if [ -n "$recorded" ] && printf '%s\n' "$recorded" | grep -qvxF "$offered"; then
        echo "$mark refused $seen $known"
        exit 3
    fi
fi
umask 077
mkdir -p "$dir"
for name in id_ed25519 id_ecdsa id_rsa; do
    if [ -f "$dir/$name" ] && [ -f "$dir/$name.pub" ]; then own=$dir/$name.pub; break; fi
done
if [ -z "${own:-}" ]; then
    ssh-keygen -q -t ed25519 -N '' -f "$dir/id_ed25519" </dev/null
    own=$dir/id_ed25519.pub
    echo "$mark created"
fi
if ! grep -qxF "$ours" "$authorized" 2>/dev/null; then
    printf '%s\n' "$ours" >> "$authorized"
    echo "$mark authorized"
fi
while [ $# -ge 2 ]; do
    if ! ssh-keygen -F "$seen" -f "$known" 2>/dev/null | grep -qF " $1 $2"; then
        printf '%s %s %s\n' "$seen" "$1" "$2" >> "$known"
        echo "$mark known $1 $2"
    fi
    shift 2
done
echo "$mark key $(cat "$own")"
echo "$mark seen $seen"
"""

# Takes out what the partner's part added: the key line (first argument, empty when it was
# there before), the host key lines (type, blob pairs) under the address it saw.
_UNDO_SCRIPT = r"""
ours=$1 seen=$2; shift 2
authorized=$HOME/.ssh/authorized_keys known=$HOME/.ssh/known_hosts
if [ -n "$ours" ] && [ -f "$authorized" ]; then
    grep -vxF "$ours" "$authorized" > "$authorized.retadm" || true; mv "$authorized.retadm" "$authorized"
fi
while [ $# -ge 2 ]; do
    if [ -f "$known" ]; then grep -vxF "$seen $1 $2" "$known" > "$known.retadm" || true; mv "$known.retadm" "$known"; fi
    shift 2
done
"""


@dataclass(frozen=True)
class Installed:
    """What the exchange changed: for the closing lines and for taking it back."""

    our_key: str
    partner_key: str
    #: this node's address as the partner sees it (what it connects back to)
    seen_as: str
    created_here: bool
    created_there: bool
    #: (file, line) added here
    added_here: tuple[tuple[Path, str], ...]
    #: whether our key was added to the partner's authorized keys (not there before)
    authorized_there: bool
    #: our host keys the partner had not recorded before
    known_there: tuple[HostKey, ...]


class KeyExchange:
    """Installs keys both ways between this node and ``scanned.address`` (root on both)."""

    def __init__(self, scanned: ScannedKeys, ssh_dir: Path | None = None, host_keys_dir: Path | None = None):
        self.scanned = scanned
        self.address = scanned.address
        self.ssh_dir = ssh_dir or SSH_DIR
        self.host_keys_dir = host_keys_dir

    def install(self, password: str | None) -> Installed:
        """Run the partner's part, with ``password`` (None: over the key that works already),
        then this node's part.  Raises :class:`KeyExchangeError`; nothing is changed on the
        partner before the login succeeded and its checks passed."""
        host_keys = own_host_keys(self.host_keys_dir)
        if not host_keys:
            raise KeyExchangeError(f"this node has no ssh host key in {self.host_keys_dir or HOST_KEYS_DIR}")
        ours = own_key(self.ssh_dir)
        try:
            argv = ["sh", "-c", _PARTNER_SCRIPT, "sh", _MARK, ours.line,
                    *(part for key in host_keys for part in (key.type, key.blob))]
            output = self._session(shlex.join(argv), password)
            return self._finish(output, ours)
        finally:
            ours.discard()  # a key still pending was not taken

    def _finish(self, output: str, ours: OwnKey) -> Installed:
        said = [line.split(None, 1)[1] if " " in line else "" for line in output.splitlines()
                if line.startswith(_MARK)]
        refused = next((line.split()[1:] for line in said if line.startswith("refused ")), None)
        if refused is not None:
            as_seen, known = [*refused, "", ""][:2]
            raise KeyExchangeError(
                f"{self.address} already records another host key for this node ({as_seen}) in {known}; nothing "
                f"was changed — if this node was reinstalled, remove the old key there with "
                f"'ssh-keygen -R {as_seen}'")
        key = next((line.removeprefix("key ") for line in said if line.startswith("key ")), None)
        seen = next((line.removeprefix("seen ") for line in said if line.startswith("seen ")), None)
        if key is None or seen is None:
            raise KeyExchangeError(f"the key exchange with {self.address} did not complete: "
                                   f"{_last_line(output) or 'no answer'}")
        created_here = ours.keep(self.ssh_dir)
        added = self._install_here(key)
        known_there = parse_key_lines("\n".join(line.removeprefix("known ") for line in said
                                                if line.startswith("known ")))
        return Installed(ours.line, key, seen, created_here, "created" in said, added,
                         authorized_there="authorized" in said, known_there=known_there)

    def undo(self, installed: Installed) -> None:
        """Take out what :meth:`install` added on both sides (the keys it created stay: a key
        pair alone lets nobody in).  The partner's part first: it is reached with what was
        added here (its host key, our key there)."""
        if installed.authorized_there or installed.known_there:
            argv = ["sh", "-c", _UNDO_SCRIPT, "sh", installed.our_key if installed.authorized_there else "",
                    installed.seen_as, *(part for key in installed.known_there for part in (key.type, key.blob))]
            _run(["ssh", *self._options(batch=True), f"root@{self.address}", shlex.join(argv)], timeout=60)
        for path, line in installed.added_here:
            _remove_line(path, line)

    def _install_here(self, partner_key: str) -> tuple[tuple[Path, str], ...]:
        added = []
        authorized = self.ssh_dir / "authorized_keys"
        if _append_once(authorized, partner_key):
            added.append((authorized, partner_key))
        known = self.ssh_dir / "known_hosts"
        for key in self.scanned.keys:
            if key not in recorded_keys(self.address, known) and _append_once(known, key.line(self.address)):
                added.append((known, key.line(self.address)))
        return tuple(added)

    def _options(self, *, batch: bool, known_hosts: str | None = None) -> list[str]:
        options = {
            "ConnectTimeout": str(CONNECT_TIMEOUT),
            "StrictHostKeyChecking": "yes",
            "ControlMaster": "no",
            "ControlPath": "none",
        }
        if batch:
            options["BatchMode"] = "yes"
        else:  # the password, once; never a key (ours is refused, or we would not be here)
            options |= {"PubkeyAuthentication": "no", "NumberOfPasswordPrompts": "1",
                        "PreferredAuthentications": "keyboard-interactive,password"}
        if known_hosts is not None:
            options |= {"UserKnownHostsFile": known_hosts, "GlobalKnownHostsFile": "/dev/null"}
        return [f"-o{key}={value}" for key, value in options.items()]

    def _session(self, command: str, password: str | None) -> str:
        """The partner's output of ``command``, run as root over ssh (with ``password``, against
        exactly the confirmed host keys)."""
        with tempfile.NamedTemporaryFile("w", prefix="retadm-known-", suffix=".hosts") as confirmed:
            confirmed.write("".join(key.line(self.address) + "\n" for key in self.scanned.keys))
            confirmed.flush()
            argv = ["ssh", *self._options(batch=password is None, known_hosts=confirmed.name),
                    f"root@{self.address}", command]
            if password is None:
                result = _run(argv, timeout=120)
                if result.returncode != 0 and _MARK not in result.stdout:
                    raise KeyExchangeError(f"ssh to {self.address} failed: {_last_line(result.stderr)}")
                return result.stdout
            return self._with_password(argv, password)

    def _with_password(self, argv: list[str], password: str) -> str:
        child = pexpect.spawn(argv[0], argv[1:], encoding="utf-8", codec_errors="replace", timeout=60,
                              env=safe_environ())
        try:
            asked = child.expect([_PASSWORD_PROMPT, pexpect.EOF, pexpect.TIMEOUT], timeout=CONNECT_TIMEOUT * 3)
            if asked != 0:
                said = _last_line(child.before or "")
                if "Permission denied" in said:
                    raise KeyExchangeError(f"{self.address} accepts no password for root ({said}); run "
                                           f"'options ssh.allow.root on' there, then again")
                raise KeyExchangeError(f"ssh to {self.address} failed: {said or 'no answer'}")
            child.sendline(password)
            child.expect([pexpect.EOF], timeout=120)
            output = (child.before or "").replace("\r\n", "\n")
        except pexpect.TIMEOUT:
            raise KeyExchangeError(f"{self.address} stopped answering during the key exchange") from None
        finally:
            child.close(force=True)
        if _MARK not in output:
            said = _last_line(output)
            if "Permission denied" in said:
                raise KeyExchangeError(f"{self.address} refused the password (wrong password, or root may not "
                                       "log in with a password there: 'options ssh.allow.root on' on it)")
            raise KeyExchangeError(f"ssh to {self.address} failed: {said or 'no answer'}")
        return output


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _append_once(path: Path, line: str) -> bool:
    """Append ``line`` to ``path`` (created private) unless it is there; whether it was added."""
    existing = path.read_text().splitlines() if path.exists() else []
    if line in existing:
        return False
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(path, "a", opener=lambda p, flags: os.open(p, flags, 0o600)) as file:
        if existing and not path.read_text().endswith("\n"):
            file.write("\n")
        file.write(line + "\n")
    return True


def _remove_line(path: Path, line: str) -> None:
    if path.exists():
        kept = [existing for existing in path.read_text().splitlines() if existing != line]
        path.write_text("".join(kept_line + "\n" for kept_line in kept))

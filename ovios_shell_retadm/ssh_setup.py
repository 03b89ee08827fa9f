"""``retadm init``'s offer, on a terminal, to set up the passwordless ssh it needs (the
guide's Step 1) when one direction is missing: the questions; the work is
:mod:`.key_exchange`'s."""

from __future__ import annotations

import getpass
from collections.abc import Callable

from . import key_exchange, services
from .exit_status import CommandError
from .hosts import SshHost
from .replication import preflight

#: asks a question; returns the answer (the default for an empty one)
Ask = Callable[[str, str], str]


class SshSetup:
    def __init__(self, ask: Ask, out: Callable[[str], None],
                 read_password: Callable[[str], str] = getpass.getpass):
        self.ask = ask
        self.out = out
        self.read_password = read_password

    def offer(self, address: str, missing: preflight.NoPasswordlessSsh) -> tuple[SshHost, str]:
        """Ask, then exchange keys with ``address`` and check both directions: the destination
        and this node's address as it sees it, as :func:`preflight.reverse_ssh` found them.
        Raises :class:`CommandError` (one line; nothing left half-installed) when it was
        declined or did not work."""
        self.out(f"{missing.message}.")
        how = "" if missing.forward else f"; asks for {address}'s root password once"
        if not _yes(self.ask(f"Set up passwordless SSH both ways now (keys{how})? (yes/no) [yes]: ", "yes")):
            raise CommandError(f"passwordless SSH not set up; nothing was changed — {missing.hint}")
        _root_may_log_in_here()
        try:
            scanned = key_exchange.scan(address)
            self._confirm(scanned)
            password = None if missing.forward else self._password(address)
            exchange = key_exchange.KeyExchange(scanned)
            installed = exchange.install(password)
        except key_exchange.KeyExchangeError as exc:
            raise CommandError(str(exc)) from exc
        try:
            host = preflight.destination(address)
            source = preflight.reverse_ssh(host)
        except preflight.PreflightError as exc:
            exchange.undo(installed)
            raise CommandError(f"passwordless SSH still does not work after the key exchange ({exc.message}); "
                               "the keys it added were taken out again") from exc
        created = [where for where, made in (("here", installed.created_here),
                                             (f"on {address}", installed.created_there)) if made]
        self.out(f"[+] Passwordless SSH works both ways between this node and {address}"
                 + (f" (a new key {' and '.join(created)})." if created else "."))
        return host, source

    def _confirm(self, scanned: key_exchange.ScannedKeys) -> None:
        """A host key this node does not know yet is shown and must be confirmed (a changed one
        was refused by :func:`key_exchange.scan`)."""
        if scanned.known:
            return
        self.out(f"{scanned.address} presents these host keys (compare them on {scanned.address} with "
                 "'ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub'):")
        for fingerprint in scanned.fingerprints:
            self.out(f"  {fingerprint}")
        if not _yes(self.ask(f"Are these the host keys of {scanned.address}? (yes/no) [no]: ", "no")):
            raise CommandError(f"the host keys of {scanned.address} were not confirmed; nothing was changed")

    def _password(self, address: str) -> str:
        try:
            password = self.read_password(f"root password of {address} (used once, never stored): ")
        except (EOFError, KeyboardInterrupt):
            raise CommandError("cancelled; nothing was changed") from None
        if not password:
            raise CommandError("no password given; nothing was changed")
        return password


def _yes(answer: str) -> bool:
    return answer.strip().lower() in ("y", "yes")


def _root_may_log_in_here() -> None:
    """The partner logs in here as root to replicate back: sshd must let it (with a key)."""
    if services.root_login_policy() == "no":
        raise CommandError("root may not log in to this node over SSH, so the partner could never reach it: "
                           "'options ssh.allow.root on' here first; nothing was changed")

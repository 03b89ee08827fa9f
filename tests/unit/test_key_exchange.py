"""The key exchange's local parts, with the real ssh-keygen (the exchange itself, against a
real sshd with a real root password: tests/fuse_lab/test_wizard.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ovios_shell_retadm import key_exchange
from ovios_shell_retadm.key_exchange import HostKey, KeyExchangeError, own_key, parse_key_lines, recorded_keys

ED = HostKey("ssh-ed25519", "AAAAC3NzaC1lZDI1NTE5AAAAIEd")
EC = HostKey("ecdsa-sha2-nistp256", "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY")

needs_keygen = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen (openssh-client) missing")


@pytest.mark.parametrize("text, keys", [
    # ssh-keyscan's output, a known_hosts line with a comment, a .pub file
    (f"# dst:22 SSH-2.0-OpenSSH_9.2\ndst {ED.type} {ED.blob}\n", (ED,)),
    (f"dst,10.0.0.2 {EC.type} {EC.blob} a comment\n\n{ED.type} {ED.blob} root@dst\n", (EC, ED)),
    # hashed names; markers and repeats are not keys to trust
    (f"|1|abc=|def= {ED.type} {ED.blob}\n@revoked * {EC.type} {EC.blob}\ndst {ED.type} {ED.blob}\n", (ED,)),
    ("garbage\n", ()),
])
def test_parse_key_lines(text, keys):
    assert parse_key_lines(text) == keys


@needs_keygen
def test_a_new_key_waits_until_kept(tmp_path: Path):
    ssh_dir = tmp_path / ".ssh"
    made = own_key(ssh_dir)
    assert made.pending is not None and made.line.startswith("ssh-ed25519 ")
    assert not (ssh_dir / "id_ed25519").exists()  # nothing in place before the partner took it
    assert made.keep(ssh_dir)
    assert (ssh_dir / "id_ed25519.pub").read_text().strip() == made.line
    assert (ssh_dir / "id_ed25519").stat().st_mode & 0o077 == 0
    assert [p.name for p in ssh_dir.iterdir() if p.name.startswith(".retadm")] == []
    # the next exchange uses it
    again = own_key(ssh_dir)
    assert (again.line, again.pending, again.keep(ssh_dir)) == (made.line, None, False)


@needs_keygen
def test_a_discarded_key_leaves_nothing(tmp_path: Path):
    ssh_dir = tmp_path / ".ssh"
    made = own_key(ssh_dir)
    made.discard()
    assert list(ssh_dir.iterdir()) == []


@needs_keygen
def test_recorded_keys_reads_hashed_and_plain_names(tmp_path: Path):
    known = tmp_path / "known_hosts"
    known.write_text(f"dst {ED.type} {ED.blob}\nother {EC.type} {EC.blob}\n")
    assert key_exchange._run(["ssh-keygen", "-H", "-f", str(known)]).returncode == 0  # hash the names
    assert "dst" not in known.read_text()
    assert recorded_keys("dst", known) == (ED,)
    assert recorded_keys("nobody", known) == ()
    assert recorded_keys("dst", tmp_path / "missing") == ()


def test_append_once_and_remove(tmp_path: Path):
    path = tmp_path / "authorized_keys"
    path.write_text("first")  # no newline at the end: the new line must not be glued to it
    assert key_exchange._append_once(path, "second")
    assert not key_exchange._append_once(path, "second")
    assert path.read_text() == "first\nsecond\n"
    key_exchange._remove_line(path, "second")
    assert path.read_text() == "first\n"


@needs_keygen
def test_an_unreachable_partner_is_one_line(monkeypatch):
    monkeypatch.setattr(key_exchange, "CONNECT_TIMEOUT", 1)
    with pytest.raises(KeyExchangeError, match=r"^192\.0\.2\.1 does not answer on the ssh port"):
        key_exchange.scan("192.0.2.1")  # TEST-NET-1: never routed

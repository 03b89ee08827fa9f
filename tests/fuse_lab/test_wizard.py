"""The ``retadm init`` wizard (the guide's section 4) on the lab, driven like a person would.

Interactive runs are an ``ovios-shell`` inside node ``src`` on a pseudo-terminal
(pexpect): the prompts, the arrow-key dataset list, Ctrl-C and Ctrl-D, and what the
full replication leaves on ``dst``.  One-shot runs (``ovios-shell retadm init …`` with
no terminal) must refuse every bad answer with one line on stderr, a non-zero status
and no change on either node; a missing passwordless SSH direction must be named
with the commands that set it up.
"""

from __future__ import annotations

import re
import shlex
import uuid
from collections.abc import Iterator

import pexpect
import pytest

from ovios_lab import Lab
from ovios_lab.fuse_lab import node_env
from ovios_shell_retadm.replication.preflight import TERMINAL_OFFER

from replication_helpers import sh, shell, status, wait_for

PROMPT = "ovios-shell ➤"  # prompt_toolkit draws the trailing space as cursor movement
DOWN = "\x1b[B"
STARTED = "[+] Full replication started in background."
MONITOR = "Monitor /var/log/ovios/repl.log"
CANCELLED = "retadm init: cancelled; nothing was changed"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
#: a file the hostile names below would create if anything ran them through a shell
PWNED = f"/tmp/ovios-pwned-{uuid.uuid4().hex[:12]}"


# -- helpers ------------------------------------------------------------------------------


def wait_idle(lab: Lab, dataset: str) -> dict:
    """The task once it has left running_full, which must have ended idle."""
    row = wait_for(lab, dataset)
    assert row["status"] == "idle", row
    return row


def datasets(lab: Lab, node: str) -> list[str]:
    """Every dataset and snapshot on a node."""
    return sh(lab, node, "zfs list -H -o name -t all").stdout.split()


def zfs_value(lab: Lab, node: str, prop: str, dataset: str) -> str:
    return sh(lab, node, f"zfs get -H -o value {prop} {dataset}").stdout.strip()


def assert_read_only(lab: Lab, dataset: str) -> None:
    """A write into the replica fails as read-only (zfs-fuse shows a mounted readonly=on
    filesystem as ``off temporary``, so the property itself proves nothing)."""
    mountpoint = zfs_value(lab, "dst", "mountpoint", dataset)
    write = sh(lab, "dst", f"touch {shlex.quote(mountpoint)}/written-by-test", check=False)
    assert write.returncode != 0
    assert "Read-only file system" in write.stderr, write.stderr


def state(lab: Lab, extra: str = "") -> tuple:
    """What a refused init must leave alone: both nodes' datasets and snapshots (and what
    ``extra`` prints on each), the tasks."""
    script = "zfs list -H -o name -t all" + (f"; {extra}" if extra else "")
    return (*(sh(lab, node, script).stdout for node in lab.nodes), sorted(status(lab)))


def one_line(text: str) -> str:
    lines = text.splitlines()
    assert len(lines) == 1, f"expected one line, got {lines!r}"
    assert "Traceback" not in text
    return lines[0]


def plain(text: str) -> str:
    return _ANSI.sub("", text).replace("\r", "")


def _text(value: object) -> str:
    """What pexpect read before or matched (text: the child is spawned with an encoding)."""
    assert isinstance(value, str), value
    return value


class Session:
    """An interactive ovios-shell inside a lab node, on a pseudo-terminal."""

    def __init__(self, lab: Lab, node: str = "src"):
        argv = lab.exec_argv(node, ["ovios-shell"])
        env = node_env()
        env.update(PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm", NO_COLOR="1")
        self.child = pexpect.spawn(argv[0], argv[1:], env=env, cwd="/", encoding="utf-8",
                                   timeout=30, dimensions=(40, 200))
        self.prompt()

    def prompt(self) -> str:
        """Wait for the shell's prompt; returns what was printed before it (plain text)."""
        self.child.expect_exact(PROMPT)
        return plain(_text(self.child.before))

    def expect(self, text: str, timeout: float = 30) -> str:
        self.child.expect_exact(text, timeout=timeout)
        return plain(_text(self.child.before))

    def command(self, line: str) -> str:
        """Run a command line at the shell's prompt; returns its output (plain text)."""
        self.child.sendline(line)
        self.child.expect_exact("\r\n")  # the line is accepted (before: its redraw)
        return self.prompt()

    def answer(self, text: str) -> None:
        self.child.send(text + "\r")

    def start_init(self, dest: str = "dst") -> list[str]:
        """``retadm init`` up to the dataset list; returns the datasets offered."""
        self.child.sendline("retadm init")
        self.expect("Destination Host (IP/Name):")
        self.answer(dest)
        self.expect("Select the dataset to replicate")
        # the first entry, then whatever else the terminal shows until it is quiet
        self.child.expect(r"1\. \S+")
        shown = _text(self.child.after)
        self.child.expect(pexpect.TIMEOUT, timeout=0.7)
        return re.findall(r"\d+\. (\S+)", plain(shown + _text(self.child.before)))

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)


@pytest.fixture
def session(fresh_lab: Lab) -> Iterator[Session]:
    s = Session(fresh_lab)
    yield s
    s.close()


# -- interactive wizard ---------------------------------------------------------------------


def test_wizard_first_dataset_with_properties(session: Session, fresh_lab: Lab) -> None:
    """The guide's run: Enter picks data/smbvol, the default name, properties yes; the user
    property set before init arrives on dst; the replica is read-only; afterwards the list
    no longer offers data/smbvol."""
    lab = fresh_lab
    sh(lab, "src", "zfs set ovios:smb.share=yes data/smbvol")

    assert session.start_init() == ["data/smbvol", "esx/lun01"]  # no pools
    session.answer("")  # Enter on the first entry
    session.expect("Remote Pool Name:")
    session.answer("repl")
    session.expect("Remote Dataset Name [smbvol]:")
    session.answer("")  # the default
    session.expect("Replicate properties? (yes/no) [no]:")
    session.answer("yes")
    session.expect("Restore points to keep [hourly=24,daily=7,weekly=4]:")
    session.answer("")  # the default
    session.expect(STARTED)
    session.expect(MONITOR)
    assert "Traceback" not in session.prompt()

    row = wait_idle(lab, "data/smbvol")
    assert (row["destination"], row["remote_dataset"], row["properties"]) == ("dst", "repl/smbvol", True)
    assert row["retention"] == "hourly=24,daily=7,weekly=4"
    assert "repl/smbvol" in datasets(lab, "dst")
    assert zfs_value(lab, "dst", "ovios:smb.share", "repl/smbvol") == "yes"
    assert_read_only(lab, "repl/smbvol")
    assert sh(lab, "dst", "cat /repl/smbvol/hello.txt").stdout == sh(lab, "src", "cat /data/smbvol/hello.txt").stdout

    # a replicated dataset is no longer offered; Ctrl-C there leaves the shell alive
    assert session.start_init() == ["esx/lun01"]
    session.child.sendintr()
    assert session.prompt().count(CANCELLED) == 1
    assert list(status(lab)) == ["data/smbvol"]


def test_wizard_arrow_key_picks_the_second_dataset_without_properties(session: Session, fresh_lab: Lab) -> None:
    """Down-arrow then Enter picks esx/lun01 (and only it is replicated), under a name typed
    at the prompt; properties no: the user property stays behind."""
    lab = fresh_lab
    sh(lab, "src", "zfs set ovios:smb.share=yes esx/lun01")

    assert session.start_init() == ["data/smbvol", "esx/lun01"]
    session.child.send(DOWN)  # one write: an escape sequence split in two is two keys
    session.child.send("\r")
    session.expect("Remote Pool Name:")
    session.answer("repl")
    session.expect("Remote Dataset Name [lun01]:")  # the default follows the pick
    session.answer("lun01-copy")
    session.expect("Replicate properties? (yes/no) [no]:")
    session.answer("no")
    session.expect("Restore points to keep [hourly=24,daily=7,weekly=4]:")
    session.answer("daily = 14,last=2")
    session.expect(STARTED)
    session.expect(MONITOR)
    session.prompt()

    row = wait_idle(lab, "esx/lun01")
    assert list(status(lab)) == ["esx/lun01"]
    assert (row["remote_dataset"], row["properties"], row["retention"]) == ("repl/lun01-copy", False, "last=2,daily=14")
    on_dst = datasets(lab, "dst")
    assert "repl/lun01-copy" in on_dst and "repl/smbvol" not in on_dst
    assert zfs_value(lab, "dst", "ovios:smb.share", "repl/lun01-copy") == "-"
    assert_read_only(lab, "repl/lun01-copy")


def test_tab_completes_the_command_line(session: Session, fresh_lab: Lab) -> None:
    """In the shell: the datasets init can take, the partners --dest knows, and the pools of
    the partner --dest names (asked over ssh)."""
    session.child.send("retadm init \t")
    session.expect("data/smbvol")  # the menu of both
    session.expect("esx/lun01")
    session.child.send("\x15")  # Ctrl-U: clear the line
    session.child.send("retadm init e\t")
    session.expect("sx/lun01")  # the one left: completed in place
    session.child.send(" --dest d\t")
    session.expect("st")
    session.child.send(" --remote-pool \t")
    session.expect("repl")
    # the line as completed runs: each completion above was the whole word, nothing else
    session.child.send(" --properties no --retention last=2\r")
    session.expect("Remote Dataset Name [lun01]:")  # the one answer not on the line
    session.answer("")
    session.expect(STARTED)
    session.prompt()
    row = wait_idle(fresh_lab, "esx/lun01")
    assert (row["destination"], row["remote_dataset"], row["properties"]) == ("dst", "repl/lun01", False)


def test_tab_completes_the_wizards_answers(session: Session, fresh_lab: Lab) -> None:
    """The wizard's text prompts complete like the command line: the destination, then its
    pools, then yes or no; answers made of nothing but a letter and Tab."""
    session.child.sendline("retadm init")
    session.expect("Destination Host (IP/Name):")
    session.child.send("d\t")
    session.expect("st")
    session.child.send("\r")
    session.expect("Select the dataset to replicate")
    session.child.expect(pexpect.TIMEOUT, timeout=0.7)
    session.child.send("\r")  # the first: data/smbvol
    session.expect("Remote Pool Name:")
    session.child.send("\t")
    session.expect("repl")
    session.child.send("\r")
    session.expect("Remote Dataset Name [smbvol]:")
    session.answer("")
    session.expect("Replicate properties? (yes/no) [no]:")
    session.child.send("y\t")
    session.expect("es")
    session.child.send("\r")
    session.expect("Restore points to keep [hourly=24,daily=7,weekly=4]:")
    session.answer("")
    session.expect(STARTED)
    session.prompt()
    row = wait_idle(fresh_lab, "data/smbvol")
    assert (row["destination"], row["remote_dataset"], row["properties"]) == ("dst", "repl/smbvol", True)


def test_reset_without_a_dataset_offers_the_pick_list(session: Session, fresh_lab: Lab) -> None:
    """The usage line says [dataset]: on a terminal, reset without one picks from the tasks."""
    init = shell(fresh_lab, "src", "retadm", "init", "data/smbvol", "--dest", "dst", "--remote-pool", "repl")
    assert init.returncode == 0, init.stderr
    wait_idle(fresh_lab, "data/smbvol")
    session.child.sendline("retadm reset")
    session.expect("Select the dataset to reset")
    session.child.expect(pexpect.TIMEOUT, timeout=0.7)
    session.child.send("\r")  # the only one
    shown = session.expect("Reset this task? (yes/no) [no]:")
    assert "reset data/smbvol -> dst:repl/smbvol (the replicated data stays):" in shown, shown
    session.answer("no")
    assert "retadm reset: not confirmed; nothing was changed" in session.prompt()
    assert list(status(fresh_lab)) == ["data/smbvol"]


def _walk_to(session: Session, stage: str) -> None:
    """Answer the wizard up to (not including) the prompt ``stage``."""
    if stage == "dest":
        session.child.sendline("retadm init")
        session.expect("Destination Host (IP/Name):")
        return
    session.start_init()
    if stage == "list":
        return
    session.answer("")
    session.expect("Remote Pool Name:")
    if stage == "pool":
        return
    session.answer("repl")
    session.expect("Remote Dataset Name [smbvol]:")
    if stage == "name":
        return
    session.answer("")
    session.expect("Replicate properties? (yes/no) [no]:")
    if stage == "properties":
        return
    session.answer("")
    session.expect("Restore points to keep [hourly=24,daily=7,weekly=4]:")


@pytest.mark.parametrize("key", ["ctrl-c", "ctrl-d"])
def test_cancel_at_every_prompt_changes_nothing(session: Session, fresh_lab: Lab, key: str) -> None:
    """Ctrl-C (every prompt and the list) and Ctrl-D (every text prompt) cancel the wizard
    with one line, create nothing, and the same shell goes on working."""
    before = state(fresh_lab)
    stages = ["dest", "list", "pool", "name", "properties", "retention"] if key == "ctrl-c" else \
        ["dest", "pool", "name", "properties", "retention"]  # choice() has no Ctrl-D binding: the list ignores it
    for stage in stages:
        _walk_to(session, stage)
        if key == "ctrl-c":
            session.child.sendintr()
        else:
            session.child.sendeof()
        printed = session.prompt()
        lines = [line.strip() for line in printed.splitlines() if line.strip()]
        assert lines.count(CANCELLED) == 1, (stage, lines)
        assert lines[-1] == CANCELLED, (stage, lines)
        assert "Traceback" not in printed and "error" not in printed.lower(), (stage, printed)
    assert session.child.isalive()
    assert "(no replication tasks" in session.command("retadm status")
    assert state(fresh_lab) == before


# -- passwordless SSH missing -----------------------------------------------------------------


@pytest.fixture
def keys_moved_away(fresh_lab: Lab) -> Iterator:
    """Move a node's /root/.ssh/authorized_keys away; put it back afterwards, whatever happens."""
    moved = []

    def move(node: str) -> None:
        sh(fresh_lab, node, "mv /root/.ssh/authorized_keys /root/.ssh/authorized_keys.away")
        moved.append(node)

    yield move
    for node in moved:
        sh(fresh_lab, node, "mv /root/.ssh/authorized_keys.away /root/.ssh/authorized_keys")


def _init_smbvol(lab: Lab):
    return shell(lab, "src", "retadm", "init", "data/smbvol", "--dest", "dst", "--remote-pool", "repl")


def test_no_passwordless_ssh_to_the_destination(fresh_lab: Lab, keys_moved_away) -> None:
    before = state(fresh_lab)
    keys_moved_away("dst")
    result = _init_smbvol(fresh_lab)
    assert result.returncode == 1 and result.stdout == ""
    line = one_line(result.stderr)
    src = fresh_lab.node_address("src")
    assert line.startswith("retadm init: passwordless SSH to dst is not set up"), line
    # the guide's Step 1, as commands to run on each side
    assert "on this node: 'options ssh.allow.root on', 'ssh-keygen' (if no key yet), 'ssh-copy-id dst'" in line
    assert f"on dst: 'options ssh.allow.root on', 'ssh-keygen', 'ssh-copy-id {src}'" in line
    assert line.endswith(TERMINAL_OFFER), line
    assert state(fresh_lab) == before


def test_no_passwordless_ssh_back_to_the_source(fresh_lab: Lab, keys_moved_away) -> None:
    before = state(fresh_lab)
    keys_moved_away("src")
    result = _init_smbvol(fresh_lab)
    assert result.returncode == 1 and result.stdout == ""
    line = one_line(result.stderr)
    src = fresh_lab.node_address("src")
    # the failing direction is named (not mistaken for a refusal by dst), with the fix
    assert line.startswith(f"retadm init: passwordless SSH from dst back to {src} does not work ("), line
    assert "Permission denied" in line
    assert line.endswith(f"on dst run: ssh-copy-id root@{src} {TERMINAL_OFFER}"), line
    assert state(fresh_lab) == before


# -- passwordless SSH set up on the spot (the guide's Step 1) --------------------------------

#: dst's root password in the tests below (a real one: chpasswd, then sshd checks it)
PASSWORD = f"Pw-{uuid.uuid4().hex[:10]}"
SET_UP = "Set up passwordless SSH both ways now (keys; asks for dst's root password once)? (yes/no) [yes]:"
CONFIRM = "Are these the host keys of dst? (yes/no) [no]:"
ASK_PASSWORD = "root password of dst (used once, never stored):"
#: what the exchange may change: root's keys on both nodes
SSH_FILES = "ls -a /root/.ssh; cat /root/.ssh/authorized_keys /root/.ssh/known_hosts 2>/dev/null || true"


@pytest.fixture
def strangers(fresh_lab: Lab) -> Lab:
    """Two nodes as a new administrator finds them: neither trusts the other (no authorized
    keys, no known hosts), dst has no root key and a root password, and both have done the
    guide's 'options ssh.allow.root on' (the next reset puts the lab's keys back)."""
    for node in fresh_lab.nodes:
        sh(fresh_lab, node, "rm -f /root/.ssh/authorized_keys /root/.ssh/known_hosts")
        assert shell(fresh_lab, node, "options", "ssh.allow.root", "on").returncode == 0
    sh(fresh_lab, "dst", "rm -f /root/.ssh/id_ed25519 /root/.ssh/id_ed25519.pub")
    fresh_lab.exec("dst", ["chpasswd"], input=f"root:{PASSWORD}\n")
    return fresh_lab


def _offered_the_set_up(session: Session) -> str:
    """``retadm init`` to dst, up to the question; returns what was printed before it."""
    session.child.sendline("retadm init")
    session.expect("Destination Host (IP/Name):")
    session.answer("dst")
    return session.expect(SET_UP)


def _answered_with(session: Session, password: str) -> str:
    """The offer taken, dst's host keys confirmed, ``password`` given: what was printed up to
    the shell's next prompt."""
    _offered_the_set_up(session)
    session.answer("yes")
    session.expect(CONFIRM)
    session.answer("yes")
    session.expect(ASK_PASSWORD)
    session.answer(password)
    return session.prompt()


def _fingerprint(lab: Lab) -> str:
    """dst's ed25519 host key fingerprint, as the administrator reads it on dst."""
    return sh(lab, "dst", "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[1]


def _ssh_state(lab: Lab) -> tuple[str, ...]:
    return tuple(sh(lab, node, SSH_FILES).stdout for node in lab.nodes)


def test_step_one_on_the_spot_then_the_wizard_goes_on(session: Session, strangers: Lab) -> None:
    """The whole walk on nodes that do not trust each other: the offer, dst's host key shown
    and confirmed, the password asked once without echo, keys both ways (dst's made on the
    spot), then the wizard's own questions and the full send."""
    lab = strangers
    printed = _offered_the_set_up(session)
    assert "passwordless SSH to dst is not set up" in printed, printed
    session.answer("")  # yes, the default
    shown = session.expect(CONFIRM)
    assert _fingerprint(lab) in shown, shown
    session.answer("yes")
    session.expect(ASK_PASSWORD)
    session.answer(PASSWORD)
    done = session.expect("[+] Passwordless SSH works both ways between this node and dst (a new key on dst).")
    assert PASSWORD not in done  # not echoed
    session.expect("Select the dataset to replicate")
    session.answer("")
    session.expect("Remote Pool Name:")
    session.answer("repl")
    session.expect("Remote Dataset Name [smbvol]:")
    session.answer("")
    session.expect("Replicate properties? (yes/no) [no]:")
    session.answer("")
    session.expect("Restore points to keep [hourly=24,daily=7,weekly=4]:")
    session.answer("")
    session.expect(STARTED)
    assert "Traceback" not in session.prompt()
    wait_idle(lab, "data/smbvol")

    # both directions work with keys alone, and the host keys were recorded, not skipped
    src = lab.node_address("src")
    batch = "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes root@{} true"
    assert sh(lab, "src", batch.format("dst"), check=False).returncode == 0
    assert sh(lab, "dst", batch.format(src), check=False).returncode == 0
    # the password is nowhere: not in a log, a file of ours or root's ssh files
    for node in lab.nodes:
        found = sh(lab, node, f"grep -rlF {PASSWORD} /var/log /etc/ovios /root/.ssh /run/ovios", check=False)
        assert found.stdout == "", (node, found.stdout)

    # keys work both ways: doctor says the password door is still open, and how to close it
    doctor = shell(lab, "src", "retadm", "doctor", "data/smbvol").stdout
    assert ("WARN  root login: root may still log in with a password (here and dst) although keys work both ways"
            in doctor), doctor
    assert "'options ssh.allow.root keys' on here and dst" in doctor, doctor
    for node in lab.nodes:
        assert shell(lab, node, "options", "ssh.allow.root", "keys").returncode == 0
    assert "OK    root login: keys only" in shell(lab, "src", "retadm", "doctor", "data/smbvol").stdout


def test_a_wrong_password_changes_nothing(session: Session, strangers: Lab) -> None:
    lab = strangers
    before = _ssh_state(lab)
    printed = [line.strip() for line in _answered_with(session, "not-" + PASSWORD).splitlines() if line.strip()]
    assert printed[-1] == ("retadm init: dst refused the password (wrong password, or root may not log in with "
                           "a password there: 'options ssh.allow.root on' on it)"), printed
    assert _ssh_state(lab) == before  # no key made, none authorised, no host key recorded
    assert status(lab) == {}


def test_root_login_with_keys_only_refuses_the_password(session: Session, strangers: Lab) -> None:
    """dst allows root with a key only ('keys'): the password, right as it is, is refused."""
    lab = strangers
    assert shell(lab, "dst", "options", "ssh.allow.root", "keys").returncode == 0
    before = _ssh_state(lab)
    printed = _answered_with(session, PASSWORD)
    assert "retadm init: dst refused the password" in printed and "'options ssh.allow.root on' on it" in printed
    assert _ssh_state(lab) == before


def test_a_host_key_not_confirmed_changes_nothing(session: Session, strangers: Lab) -> None:
    lab = strangers
    before = _ssh_state(lab)
    _offered_the_set_up(session)
    session.answer("yes")
    session.expect(CONFIRM)
    session.answer("")  # no, the default
    printed = session.prompt()
    assert "retadm init: the host keys of dst were not confirmed; nothing was changed" in printed, printed
    assert ASK_PASSWORD not in printed
    assert _ssh_state(lab) == before


def test_declining_the_offer_gives_the_commands(session: Session, strangers: Lab) -> None:
    lab = strangers
    before = _ssh_state(lab)
    _offered_the_set_up(session)
    session.answer("no")
    printed = [line.strip() for line in session.prompt().splitlines() if line.strip()]
    assert printed[-1].startswith("retadm init: passwordless SSH not set up; nothing was changed — on this node: "
                                  "'options ssh.allow.root on'"), printed
    assert _ssh_state(lab) == before


def test_a_partner_that_knows_another_key_for_this_node_changes_nothing(session: Session, strangers: Lab) -> None:
    """dst records a host key for src's address that is not src's (src reinstalled, or someone
    in between): the exchange stops before anything is changed, on either side."""
    lab = strangers
    src = lab.node_address("src")
    sh(lab, "dst", f"echo \"{src} $(cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub)\" > /root/.ssh/known_hosts")
    before = _ssh_state(lab)
    printed = [line.strip() for line in _answered_with(session, PASSWORD).splitlines() if line.strip()]
    assert printed[-1] == (f"retadm init: dst already records another host key for this node ({src}) in "
                           "/root/.ssh/known_hosts; nothing was changed — if this node was reinstalled, remove the "
                           f"old key there with 'ssh-keygen -R {src}'"), printed
    assert _ssh_state(lab) == before


def test_a_changed_host_key_is_refused_not_offered(session: Session, fresh_lab: Lab) -> None:
    """src records another key for dst than dst shows: never a key exchange over it."""
    lab = fresh_lab
    sh(lab, "src", "key=$(cut -d' ' -f2 /etc/ssh/ssh_host_ed25519_key.pub); "
                   "sed -i \"s|ssh-ed25519 .*|ssh-ed25519 $key|\" /root/.ssh/known_hosts")
    before = _ssh_state(lab)
    session.child.sendline("retadm init")
    session.expect("Destination Host (IP/Name):")
    session.answer("dst")
    printed = session.prompt()
    assert "retadm init: dst: host key CHANGED, refusing to connect" in printed, printed
    assert "Set up passwordless SSH" not in printed
    assert _ssh_state(lab) == before


def test_only_the_way_back_missing_needs_no_password(session: Session, fresh_lab: Lab) -> None:
    """src reaches dst with its key, dst cannot reach back: the keys go over the working
    connection, and no password is asked."""
    lab = fresh_lab
    sh(lab, "src", "rm /root/.ssh/authorized_keys")
    session.child.sendline("retadm init")
    session.expect("Destination Host (IP/Name):")
    session.answer("dst")
    printed = session.expect("Set up passwordless SSH both ways now (keys)? (yes/no) [yes]:")
    assert f"passwordless SSH from dst back to {lab.node_address('src')} does not work" in printed
    session.answer("yes")
    session.expect("[+] Passwordless SSH works both ways between this node and dst.")
    session.expect("Select the dataset to replicate")
    session.child.sendintr()
    assert CANCELLED in session.prompt()
    assert sh(lab, "dst", f"ssh -o BatchMode=yes root@{lab.node_address('src')} true", check=False).returncode == 0


# -- one-shot refusals ------------------------------------------------------------------------


#: besides the datasets: repl/taken (same dataset, not made read-only, same file) and no PWNED
WATCH = (f"if zfs list repl/taken >/dev/null 2>&1; then zfs get -H -p -o value guid,readonly repl/taken; "
         f"cat /repl/taken/keep.txt; fi; test ! -e {PWNED} || echo PWNED")


class Refusals:
    """The lab the refusals run on, and what they must all leave as it is."""

    def __init__(self, lab: Lab):
        self.lab = lab
        self.state = state(lab, WATCH)
        assert "PWNED" not in "".join(self.state[:2])
        assert "mine" in self.state[1]


@pytest.fixture(scope="module")
def refusals(lab: Lab) -> Refusals:
    """esx/lun01 replicated (for 'already replicated') and repl/taken on dst, with a file."""
    lab.reset()
    result = shell(lab, "src", "retadm", "init", "esx/lun01", "--dest", "dst", "--remote-pool", "repl")
    assert result.returncode == 0, result.stderr
    wait_idle(lab, "esx/lun01")
    sh(lab, "dst", "zfs create repl/taken && echo mine > /repl/taken/keep.txt")
    return Refusals(lab)


HOSTILE = [f"data/x;touch {PWNED}", f"$(touch {PWNED})", "data/with space",
           "data/it's", 'data/"quoted"', f"data/x\n touch {PWNED}"]
REFUSALS = {
    # id: (argv after 'retadm init', exit status, what the line says)
    "missing-dest": (["data/smbvol", "--remote-pool", "repl"], 2, "--dest is required when there is no terminal"),
    "missing-dataset": (["--dest", "dst", "--remote-pool", "repl"], 2, "the dataset is required"),
    "unknown-remote-pool": (["data/smbvol", "--dest", "dst", "--remote-pool", "nopool"], 1, "dst has no pool 'nopool'"),
    "remote-exists": (["data/smbvol", "--dest", "dst", "--remote-pool", "repl", "--remote-name", "taken"], 1,
                      "repl/taken already exists on dst; retadm never overwrites it"),
    "remote-parent-missing": (["data/smbvol", "--dest", "dst", "--remote-pool", "repl", "--remote-name", "a/b"],
                              1, "repl/a does not exist on dst"),
    "source-missing": (["data/nothere", "--dest", "dst", "--remote-pool", "repl"], 1,
                       "dataset data/nothere does not exist"),
    "pool-as-dataset": (["data", "--dest", "dst", "--remote-pool", "repl"], 1, "data is a pool"),
    "already-replicated": (["esx/lun01", "--dest", "dst", "--remote-pool", "repl"], 1,
                           "esx/lun01 is already replicated"),
    "unresolvable-dest": (["data/smbvol", "--dest", "nosuchnode", "--remote-pool", "repl"], 1,
                          "nosuchnode: unreachable"),
    **{f"hostile-dataset-{i}": ([name, "--dest", "dst", "--remote-pool", "repl"], 2, "invalid dataset name")
       for i, name in enumerate(HOSTILE)},
    "hostile-dest": (["data/smbvol", "--dest", f"dst;touch {PWNED}", "--remote-pool", "repl"], 2, "invalid host"),
    "option-as-dest": (["data/smbvol", f"--dest=-oProxyCommand=touch {PWNED}", "--remote-pool", "repl"], 2,
                       "invalid host"),
    "hostile-remote-pool": (["data/smbvol", "--dest", "dst", "--remote-pool", f"$(touch {PWNED})"], 2,
                            "invalid dataset name"),
    "hostile-remote-name": (["data/smbvol", "--dest", "dst", "--remote-pool", "repl", "--remote-name",
                             f"x' ;touch {PWNED}"], 2, "invalid dataset name"),
    "both-quotes": (["data/a'b\"c", "--dest", "dst", "--remote-pool", "repl"], 2,
                    "an argument cannot contain both ' and \""),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_one_shot_refusal(refusals: Refusals, case: str) -> None:
    lab = refusals.lab
    argv, status, says = REFUSALS[case]
    result = shell(lab, "src", "retadm", "init", *argv)
    line = one_line(result.stderr)
    assert result.returncode == status, (result.returncode, line)
    assert says in line, line
    assert result.stdout == ""
    assert state(lab, WATCH) == refusals.state


def test_unreachable_destination_is_refused(refusals: Refusals) -> None:
    """(How fast: benchmarks/bench_commands.py; shell's timeout here only catches a hang.)"""
    lab = refusals.lab
    result = shell(lab, "src", "retadm", "init", "data/smbvol", "--dest", "192.168.0.99", "--remote-pool", "repl")
    line = one_line(result.stderr)
    assert result.returncode == 1
    assert line.startswith("retadm init: 192.168.0.99: unreachable: "), line
    assert state(lab, WATCH) == refusals.state

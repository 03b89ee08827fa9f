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
    session.expect(STARTED)
    session.expect(MONITOR)
    assert "Traceback" not in session.prompt()

    row = wait_idle(lab, "data/smbvol")
    assert (row["destination"], row["remote_dataset"], row["properties"]) == ("dst", "repl/smbvol", True)
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
    session.expect(STARTED)
    session.expect(MONITOR)
    session.prompt()

    row = wait_idle(lab, "esx/lun01")
    assert list(status(lab)) == ["esx/lun01"]
    assert (row["remote_dataset"], row["properties"]) == ("repl/lun01-copy", False)
    on_dst = datasets(lab, "dst")
    assert "repl/lun01-copy" in on_dst and "repl/smbvol" not in on_dst
    assert zfs_value(lab, "dst", "ovios:smb.share", "repl/lun01-copy") == "-"
    assert_read_only(lab, "repl/lun01-copy")


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


@pytest.mark.parametrize("key", ["ctrl-c", "ctrl-d"])
def test_cancel_at_every_prompt_changes_nothing(session: Session, fresh_lab: Lab, key: str) -> None:
    """Ctrl-C (every prompt and the list) and Ctrl-D (every text prompt) cancel the wizard
    with one line, create nothing, and the same shell goes on working."""
    before = state(fresh_lab)
    stages = ["dest", "list", "pool", "name", "properties"] if key == "ctrl-c" else \
        ["dest", "pool", "name", "properties"]  # choice() has no Ctrl-D binding: the list ignores it
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
    assert line.endswith(f"on dst run: ssh-copy-id root@{src}"), line
    assert state(fresh_lab) == before


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

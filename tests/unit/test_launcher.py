"""The ``ovios-shell`` console script: one-shot ``retadm status``/``inc``/``init`` without cmd2.

Each test runs the installed console script as cron or monitoring would, and the full shell
(``python -m ovios_shell_retadm.shell``, which always builds cmd2) on the same line, and
compares stdout, stderr and the exit status byte for byte.  Whether cmd2 was imported is read
from the console script's own ``-X importtime`` report (``PYTHONPROFILEIMPORTTIME=1``): one
line per module imported, on stderr, which is set apart from the command's own stderr.

The runs need no ZFS: every command the package runs goes through ``env PATH=… zfs …``
(:func:`ovios_shell_retadm.hosts.env_argv`), and an ``env`` of the test's own, first on PATH,
fails the way ZFS does when a dataset is missing.  The tasks' partner is ``dst.invalid``, a
name that never resolves.  A run that fails leaves its task in error, which changes what the
next run does first: the runs that change the store start from a copy of it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from ovios_shell_retadm import launcher
from ovios_shell_retadm.replication.task_store import ERROR, IDLE, TaskRecord, TaskStore
from ovios_shell_retadm.store import Store

CONSOLE_SCRIPT = Path(sys.executable).with_name("ovios-shell")
PARTNER = "dst.invalid"
#: what the fast path must never import (tabulate: unless a table is printed)
SHELL_MODULES = ("cmd2", "prompt_toolkit", "rich", "tabulate")
FAKE_ENV = """#!/bin/sh
# env PATH=... LC_ALL=C PROGRAM ARGS...: PROGRAM fails as zfs does on a missing dataset
shift 2
echo "cannot open '$(eval echo \\${$#})': dataset does not exist" >&2
exit 1
"""


@dataclass
class Run:
    stdout: str
    stderr: str  # the command's own, without the import report
    status: int
    imported: set[str]  # top-level package of every module imported (console script runs only)


@pytest.fixture
def node(tmp_path, monkeypatch) -> dict[str, str]:
    """A node's environment: its store in a temp dir, tasks on data/x (one) and data/fan (two)."""
    root = tmp_path / "root"
    monkeypatch.setenv("OVIOS_ROOT", str(root))
    for dataset, remote in (("data/x", "repl/x"), ("data/fan", "repl/a"), ("data/fan", "repl/b")):
        assert TaskStore().create(TaskRecord(dataset=dataset, destination=PARTNER, remote_dataset=remote,
                                             properties=False, state=IDLE, initialised=True))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "env").write_text(FAKE_ENV)
    (bin_dir / "env").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}  # buffering as cron has it
    env.update(OVIOS_ROOT=str(root), PATH=f"{bin_dir}:{os.environ['PATH']}")
    return env


def console_script(env: dict[str, str], *argv: str) -> Run:
    proc = subprocess.run([str(CONSOLE_SCRIPT), *argv], check=False, capture_output=True, text=True, timeout=60,
                          env={**env, "PYTHONPROFILEIMPORTTIME": "1"}, stdin=subprocess.DEVNULL)
    report = [line for line in proc.stderr.splitlines(keepends=True) if line.startswith("import time:")]
    own = "".join(line for line in proc.stderr.splitlines(keepends=True) if not line.startswith("import time:"))
    imported = {line.split("|")[-1].strip().split(".")[0] for line in report[1:]}  # [0]: the header
    return Run(proc.stdout, own, proc.returncode, imported)


def full_shell(env: dict[str, str], *argv: str) -> Run:
    proc = subprocess.run([sys.executable, "-m", "ovios_shell_retadm.shell", *argv], check=False,
                          capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    return Run(proc.stdout, proc.stderr, proc.returncode, set())


def same(fast: Run, full: Run) -> None:
    assert (fast.stdout, fast.stderr, fast.status) == (full.stdout, full.stderr, full.status)


def both_from_the_same_store(env: dict[str, str], *argv: str) -> tuple[Run, Run]:
    """The console script's run and the full shell's, each from the node's files as they are now."""
    root = Path(env["OVIOS_ROOT"])
    before = root.with_name("root-before")
    shutil.copytree(root, before)
    fast = console_script(env, *argv)
    shutil.rmtree(root)
    shutil.copytree(before, root)
    return fast, full_shell(env, *argv)


def test_the_console_script_is_the_launcher():
    assert CONSOLE_SCRIPT.is_file(), "the package is not installed in this venv"
    assert "ovios_shell_retadm.launcher import main" in CONSOLE_SCRIPT.read_text()


@pytest.mark.parametrize("argv", [
    ["retadm", "status", "--json"],
    ["retadm", "status", "data/fan", "--json"],
    ["retadm", "status", "data/none", "--json"],  # no such task: exit 1, one line
    ["retadm", "status", "data/fan", "--json", "--dry-run"],  # the guide: every command with a dataset takes it
], ids=" ".join)
def test_status_json_runs_without_cmd2_and_prints_what_the_shell_prints(node, argv):
    fast = console_script(node, *argv)
    assert fast.imported.isdisjoint(SHELL_MODULES), sorted(fast.imported & set(SHELL_MODULES))
    # it runs no command either: sh (which brings asyncio, about half the start-up) stays out
    assert fast.imported.isdisjoint({"sh", "asyncio"}), sorted(fast.imported & {"sh", "asyncio"})
    same(fast, full_shell(node, *argv))


@pytest.mark.parametrize("argv", [
    ["retadm", "inc", "data/x", "--dry-run"],
    ["retadm", "inc", "data/fan", "--dry-run"],  # one line per task
    ["retadm", "inc", "data/fan", "--dest", "repl/b", "--dry-run"],
    ["retadm", "inc", "--dry-run"],  # every task
    ["retadm", "inc", "data/fan", "--dest", "nowhere", "--dry-run"],  # exit 2
    ["retadm", "inc", "data/none", "--dry-run"],
    ["retadm", "inc", "data", "--dry-run"],  # a pool
    ["retadm", "inc", "data/x@snap", "--dry-run"],  # not a dataset name: exit 2
    ["retadm", "inc", "data/x", "--dry"],  # an abbreviation argparse accepts in the shell too
], ids=" ".join)
def test_inc_dry_run_runs_without_cmd2_and_prints_what_the_shell_prints(node, argv):
    fast = console_script(node, *argv)
    assert fast.imported.isdisjoint(SHELL_MODULES), sorted(fast.imported & set(SHELL_MODULES))
    assert fast.stderr, "the run was expected to reach the fake zfs, or to be refused"
    same(fast, full_shell(node, *argv))


def test_inc_runs_without_cmd2_and_fails_as_the_shell_does(node):
    Store().set_option("retadm.parallel", "1")  # one at a time: the lines come in the same order
    fast, full = both_from_the_same_store(node, "retadm", "inc")
    assert fast.imported.isdisjoint(SHELL_MODULES)
    assert fast.status == 1 and len(fast.stderr.splitlines()) == 3
    same(fast, full)


@pytest.mark.parametrize("argv", [
    ["retadm", "init", "data/x", "--recursive"],  # refused: exit 2
    ["retadm", "init", "data/new"],  # no terminal and no --dest: exit 2
    ["retadm", "init", "data/new", "--dest", PARTNER, "--remote-pool", "repl", "--dry-run"],  # unreachable
    ["retadm", "init", "data/new", "--dest", PARTNER, "--remote-pool", "repl", "--retention", "last=3"],
], ids=" ".join)
def test_init_without_a_terminal_runs_without_cmd2_and_prints_what_the_shell_prints(node, argv):
    fast, full = both_from_the_same_store(node, *argv)
    assert fast.imported.isdisjoint(SHELL_MODULES), sorted(fast.imported & set(SHELL_MODULES))
    assert fast.status != 0 and fast.stderr.startswith("retadm init: "), fast.stderr
    same(fast, full)
    assert not TaskStore().of("data/new"), "a refused init recorded a task"


def test_init_on_a_terminal_is_the_shells_wizard(monkeypatch):
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    assert launcher.fast_command(["retadm", "init", "data/x", "--dest", PARTNER]) is None


def test_a_status_table_imports_tabulate_but_not_cmd2(node):
    fast = console_script(node, "retadm", "status")
    assert "tabulate" in fast.imported and fast.imported.isdisjoint({"cmd2", "prompt_toolkit", "rich"})
    same(fast, full_shell(node, "retadm", "status"))


def test_a_line_with_control_characters_is_printed_as_the_shell_prints_it(node):
    """cmd2's console expands tabs and drops what a carriage return overwrites: such a line is
    left to the shell's own printing, so the bytes stay the same."""
    Store().update_task(TaskStore().of("data/x")[0].key,
                        lambda r: {**r, "state": ERROR, "error": f"{PARTNER}: lost\tthe link\r(partial)"})
    fast = console_script(node, "retadm", "status")
    assert "data/x: " in fast.stdout and "\t" not in fast.stdout
    same(fast, full_shell(node, "retadm", "status"))


@pytest.mark.parametrize("argv", [
    ["retadm", "status", "--help"],
    ["retadm", "inc", "-h"],
    ["retadm", "inc", "--he"],  # --help, abbreviated
    ["retadm", "status", "--bogus"],
    ["retadm", "inc", "data/x", "data/y"],
    ["retadm", "inc", "--json"],
    ["retadm", "status", "--json=yes"],
    ["retadm", "frobnicate"],
    ["retadm"],
    ["retadm", "inc", "data/x", ">", "out"],  # a redirection, for the shell to parse
    ["retadm", "status", "it's"],
    ["retadm", "init", "--help"],
    ["retadm", "init", "data/x", "--bandwidth", "fast"],  # argparse's error, the shell's words
    ["retadm", "init", "data/x", "--properties", "maybe"],
    ["frobnicate", "now"],
], ids=" ".join)
def test_lines_the_fast_path_does_not_understand_are_the_shells(node, argv, monkeypatch):
    # no terminal, as for the console script below: an init line is the shell's for its words alone
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    assert launcher.fast_command(argv) is None
    fast = console_script(node, *argv)
    same(fast, full_shell(node, *argv))
    assert "cmd2" in fast.imported


@pytest.mark.parametrize("argv", [
    ["retadm", "status"], ["retadm", "status", "--json"], ["retadm", "status", "data/x", "--js"],
    ["retadm", "inc"], ["retadm", "inc", "data/x", "--dest", PARTNER, "--dry-run"],
    ["retadm", "inc", "--dry-run", "data/x"], ["retadm", "inc", f"--dest={PARTNER}:repl/x", "data/x"],
    ["retadm", "init", "data/x", "--dest", PARTNER, "--remote-pool", "repl", "--properties", "no"],
], ids=" ".join)
def test_the_fast_path_takes_status_inc_and_init_without_a_terminal(argv, monkeypatch):
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    assert launcher.fast_command(argv) is not None


def test_no_arguments_is_the_interactive_shell_not_the_fast_path():
    assert launcher.fast_command([]) is None


def test_the_fake_env_is_the_one_commands_run(node):
    # the comparisons above mean something only if the runs reached it
    assert shutil.which("env", path=node["PATH"]) != shutil.which("env")


@pytest.mark.parametrize("verb", ["reset", "repair"])
def test_reset_and_repair_without_a_dataset_need_a_terminal(node, verb):
    """The usage line shows [dataset]: on a terminal a pick list, without one a usage error."""
    run = full_shell(node, "retadm", verb)
    assert (run.stdout, run.stderr, run.status) == (
        "", f"retadm {verb}: the dataset is required when there is no terminal\n", 2)

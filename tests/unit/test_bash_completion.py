"""``completions/ovios-shell.bash``: the completion function, called by a real bash.

Each case sources the script in a ``bash`` subprocess, sets COMP_WORDS/COMP_CWORD as
bash's programmable completion would, calls ``_ovios_shell`` and reads COMPREPLY.
Outside the lab every ``ovios-shell`` the script runs gets a temporary OVIOS_ROOT (the
machine's /etc/ovios is never touched); dataset completion, which needs
``zfs list`` to answer, is tested inside a lab node (``fuse_lab/test_bash_completion.py``).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from ovios_shell_retadm.replication.task_store import IDLE, TaskRecord, TaskStore
from ovios_shell_retadm.store import Store

from completion_helpers import SCRIPT, completion_script, parse


@pytest.fixture
def complete(tmp_path):
    # the ovios-shell installed beside this Python comes first
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = dict(os.environ, OVIOS_ROOT=str(tmp_path / "root"), PATH=path)

    def run(*words: str) -> list[str]:
        proc = subprocess.run(["bash", "-c", completion_script(list(words))], check=False, capture_output=True,
                              text=True, env=env, timeout=60, stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == ""
        return parse(proc.stdout)

    run.root = tmp_path / "root"
    run.env = env
    return run


def test_the_script_registers_the_function_for_both_names():
    script = f"source {shlex.quote(str(SCRIPT))}; complete -p ovios-shell /usr/bin/ovios-shell"
    proc = subprocess.run(["bash", "-c", script], check=False, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["complete -F _ovios_shell ovios-shell",
                                        "complete -F _ovios_shell /usr/bin/ovios-shell"]


def test_verbs(complete):
    assert complete("ovios-shell", "re") == ["restore", "retadm"]
    assert complete("ovios-shell", "") == ["edit-cron", "help", "options", "quit", "restore", "retadm"]
    assert complete("ovios-shell", "o") == ["options"]


def test_restore_subcommands_options_and_partners(complete):
    assert complete("ovios-shell", "restore", "") == ["all", "exports", "luns", "shares", "users"]
    assert complete("ovios-shell", "restore", "luns", "--d") == ["--dry-run"]
    (complete.root / "etc/ovios/synced").mkdir(parents=True)
    (complete.root / "etc/ovios/synced/src.json").write_text("{}")
    assert complete("ovios-shell", "restore", "all", "--from", "") == ["src"]


def test_retadm_subcommands(complete):
    assert complete("ovios-shell", "retadm", "") == ["doctor", "edit", "inc", "init", "promote", "repair", "reset",
                                                     "reverse", "status", "switchback", "watch"]
    assert complete("ovios-shell", "retadm", "reverse", "repl/smbvol", "--properties", "") == ["no", "yes"]
    assert complete("ovios-shell", "retadm", "promote", "repl/smbvol", "-") == ["--dry-run", "--help", "--key-file"]
    assert complete("ovios-shell", "retadm", "in") == ["inc", "init"]
    assert complete("ovios-shell", "retadm", "re") == ["repair", "reset", "reverse"]
    assert complete("ovios-shell", "retadm", "st") == ["status"]


def test_option_names_and_values(complete):
    assert complete("ovios-shell", "options", "") == [
        "autosync.enable", "cron.enable", "retadm.parallel", "retadm.parallel.partner", "retadm.stall.timeout",
        "ssh.allow.root"]
    assert complete("ovios-shell", "options", "ss") == ["ssh.allow.root"]
    assert complete("ovios-shell", "options", "cron.enable", "") == ["off", "on"]
    assert complete("ovios-shell", "options", "cron.enable", "of") == ["off"]
    assert complete.root.exists()  # the options were read from the temporary root, not /etc/ovios


@pytest.mark.parametrize("words", [
    ["inc", "--d"],
    ["inc", "data/smbvol", "--d"],
    ["init", "--d"],
    ["init", "data/smbvol", "--dr"],
    ["init", "data/smbvol", "--dest", "dst", "--remote-pool", "repl", "--dr"],
], ids=" ".join)
def test_dry_run_at_any_position_after_the_subcommand(complete, words):
    assert "--dry-run" in complete("ovios-shell", "retadm", *words)


def test_each_subcommand_offers_its_own_options(complete):
    assert complete("ovios-shell", "retadm", "inc", "data/smbvol", "-") == ["--dest", "--dry-run", "--help"]
    assert complete("ovios-shell", "retadm", "status", "-") == ["--dry-run", "--help", "--json", "--replicas"]
    assert complete("ovios-shell", "retadm", "reset", "data/smbvol", "-") == ["--dest", "--dry-run", "--help",
                                                                             "--yes"]
    assert complete("ovios-shell", "retadm", "doctor", "-") == ["--dest", "--dry-run", "--help", "--json"]
    assert complete("ovios-shell", "retadm", "edit", "data/smbvol", "-") == [
        "--address", "--bandwidth", "--dest", "--dry-run", "--help", "--properties", "--retention"]
    assert complete("ovios-shell", "retadm", "edit", "data/smbvol", "--retention", "") == []  # a policy: free text
    assert complete("ovios-shell", "retadm", "edit", "data/smbvol", "--properties", "") == ["no", "yes"]
    assert complete("ovios-shell", "retadm", "switchback", "repl/smbvol", "-") == ["--dry-run", "--help", "--yes"]
    # a task's --dest (fan-out) is free text too: no dataset offered as its value
    assert complete("ovios-shell", "retadm", "reset", "data/smbvol", "--dest", "") == []
    assert complete("ovios-shell", "retadm", "init", "data/smbvol", "--r") == ["--recursive", "--remote-name",
                                                                               "--remote-pool", "--retention"]
    assert complete("ovios-shell", "retadm", "init", "data/smbvol", "--properties", "") == ["no", "yes"]
    # an option's value that is free text (a task's --dest): nothing offered, where an option
    # word is, the subcommand's options (init's --dest completes partners: tests/fuse_lab)
    assert complete("ovios-shell", "retadm", "init", "data/smbvol", "--dest", "-") == [
        "--bandwidth", "--decrypted", "--dest", "--dry-run", "--help", "--properties", "--recursive", "--remote-name",
        "--remote-pool", "--retention"]
    assert complete("ovios-shell", "retadm", "inc", "data/smbvol", "--dest", "") == []
    # promote's --key-file takes a file
    (complete.root.parent / "secret.key").write_text("x")
    prefix = str(complete.root.parent / "secr")
    assert complete("ovios-shell", "retadm", "promote", "repl/x", "--key-file", prefix) == \
        [str(complete.root.parent / "secret.key")]


def test_no_tasks_no_replicated_datasets(complete):
    # the ovios-shell the script asks answers here (option names), and says: no task
    assert complete("ovios-shell", "options", "") == [
        "autosync.enable", "cron.enable", "retadm.parallel", "retadm.parallel.partner", "retadm.stall.timeout",
        "ssh.allow.root"]
    status = subprocess.run(["ovios-shell", "retadm", "status", "--json"], capture_output=True, text=True,
                            env=complete.env, timeout=60, stdin=subprocess.DEVNULL, check=False)
    assert (status.returncode, json.loads(status.stdout)) == (0, []), status.stderr
    assert complete("ovios-shell", "retadm", "inc", "") == []
    # the same completion in the same root lists a task as soon as there is one
    TaskStore(Store(complete.root / "etc/ovios/ovios.db")).create(
        TaskRecord("data/smbvol", "dst", "repl/smbvol", False, state=IDLE, initialised=True))
    assert complete("ovios-shell", "retadm", "inc", "") == ["data/smbvol"]
    assert complete("ovios-shell", "retadm", "inc", "e") == []

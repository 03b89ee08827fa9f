"""The ovios-shell host: plugin discovery and one-shot exit statuses, as real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points

import pytest

from ovios_shell_retadm.shell import PLUGIN_GROUP, OviosShell


def run_shell(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ovios_shell_retadm.shell", *argv], check=False,
        capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def node_env(tmp_path) -> dict[str, str]:
    env = dict(os.environ)
    env["OVIOS_ROOT"] = str(tmp_path / "root")
    return env


@pytest.fixture
def broken_plugin_env(node_env, tmp_path) -> dict[str, str]:
    """A second distribution on sys.path whose command set raises on import."""
    site = tmp_path / "site"
    (site / "broken_plugin-0.1.dist-info").mkdir(parents=True)
    (site / "broken_plugin-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (site / "broken_plugin-0.1.dist-info" / "entry_points.txt").write_text(
        "[ovios_shell.commands]\nbroken = broken_plugin:Commands\n"
    )
    (site / "broken_plugin.py").write_text(textwrap.dedent("""
        raise RuntimeError("this plugin is broken on purpose")
    """))
    node_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), node_env.get("PYTHONPATH")]))
    return node_env


def test_one_shot_success_prints_and_exits_zero(node_env):
    proc = run_shell("options", "autosync.enable", env=node_env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "autosync.enable off"


def test_one_shot_does_not_enter_the_interactive_loop(node_env):
    # stdin is /dev/null: a shell that fell into its loop would print a prompt
    proc = run_shell("options", env=node_env)
    assert proc.returncode == 0
    assert "ovios-shell ➤" not in proc.stdout


def test_unknown_command_exits_127(node_env):
    proc = run_shell("frobnicate", "now", env=node_env)
    assert proc.returncode == 127
    assert "frobnicate is not an ovios-shell command" in proc.stderr


def test_bad_arguments_exit_2(node_env):
    proc = run_shell("options", "a", "b", "c", env=node_env)
    assert proc.returncode == 2
    assert "unrecognized arguments: c" in proc.stderr


def test_refused_value_exits_2_with_one_line(node_env):
    proc = run_shell("options", "cron.enable", "sometimes", env=node_env)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "options: invalid value 'sometimes' for cron.enable: expected on or off"
    ]


def test_failing_command_exits_nonzero_without_traceback(node_env, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    node_env["OVIOS_ETC_DIR"] = str(blocker / "etc")
    proc = run_shell("options", "autosync.enable", "on", env=node_env)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("options: cannot open")


def test_arguments_stay_one_argument_each(node_env):
    # the host joins argv with shell quoting: an argument with a space stays one word
    proc = run_shell("options", "autosync.enable", "o n", env=node_env)
    assert proc.returncode == 2
    assert "'o n'" in proc.stderr


def test_broken_plugin_warns_and_the_shell_still_works(broken_plugin_env):
    proc = run_shell("options", "autosync.enable", env=broken_plugin_env)
    assert proc.returncode == 0
    assert proc.stdout.strip() == "autosync.enable off"
    assert "warning: plugin 'broken'" in proc.stderr
    assert "broken on purpose" in proc.stderr


VERBS = ("options", "edit-cron", "retadm", "restore")


def test_plugins_are_discovered_through_the_entry_point_group():
    group = {ep.name: ep for ep in entry_points(group=PLUGIN_GROUP)}
    assert set(VERBS) <= set(group), sorted(group)
    app = OviosShell()
    assert app.plugin_warnings == []
    built_in = set(OviosShell(load_plugins=False).get_all_commands())
    commands = set(app.get_all_commands())
    for verb in VERBS:
        assert verb not in built_in, verb  # only a plugin brings it
        assert verb in commands, verb
        # registered by the command set its own entry point names
        assert type(app.find_commandset_for_command(verb)) is group[verb].load(), verb


def test_prompt_is_the_guides():
    assert OviosShell(load_plugins=False).prompt == "ovios-shell ➤ "

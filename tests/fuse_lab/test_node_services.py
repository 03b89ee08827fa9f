"""Options and edit-cron acting on a real node of the lab: sshd, the cron daemon, crontab."""

from __future__ import annotations

import pytest

from replication_helpers import shell

SSH = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5"]


def test_ssh_allow_root_off_refuses_root_keys_keys_and_on_accept_them(fresh_lab):
    lab = fresh_lab
    assert lab.exec("src", [*SSH, "dst", "hostname"]).stdout.strip() == "dst"

    result = shell(lab, "dst", "options", "ssh.allow.root", "off")
    assert (result.returncode, result.stdout) == (0, "Configuration ssh.allow.root updated.\n")
    refused = lab.exec("src", [*SSH, "dst", "hostname"])
    assert refused.returncode == 255
    assert "Permission denied" in refused.stderr

    assert shell(lab, "dst", "options", "ssh.allow.root", "keys").returncode == 0
    assert lab.exec("src", [*SSH, "dst", "hostname"]).stdout.strip() == "dst"
    # key-only: sshd's effective policy for root
    policy = lab.exec("dst", ["sh", "-c", "sshd -T | grep -i '^permitrootlogin'"]).stdout.split()
    assert policy == ["permitrootlogin", "without-password"]
    assert shell(lab, "dst", "options", "ssh.allow.root").stdout == "ssh.allow.root keys\n"

    # on: root with a password too (the guide's ssh-copy-id), and with a key as before
    assert shell(lab, "dst", "options", "ssh.allow.root", "on").returncode == 0
    assert lab.exec("src", [*SSH, "dst", "hostname"]).stdout.strip() == "dst"
    policy = lab.exec("dst", ["sh", "-c", "sshd -T | grep -i '^permitrootlogin'"]).stdout.split()
    assert policy == ["permitrootlogin", "yes"]


def _cron_running(lab, node) -> bool:
    return lab.exec(node, ["sh", "-c", "kill -0 $(cat /run/crond.pid)"]).returncode == 0


def test_cron_enable_stops_and_starts_the_cron_daemon(fresh_lab):
    lab = fresh_lab
    assert _cron_running(lab, "src")
    # the lab's nodes run cron without the option ever set: the stored value, and what is in effect
    assert shell(lab, "src", "options", "cron.enable").stdout == "cron.enable off (in effect: on)\n"
    listing = shell(lab, "src", "options").stdout
    assert any(line.split()[:4] == ["cron.enable", "off", "(in", "effect:"] for line in listing.splitlines()), listing
    assert shell(lab, "src", "options", "cron.enable", "off").returncode == 0
    assert not _cron_running(lab, "src")
    assert shell(lab, "src", "options", "cron.enable").stdout == "cron.enable off\n"
    assert shell(lab, "src", "options", "cron.enable", "on").returncode == 0
    assert _cron_running(lab, "src")
    # on again is harmless: the same daemon goes on (the nodes share the pid namespace,
    # so the node's pid file, not pgrep, tells which cron is the node's)
    pid = lab.exec("src", ["cat", "/run/crond.pid"]).stdout
    assert shell(lab, "src", "options", "cron.enable", "on").returncode == 0
    assert lab.exec("src", ["cat", "/run/crond.pid"]).stdout == pid
    assert _cron_running(lab, "src")


EDITOR_APPENDING = """#!/bin/sh
printf '%s\\n' "$LINE" >> "$1"
"""


@pytest.fixture
def scripted_editor(fresh_lab):
    path = "/run/ovios-test-editor"
    fresh_lab.exec("src", ["sh", "-c", f"cat > {path} && chmod +x {path}"], input=EDITOR_APPENDING, check=True)
    return path


def test_edit_cron_installs_a_valid_crontab_and_warns_about_untracked_datasets(fresh_lab, scripted_editor):
    line = "*/5 * * * *  /usr/bin/ovios-shell retadm inc data/smbvol"
    result = shell(fresh_lab, "src", "edit-cron", env=[f"EDITOR={scripted_editor}", f"LINE={line}"])
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Crontab installed.\n"
    assert "'retadm inc data/smbvol' is scheduled but data/smbvol has no replication task" in result.stderr
    installed = fresh_lab.exec("src", ["crontab", "-l"]).stdout
    assert line in installed.splitlines()


def test_edit_cron_refuses_an_invalid_line_and_keeps_the_old_crontab(fresh_lab, scripted_editor):
    fresh_lab.exec("src", ["crontab", "-"], input="0 1 * * * /bin/true\n", check=True)
    result = shell(fresh_lab, "src", "edit-cron", env=[f"EDITOR={scripted_editor}", "LINE=61 * * * * /bin/true"])
    assert result.returncode == 1
    assert "edit-cron: line 2: minute 61 is out of range 0-59: 61 * * * * /bin/true" in result.stderr
    assert "it was not installed" in result.stderr
    assert fresh_lab.exec("src", ["crontab", "-l"]).stdout == "0 1 * * * /bin/true\n"


def test_edit_cron_with_visual_preferred_and_no_change(fresh_lab, scripted_editor):
    fresh_lab.exec("src", ["crontab", "-"], input="0 1 * * * /bin/true\n", check=True)
    result = shell(fresh_lab, "src", "edit-cron", env=["VISUAL=true", f"EDITOR={scripted_editor}", "LINE=x"])
    assert (result.returncode, result.stdout) == (0, "No changes made to the crontab.\n")
    assert fresh_lab.exec("src", ["crontab", "-l"]).stdout == "0 1 * * * /bin/true\n"


def test_edit_cron_with_a_failing_editor_changes_nothing(fresh_lab):
    result = shell(fresh_lab, "src", "edit-cron", env=["EDITOR=false"])
    assert result.returncode == 1
    assert result.stderr.strip() == "edit-cron: editor 'false' exited with status 1; crontab not changed"

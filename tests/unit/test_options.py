"""`options`: listing, get/set, validation, persistence, completion, and the sshd policy
file edit (pure).  What a real sshd makes of it: tests/fuse_lab/test_options.py."""

from __future__ import annotations

import dataclasses

import pytest
from cmd2.py_bridge import PyBridge

from ovios_shell_retadm import options, services
from ovios_shell_retadm.shell import OviosShell
from ovios_shell_retadm.store import Store


@pytest.fixture
def node(tmp_path, monkeypatch):
    monkeypatch.setenv("OVIOS_ROOT", str(tmp_path))
    return tmp_path


@pytest.fixture
def shell(node):
    app = OviosShell()
    return app, PyBridge(app)


def test_list_shows_every_option_with_its_default(shell):
    _app, run = shell
    result = run("options")
    assert result.data == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["OPTION", "VALUE", "DESCRIPTION"]
    values = {line.split()[0]: line.split()[1] for line in lines[2:]}
    assert values == {"autosync.enable": "off", "cron.enable": "off", "retadm.parallel": "4",
                      "retadm.parallel.partner": "2", "retadm.stall.timeout": "600", "ssh.allow.root": "off"}


def test_set_prints_the_guides_message_and_persists(shell, node):
    _app, run = shell
    result = run("options autosync.enable on")
    assert (result.stdout, result.data) == ("Configuration autosync.enable updated.\n", 0)
    assert run("options autosync.enable").stdout == "autosync.enable on\n"
    # a new shell (a new process would be the same) reads the same store
    assert PyBridge(OviosShell())("options autosync.enable").stdout == "autosync.enable on\n"
    assert Store(node / "etc/ovios/ovios.db").get_option("autosync.enable") == "on"


def test_values_are_normalised(shell):
    _app, run = shell
    assert run("options autosync.enable ON").data == 0
    assert options.get("autosync.enable") == "on"


KNOWN = ("autosync.enable, cron.enable, retadm.parallel, retadm.parallel.partner, retadm.stall.timeout, "
         "ssh.allow.root")


@pytest.mark.parametrize("line, message", [
    ("options nosuch", f"options: unknown option 'nosuch'; known options: {KNOWN}"),
    ("options nosuch on", f"options: unknown option 'nosuch'; known options: {KNOWN}"),
    ("options retadm.parallel 0", "options: invalid value '0' for retadm.parallel: expected a whole number "
                                  "from 1 to 64"),
    ("options retadm.parallel.partner many", "options: invalid value 'many' for retadm.parallel.partner: "
                                             "expected a whole number from 1 to 64"),
    ("options autosync.enable yes", "options: invalid value 'yes' for autosync.enable: expected on or off"),
    ("options retadm.stall.timeout soon", "options: invalid value 'soon' for retadm.stall.timeout: expected whole "
                                          "seconds from 0 (no limit) to 86400"),
])
def test_refusals_are_one_line_with_status_2_and_store_nothing(shell, line, message):
    _app, run = shell
    result = run(line)
    assert (result.stderr.splitlines(), result.data) == ([message], 2)
    assert Store().all_options() == {}


def test_a_setting_the_system_refuses_is_not_stored(shell, monkeypatch):
    _app, run = shell

    def refuse(_value):
        raise services.ServiceError("checking the sshd configuration failed: bad line")

    option = options.CATALOGUE["ssh.allow.root"]
    monkeypatch.setitem(options.CATALOGUE, option.name, dataclasses.replace(option, apply=refuse))
    result = run("options ssh.allow.root on")
    assert result.data == 1
    assert result.stderr.strip() == ("options: ssh.allow.root not changed: "
                                     "checking the sshd configuration failed: bad line")
    assert options.get("ssh.allow.root") == "off"


def test_completion_of_names_and_values(shell):
    app, _run = shell
    assert app.complete("", "options ", 8, 8).to_strings() == (
        "autosync.enable", "cron.enable", "retadm.parallel", "retadm.parallel.partner", "retadm.stall.timeout",
        "ssh.allow.root")
    assert app.complete("ss", "options ss", 8, 10).to_strings() == ("ssh.allow.root",)
    assert app.complete("o", "options cron.enable o", 20, 21).to_strings() == ("off", "on")
    assert app.complete("", "options ssh.allow.root ", 23, 23).to_strings() == ("keys", "off", "on")
    assert app.complete("", "options nosuch ", 15, 15).to_strings() == ()


# -- sshd root-login policy: configuration files, and a private sshd that reads them ------------

@pytest.mark.parametrize("text, policy, expected", [
    ("Port 22\n", "no", "Port 22\nPermitRootLogin no\n"),
    ("#PermitRootLogin yes\nPermitRootLogin yes\n", "prohibit-password",
     "#PermitRootLogin yes\nPermitRootLogin prohibit-password\n"),
    ("PermitRootLogin yes\nMatch User bob\n  PermitRootLogin yes\n", "no",
     "PermitRootLogin no\nMatch User bob\n  PermitRootLogin yes\n"),
    ("Port 22\nMatch User bob\n  X11Forwarding no\n", "no",
     "Port 22\nPermitRootLogin no\nMatch User bob\n  X11Forwarding no\n"),
    # sshd's keywords are case-insensitive and may be followed by '=': every spelling of Match
    # starts a block (the global setting goes before it), every spelling of PermitRootLogin counts
    ("Port 22\nmatch User bob\n  X11Forwarding no\n", "no",
     "Port 22\nPermitRootLogin no\nmatch User bob\n  X11Forwarding no\n"),
    ("Port 22\n  MATCH all\n  X11Forwarding no\n", "no",
     "Port 22\nPermitRootLogin no\n  MATCH all\n  X11Forwarding no\n"),
    ("match=all\n  X11Forwarding no\n", "no", "PermitRootLogin no\nmatch=all\n  X11Forwarding no\n"),
    ("permitrootlogin yes\nPERMITROOTLOGIN no\n", "prohibit-password", "PermitRootLogin prohibit-password\n"),
    ("Port 22\nPermitRootLogin=yes\n", "no", "Port 22\nPermitRootLogin no\n"),
    ("\tpermitRootLogin = yes\n", "no", "PermitRootLogin no\n"),
])
def test_rewrite_permit_root_login_sets_the_global_value(text, policy, expected):
    assert services._rewrite_permit_root_login(text, policy) == expected

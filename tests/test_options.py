"""`options`: listing, get/set, validation, persistence, completion, sshd policy file edits."""

from __future__ import annotations

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
    assert values == {"autosync.enable": "off", "cron.enable": "off", "ssh.allow.root": "off"}


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


@pytest.mark.parametrize("line, message", [
    ("options nosuch", "options: unknown option 'nosuch'; known options: "
                       "autosync.enable, cron.enable, ssh.allow.root"),
    ("options nosuch on", "options: unknown option 'nosuch'; known options: "
                          "autosync.enable, cron.enable, ssh.allow.root"),
    ("options autosync.enable yes", "options: invalid value 'yes' for autosync.enable: expected on or off"),
])
def test_refusals_are_one_line_with_status_2_and_store_nothing(shell, line, message):
    _app, run = shell
    result = run(line)
    assert (result.stderr.splitlines(), result.data) == ([message], 2)
    assert Store().all_options() == {}


def test_a_setting_the_system_refuses_is_not_stored(shell, monkeypatch):
    _app, run = shell

    def refuse(_allow):
        raise services.ServiceError("checking the sshd configuration failed: bad line")

    monkeypatch.setattr(services, "set_root_login", refuse)
    result = run("options ssh.allow.root on")
    assert result.data == 1
    assert result.stderr.strip() == ("options: ssh.allow.root not changed: "
                                     "checking the sshd configuration failed: bad line")
    assert options.get("ssh.allow.root") == "off"


def test_completion_of_names_and_on_off_values(shell):
    app, _run = shell
    assert app.complete("", "options ", 8, 8).to_strings() == ("autosync.enable", "cron.enable", "ssh.allow.root")
    assert app.complete("ss", "options ss", 8, 10).to_strings() == ("ssh.allow.root",)
    assert app.complete("o", "options cron.enable o", 20, 21).to_strings() == ("off", "on")
    assert app.complete("", "options nosuch ", 15, 15).to_strings() == ()


# -- sshd root-login policy, on configuration files (the running sshd is tested on the lab) --

@pytest.mark.parametrize("text, policy, expected", [
    ("Port 22\n", "no", "Port 22\nPermitRootLogin no\n"),
    ("#PermitRootLogin yes\nPermitRootLogin yes\n", "prohibit-password",
     "#PermitRootLogin yes\nPermitRootLogin prohibit-password\n"),
    ("PermitRootLogin yes\nMatch User bob\n  PermitRootLogin yes\n", "no",
     "PermitRootLogin no\nMatch User bob\n  PermitRootLogin yes\n"),
    ("Port 22\nMatch User bob\n  X11Forwarding no\n", "no",
     "Port 22\nPermitRootLogin no\nMatch User bob\n  X11Forwarding no\n"),
])
def test_rewrite_permit_root_login_sets_the_global_value(text, policy, expected):
    assert services._rewrite_permit_root_login(text, policy) == expected


def _sshd_config(node, include: bool):
    config = node / "etc/ssh/sshd_config"
    config.parent.mkdir(parents=True)
    header = f"Include {config.parent}/sshd_config.d/*.conf\n" if include else ""
    config.write_text(header + "PermitRootLogin yes\nPasswordAuthentication yes\n")
    return config


@pytest.mark.skipif(not services.Path(services.SSH.binary).exists(), reason="sshd is not installed")
@pytest.mark.parametrize("include", [True, False])
def test_ssh_allow_root_sets_a_policy_that_sshd_reads(shell, node, include):
    _app, run = shell
    _sshd_config(node, include)
    assert run("options ssh.allow.root on").data == 0
    assert services.root_login_policy() == "without-password"  # sshd -T's name for prohibit-password
    assert run("options ssh.allow.root off").data == 0
    assert services.root_login_policy() == "no"
    assert options.get("ssh.allow.root") == "off"


@pytest.mark.skipif(not services.Path(services.SSH.binary).exists(), reason="sshd is not installed")
def test_an_sshd_config_sshd_rejects_is_rolled_back(shell, node):
    _app, run = shell
    config = _sshd_config(node, include=False)
    config.write_text(config.read_text() + "NoSuchKeyword 1\n")
    before = config.read_text()
    result = run("options ssh.allow.root on")
    assert result.data == 1
    assert "not changed" in result.stderr and "Traceback" not in result.stderr
    assert config.read_text() == before
    assert options.get("ssh.allow.root") == "off"

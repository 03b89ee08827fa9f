"""An interactive ovios-shell session on a pseudo-terminal, driven like a person would."""

from __future__ import annotations

import os
import sys

import pexpect
import pytest

PROMPT = "ovios-shell ➤"  # prompt_toolkit draws the trailing space as cursor movement


@pytest.fixture
def session(tmp_path):
    env = dict(os.environ, OVIOS_ROOT=str(tmp_path), PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm", NO_COLOR="1")
    child = pexpect.spawn(sys.executable, ["-m", "ovios_shell_retadm.shell"], env=env,
                          encoding="utf-8", timeout=20, dimensions=(40, 160))
    child.expect_exact(PROMPT)
    yield child
    if child.isalive():
        child.terminate(force=True)


def test_options_listing_and_setting(session):
    session.sendline("options autosync.enable on")
    session.expect_exact("Configuration autosync.enable updated.")
    session.expect_exact(PROMPT)
    session.sendline("options")
    session.expect(r"autosync\.enable\s+on")
    session.expect_exact(PROMPT)


def test_tab_completes_option_names_and_values(session):
    session.send("options ssh")
    session.send("\t")
    session.expect_exact(".allow.root")  # the completed rest of the word
    session.send("o")
    session.send("\t")
    session.expect(r" off .*\n.* on ")  # the menu of the two values
    session.send("\x15")  # Ctrl-U: clear the line
    session.sendline("")
    session.expect_exact(PROMPT)


def test_ctrl_c_leaves_the_shell_alive(session):
    session.send("options cron")
    session.sendintr()
    session.expect_exact(PROMPT)
    session.sendline("options cron.enable")
    session.expect_exact("cron.enable off")
    session.expect_exact(PROMPT)
    assert session.isalive()


def test_quit_ends_the_session_with_status_zero(session):
    session.sendline("quit")
    session.expect(pexpect.EOF)
    session.close()
    assert session.exitstatus == 0

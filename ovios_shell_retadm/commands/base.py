"""What every ovios-shell command set of this package shares.

A command reports its exit status by storing an ``int`` in the app's
``last_result`` (the host shell turns it into the process exit status in one-shot
runs).  Errors a user can cause (:class:`~ovios_shell_retadm.exit_status.CommandError`) are
one line on stderr, never a traceback.
"""

from __future__ import annotations

import sys

import cmd2

from ..exit_status import FAILED, OK


def verb(name: str):
    """Name a command with a word a Python identifier cannot be (the guide's ``edit-cron``)."""

    def mark(func):
        func.ovios_verb = name
        return func

    return mark


class OviosCommandSet(cmd2.CommandSet):
    DEFAULT_CATEGORY = "OviOS"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # cmd2 finds commands by the attribute *and* function name ``do_<verb>``.
        for attr, func in list(vars(cls).items()):
            name = getattr(func, "ovios_verb", None)
            if name:
                func.__name__ = f"do_{name}"
                delattr(cls, attr)
                setattr(cls, func.__name__, func)

    def succeed(self) -> int:
        self._cmd.last_result = OK
        return OK

    def fail(self, message: str, status: int = FAILED) -> int:
        self._cmd.perror(message, style=None)
        self._cmd.last_result = status
        return status

    def out(self, text: str = "") -> None:
        self._cmd.poutput(text, style=None)

    def err(self, text: str) -> None:
        """One line on stderr, as :meth:`fail` prints it, without deciding the exit status."""
        self._cmd.perror(text, style=None)

    def warn(self, text: str) -> None:
        self._cmd.pwarning(text, style=None)

    def _interactive(self) -> bool:
        """A person at a terminal answers the prompts (not cron, not a script, not a pipe)."""
        return sys.stdin.isatty() and self._cmd.stdin is sys.stdin

    def _confirm(self, prompt: str) -> bool:
        """A yes to ``prompt``; never without a terminal (scripts give ``--yes``)."""
        if not self._interactive():
            return False
        try:
            return self._cmd.read_input(prompt).strip().lower() in ("y", "yes")
        except (EOFError, KeyboardInterrupt):
            return False

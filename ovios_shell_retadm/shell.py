"""The ``ovios-shell`` host: a cmd2 application that loads command sets from plugins.

The real OviOS shell is not installable here, so this package ships a small host
with the same contract: it discovers :class:`cmd2.CommandSet` classes through the
``ovios_shell.commands`` entry-point group and registers each of them.  A plugin
that fails to load costs a warning, never the shell.

It runs interactively with no arguments, and one-shot with arguments
(``ovios-shell options cron.enable on``): the arguments are one command line, run
once, and the process exit status says whether it succeeded.  The console script
(:mod:`.launcher`) runs the one-shot lines cron and monitoring make often (``retadm
inc``, ``retadm status``) without building this shell, and hands it everything else;
``python -m ovios_shell_retadm.shell ARGS`` always runs this shell.

Exit status convention: a command stores an ``int`` in ``app.last_result``
(see :mod:`ovios_shell_retadm.commands.base`; every status is named in
:mod:`ovios_shell_retadm.exit_status`).  Besides that, the host itself turns
an unknown command (127), a bad command line (2), an unhandled exception (1) and
Ctrl-C (130) into a non-zero status; cmd2 alone leaves all of those at 0.
"""

from __future__ import annotations

import shlex
import sys
from importlib.metadata import entry_points
from typing import Any

import cmd2

from .exit_status import FAILED, INTERRUPTED, UNKNOWN_COMMAND, USAGE

PROMPT = "ovios-shell ➤ "
PLUGIN_GROUP = "ovios_shell.commands"


class OviosShell(cmd2.Cmd):
    """The shell; each plugin's command set is registered into it."""

    def __init__(self, *, load_plugins: bool = True, **kwargs: Any):
        kwargs.setdefault("allow_cli_args", False)
        kwargs.setdefault("auto_suggest", False)
        super().__init__(**kwargs)
        self.prompt = PROMPT
        self.default_error = "{} is not an ovios-shell command. See 'help'."
        # status of the command line being run; None until something decides it
        self._status: int | None = None
        self._command_finished = False
        self.register_precmd_hook(self._before_command)
        self.register_postcmd_hook(self._after_command)
        self.plugin_warnings: list[str] = []
        if load_plugins:
            self.load_plugins()

    # -- plugins -------------------------------------------------------------------

    def load_plugins(self) -> None:
        """Register every plugin's command set in the order of the entry points' names: cmd2
        attaches a set's subcommands only to a command already registered, so a set adding
        subcommands to another's command is named after it (``retadm-watch`` after ``retadm``)."""
        for ep in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
            try:
                command_set_class = ep.load()
                self.register_command_set(command_set_class())
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not take the shell down
                message = f"warning: plugin {ep.name!r} ({ep.value}) not loaded: {exc}"
                self.plugin_warnings.append(message)
                print(message, file=sys.stderr)

    # -- exit status ---------------------------------------------------------------

    def _before_command(self, data: cmd2.plugin.PrecommandData) -> cmd2.plugin.PrecommandData:
        self.last_result = None
        self._command_finished = False
        return data

    def _after_command(self, data: cmd2.plugin.PostcommandData) -> cmd2.plugin.PostcommandData:
        self._command_finished = True
        return data

    def default(self, statement: cmd2.Statement) -> bool | None:
        self._status = UNKNOWN_COMMAND
        return super().default(statement)

    def pexcept(self, exception: BaseException, **kwargs: Any) -> None:
        # Commands handle the errors a user can cause; what reaches here is a bug,
        # reported on one line (set `debug true` for the traceback).
        self._status = FAILED
        if self.debug:
            super().pexcept(exception, **kwargs)
        else:
            self.perror(f"error: {type(exception).__name__}: {exception}")

    def run_line(self, line: str) -> int:
        """Run one command line and return its exit status."""
        self._status = None
        self._command_finished = False
        try:
            self.onecmd_plus_hooks(line, raise_keyboard_interrupt=True)
        except KeyboardInterrupt:
            return INTERRUPTED
        if self._status is not None:
            return self._status
        if self.exit_code:
            return int(self.exit_code)
        if not self._command_finished:
            # argparse or quoting error: cmd2 printed the usage and skipped the hooks
            return USAGE if line.strip() else 0
        return status_of(self.last_result)


def status_of(result: Any) -> int:
    """Map a command's ``last_result`` to an exit status."""
    if isinstance(result, bool):  # cmd2's own commands store True/False
        return 0 if result else FAILED
    if isinstance(result, int):
        return result
    return 0


def command_line(argv: list[str]) -> str:
    """``argv`` as one command line that cmd2 splits back into the same words.

    cmd2 splits like non-POSIX shlex and strips one pair of quotes around a word, so
    :func:`shlex.join`'s ``'"'"'`` escapes would turn ``it's`` into three words: each
    word is wrapped in the quote it does not contain instead.
    """
    words = []
    for word in argv:
        if shlex.quote(word) == word:
            words.append(word)
        elif "'" not in word:
            words.append(f"'{word}'")
        elif '"' not in word:
            words.append(f'"{word}"')
        else:
            raise ValueError(f"an argument cannot contain both ' and \": {word!r}")
    return " ".join(words)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv:
        try:
            line = command_line(argv)
        except ValueError as exc:
            print(f"ovios-shell: {exc}", file=sys.stderr)
            return USAGE
    app = OviosShell()
    if argv:
        return app.run_line(line)
    return app.cmdloop() or 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

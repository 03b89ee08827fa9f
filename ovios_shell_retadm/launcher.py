"""The ``ovios-shell`` console script: one-shot ``retadm inc``, ``retadm status`` and, with no
terminal, ``retadm init`` without cmd2.

Cron runs ``ovios-shell retadm inc pool/dataset`` and monitoring ``ovios-shell retadm status
--json``, often; scripts set tasks up with ``retadm init`` and every answer as an option.
Building the shell for them (:mod:`.shell`: cmd2 with prompt_toolkit and rich, and the plugins
found through their entry points) would cost several times what the commands themselves do
before their first ``zfs``.  So a one-shot line that is exactly one of those commands runs
here, from :mod:`.plain_commands` and :mod:`.plain_init` (the code the shell's ``retadm`` runs
too), without importing cmd2 and without looking for plugins.  ``init`` comes here only when
stdin is not a terminal: the shell's wizard asks a person there, and nobody here.  Its full
send's worker is this process, forked (:func:`.replication.background_send.fork`): it exits
once the worker has started.

Everything else goes to the shell as before: no arguments (the interactive shell), any other
command, and any line this module does not fully understand — ``--help``, a usage error, an
unknown option, a word that needs quoting (cmd2 has its own rules for quotes, redirection and
comments).  Those lines' output and exit status are the shell's own, byte for byte.  So the
fast path only ever takes a line it would run exactly as the shell does:

- its arguments are parsed by the same definitions (:func:`.plain_commands.status_parser`,
  :func:`.plain_commands.inc_parser`) in a parser that gives up instead of printing;
- its lines are written as cmd2 writes plain text (flushed one by one, so that stdout and
  stderr interleave alike); a line with a control character, which cmd2's console would
  change, is printed by the shell's own method instead, as is a failure nobody expected
  (``error: …``, exit 1);
- its exit status comes from the same code, and the autosync step that the shell runs after
  every command (:func:`.plain_commands.after_command`) follows it here too.

``python -m ovios_shell_retadm.shell ARGS`` always runs the full shell.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn, TextIO

from . import plain_commands, plain_init
from .exit_status import FAILED, INTERRUPTED
from .replication import background_send

if TYPE_CHECKING:
    from .shell import OviosShell

#: the ``retadm`` subcommands the fast path runs: the parser of their arguments
FAST_SUBCOMMANDS = {"status": plain_commands.status_parser, "inc": plain_commands.inc_parser,
                    "init": plain_init.init_parser}


class _NotUnderstood(Exception):
    """The line is left to the shell, which prints its usage or error."""


class _ParserThatGivesUp(argparse.ArgumentParser):
    """Parses a fast-path line; whatever argparse would print instead of parsing, it leaves to the
    shell: an error raises :class:`_NotUnderstood`, and there is no ``--help`` (it is an unknown
    option here, so the shell prints the help)."""

    def __init__(self, **kwargs):
        super().__init__(add_help=False, allow_abbrev=True, **kwargs)  # abbreviations: as the shell's parser

    def error(self, message: str) -> NoReturn:
        raise _NotUnderstood(message)


def fast_command(argv: list[str]) -> Callable[[], int] | None:
    """The fast path's run of the one-shot command line ``argv``; None when the shell must run it."""
    if len(argv) < 2 or argv[0] != "retadm" or argv[1] not in FAST_SUBCOMMANDS:
        return None
    if argv[1] == "init" and sys.stdin.isatty():
        return None  # a person answers the wizard's questions: the shell asks them
    if any(shlex.quote(word) != word for word in argv):
        return None  # quotes, redirection, comments: the shell's syntax, parsed by the shell
    subcommand = argv[1]
    try:
        args = FAST_SUBCOMMANDS[subcommand](_ParserThatGivesUp).parse_args(argv[2:])
    except _NotUnderstood:
        return None
    if subcommand == "status":
        return lambda: _run_like_the_shell("status", lambda: plain_commands.status(args, _out))
    if subcommand == "init":
        # this process exits once the worker has started: the worker may be this process, forked
        return lambda: _run_like_the_shell(
            "init", lambda: plain_init.InitWizard(_out, _warn, None, start_worker=background_send.fork).run(args))
    return lambda: _run_like_the_shell("inc", lambda: plain_commands.inc(args, _out, _err))


def _run_like_the_shell(subcommand: str, command: Callable[[], int]) -> int:
    """``command``'s exit status, with what the shell does around a command (see :mod:`.shell`)."""
    try:
        status = plain_commands.reported(f"retadm {subcommand}", command, _err)
    except KeyboardInterrupt:
        return INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - a bug: one line, as the shell reports it
        _shell().pexcept(exc)
        return FAILED
    plain_commands.after_command()
    return status


# -- output -------------------------------------------------------------------------------------

def _out(text: str) -> None:
    _write(sys.stdout, text)


def _err(text: str) -> None:
    _write(sys.stderr, text)


def _warn(text: str) -> None:
    """A warning, as the shell's ``pwarning`` writes it: its style shows on a terminal only."""
    if sys.stderr.isatty():
        _shell().pwarning(text)
        return
    _write(sys.stderr, text)


def _write(stream: TextIO, text: str) -> None:
    """``text`` and a newline, as the shell's ``poutput``/``perror`` (with no style) write it."""
    if not all(line.isprintable() for line in text.split("\n")):
        shell = _shell()  # cmd2's console strips or expands control characters: let it
        (shell.poutput if stream is sys.stdout else shell.perror)(text, style=None)
        return
    try:
        stream.write(text + "\n")
        stream.flush()
    except BrokenPipeError:
        pass  # the reader went away: as the shell, say nothing


_shell_lock = threading.Lock()  # inc's runs print from threads of their own
_the_shell: OviosShell | None = None


def _shell() -> OviosShell:
    """A shell without plugins, only to print what plain writes would not print as it does
    (built on first use: it imports cmd2)."""
    global _the_shell  # noqa: PLW0603 - one per process, built only when needed
    with _shell_lock:
        if _the_shell is None:
            from .shell import OviosShell

            _the_shell = OviosShell(load_plugins=False)
        return _the_shell


# -----------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    run = fast_command(argv)
    if run is not None:
        return run()
    from . import shell  # cmd2, prompt_toolkit, rich and the plugins

    return shell.main(argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""``edit-cron`` — edit root's crontab, where ``retadm inc`` is scheduled.

``crontab -e`` semantics: a copy is edited in ``$VISUAL``, ``$EDITOR`` or the
system's editor, checked, and installed only when it is valid.  Lines cron would
reject are shown with their numbers (on a terminal the user may edit again);
``retadm inc`` lines that name a dataset with no replication task get a warning.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile

import cmd2

from .. import cron, options
from ..store import Store, StoreError
from .base import OviosCommandSet, verb

_FALLBACK_EDITORS = ("/usr/bin/editor", "nano", "vi")

NEW_CRONTAB = f"""\
# OviOS replication — one line per dataset, for example every 5 minutes:
# */5 * * * *  {cron.CRON_COMMAND} data/smbvol
# */5 * * * *  {cron.CRON_COMMAND} esx/lun01
"""


class EditorError(Exception):
    pass


def editor_command() -> list[str]:
    for variable in ("VISUAL", "EDITOR"):
        value = os.environ.get(variable, "").strip()
        if value:
            return shlex.split(value)
    for candidate in _FALLBACK_EDITORS:
        if shutil.which(candidate):
            return [candidate]
    raise EditorError("no editor found: set $EDITOR")


def run_editor(path: str) -> None:
    argv = [*editor_command(), path]
    try:
        status = subprocess.call(argv)
    except OSError as exc:
        raise EditorError(f"cannot start editor {argv[0]!r}: {exc.strerror}") from exc
    if status != 0:
        raise EditorError(f"editor {argv[0]!r} exited with status {status}; crontab not changed")


def _edit_parser() -> cmd2.Cmd2ArgumentParser:
    return cmd2.Cmd2ArgumentParser(
        description="Edit root's crontab (schedule '/usr/bin/ovios-shell retadm inc pool/dataset')."
    )


class EditCronCommands(OviosCommandSet):
    @verb("edit-cron")
    @cmd2.with_argparser(_edit_parser)
    def do_edit_cron(self, _args) -> None:
        """Edit root's crontab in $VISUAL/$EDITOR; it is checked before it is installed."""
        crontab = cron.Crontab()
        try:
            original = crontab.read()
            text = self._edit_until_valid(original or NEW_CRONTAB)
            if text is None:
                return
            if text == original or (not original and text == NEW_CRONTAB):
                self.out("No changes made to the crontab.")
                self.succeed()
                return
            crontab.install(text)
        except (cron.CrontabError, EditorError) as exc:
            self.fail(f"edit-cron: {exc}")
            return
        self.out("Crontab installed.")
        self._warn_about(text)
        self.succeed()

    def _edit_until_valid(self, text: str) -> str | None:
        with tempfile.TemporaryDirectory(prefix="edit-cron.") as tmp:
            path = os.path.join(tmp, "crontab")
            while True:
                with open(path, "w") as handle:
                    handle.write(text)
                run_editor(path)
                with open(path) as handle:
                    text = handle.read()
                if text and not text.endswith("\n"):
                    text += "\n"  # cron ignores a last line without a newline
                _entries, problems = cron.parse(text)
                if not problems:
                    return text
                for problem in problems:
                    self._cmd.perror(f"edit-cron: {problem}", style=None)
                if not (sys.stdin.isatty() and self._ask_again()):
                    self.fail("edit-cron: errors in the crontab; it was not installed")
                    return None

    def _ask_again(self) -> bool:
        try:
            answer = self._cmd.read_input("Edit again? [Y/n] ")
        except EOFError:
            return False
        return answer.strip().lower() in ("", "y", "yes")

    def _warn_about(self, text: str) -> None:
        entries, _ = cron.parse(text)
        scheduled = {ds for entry in entries for ds in cron.replicated_datasets(entry)}
        try:
            store = Store()
            replicated = {record.get("dataset") for record in store.all_tasks()}  # one line runs all its tasks
            cron_on = options.is_on("cron.enable", store)
        except StoreError as exc:
            self.warn(f"edit-cron: cannot check the replication tasks: {exc}")
            return
        for dataset in sorted(scheduled - replicated):
            self.warn(f"warning: 'retadm inc {dataset}' is scheduled but {dataset} has no replication task "
                      f"(run 'retadm init {dataset}' first)")
        if scheduled and not cron_on:
            self.warn("warning: cron is not enabled; run 'options cron.enable on'")

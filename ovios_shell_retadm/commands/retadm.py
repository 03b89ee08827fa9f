"""``retadm`` — replication of single datasets to a partner node (the guide's sections 4–7).

The command itself and its subcommands status, init, inc, repair, reset and doctor; ``watch``
(:mod:`.watch`) and ``promote``, ``reverse``, ``switchback`` (:mod:`.failover`) are command sets
of their own that cmd2 attaches to it.  Whichever set runs a subcommand, its errors are reported
by :meth:`RetadmCommands.do_retadm`.

Parsing, prompts and rendering only; the work is in :mod:`ovios_shell_retadm.replication`.
``status`` and ``inc``, which one-shot runs make without this shell, are entirely in
:mod:`ovios_shell_retadm.plain_commands` (their arguments too), and ``init``'s wizard in
:mod:`ovios_shell_retadm.plain_init`: this set adds their completion, and the shell as the
terminal the wizard asks on.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import cmd2

from .. import plain_commands, plain_init
from ..exit_status import FAILED, USAGE, CommandError
from ..plain_commands import add_dest_option
from ..replication import doctor, preflight
from ..replication.model import Plan
from ..replication.preflight import PreflightError
from ..replication.progress import format_bytes
from ..replication.task_lock import TaskBusy, TaskLock
from ..replication.task_run import REPAIR, RunFailed, TaskReset, TaskRun
from ..replication.task_store import TaskRecord, TaskStore
from ..zfs import ZfsNode
from .retadm_base import (
    RetadmCommandSet,
    complete,
    destination_pools,
    known_partners,
    local_unreplicated_datasets,
    partner_names,
    pools_of,
    replicated_datasets,
)

SUBCOMMANDS = ("status", "init", "inc", "reset", "doctor", "repair", "watch")  # the guide's order
FAILOVER_SUBCOMMANDS = ("promote", "reverse", "switchback")
USAGE_LINE = f"usage: retadm [{'|'.join(SUBCOMMANDS)}] [dataset] [--dry-run]"


# -- parsers ----------------------------------------------------------------------------------

#: the order ``retadm --help`` lists the subcommands in (and a mistyped one's error its choices)
HELP_ORDER = ("status", "init", "inc", "repair", "reset", "edit", "doctor", "watch", *FAILOVER_SUBCOMMANDS)


def _help_rank(subcommand: str) -> int:
    """Where ``subcommand`` comes in :data:`HELP_ORDER`; one it does not name comes last."""
    return HELP_ORDER.index(subcommand) if subcommand in HELP_ORDER else len(HELP_ORDER)


class _SubcommandsInHelpOrder(argparse._SubParsersAction):
    """Keeps ``retadm``'s subcommands in :data:`HELP_ORDER` whichever command set attaches them
    first: cmd2 attaches a set's subcommands in the alphabetical order of their handlers' names."""

    def add_parser(self, name, **kwargs):
        parser = super().add_parser(name, **kwargs)
        self._choices_actions.sort(key=lambda action: _help_rank(action.dest))
        in_order = sorted(self._name_parser_map.items(), key=lambda item: _help_rank(item[0]))
        self._name_parser_map.clear()  # in place: the action's choices are this very dict
        self._name_parser_map.update(in_order)
        return parser


def _build_parser() -> cmd2.Cmd2ArgumentParser:
    """``retadm`` itself; its subcommands are attached by the command sets that run them."""
    parser = cmd2.Cmd2ArgumentParser(
        prog="retadm", usage=USAGE_LINE[len("usage: "):],
        description="ZFS send/receive replication of single datasets to a partner node over SSH.",
    )
    parser.add_subparsers(dest="subcommand", metavar="{" + ",".join(SUBCOMMANDS + FAILOVER_SUBCOMMANDS) + "}",
                          action=_SubcommandsInHelpOrder)
    return parser


def _status_parser() -> cmd2.Cmd2ArgumentParser:
    status = plain_commands.status_parser(cmd2.Cmd2ArgumentParser)  # shared with the launcher's fast path
    complete(status, "dataset", replicated_datasets)
    return status


def _init_parser() -> cmd2.Cmd2ArgumentParser:
    init = plain_init.init_parser(cmd2.Cmd2ArgumentParser)  # shared with the launcher's fast path
    complete(init, "dataset", local_unreplicated_datasets)
    complete(init, "dest", known_partners)
    complete(init, "remote_pool", destination_pools)
    return init


def _edit_parser() -> cmd2.Cmd2ArgumentParser:
    edit = cmd2.Cmd2ArgumentParser(
        description="Change a task's settings after init: the destination's address, its bandwidth limit, whether "
        "properties travel, the restore points its replica keeps. The next run uses them (the next one that sends "
        "prunes the restore points a smaller policy no longer keeps); the replica stays as it is.",
    )
    edit.add_argument("dataset", nargs="?", help="the replicated dataset (on a terminal, without it: a pick list)",
                      choices_provider=replicated_datasets)
    add_dest_option(edit, "the one")
    edit.add_argument("--bandwidth", metavar="RATE", type=plain_init.bandwidth, default=argparse.SUPPRESS,
                      help="limit its transfers to RATE a second (e.g. 10M, 512K), or 'none'")
    edit.add_argument("--address", metavar="HOST",
                      help="the destination's new address (IP or name), say after a change of network: it must "
                      "reach the same replica (checked: its origin mark, the common snapshot's guid)")
    edit.add_argument("--properties", choices=("yes", "no"), help="whether the dataset's properties travel")
    edit.add_argument("--retention", metavar="POLICY", type=plain_init.retention,
                      help="the restore points the replica keeps: KIND=N,… with KIND last, hourly, daily, weekly "
                      "or monthly, or 'none' (only the newest snapshot)")
    edit.add_argument("--dry-run", action="store_true", help="show what would change; change nothing")
    return edit


def _inc_parser() -> cmd2.Cmd2ArgumentParser:
    inc = plain_commands.inc_parser(cmd2.Cmd2ArgumentParser)  # shared with the launcher's fast path
    complete(inc, "dataset", replicated_datasets)
    return inc


def _repair_parser() -> cmd2.Cmd2ArgumentParser:
    repair = cmd2.Cmd2ArgumentParser(
        description="Shows what it will do first: roll the destination back to the common snapshot "
        "(listing what that discards), or, when nothing is in common any more, keep the old replica "
        "under a new name and send in full. Nothing is destroyed without confirmation (--yes in "
        "scripts). Stale partial receives, missing holds and dead runs are mended by the run itself.",
    )
    repair.add_argument("dataset", nargs="?", help="the replicated dataset (on a terminal, without it: a pick list)",
                        choices_provider=replicated_datasets)
    add_dest_option(repair, "the one")
    repair.add_argument("--dry-run", action="store_true", help="show what would be done; change nothing")
    repair.add_argument("--yes", action="store_true", help="do not ask for confirmation (for scripts)")
    return repair


def _reset_parser() -> cmd2.Cmd2ArgumentParser:
    reset = cmd2.Cmd2ArgumentParser(
        description="Remove the task, its tracking snapshots, holds and bookmarks on both sides (the "
        "destination's only where it can be reached). The replicated data is never touched, nor the "
        "dataset's other tasks (to other destinations). "
        "Afterwards 'retadm init' can set the dataset up again (to a new remote name).",
    )
    reset.add_argument("dataset", nargs="?", help="the replicated dataset (on a terminal, without it: a pick list)",
                       choices_provider=replicated_datasets)
    add_dest_option(reset, "the one")
    reset.add_argument("--dry-run", action="store_true", help="list what would be removed; change nothing")
    reset.add_argument("--yes", action="store_true", help="do not ask for confirmation (for scripts)")
    return reset


def _doctor_parser() -> cmd2.Cmd2ArgumentParser:
    doctor_ = cmd2.Cmd2ArgumentParser(
        description="Read-only checks of a task, one line each: OK, WARN or FAIL with a hint saying what to run "
        "(SKIP: not checked because an earlier check failed). Without a dataset: every task. "
        "Exit status 1 when any check FAILs, else 0.",
        epilog="The checks, in order, with the worst level each can give (DS the dataset, dst its "
        "destination):\n" + doctor.check_table(),
        formatter_class=cmd2.RawDescriptionCmd2HelpFormatter,
    )
    doctor_.add_argument("dataset", nargs="?", help="only this task", choices_provider=replicated_datasets)
    add_dest_option(doctor_, "the one")
    doctor_.add_argument("--json", action="store_true", help="machine-readable output for monitoring")
    doctor_.add_argument("--dry-run", action="store_true", help="accepted like everywhere; doctor changes nothing")
    return doctor_


class RetadmCommands(RetadmCommandSet):
    @cmd2.with_argparser(_build_parser)
    def do_retadm(self, args) -> None:
        """ZFS send/receive replication of single datasets to a partner node."""
        run_subcommand = args.cmd2_subcommand_func  # the handler of the subcommand given, if any
        if run_subcommand is None:
            self.out(USAGE_LINE)
            self._cmd.last_result = USAGE
            return
        self._cmd.last_result = plain_commands.reported(f"retadm {args.subcommand}", lambda: run_subcommand(args),
                                                        self.err)

    # -- status -------------------------------------------------------------------------------

    @cmd2.as_subcommand_to("retadm", "status", _status_parser, help="show every replication task and its status")
    def _status(self, args) -> int:
        return plain_commands.status(args, self.out)

    # -- init ---------------------------------------------------------------------------------

    def _terminal(self) -> plain_init.Terminal | None:
        """Where a person answers: the shell, when one sits at it."""
        return self._cmd if self._interactive() else None

    def _pick_task(self, args: argparse.Namespace, verb: str) -> TaskRecord:
        """The task ``args`` name; without a dataset, on a terminal, the one picked from a list
        of the replicated datasets (as init's list), else a usage error."""
        if args.dataset is None:
            args.dataset = plain_init.pick_dataset(self._terminal(), verb,
                                                   lambda: sorted({record.dataset for record in TaskStore().all()}),
                                                   "there are no replication tasks ('retadm init' sets one up)")
        return self._choose(args.dataset, args.dest)

    @cmd2.as_subcommand_to("retadm", "init", _init_parser,
                           help="set up a new replication task and start its full send in the background")
    def _init(self, args) -> int:
        return plain_init.InitWizard(self.out, self.warn, self._terminal(), partner_names, pools_of).run(args)

    # -- inc ------------------------------------------------------------------------------------

    @cmd2.as_subcommand_to("retadm", "inc", _inc_parser, help="send the changes since the last common snapshot")
    def _inc(self, args) -> int:
        return plain_commands.inc(args, self.out, self.err)

    # -- repair ---------------------------------------------------------------------------------

    @cmd2.as_subcommand_to("retadm", "repair", _repair_parser,
                           help="bring a broken replication relationship back, then replicate")
    def _repair(self, args) -> int:
        tasks = TaskStore()
        record = self._pick_task(args, "repair")
        preview = TaskRun(record, REPAIR, tasks)  # planning marks the repair as planned: a run of its own
        status = self._preview(preview, title="dry run" if args.dry_run else "repair")
        shown = preview.last_plan
        if args.dry_run or status != 0 or not isinstance(shown, Plan):
            return status
        if shown.needs_replan and not args.yes and not self._confirm("Go ahead? (yes/no) [no]: "):
            raise CommandError("not confirmed; nothing was changed (use --yes in scripts)")
        try:
            outcome = TaskRun(record, REPAIR, tasks, confirmed=shown).run()
        except RunFailed as exc:
            raise CommandError(str(exc), exc.status) from exc
        self.out(f"{record.dataset}: repaired; replicated to {record.destination}:{record.remote_dataset} "
                 f"at @{outcome.common}")
        return 0

    # -- edit -----------------------------------------------------------------------------------

    @cmd2.as_subcommand_to("retadm", "edit", _edit_parser,
                           help="change a task's destination address, bandwidth limit, properties or restore points")
    def _edit(self, args) -> int:
        record = self._pick_task(args, "edit")
        changes: dict[str, object] = {}
        if hasattr(args, "bandwidth"):  # given (its default is no attribute at all): 'none' is None
            changes["bandwidth"] = args.bandwidth
        if args.properties is not None:
            changes["properties"] = args.properties == "yes"
        if args.retention is not None:
            if record.cascade:
                raise CommandError(f"{record.dataset} is a replica that a cascade sends on: its destination keeps the "
                                   "restore points its source keeps (change them on the source's task)", USAGE)
            changes["retention"] = args.retention.text
        if args.address is not None and args.address != record.destination:
            changes["destination"] = args.address
        if not changes:
            raise CommandError("nothing to change: give --address, --bandwidth, --properties or --retention", USAGE)
        shown: dict[str, Callable[[Any], str]] = {"bandwidth": _rate_text, "properties": lambda v: "yes" if v else "no",
                                                  "retention": lambda v: v or "none", "destination": str}
        said = ", ".join(f"{field} {shown[field](getattr(record, field))} -> {shown[field](value)}"
                         for field, value in changes.items())
        if "destination" not in changes:
            return self._edit_in_place(record, changes, said, args.dry_run)
        with self._task_locked(record):
            changes["source_address"] = self._check_new_address(record, args.address)
            if args.dry_run:
                self.out(f"dry run: {record.dataset} -> {record.target}: would change {said} (the replica there "
                         "is the task's)")
                return 0
            if TaskStore().move(record, **changes) is None:
                raise CommandError(f"{record.dataset} is already replicated to "
                                   f"{args.address}:{record.remote_dataset} (see 'retadm status')")
        self.out(f"{record.dataset} -> {record.target}: {said}")
        return 0

    def _edit_in_place(self, record: TaskRecord, changes: dict[str, object], said: str, dry_run: bool) -> int:
        if dry_run:
            self.out(f"dry run: {record.dataset} -> {record.target}: would change {said}")
            return 0
        if TaskStore().update(record.key, **changes) is None:
            raise CommandError(f"{record.dataset} -> {record.target}: the task is gone (reset meanwhile?)")
        self.out(f"{record.dataset} -> {record.target}: {said}")
        return 0

    @contextlib.contextmanager
    def _task_locked(self, record: TaskRecord) -> Iterator[None]:
        """The task's lock while its record moves to a new key: no run of it meanwhile."""
        try:
            with TaskLock(record.key):
                yield
        except TaskBusy:
            raise CommandError(f"a run of {record.dataset} -> {record.target} is in progress; change its address "
                               "once it has ended") from None

    def _check_new_address(self, record: TaskRecord, address: str) -> str:
        """ssh both ways with the new address, and the same replica there (see preflight.same_replica);
        returns this node's address as the partner sees it now."""
        try:
            host = preflight.destination(address)
            source_address = preflight.reverse_ssh(host)
            preflight.same_replica(ZfsNode(host), record)
        except PreflightError as exc:
            raise CommandError(str(exc), USAGE if isinstance(exc, preflight.InvalidValue) else FAILED) from exc
        return source_address

    # -- doctor ---------------------------------------------------------------------------------

    @cmd2.as_subcommand_to("retadm", "doctor", _doctor_parser,
                           help="diagnose replication problems: ssh both ways, snapshots, destination pool, cron")
    def _doctor(self, args) -> int:
        records = self._records(args.dataset, args.dest)
        if not records:
            self.out("(no replication tasks; 'retadm init' sets one up)")
            return 0
        diagnoses = []
        for diagnosis in doctor.diagnose(records):  # one block at a time: each task's checks take a few seconds
            diagnoses.append(diagnosis)
            if not args.json:
                if len(diagnoses) > 1:
                    self.out()
                self.out(diagnosis.header())
                for check in diagnosis.checks:
                    self.out(check.line())
        if args.json:
            self.out(doctor.to_json(diagnoses))
        else:
            self.out()
            self.out(doctor.summary(diagnoses))
        return FAILED if any(d.failed for d in diagnoses) else 0

    # -- reset ----------------------------------------------------------------------------------

    @cmd2.as_subcommand_to("retadm", "reset", _reset_parser,
                           help="remove a replication task and its tracking snapshots and holds")
    def _reset(self, args) -> int:
        tasks = TaskStore()
        record = self._pick_task(args, "reset")
        reset = TaskReset(record, tasks)
        if args.dry_run or not args.yes:
            try:
                plan, left = reset.plan()
            except RunFailed as exc:
                raise CommandError(str(exc), exc.status) from exc
            self.out(f"{'dry run: ' if args.dry_run else ''}reset {record.dataset} -> "
                     f"{record.destination}:{record.remote_dataset} (the replicated data stays):")
            for line in plan.describe() if plan.steps else ("nothing to remove on either side",):
                self.out(f"  {line}")
            self.out(f"  forget the task {record.dataset}")
            if left:
                self.out(f"  note: {left}")
            if args.dry_run:
                return 0
            if not self._confirm("Reset this task? (yes/no) [no]: "):
                raise CommandError("not confirmed; nothing was changed (use --yes in scripts)")
        try:
            _plan, left = reset.run()
        except RunFailed as exc:
            raise CommandError(str(exc), exc.status) from exc
        self.out(f"{record.dataset}: replication task removed; the data on {record.destination} stays in "
                 f"{record.remote_dataset}.")
        if left:
            self.warn(f"warning: {left}")
        return 0


def _rate_text(rate: int | None) -> str:
    return "none" if rate is None else f"{format_bytes(rate)}/s"

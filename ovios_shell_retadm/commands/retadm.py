"""``retadm`` — replication of single datasets to a partner node (the guide's sections 4–7).

The command itself and its subcommands status, init, inc, repair, reset and doctor; ``watch``
(:mod:`.watch`) and ``promote``, ``reverse``, ``switchback`` (:mod:`.failover`) are command sets
of their own that cmd2 attaches to it.  Whichever set runs a subcommand, its errors are reported
by :meth:`RetadmCommands.do_retadm`.

Parsing, prompts and rendering only; the work is in :mod:`ovios_shell_retadm.replication`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import cmd2
from tabulate import tabulate

from .. import options, settings
from ..config import autosync
from ..exit_status import BUSY, FAILED, USAGE
from ..hosts import HostError, LocalHost
from ..replication import doctor, preflight, progress
from ..replication.concurrency import Bound, run_bounded
from ..replication.model import Plan
from ..replication.preflight import PreflightError
from ..replication.task_run import FULL, INC, REPAIR, RunFailed, TaskReset, TaskRun, start_full_in_background
from ..replication.task_store import (
    DECRYPTED,
    RAW,
    RUNNING_FULL,
    TaskRecord,
    TaskStore,
    effective_status,
    new_identity,
)
from ..store import StoreError
from ..zfs import InvalidName, ZfsError, ZfsNode, pool_of, validate_dataset_name
from .base import CommandError
from .retadm_base import RetadmCommandSet, add_dest_option, local_unreplicated_datasets, replicated_datasets

SUBCOMMANDS = ("status", "init", "inc", "reset", "doctor", "repair", "watch")  # the guide's order
FAILOVER_SUBCOMMANDS = ("promote", "reverse", "switchback")
USAGE_LINE = f"usage: retadm [{'|'.join(SUBCOMMANDS)}] [dataset] [--dry-run]"


# -- parsers ----------------------------------------------------------------------------------

#: the order ``retadm --help`` lists the subcommands in (and a mistyped one's error its choices)
HELP_ORDER = ("status", "init", "inc", "repair", "reset", "doctor", "watch", *FAILOVER_SUBCOMMANDS)


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
    status = cmd2.Cmd2ArgumentParser(
        description="Show every replication task: idle, running_full, running_inc or error.")
    status.add_argument("dataset", nargs="?", help="only this task", choices_provider=replicated_datasets)
    status.add_argument("--json", action="store_true", help="machine-readable output for monitoring")
    return status


def _init_parser() -> cmd2.Cmd2ArgumentParser:
    init = cmd2.Cmd2ArgumentParser(
        description="The wizard: destination host, dataset, remote pool and name, properties yes/no. "
        "Every answer can be given as an option, so init also runs with no terminal.",
    )
    init.add_argument("dataset", nargs="?", help="the local dataset (skips the pick)",
                      choices_provider=local_unreplicated_datasets)
    init.add_argument("--dest", help="destination host (IP or name); a dataset already replicated elsewhere gets "
                      "a second task (fan-out)")
    init.add_argument("--remote-pool", help="pool on the destination")
    init.add_argument("--remote-name", help="dataset name on the destination (default: the last component)")
    init.add_argument("--properties", choices=("yes", "no"),
                      help="replicate the dataset's properties (a LUN's mappings, a volume's SMB/NFS options)")
    init.add_argument("--decrypted", action="store_true",
                      help="an encrypted dataset that cannot travel raw (encrypted, the key staying here) is "
                      "replicated decrypted: the replica is not encrypted")
    init.add_argument("--dry-run", action="store_true", help="check and show what would be done; change nothing")
    return init


def _inc_parser() -> cmd2.Cmd2ArgumentParser:
    inc = cmd2.Cmd2ArgumentParser(
        description="Send everything since the last common snapshot (user snapshots too). "
        "A dataset replicated to several destinations: each of its tasks, one line each. "
        f"Without a dataset: every task, several at once (the options {options.PARALLEL} and "
        f"{options.PARALLEL_PER_PARTNER}; a dataset's tasks one after the other). "
        f"Exit status {BUSY} when a run of the task is still in progress.")
    inc.add_argument("dataset", nargs="?", help="the replicated dataset", choices_provider=replicated_datasets)
    add_dest_option(inc, "only the one")
    inc.add_argument("--dry-run", action="store_true", help="show what would be sent; change nothing")
    return inc


def _repair_parser() -> cmd2.Cmd2ArgumentParser:
    repair = cmd2.Cmd2ArgumentParser(
        description="Shows what it will do first: roll the destination back to the common snapshot "
        "(listing what that discards), or, when nothing is in common any more, keep the old replica "
        "under a new name and send in full. Nothing is destroyed without confirmation (--yes in "
        "scripts). Stale partial receives, missing holds and dead runs are mended by the run itself.",
    )
    repair.add_argument("dataset", help="the replicated dataset", choices_provider=replicated_datasets)
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
    reset.add_argument("dataset", help="the replicated dataset", choices_provider=replicated_datasets)
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


def _fanned_out(rows) -> set[str]:
    """The datasets that have more than one task among ``rows`` (dicts with a ``dataset``)."""
    seen: set[str] = set()
    several: set[str] = set()
    for row in rows:
        (several if row["dataset"] in seen else seen).add(row["dataset"])
    return several


def _inc_prefix(record: TaskRecord, named: bool) -> str:
    """``retadm inc``'s lines about a task: its dataset, and its destination when the dataset has several."""
    return f"retadm inc {record.dataset} -> {record.target}" if named else f"retadm inc {record.dataset}"


class RetadmCommands(RetadmCommandSet):
    @cmd2.with_argparser(_build_parser)
    def do_retadm(self, args) -> None:
        """ZFS send/receive replication of single datasets to a partner node."""
        run_subcommand = args.cmd2_subcommand_func  # the handler of the subcommand given, if any
        if run_subcommand is None:
            self.out(USAGE_LINE)
            self._cmd.last_result = USAGE
            return
        try:
            status = run_subcommand(args)
        except CommandError as exc:
            self.fail(f"retadm {args.subcommand}: {exc}", exc.status)
            return
        except StoreError as exc:
            self.fail(f"retadm {args.subcommand}: {exc}")
            return
        self._cmd.last_result = status

    # -- status -------------------------------------------------------------------------------

    @cmd2.as_subcommand_to("retadm", "status", _status_parser, help="show every replication task and its status")
    def _status(self, args) -> int:
        records = TaskStore().all()  # one row per task: a dataset replicated to several destinations has several
        if args.dataset:
            records = [r for r in records if r.dataset == args.dataset]
            if not records:
                raise CommandError(f"{args.dataset} has no replication task")
        now = time.time()
        rows = []
        config = autosync.partner_statuses({r.destination for r in records})  # local records only: no ssh
        for record in records:
            status = effective_status(record)
            task = record.task()
            rows.append({
                "dataset": record.dataset,
                "destination": record.destination,
                "remote_dataset": record.remote_dataset,
                "target": record.target,
                "status": status.word,
                "reason": status.reason,
                "pid": (record.runner or {}).get("pid") if status.word.startswith("running") else None,
                "last_success": record.last_success,
                "lag_seconds": round(now - record.last_success) if record.last_success else None,
                "last_snapshot": record.last_snapshot,
                "last_bytes": record.last_bytes,
                "properties": record.properties,
                "hold_tag": task.tag,
                "cascade": task.cascade,
                "send_mode": record.send_mode,
                "send_flags": record.send_flags,
                "config": config[record.destination].text,
                "config_sync": config[record.destination].to_json(),
            })
        if args.json:
            self.out(json.dumps(rows, indent=2))
            return 0
        self._print_status_table(rows)
        return 0

    def _print_status_table(self, rows: list[dict]) -> None:
        table = [
            (
                row["dataset"], row["destination"], row["status"],
                (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row["last_success"]))
                 if row["last_success"] else "never"),
                progress.format_duration(row["lag_seconds"]) if row["lag_seconds"] is not None else "-",
                row["remote_dataset"], row["config"],
            )
            for row in rows
        ]
        text = tabulate(table, headers=("DATASET", "DESTINATION", "STATUS", "LAST SUCCESS", "LAG", "REMOTE", "CONFIG"),
                        tablefmt="plain", disable_numparse=True)
        header, *body = text.splitlines() or [""]
        self.out(header)
        self.out("-" * max(65, len(header)))
        for line in body:
            self.out(line)
        if not rows:
            self.out("(no replication tasks; 'retadm init' sets one up)")
        several = _fanned_out(rows)
        for row in rows:
            if row["reason"]:
                to = f" -> {row['target']}" if row["dataset"] in several else ""
                self.out(f"{row['dataset']}{to}: {row['reason']}")
        for row in rows:
            to = f" -> {row['target']}" if row["dataset"] in several else ""
            if row["send_mode"] == RAW:
                self.out(f"{row['dataset']}{to}: encrypted, replicated raw: the replica stays encrypted, its key is "
                         "only here ('retadm promote' on the partner needs it)")
            elif row["send_mode"] == DECRYPTED:
                self.out(f"{row['dataset']}{to}: encrypted, but replicated DECRYPTED: the replica on "
                         f"{row['destination']} is not encrypted")

    # -- init ---------------------------------------------------------------------------------

    def _ask(self, prompt: str, given: str | None, option: str, default: str | None = None) -> str:
        if given is not None:
            return given
        if not self._interactive():
            if default is not None:
                return default
            raise CommandError(f"{option} is required when there is no terminal", USAGE)
        try:
            answer = self._cmd.read_input(prompt).strip()
        except (EOFError, KeyboardInterrupt):
            raise CommandError("cancelled; nothing was changed") from None
        if not answer and default is not None:
            return default
        if not answer:
            raise CommandError(f"an answer is required ({option}); nothing was changed", USAGE)
        return answer

    def _pick_dataset(self, node: ZfsNode, tasks: TaskStore) -> str:
        if not self._interactive():
            raise CommandError("the dataset is required when there is no terminal", USAGE)
        choices = preflight.replicable_datasets(node, tasks)
        if not choices:
            raise CommandError("no dataset left to replicate (pools and replicated datasets are not offered)")
        try:
            return self._cmd.select(choices, "Select the dataset to replicate: ")
        except (EOFError, KeyboardInterrupt):
            raise CommandError("cancelled; nothing was changed") from None

    @cmd2.as_subcommand_to("retadm", "init", _init_parser,
                           help="set up a new replication task and start its full send in the background")
    def _init(self, args) -> int:
        tasks = TaskStore()
        local = ZfsNode(LocalHost())
        try:
            dest_address = self._ask("Destination Host (IP/Name): ", args.dest, "--dest")
            dest_host = preflight.destination(dest_address)
            source_address = preflight.reverse_ssh(dest_host)
            dataset = args.dataset or self._pick_dataset(local, tasks)
            kind = preflight.source_dataset(local, dataset)
            dest = ZfsNode(dest_host)
            pool = self._ask("Remote Pool Name: ", args.remote_pool, "--remote-pool")
            preflight.remote_pool(dest, pool)
            default_name = dataset.rsplit("/", 1)[-1]
            name = self._ask(f"Remote Dataset Name [{default_name}]: ", args.remote_name, "--remote-name", default_name)
            remote = f"{pool}/{name}"
            preflight.new_target(dataset, dest_address, remote, tasks)
            preflight.remote_absent(dest, remote)
            properties = self._ask_properties(args.properties, kind)
            mode = self._send_mode(local, dataset, dest, pool, args.decrypted)
            flags = preflight.send_flags(local, dataset, dest, remote, mode)
            self._warn_autosync(dataset, remote, properties)
        except PreflightError as exc:
            raise CommandError(str(exc), USAGE if isinstance(exc, preflight.InvalidValue) else FAILED) from exc
        record = TaskRecord(dataset=dataset, destination=dest_address, remote_dataset=remote, properties=properties,
                            source_address=source_address, identity=new_identity(),
                            cascade=preflight.is_replica(local, dataset), send_mode=mode, send_flags=flags)
        if mode == RAW:
            self.out(f"{dataset} is encrypted: it is replicated raw (the replica stays encrypted; its key stays "
                     "here, and 'retadm promote' on the partner needs it)")
        elif mode == DECRYPTED:
            self.warn(f"warning: {dataset} is encrypted, but its replica on {dest_address} will NOT be (--decrypted)")
        if args.dry_run:
            return self._preview(TaskRun(record, FULL, tasks, source=local, destination=dest))
        if not tasks.create(record):
            raise CommandError(f"{dataset} is already replicated to {record.target} (see 'retadm status')")
        try:
            start_full_in_background(record.key)
        except (RunFailed, OSError) as exc:
            raise CommandError(str(exc)) from exc
        self.out("[+] Full replication started in background.")
        self.out(f"Monitor {settings.repl_log_path()}")
        return 0

    def _warn_autosync(self, dataset: str, remote: str, properties: bool) -> None:
        """With autosync on, the guide (section 8) wants the same pool/name and properties: warn."""
        try:
            if not options.is_on(autosync.OPTION):
                return
        except (StoreError, options.OptionError):
            return
        problems = ([f"the replica will be {remote}, not {dataset}"] if remote != dataset else []) + \
            (["properties are not replicated"] if not properties else [])
        if problems:
            self.warn(f"warning: autosync is on but {' and '.join(problems)}: the synced configuration names "
                      f"{dataset}, so after a failover 'restore' will not match it (use the same pool/name and "
                      "--properties yes)")

    def _send_mode(self, local: ZfsNode, dataset: str, dest: ZfsNode, pool: str, decrypted: bool) -> str:
        """Raw for an encrypted dataset; where it cannot be, a refusal with the reason, unless
        a decrypted replica is asked for (--decrypted, or yes in the wizard)."""
        try:
            return preflight.send_mode(local, dataset, dest, pool, decrypted=decrypted)
        except preflight.RawImpossible as exc:
            if not self._interactive():
                raise
            self.out(str(exc))
        answer = self._ask("Replicate it decrypted (the replica is not encrypted)? (yes/no) [no]: ", None,
                           "--decrypted", "no").lower()
        if not answer.startswith("y"):
            raise CommandError("cancelled: an encrypted dataset is not replicated decrypted without a yes; "
                               "nothing was changed")
        return DECRYPTED

    def _ask_properties(self, given: str | None, kind: str) -> bool:
        what = "its LUN mapping properties" if kind == "volume" else "its SMB and NFS options"
        if given is None and self._interactive():
            self.out(f"Replicating properties carries {what} to the destination with the data.")
        answer = self._ask("Replicate properties? (yes/no) [no]: ", given, "--properties", "no").lower()
        if answer not in ("yes", "y", "no", "n"):
            raise CommandError(f"answer yes or no, not {answer!r}", USAGE)
        return answer.startswith("y")

    # -- inc ------------------------------------------------------------------------------------

    @cmd2.as_subcommand_to("retadm", "inc", _inc_parser, help="send the changes since the last common snapshot")
    def _inc(self, args) -> int:
        tasks = TaskStore()
        if args.dataset is None:
            records = tasks.all()
            if not records:
                raise CommandError("there are no replication tasks ('retadm init' sets one up)")
            if not args.dry_run:
                autosync.push_before_inc(r.destination for r in records)  # logged; never fails the run
            return self._inc_each(records, tasks, args.dry_run)
        try:
            validate_dataset_name(args.dataset)
        except InvalidName as exc:
            raise CommandError(str(exc), USAGE) from exc
        records = tasks.of(args.dataset)
        if not records:
            hint = "retadm replicates datasets, not whole pools" if pool_of(args.dataset) == args.dataset \
                else f"run 'retadm init {args.dataset}' first"
            raise CommandError(f"{args.dataset} has no replication task; {hint}")
        if args.dest is not None:
            records = [self._choose(args.dataset, args.dest)]
        if not args.dry_run:
            autosync.push_before_inc(r.destination for r in records)  # logged; never fails the run
        if len(records) == 1:
            return self._inc_one(records[0], tasks, args.dry_run)
        return self._inc_each(records, tasks, args.dry_run)

    def _inc_each(self, records: list[TaskRecord], tasks: TaskStore, dry_run: bool) -> int:
        """Every task of ``records``, each isolated from the others; the first non-zero status
        (in the records' order), else 0.  The runs go side by side within the options'
        limits, a dataset's tasks one after the other; dry runs one after the other, so that
        their previews read in order."""
        several = _fanned_out([{"dataset": r.dataset} for r in tasks.all()])

        def isolated(record: TaskRecord) -> int:
            return self._inc_isolated(record, tasks, dry_run, record.dataset in several)

        if dry_run:
            statuses = [isolated(record) for record in records]
        else:
            total, per_partner = options.parallel_runs()
            statuses = run_bounded(records, isolated, total=total, bounds=(
                Bound(lambda record: record.dataset, 1), Bound(lambda record: record.destination, per_partner)))
        return next((s for s in statuses if s != 0), 0)

    def _inc_isolated(self, record: TaskRecord, tasks: TaskStore, dry_run: bool, named: bool) -> int:
        """One task of several (``retadm inc`` without a dataset, or of a dataset replicated to
        several destinations): whatever goes wrong in it is its own line and status, and the
        other tasks still run.  ``named``: its lines name its destination."""
        prefix = _inc_prefix(record, named)
        try:
            return self._inc_one(record, tasks, dry_run, named)
        except CommandError as exc:
            self._cmd.perror(f"{prefix}: {exc}", style=None)
            return exc.status
        except Exception as exc:  # noqa: BLE001 - one task's surprise must not cost the others their run
            self._cmd.perror(f"{prefix}: internal error: {type(exc).__name__}: {exc}", style=None)
            return FAILED

    def _inc_one(self, record: TaskRecord, tasks: TaskStore, dry_run: bool, named: bool = False) -> int:
        prefix = _inc_prefix(record, named)
        kind = INC
        if not record.initialised:
            if effective_status(record).word == RUNNING_FULL:
                self._cmd.perror(f"{prefix}: the full replication is still running; try again when it is idle",
                                 style=None)
                return BUSY
            kind = FULL  # the full replication did not complete: finish it (resumed where ZFS can)
        try:
            run = TaskRun(record, kind, tasks)
            if dry_run:
                return self._preview(run)
            outcome = run.run()
        except RunFailed as exc:
            self._cmd.perror(f"{prefix}: {exc}", style=None)
            return exc.status
        except (HostError, ZfsError, StoreError, OSError) as exc:
            self._cmd.perror(f"{prefix}: {exc}", style=None)
            return FAILED
        if sys.stdout.isatty():
            size = "an unknown number of" if outcome.bytes is None else outcome.bytes
            sent = f"{size} bytes in {outcome.seconds:.1f}s" if outcome.sends else "nothing new to send"
            self.out(f"{record.dataset}: replicated to {record.destination}:{record.remote_dataset} "
                     f"at @{outcome.common} ({sent})")
        return 0

    # -- repair ---------------------------------------------------------------------------------

    @cmd2.as_subcommand_to("retadm", "repair", _repair_parser,
                           help="bring a broken replication relationship back, then replicate")
    def _repair(self, args) -> int:
        tasks = TaskStore()
        record = self._choose(args.dataset, args.dest)
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
        record = self._choose(args.dataset, args.dest)
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

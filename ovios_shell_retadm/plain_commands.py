"""``retadm status`` and ``retadm inc`` in plain Python, without cmd2: the commands cron and monitoring run.

A one-shot run of either (``ovios-shell retadm inc data/smbvol`` from cron, ``retadm status
--json`` from monitoring) does not build the cmd2 shell (see :mod:`.launcher`): cmd2 and the
plugins' discovery would cost it more than everything else it does before its first ``zfs``.
So what the two commands are lives here, once, and the cmd2 command set
(:mod:`.commands.retadm`) runs the very same code for the interactive shell:

- their arguments: :func:`status_parser` and :func:`inc_parser` build them into a parser of the
  caller's class (plain :mod:`argparse` here, ``cmd2.Cmd2ArgumentParser`` in the shell, which
  then attaches its completion to the same actions);
- what they do: choosing the tasks, running them side by side within the options' bounds
  (:mod:`.replication.concurrency`), one line per task, the exit statuses, the JSON document
  and the table of ``status``, a dry run's preview;
- how a subcommand's error becomes one line (:func:`reported`), and the autosync step that
  follows every command (:func:`after_command`).

Output goes through two callables, ``out`` (stdout) and ``err`` (stderr), each call one text
that a newline ends: the shell passes its own printing methods, the launcher plain writes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from . import captured, options
from .config import autosync
from .exit_status import BUSY, FAILED, USAGE, CommandError
from .hosts import HostError, LocalHost
from .replication import progress
from .replication.concurrency import Bound, run_bounded
from .replication.incoming import IncomingReplica, incoming_replicas
from .replication.model import Plan
from .replication.task_run import FULL, INC, RunFailed, TaskRun
from .replication.task_store import (
    DECRYPTED,
    RAW,
    RUNNING_FULL,
    TaskChoiceError,
    TaskRecord,
    TaskStore,
    effective_status,
)
from .store import StoreError
from .zfs import InvalidName, ZfsError, ZfsNode, pool_of, validate_dataset_name

#: prints a text and the newline that ends it
Output = Callable[[str], None]

ParserT = TypeVar("ParserT", bound=argparse.ArgumentParser)


# -- the arguments ----------------------------------------------------------------------------

def add_dest_option(parser: argparse.ArgumentParser, what: str) -> None:
    """``--dest``, choosing among a dataset's tasks (``what``: "the one", "only the one")."""
    parser.add_argument("--dest", metavar="HOST[:REMOTE]",
                        help=f"{what} of the dataset's tasks whose destination host (or remote dataset, or "
                        "both as HOST:REMOTE) this is; needed when the dataset is replicated to several")


def status_parser(parser_class: Callable[..., ParserT]) -> ParserT:
    """``retadm status``'s arguments, in a parser of ``parser_class``."""
    status = parser_class(description="Show every replication task: idle, running_full, running_inc or error; "
                          "then the replicas this node holds for its partners (incoming).")
    status.add_argument("dataset", nargs="?", help="only this task (or this incoming replica)")
    status.add_argument("--json", action="store_true", help="machine-readable output for monitoring: the tasks' "
                        "rows (with --replicas, the incoming replicas')")
    status.add_argument("--replicas", action="store_true",
                        help="only the incoming replicas: source, newest snapshot and its age, restore points, "
                        "promoted or not")
    status.add_argument("--dry-run", action="store_true", help="accepted like everywhere; status changes nothing")
    return status


def inc_parser(parser_class: Callable[..., ParserT]) -> ParserT:
    """``retadm inc``'s arguments, in a parser of ``parser_class``."""
    inc = parser_class(
        description="Send everything since the last common snapshot (user snapshots too). "
        "A dataset replicated to several destinations: each of its tasks, one line each. "
        f"Without a dataset: every task, several at once (the options {options.PARALLEL} and "
        f"{options.PARALLEL_PER_PARTNER}; a dataset's tasks one after the other). "
        f"Exit status {BUSY} when a run of the task is still in progress.")
    inc.add_argument("dataset", nargs="?", help="the replicated dataset")
    add_dest_option(inc, "only the one")
    inc.add_argument("--dry-run", action="store_true", help="show what would be sent; change nothing")
    return inc


# -- around every command ---------------------------------------------------------------------

def reported(what: str, run: Callable[[], int], err: Output) -> int:
    """``run``'s exit status; an error a user can cause that it raises (a :class:`CommandError`,
    or the store failing) is one line on stderr, ``what: message``, and its status."""
    try:
        return run()
    except CommandError as exc:
        err(f"{what}: {exc}")
        return exc.status
    except StoreError as exc:
        err(f"{what}: {exc}")
        return FAILED


def replication_partners() -> list[str]:
    """The partners this node replicates to: autosync pushes its configuration to them."""
    return [record.destination for record in TaskStore().all()]


def capture_services() -> None:
    """config.json brought up to date with this node's services (autosync pushes it)."""
    from .restore import capture  # only with autosync on: one-shot runs without it never import it
    capture.refresh()


def after_command() -> None:
    """After every command: push a changed configuration to the partners (in the background)."""
    with contextlib.suppress(Exception):  # must never fail the command; after_command logs its errors
        autosync.after_command(replication_partners, capture_services)


# -- choosing tasks and previewing a run ------------------------------------------------------

def choose(dataset: str, dest: str | None) -> TaskRecord:
    """The task of ``dataset`` that ``--dest`` names (needed only when it has several)."""
    try:
        return TaskStore().choose(dataset, dest)
    except TaskChoiceError as exc:
        several = dest is not None or len(TaskStore().of(dataset)) > 1
        raise CommandError(str(exc), USAGE if several else FAILED) from exc


def preview(run: TaskRun, out: Output, title: str = "dry run") -> int:
    """Print what ``run`` would do, under ``title``; FAILED when its plan is a refusal."""
    try:
        shown = run.preview()
    except RunFailed as exc:
        raise CommandError(str(exc)) from exc
    task = run.pair.task
    out(f"{title}: {task.dataset} -> {task.destination}:{task.remote_dataset} (nothing is changed yet)"
        if title != "dry run" else
        f"dry run: {task.dataset} -> {task.destination}:{task.remote_dataset} (nothing is changed)")
    if not isinstance(shown.plan, Plan):
        out(f"  refused: {shown.plan.describe()}")
        return FAILED
    for line in shown.plan.describe():
        out(f"  {line}")
    if shown.plan.needs_replan:
        out("  then: a normal run from what the destination has afterwards")
    for pipeline in shown.pipelines:
        out(f"  command: {pipeline}")
    if shown.plan.sends:
        estimate = f"about {shown.estimate} bytes" if shown.estimate is not None else "not available from this ZFS"
        out(f"  size estimate: {estimate}")
    return 0


def _fanned_out(datasets: Iterable[str]) -> set[str]:
    """The datasets that come more than once in ``datasets`` (those with several tasks)."""
    seen: set[str] = set()
    several: set[str] = set()
    for dataset in datasets:
        (several if dataset in seen else seen).add(dataset)
    return several


# -- status -----------------------------------------------------------------------------------

def status(args: argparse.Namespace, out: Output) -> int:
    """``retadm status [dataset] [--json] [--replicas]``: one row per task (a dataset replicated to
    several destinations has several), then the incoming replicas (``--replicas``: only them)."""
    if args.replicas:
        replicas = _incoming(args.dataset, strict=True)
        if args.dataset and not replicas:
            raise CommandError(f"{args.dataset} is no replica of a partner's task here")
        if args.json:
            now = time.time()
            out(json.dumps([replica.to_dict(now) for replica in replicas], indent=2))
        else:
            print_replicas_table(replicas, out)
        return 0
    records = TaskStore().all()
    if args.dataset:
        records = [r for r in records if r.dataset == args.dataset]
    if args.json:
        if not records and args.dataset:
            raise CommandError(f"{args.dataset} has no replication task")
        out(json.dumps(status_rows(records), indent=2))
        return 0
    replicas = _incoming(args.dataset, strict=False)
    if not records and args.dataset and not replicas:
        raise CommandError(f"{args.dataset} has no replication task")
    rows = status_rows(records)
    if records or not replicas:  # (a node that only holds replicas shows them alone)
        print_status_table(rows, out)
        for note in rows[0]["config_not_captured"] if rows else ():  # the node's, on every row
            out(f"config not captured: {note}")
        if replicas:
            out("")
    if replicas:
        print_replicas_table(replicas, out)
    return 0


def _incoming(dataset: str | None, strict: bool) -> list[IncomingReplica]:
    """The replicas this node holds (only ``dataset``, if given).  A ZFS that does not answer
    is an error where they were asked for (``strict``), else there is nothing to show."""
    try:
        replicas = incoming_replicas(ZfsNode(LocalHost()))
    except (HostError, ZfsError) as exc:
        if strict:
            raise CommandError(f"the replicas here could not be read: {exc}") from exc
        return []
    return [r for r in replicas if dataset in (None, r.dataset)]


def print_replicas_table(replicas: list[IncomingReplica], out: Output) -> None:
    """The incoming replicas: what a failover here would give."""
    now = time.time()
    table = [(r.dataset, r.origin, f"@{r.newest}" if r.newest else "-",
              progress.format_duration(now - r.newest_created) if r.newest_created is not None else "-",
              str(r.restore_points), f"yes, at {r.promoted}" if r.promoted else "no") for r in replicas]
    _print_ruled_table(table, ("INCOMING REPLICA", "SOURCE", "NEWEST SNAPSHOT", "AGE", "RESTORE POINTS", "PROMOTED"),
                       out)
    if not replicas:
        out("(no incoming replicas: no partner replicates here)")


def _print_ruled_table(table: Sequence[Sequence[str]], headers: tuple[str, ...], out: Output,
                       rule_at_least: int = 0) -> None:
    """``table`` under its ``headers`` and a rule as wide as they are (``rule_at_least``)."""
    from tabulate import tabulate  # ~35 ms to import: only a table pays for it (not --json, not inc)

    header, *body = tabulate(table, headers=headers, tablefmt="plain", disable_numparse=True).splitlines() or [""]
    out(header)
    out("-" * max(rule_at_least, len(header)))
    for line in body:
        out(line)


def status_rows(records: list[TaskRecord]) -> list[dict]:
    """The tasks' rows, as ``status --json`` prints them."""
    now = time.time()
    rows = []
    config = autosync.partner_statuses({r.destination for r in records})  # local records only: no ssh
    not_captured = captured.notes()
    for record in records:
        state = effective_status(record)
        task = record.task()
        rows.append({
            "dataset": record.dataset,
            "destination": record.destination,
            "remote_dataset": record.remote_dataset,
            "target": record.target,
            "status": state.word,
            "reason": state.reason,
            "pid": (record.runner or {}).get("pid") if state.word.startswith("running") else None,
            "last_success": record.last_success,
            "lag_seconds": round(now - record.last_success) if record.last_success else None,
            "last_snapshot": record.last_snapshot,
            "last_bytes": record.last_bytes,
            "properties": record.properties,
            "hold_tag": task.tag,
            "cascade": task.cascade,
            "send_mode": record.send_mode,
            "send_flags": record.send_flags,
            "bandwidth": record.bandwidth,
            "retention": None if task.cascade else task.retention.text,
            "config": config[record.destination].text,
            "config_sync": config[record.destination].to_json(),
            "config_not_captured": not_captured,
        })
    return rows


def print_status_table(rows: list[dict], out: Output) -> None:
    """``status`` without ``--json``: the table, then a line per task with something to say."""
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
    _print_ruled_table(table, ("DATASET", "DESTINATION", "STATUS", "LAST SUCCESS", "LAG", "REMOTE", "CONFIG"), out,
                       rule_at_least=65)
    if not rows:
        out("(no replication tasks; 'retadm init' sets one up)")
    several = _fanned_out(row["dataset"] for row in rows)
    for row in rows:
        if row["reason"]:
            to = f" -> {row['target']}" if row["dataset"] in several else ""
            out(f"{row['dataset']}{to}: {row['reason']}")
    for row in rows:
        to = f" -> {row['target']}" if row["dataset"] in several else ""
        if row["send_mode"] == RAW:
            out(f"{row['dataset']}{to}: encrypted, replicated raw: the replica stays encrypted, its key is "
                "only here ('retadm promote' on the partner needs it)")
        elif row["send_mode"] == DECRYPTED:
            out(f"{row['dataset']}{to}: encrypted, but replicated DECRYPTED: the replica on "
                f"{row['destination']} is not encrypted")
        if row["bandwidth"]:
            out(f"{row['dataset']}{to}: transfers limited to {progress.format_bytes(row['bandwidth'])}/s")
        if row["retention"] == "none":
            out(f"{row['dataset']}{to}: {row['destination']} keeps no restore points, only the newest snapshot "
                f"('retadm edit {row['dataset']} --retention POLICY' keeps some)")
        elif row["retention"]:
            out(f"{row['dataset']}{to}: restore points kept on {row['destination']}: {row['retention']}")


# -- inc --------------------------------------------------------------------------------------

def inc(args: argparse.Namespace, out: Output, err: Output) -> int:
    """``retadm inc [dataset] [--dest D] [--dry-run]``: every task (no dataset), the dataset's
    tasks, or the one ``--dest`` chooses."""
    tasks = TaskStore()
    if args.dataset is None:
        records = tasks.all()
        if not records:
            raise CommandError("there are no replication tasks ('retadm init' sets one up)")
        if not args.dry_run:
            autosync.push_before_inc((r.destination for r in records), capture_services)  # logged; never fails
        return _inc_each(records, tasks, args.dry_run, out, err)
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
        records = [choose(args.dataset, args.dest)]
    if not args.dry_run:
        autosync.push_before_inc((r.destination for r in records), capture_services)  # logged; never fails
    if len(records) == 1:
        return _inc_one(records[0], tasks, args.dry_run, out, err)
    return _inc_each(records, tasks, args.dry_run, out, err)


def _inc_prefix(record: TaskRecord, named: bool) -> str:
    """``retadm inc``'s lines about a task: its dataset, and its destination when the dataset has several."""
    return f"retadm inc {record.dataset} -> {record.target}" if named else f"retadm inc {record.dataset}"


def _inc_each(records: list[TaskRecord], tasks: TaskStore, dry_run: bool, out: Output, err: Output) -> int:
    """Every task of ``records``, each isolated from the others; the first non-zero status
    (in the records' order), else 0.  The runs go side by side within the options'
    limits, a dataset's tasks one after the other; dry runs one after the other, so that
    their previews read in order."""
    several = _fanned_out(r.dataset for r in tasks.all())

    def isolated(record: TaskRecord) -> int:
        return _inc_isolated(record, tasks, dry_run, record.dataset in several, out, err)

    if dry_run:
        statuses = [isolated(record) for record in records]
    else:
        total, per_partner = options.parallel_runs()
        statuses = run_bounded(records, isolated, total=total, bounds=(
            Bound(lambda record: record.dataset, 1), Bound(lambda record: record.destination, per_partner)))
    return next((s for s in statuses if s != 0), 0)


def _inc_isolated(record: TaskRecord, tasks: TaskStore, dry_run: bool, named: bool, out: Output,
                  err: Output) -> int:
    """One task of several (``retadm inc`` without a dataset, or of a dataset replicated to
    several destinations): whatever goes wrong in it is its own line and status, and the
    other tasks still run.  ``named``: its lines name its destination."""
    prefix = _inc_prefix(record, named)
    try:
        return _inc_one(record, tasks, dry_run, out, err, named)
    except CommandError as exc:
        err(f"{prefix}: {exc}")
        return exc.status
    except Exception as exc:  # noqa: BLE001 - one task's surprise must not cost the others their run
        err(f"{prefix}: internal error: {type(exc).__name__}: {exc}")
        return FAILED


def _inc_one(record: TaskRecord, tasks: TaskStore, dry_run: bool, out: Output, err: Output,
             named: bool = False) -> int:
    prefix = _inc_prefix(record, named)
    kind = INC
    if not record.initialised:
        if effective_status(record).word == RUNNING_FULL:
            err(f"{prefix}: the full replication is still running; try again when it is idle")
            return BUSY
        kind = FULL  # the full replication did not complete: finish it (resumed where ZFS can)
    try:
        run = TaskRun(record, kind, tasks)
        if dry_run:
            return preview(run, out)
        outcome = run.run()
    except RunFailed as exc:
        err(f"{prefix}: {exc}")
        return exc.status
    except (HostError, ZfsError, StoreError, OSError) as exc:
        err(f"{prefix}: {exc}")
        return FAILED
    if sys.stdout.isatty():
        size = "an unknown number of" if outcome.bytes is None else outcome.bytes
        sent = f"{size} bytes in {outcome.seconds:.1f}s" if outcome.sends else "nothing new to send"
        if not outcome.destination_seen:
            sent = f"nothing written since; {record.destination} not contacted"
        out(f"{record.dataset}: replicated to {record.destination}:{record.remote_dataset} "
            f"at @{outcome.common} ({sent})")
    return 0

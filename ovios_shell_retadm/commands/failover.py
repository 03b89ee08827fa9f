"""``retadm promote``, ``retadm reverse``, ``retadm switchback``: failover and failback.

Prompts and rendering only; what is done is in :mod:`ovios_shell_retadm.replication.failover`.
"""

from __future__ import annotations

import getpass
import os

import cmd2

from ..exit_status import USAGE, CommandError
from ..hosts import HostError, LocalHost
from ..replication import failover
from ..replication.failover import FailoverError
from ..replication.model import Plan
from ..replication.task_store import TaskStore
from ..zfs import InvalidName, ZfsError, ZfsNode, validate_dataset_name
from .retadm_base import RetadmCommandSet, promoted_replicas, replicas_to_promote, replicated_back


def _promote_parser() -> cmd2.Cmd2ArgumentParser:
    promote = cmd2.Cmd2ArgumentParser(
        description="Failover, on the destination node: the replica is marked promoted (no replication "
        "onto it any more), made writable and mounted; the source's task is marked broken when the source "
        "answers (with the source down it works all the same). Then: restore all, start the services.",
    )
    promote.add_argument("dataset", help="the replica on this node (e.g. repl/smbvol)",
                         choices_provider=replicas_to_promote)
    promote.add_argument("--key-file", metavar="PATH",
                         help="an encrypted replica's key (what its keyformat says: passphrase, hex or raw), "
                         "loaded before the mount; on a terminal promote asks for a passphrase instead")
    promote.add_argument("--dry-run", action="store_true", help="show what would be done; change nothing")
    return promote


def _reverse_parser() -> cmd2.Cmd2ArgumentParser:
    reverse = cmd2.Cmd2ArgumentParser(
        description="Failback, on the node where the replica was promoted, once the old source is back: "
        "a task from here to the old source's dataset, which is rolled back to the last common snapshot "
        "(what that discards is shown and confirmed) and replicated onto, read-only, without a full send.",
    )
    reverse.add_argument("dataset", help="the promoted dataset on this node",
                         choices_provider=promoted_replicas)
    reverse.add_argument("--properties", choices=("yes", "no"), default="no",
                         help="send the dataset's properties too (default: no)")
    reverse.add_argument("--dry-run", action="store_true", help="show what would be done; change nothing")
    reverse.add_argument("--yes", action="store_true", help="do not ask for confirmation (for scripts)")
    return reverse


def _switchback_parser() -> cmd2.Cmd2ArgumentParser:
    switchback = cmd2.Cmd2ArgumentParser(
        description="Planned role switch after 'reverse': this dataset becomes read-only (stop the services "
        "that write to it first), a last incremental goes to the original source, which becomes the "
        "source again; this dataset is its replica again and its task goes on from the snapshot they share.",
    )
    switchback.add_argument("dataset", help="the dataset replicated back with 'retadm reverse'",
                            choices_provider=replicated_back)
    switchback.add_argument("--dry-run", action="store_true", help="show what would be done; change nothing")
    switchback.add_argument("--yes", action="store_true", help="do not ask for confirmation (for scripts)")
    return switchback


class FailoverCommands(RetadmCommandSet):
    """``retadm promote``, ``retadm reverse`` and ``retadm switchback``: subcommands of
    :class:`~.retadm.RetadmCommands`' ``retadm``."""

    @cmd2.as_subcommand_to("retadm", "promote", _promote_parser,
                           help="on the destination: break the relationship and make the replica writable")
    def _promote(self, args) -> int:
        node = ZfsNode(LocalHost())
        replica = self._replica(node, args.dataset)
        try:
            steps = failover.promotion_steps(replica)
        except FailoverError as exc:
            raise CommandError(str(exc)) from exc
        if replica.promoted:
            self.out(f"{replica.dataset} was promoted at {replica.promoted}; checking it is writable and mounted")
        self.out(f"{'dry run: ' if args.dry_run else ''}promote {replica.dataset} (a replica of {replica.origin}):")
        for line in steps:
            self.out(f"  {line}")
        if args.dry_run:
            return 0
        key = self._promote_key(replica, args.key_file)
        try:
            notes = failover.promote(node, replica, key=key)
        except (FailoverError, ZfsError, HostError) as exc:
            raise CommandError(str(exc)) from exc
        self.out(f"{replica.dataset} is promoted: writable here, no longer replicated onto. Next: 'restore all', "
                 "then start the services.")
        for note in notes:
            self.warn(f"note: {note}")
        return 0

    def _promote_key(self, replica: failover.Replica, key_file: str | None) -> failover.Key | None:
        """The key of an encrypted replica whose key is not loaded: the file given, else a
        passphrase typed on the terminal (not echoed), else one line saying what to give."""
        if replica.needs_key is None:
            return None
        if key_file is not None:
            path = os.path.abspath(key_file)
            if not os.path.isfile(path) or not os.access(path, os.R_OK):
                raise CommandError(f"--key-file {key_file}: no readable file there", USAGE)
            return failover.Key(file=path)
        if not self._interactive():
            raise CommandError(failover.key_missing(replica))
        try:
            secret = getpass.getpass(f"Passphrase of {replica.needs_key}: ")
        except (EOFError, KeyboardInterrupt):
            raise CommandError("cancelled; nothing was changed") from None
        if not secret:
            raise CommandError(failover.key_missing(replica))
        return failover.Key(passphrase=secret)

    @cmd2.as_subcommand_to("retadm", "reverse", _reverse_parser,
                           help="on the promoted node: replicate back to the old source (failback)")
    def _reverse(self, args) -> int:
        self._valid_name(args.dataset)
        tasks = TaskStore()
        try:
            reversal = failover.prepare_reverse(ZfsNode(LocalHost()), tasks, args.dataset,
                                                properties=args.properties == "yes")
        except FailoverError as exc:
            raise CommandError(str(exc), exc.status) from exc
        record = reversal.record
        preview = reversal.repair_run(tasks)
        status = self._preview(preview, title="dry run" if args.dry_run else "reverse")
        shown = preview.last_plan
        if args.dry_run or status != 0 or not isinstance(shown, Plan):
            return status
        if shown.needs_replan and not args.yes and not self._confirm(
                f"Roll {record.destination}:{record.remote_dataset} back as shown? (yes/no) [no]: "):
            raise CommandError("not confirmed; nothing was changed (use --yes in scripts)")
        try:
            outcome, note = failover.reverse(tasks, reversal, confirmed=shown)
        except FailoverError as exc:
            raise CommandError(str(exc), exc.status) from exc
        self.out(f"{record.dataset}: replicated back to {record.destination}:{record.remote_dataset} at "
                 f"@{outcome.common}; 'retadm inc {record.dataset}' keeps it current until 'retadm switchback'.")
        if note:
            self.warn(f"note: {note}")
        return 0

    @cmd2.as_subcommand_to("retadm", "switchback", _switchback_parser,
                           help="on the promoted node: hand the dataset back to the original source")
    def _switchback(self, args) -> int:
        self._valid_name(args.dataset)
        tasks = TaskStore()
        node = ZfsNode(LocalHost())
        try:
            planned = failover.prepare_switchback(node, tasks, args.dataset)
        except FailoverError as exc:
            raise CommandError(str(exc), exc.status) from exc
        self.out(f"{'dry run: ' if args.dry_run else ''}switch back {args.dataset} -> {planned.origin}:")
        for line in planned.steps():
            self.out(f"  {line}")
        if args.dry_run:
            return 0
        if not args.yes and not self._confirm("Switch roles back now? (yes/no) [no]: "):
            raise CommandError("not confirmed; nothing was changed (use --yes in scripts)")
        try:
            common = failover.switchback(node, tasks, planned)
        except FailoverError as exc:
            raise CommandError(str(exc), exc.status) from exc
        self.out(f"{planned.origin} is the source again; {args.dataset} is its read-only replica from @{common}.")
        return 0

    @staticmethod
    def _valid_name(dataset: str) -> None:
        """A name ZFS would refuse is a usage error, said before anything is looked at."""
        try:
            validate_dataset_name(dataset)
        except InvalidName as exc:
            raise CommandError(str(exc), USAGE) from exc

    @staticmethod
    def _replica(node: ZfsNode, dataset: str) -> failover.Replica:
        try:
            return failover.read_replica(node, dataset)
        except InvalidName as exc:
            raise CommandError(str(exc), USAGE) from exc
        except (FailoverError, ZfsError, HostError) as exc:
            raise CommandError(str(exc)) from exc

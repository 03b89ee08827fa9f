"""``retadm promote``, ``retadm reverse``, ``retadm switchback``: failover and failback.

Prompts and rendering only; what is done is in :mod:`ovios_shell_retadm.replication.failover`.
"""

from __future__ import annotations

import getpass
import os
from typing import TYPE_CHECKING

from ..exit_status import USAGE
from ..hosts import HostError, LocalHost, SshHost
from ..peer import module_argv
from ..replication import failover, preflight
from ..replication.failover import FailoverError
from ..replication.model import Plan, chain_identity
from ..replication.origin import OriginError, format_origin
from ..replication.preflight import PreflightError
from ..replication.task_run import INC, REPAIR, RunFailed, TaskRun
from ..replication.task_store import IDLE, PLAIN, RAW, TaskRecord, TaskStore
from ..zfs import InvalidName, ZfsError, ZfsNode
from .base import CommandError


class FailoverHandlers:
    """Mixed into the ``retadm`` command set (which provides out, _confirm and _preview)."""

    if TYPE_CHECKING:  # what the command set provides
        def out(self, text: str = "") -> None: ...
        def warn(self, text: str) -> None: ...
        def _confirm(self, prompt: str) -> bool: ...
        def _interactive(self) -> bool: ...
        def _preview(self, run: TaskRun, title: str = "dry run") -> int: ...

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

    def _reverse(self, args) -> int:
        node = ZfsNode(LocalHost())
        replica = self._replica(node, args.dataset)
        if replica.origin is None or replica.promoted is None:
            raise CommandError(f"{replica.dataset} is not a promoted replica; 'retadm promote {replica.dataset}' "
                               "comes first")
        try:
            source_host, source_dataset = replica.source
        except FailoverError as exc:
            raise CommandError(str(exc)) from exc
        tasks = TaskStore()
        if tasks.of(replica.dataset):
            raise CommandError(f"{replica.dataset} already has a replication task (see 'retadm status')")
        try:
            partner = preflight.destination(source_host)
            here = preflight.reverse_ssh(partner)
        except PreflightError as exc:
            raise CommandError(str(exc)) from exc
        record = TaskRecord(dataset=replica.dataset, destination=source_host,
                            remote_dataset=source_dataset, properties=args.properties == "yes",
                            initialised=True, state=IDLE, source_address=here,
                            identity=chain_identity([s.name for s in node.snapshots(replica.dataset)]),
                            send_mode=self._reverse_mode(node, replica.dataset))
        preview = TaskRun(record, REPAIR, tasks, source=node, destination=ZfsNode(partner))
        status = self._preview(preview, title="dry run" if args.dry_run else "reverse")
        shown = preview.last_plan
        if args.dry_run or status != 0 or not isinstance(shown, Plan):
            return status
        if shown.needs_replan and not args.yes and not self._confirm(
                f"Roll {source_host}:{source_dataset} back as shown? (yes/no) [no]: "):
            raise CommandError("not confirmed; nothing was changed (use --yes in scripts)")
        if not tasks.create(record):
            raise CommandError(f"{replica.dataset} already has a replication task (see 'retadm status')")
        note = failover.tell_partner(partner, ["broken", source_dataset,
                                               f"replicated back from {here}:{replica.dataset} (failback)",
                                               replica.dataset])
        try:
            outcome = TaskRun(record, REPAIR, tasks, source=node, destination=ZfsNode(partner),
                              confirmed=shown).run()
        except RunFailed as exc:
            raise CommandError(f"{exc} (the task stays: 'retadm inc {replica.dataset}' tries again)",
                               exc.status) from exc
        self.out(f"{replica.dataset}: replicated back to {source_host}:{source_dataset} at "
                 f"@{outcome.common}; 'retadm inc {replica.dataset}' keeps it current until 'retadm switchback'.")
        if note:
            self.warn(f"note: {note}")
        return 0

    @staticmethod
    def _reverse_mode(node: ZfsNode, dataset: str) -> str:
        """An encrypted promoted replica goes back raw, as it came (its old source's chain is raw)."""
        try:
            encryption = node.encryption(dataset)
        except (ZfsError, HostError) as exc:
            raise CommandError(str(exc)) from exc
        return RAW if encryption is not None and encryption.encrypted else PLAIN

    def _switchback(self, args) -> int:
        tasks = TaskStore()
        records = tasks.of(args.dataset)
        if len(records) > 1:
            raise CommandError(f"{args.dataset} has {len(records)} replication tasks; switchback goes with the "
                               "one 'retadm reverse' set up alone: 'retadm reset' the others first")
        record = records[0] if records else None
        node = ZfsNode(LocalHost())
        replica = self._replica(node, args.dataset)
        if record is None or replica.promoted is None:
            raise CommandError(f"{args.dataset} is not being replicated back ('retadm reverse {args.dataset}' "
                               "first)")
        try:
            origin = format_origin(record.destination, record.remote_dataset)
        except OriginError as exc:
            raise CommandError(str(exc)) from exc
        self.out(f"{'dry run: ' if args.dry_run else ''}switch back {args.dataset} -> {origin}:")
        for line in (f"make {args.dataset} read-only here (writes to it fail from now on: stop its services first)",
                     f"send the last changes to {origin}",
                     f"make {origin} writable there, and its own task go on from the snapshot both share",
                     f"make {args.dataset} a replica of {origin} again; forget this node's task for it"):
            self.out(f"  {line}")
        if args.dry_run:
            return 0
        if not args.yes and not self._confirm("Switch roles back now? (yes/no) [no]: "):
            raise CommandError("not confirmed; nothing was changed (use --yes in scripts)")
        try:
            node.set_property(args.dataset, "readonly", "on")
            current = tasks.get(record.key)
            if current is None:
                raise RunFailed(f"the task of {args.dataset} was removed meanwhile")
            outcome = TaskRun(current, INC, tasks).run()
            if outcome.common is None:
                raise RunFailed(f"the run of {args.dataset} ended without a snapshot both sides share")
        except (RunFailed, ZfsError, HostError) as exc:
            try:
                node.set_property(args.dataset, "readonly", "off")
            except (ZfsError, HostError) as undo:
                raise CommandError(f"{exc}; nothing was switched, but {args.dataset} stays read-only: {undo} "
                                   f"(zfs set readonly=off {args.dataset} makes it writable)") from exc
            raise CommandError(f"{exc}; nothing was switched, {args.dataset} is writable again") from exc
        partner = SshHost(record.destination)
        try:
            partner.run(module_argv("ovios_shell_retadm.replication.partner", "take-over",
                                    record.remote_dataset, outcome.common, str(outcome.common_guid),
                                    args.dataset), timeout=120)
        except HostError as exc:
            raise CommandError(f"the last changes reached {origin}, but it did not take over: {exc}; "
                               f"{args.dataset} stays read-only here; run switchback again") from exc
        try:
            failover.demote(node, args.dataset, origin)
        except (FailoverError, ZfsError) as exc:
            raise CommandError(f"{origin} is the source again, but {args.dataset} was not marked its replica: "
                               f"{exc}") from exc
        tasks.delete(record.key)
        self.out(f"{origin} is the source again; {args.dataset} is its read-only replica from @{outcome.common}.")
        return 0

    @staticmethod
    def _replica(node: ZfsNode, dataset: str) -> failover.Replica:
        try:
            return failover.read_replica(node, dataset)
        except InvalidName as exc:
            raise CommandError(str(exc), USAGE) from exc
        except (FailoverError, ZfsError, HostError) as exc:
            raise CommandError(str(exc)) from exc

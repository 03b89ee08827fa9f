"""``restore`` — apply the synced configuration on the node that takes over (the guide's
section 9): ``restore all|luns|shares|exports|users [--from NODE] [--dry-run]``.

Parsing and rendering only; the work is in :mod:`ovios_shell_retadm.restore`.
"""

from __future__ import annotations

import cmd2

from ..exit_status import FAILED, OK, USAGE
from ..restore import planner, system
from ..restore.common import ApplyError
from .base import OviosCommandSet

SUBCOMMANDS = ("all", "luns", "shares", "exports", "users")
USAGE_LINE = f"usage: restore [{'|'.join(SUBCOMMANDS)}] [--from NODE] [--dry-run]"
_PARTS = {"all": planner.PARTS, "luns": ("luns",), "shares": ("shares",), "exports": ("exports",),
          "users": ("users",)}
_HELP = {
    "all": "users, iSCSI targets and LUNs, SMB shares and NFS exports",
    "luns": "iSCSI targets and LUN mappings (LIO), also from replicated zvols' ovios:lun.mapping",
    "shares": "SMB shares (Samba)",
    "exports": "NFS exports",
    "users": "Unix users and their Samba accounts",
}


def _synced_nodes(_self) -> cmd2.Choices:
    return cmd2.Choices.from_values(system.synced_nodes())


def _build_parser() -> cmd2.Cmd2ArgumentParser:
    parser = cmd2.Cmd2ArgumentParser(
        prog="restore", usage=USAGE_LINE[len("usage: "):],
        description="Apply the configuration a partner synced here (autosync), and the mapping properties of "
                    "replicated LUNs, to this node's iSCSI, SMB and NFS services. Run it on the destination "
                    "after a failover; running it again changes nothing.")
    sub = parser.add_subparsers(dest="part", metavar="{" + ",".join(SUBCOMMANDS) + "}")
    for name in SUBCOMMANDS:
        part = sub.add_parser(name, help=_HELP[name], description=f"Restore {_HELP[name]}.")
        part.add_argument("--from", dest="from_node", metavar="NODE", choices_provider=_synced_nodes,
                          help="the partner whose synced configuration to apply (needed when there are several)")
        part.add_argument("--dry-run", action="store_true", help="print every action, change nothing")
    return parser


class RestoreCommands(OviosCommandSet):
    @cmd2.with_argparser(_build_parser)
    def do_restore(self, args) -> None:
        """Apply the synced configuration to this node's services (after a failover)."""
        if args.part is None:
            self.out(USAGE_LINE)
            self._cmd.last_result = USAGE
            return
        try:
            self._cmd.last_result = self._restore(args)
        except system.RestoreError as exc:
            self.fail(f"restore {args.part}: {exc}", exc.status)
        except ApplyError as exc:
            self.fail(f"restore {args.part}: failed: {exc}")

    def _restore(self, args) -> int:
        parts = _PARTS[args.part]
        source = system.source(args.from_node)
        if source.config is None and parts == ("users",):
            raise system.RestoreError(source.description.split(":")[0] + ": no users to restore")
        self.out(source.description)
        seen = system.observe(parts, with_datasets=parts != ("users",))
        want, notes = planner.desired(source.config, seen.datasets, source.partner)
        plan = planner.plan(parts, want, seen)
        for note in notes + plan.notes:
            self.out(f"note: {note}")
        if plan.refusals:
            for refusal in plan.refusals:
                self._cmd.perror(f"restore {args.part}: refused: {refusal}", style=None)
            self._cmd.perror(f"restore {args.part}: nothing was changed", style=None)
            return FAILED
        if not plan.actions:
            self.out("nothing to do: already applied")
            return OK
        if args.dry_run:
            for action in plan.actions:
                self.out(f"would {action.description}")
            self.out(f"dry run: {len(plan.actions)} action(s), nothing changed")
            return OK
        system.execute(plan, self.out)
        return OK

"""``options`` — list, show and set the shell's persistent options."""

from __future__ import annotations

import cmd2
from tabulate import tabulate

from .. import options as catalogue, plain_commands
from ..store import StoreError
from .base import OviosCommandSet


def _option_names(_self: cmd2.CommandSet) -> cmd2.Choices:
    return cmd2.Choices.from_values(sorted(catalogue.CATALOGUE))


def _option_values(_self: cmd2.CommandSet, arg_tokens: dict[str, list[str]]) -> cmd2.Choices:
    name = (arg_tokens.get("name") or [""])[0]
    option = catalogue.CATALOGUE.get(name)
    return cmd2.Choices.from_values(option.choices if option else ())


def _shown(name: str, value: str) -> str:
    """The stored value, and beside it the system's when that differs (cron started by hand …)."""
    actual = catalogue.in_effect(name, value)
    return value if actual is None else f"{value} (in effect: {actual})"


def _build_parser() -> cmd2.Cmd2ArgumentParser:
    parser = cmd2.Cmd2ArgumentParser(
        description="Show or set the shell's persistent options.",
        epilog="examples: 'options' lists all; 'options cron.enable' shows one; "
        "'options ssh.allow.root on' sets one.",
    )
    parser.add_argument("name", nargs="?", help="option name", choices_provider=_option_names)
    parser.add_argument("value", nargs="?", help="new value", choices_provider=_option_values)
    return parser


def _autosync_after_command(data: cmd2.plugin.PostcommandData) -> cmd2.plugin.PostcommandData:
    """After every command: push a changed configuration to the partners (in the background)."""
    plain_commands.after_command()
    return data


class OptionsCommands(OviosCommandSet):
    def on_registered(self) -> None:
        # The options plugin owns autosync.enable, so it hooks autosync into the shell: once per app.
        super().on_registered()
        app = self._cmd
        if not getattr(app, "_ovios_autosync_hooked", False):
            app.register_postcmd_hook(_autosync_after_command)
            app._ovios_autosync_hooked = True

    @cmd2.with_argparser(_build_parser)
    def do_options(self, args) -> None:
        """Show or set the shell's persistent options."""
        try:
            if args.name is None:
                values = catalogue.all_values()
                rows = [(name, _shown(name, value), catalogue.CATALOGUE[name].description)
                        for name, value in values.items()]
                self.out(tabulate(rows, headers=("OPTION", "VALUE", "DESCRIPTION"), tablefmt="simple",
                                  disable_numparse=True))
            elif args.value is None:
                self.out(f"{args.name} {_shown(args.name, catalogue.get(args.name))}")
            else:
                catalogue.set_value(args.name, args.value)
                self.out(f"Configuration {args.name} updated.")
        except catalogue.OptionError as exc:
            self.fail(f"options: {exc}", exc.status)
            return
        except StoreError as exc:
            self.fail(f"options: {exc}")
            return
        self.succeed()

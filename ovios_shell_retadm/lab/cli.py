"""``ovios-lab``: start, stop and use Lab 1 (two zfs-fuse nodes in namespaces).

    ovios-lab [--name NAME] up | down | status
    ovios-lab [--name NAME] exec NODE -- CMD [ARG...]
    ovios-lab [--name NAME] shell NODE
    ovios-lab [--name NAME] demo

The lab name defaults to $OVIOS_LAB_NAME or "ovlab"; its directory to $OVIOS_LAB_DIR
or /var/lib/ovios-lab/NAME.  Errors are one line on stderr with a non-zero status.
"""

from __future__ import annotations

import argparse
import os
import sys

from .fuse_lab import Lab, LabStatus, node_env
from .spec import NODE_NAMES, LabError

PROG = "ovios-lab"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {PROG} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Lab 1: two ZFS nodes (zfs-fuse) in Linux namespaces.")
    parser.add_argument("--name", help="lab name (default: $OVIOS_LAB_NAME or ovlab)")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB", parser_class=_Parser)
    sub.add_parser("up", help="start the lab (does nothing if it is up)")
    sub.add_parser("down", help="stop the lab and remove everything it created")
    sub.add_parser("status", help="show the lab, its nodes and daemons")
    p_exec = sub.add_parser("exec", help="run a command inside a node: exec NODE -- CMD...")
    p_exec.add_argument("node", choices=NODE_NAMES, metavar="NODE")
    p_exec.add_argument("command", nargs=argparse.REMAINDER, metavar="CMD")
    p_shell = sub.add_parser("shell", help="run an interactive ovios-shell in a node")
    p_shell.add_argument("node", choices=NODE_NAMES, metavar="NODE")
    sub.add_parser("demo", help="up, replicate data/smbvol to dst as in the guide, open ovios-shell on src")
    return parser


def format_nodes(lab: Lab) -> str:
    lines = [f"lab {lab.name} is up ({lab.directory})"]
    lines += [f"  {node:<4} {lab.node_address(node)}" for node in lab.nodes]
    return "\n".join(lines)


def format_status(status: LabStatus) -> str:
    state = "up" if status.up else "down"
    head = f"lab {status.name}: {state} ({status.directory})"
    if status.up_seconds is not None and status.up:
        head += f", started in {status.up_seconds:.1f} s"
    lines = [head]
    if status.switch_pid is not None:
        lines.append(f"  switch  pid {status.switch_pid}")
    for node in status.nodes:
        pid = node.pid if node.pid is not None else "-"
        daemons = " ".join(f"{name}:{'up' if alive else 'DOWN'}" for name, alive in node.daemons.items())
        pools = ",".join(node.pools) or "-"
        lines.append(f"  {node.name:<4} pid {pid}  {node.address}  {daemons}  pools: {pools}")
    return "\n".join(lines)


DEMO_INIT = ["ovios-shell", "retadm", "init", "data/smbvol", "--dest", "dst", "--remote-pool", "repl",
             "--properties", "yes"]


def demo(lab: Lab) -> None:
    """The guide's example on the lab: data/smbvol replicated to dst's pool repl."""
    lab.up()
    print(format_nodes(lab))
    tasks = lab.exec("src", ["ovios-shell", "retadm", "status", "--json"], check=True).stdout
    if '"data/smbvol"' not in tasks:
        print("$ " + " ".join(DEMO_INIT))
        print(lab.exec("src", DEMO_INIT, check=True).stdout, end="")
        lab.exec("src", ["sh", "-c", "for i in $(seq 100); do ovios-shell retadm status --json"
                                     " | grep -q running_full || break; sleep 0.3; done"])
    print("$ ovios-shell retadm status")
    print(lab.exec("src", ["ovios-shell", "retadm", "status"], check=True).stdout, end="")
    print("Opening ovios-shell on src ('quit' to leave; 'ovios-lab down' removes the lab).")


def _command(args: argparse.Namespace) -> list[str]:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise LabError("exec needs a command: ovios-lab exec NODE -- CMD [ARG...]")
    return command


def run(args: argparse.Namespace) -> int:
    lab = Lab(args.name)
    if args.verb == "up":
        lab.up()
        print(format_nodes(lab))
    elif args.verb == "down":
        lab.down()
        print(f"lab {lab.name} is down")
    elif args.verb == "status":
        status = lab.status()
        print(format_status(status))
        return 0 if status.up else 3
    elif args.verb == "exec":
        argv = lab.exec_argv(args.node, _command(args))
        sys.stdout.flush()
        os.execvpe(argv[0], argv, node_env())
    elif args.verb in ("shell", "demo"):
        if args.verb == "demo":
            demo(lab)
        argv = lab.exec_argv(getattr(args, "node", "src"), ["/usr/bin/ovios-shell"])
        sys.stdout.flush()
        os.execvpe(argv[0], argv, node_env())
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except LabError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # no tracebacks for users; OVIOS_LAB_DEBUG=1 shows them
        if os.environ.get("OVIOS_LAB_DEBUG"):
            raise
        print(f"{PROG}: error: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""``ovios-lab``: start, stop and use the test labs.

    ovios-lab [--name NAME] up | down | status            [--openzfs]
    ovios-lab [--name NAME] exec [--openzfs] NODE -- CMD [ARG...]
    ovios-lab [--name NAME] shell [--openzfs] NODE
    ovios-lab [--name NAME] power-off|power-on --openzfs NODE
    ovios-lab [--name NAME] demo [--openzfs]
    ovios-lab image --openzfs [--force]

Without ``--openzfs``: Lab 1, two zfs-fuse nodes in namespaces; the name defaults to
$OVIOS_LAB_NAME or "ovlab", the directory to $OVIOS_LAB_DIR or /var/lib/ovios-lab/NAME.
With ``--openzfs`` (before or after the verb): Lab 2, two QEMU VMs with OpenZFS; the name
defaults to $OVIOS_OPENZFS_LAB_NAME or "ovzfs", the directory to $OVIOS_OPENZFS_LAB_DIR or
/var/lib/ovios-lab-openzfs/NAME.  Each lab reads only its own variables, so both labs run
side by side in one test session.  Errors are one line on stderr with a non-zero status.
"""

from __future__ import annotations

import argparse
import os
import sys

from . import openzfs_image
from .base import TwoNodeLab
from .fuse_lab import Lab
from .openzfs_lab import OpenZfsLab
from .spec import NODE_NAMES, LabError

PROG = "ovios-lab"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {PROG} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Test labs: Lab 1, two ZFS nodes (zfs-fuse) in Linux namespaces; "
                                            "with --openzfs, Lab 2, two QEMU VMs with OpenZFS 2.x.")
    parser.add_argument("--name", help="lab name (default: $OVIOS_LAB_NAME or ovlab; "
                                       "with --openzfs: $OVIOS_OPENZFS_LAB_NAME or ovzfs)")
    parser.add_argument("--openzfs", action="store_true", default=False,
                        help="use Lab 2 (QEMU VMs with OpenZFS) instead of Lab 1")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB", parser_class=_Parser)

    def verb(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.add_argument("--openzfs", action="store_true", default=argparse.SUPPRESS,
                       help="Lab 2: the QEMU VMs with OpenZFS")
        return p

    verb("up", "start the lab (does nothing if it is up)")
    verb("down", "stop the lab and remove everything it created")
    verb("status", "show the lab, its nodes and daemons")
    p_exec = verb("exec", "run a command inside a node: exec NODE -- CMD...")
    p_exec.add_argument("node", choices=NODE_NAMES, metavar="NODE")
    p_exec.add_argument("command", nargs=argparse.REMAINDER, metavar="CMD")
    p_shell = verb("shell", "run an interactive ovios-shell in a node")
    p_shell.add_argument("node", choices=NODE_NAMES, metavar="NODE")
    for name, text in (("power-off", "OpenZFS lab: kill a VM's QEMU (a power cut), keeping its disks"),
                       ("power-on", "OpenZFS lab: start a powered-off VM again with its disks, import its pools")):
        verb(name, text).add_argument("node", choices=NODE_NAMES, metavar="NODE")
    verb("demo", "up, replicate data/smbvol to dst as in the guide, open ovios-shell on src")
    p_image = verb("image", "build the OpenZFS lab's VM image (with --openzfs) unless it is cached")
    p_image.add_argument("--force", action="store_true", help="build it again even when cached")
    return parser


DEMO_INIT = ["ovios-shell", "retadm", "init", "data/smbvol", "--dest", "dst", "--remote-pool", "repl",
             "--properties", "yes"]


def demo(lab: TwoNodeLab) -> None:
    """The guide's example on the lab: data/smbvol replicated to dst's pool repl."""
    lab.up()
    print(lab.summary())
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
    while command and command[0] == "--openzfs":  # "exec NODE --openzfs -- CMD"
        args.openzfs = True
        command = command[1:]
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise LabError("exec needs a command: ovios-lab exec NODE -- CMD [ARG...]")
    return command


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    command = _command(args) if args.verb == "exec" else []
    if args.verb == "image":
        if not args.openzfs:
            raise LabError("only the OpenZFS lab has an image: ovios-lab image --openzfs")
        image = openzfs_image.build(force=args.force, log=_log)
        info = image.info()
        print(f"{image.directory}  (kernel {info.get('kernel', '?')}, zfs {info.get('zfs', '?')})")
        return 0
    lab: TwoNodeLab = OpenZfsLab(args.name, log=_log) if args.openzfs else Lab(args.name)
    if args.verb == "up":
        lab.up()
        print(lab.summary())
    elif args.verb == "down":
        lab.down()
        print(f"lab {lab.name} is down")
    elif args.verb == "status":
        status = lab.status()
        print(status.text())
        return 0 if status.up else 3
    elif args.verb == "power-off":
        lab.power_off(args.node)
        print(f"{args.node} is powered off")
    elif args.verb == "power-on":
        seconds = lab.power_on(args.node)
        print(f"{args.node} is on" + (f" (powered on in {seconds:.0f} s)" if seconds else ""))
    elif args.verb == "exec":
        _exec(lab, lab.exec_argv(args.node, command))
    elif args.verb in ("shell", "demo"):
        if args.verb == "demo":
            demo(lab)
        _exec(lab, lab.exec_argv(getattr(args, "node", "src"), ["/usr/bin/ovios-shell"], tty=True))
    return 0


def _exec(lab: TwoNodeLab, argv: list[str]) -> None:
    sys.stdout.flush()
    os.execvpe(argv[0], argv, lab.exec_env())


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

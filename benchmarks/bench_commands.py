#!/usr/bin/env python3
"""How long the commands take that must not keep anyone waiting, in the two-node zfs-fuse lab.

    python benchmarks/bench_commands.py [--repeat 5] [--only NAMES] [--keep-lab]

A script, not a test (needs root, zfs-fuse and the lab; a few minutes).  The speed targets
here were wall-clock assertions in the lab tests until a busy 2-core machine made them
flaky; the tests now check what the commands do, and this script prints how fast they are.
Each figure is the median (min, max) of ``--repeat`` runs, timed on the machine around
the command run in the node (entering the node costs a few ms), with its target and
whether the median meets it:

1. ``autosync``: with ``options autosync.enable on`` and the configuration changed before
   each run, one-shot ``ovios-shell options`` on src, with dst's link down (the push starts
   in the background and must not hold the shell up: < 2 s) and, for comparison, up;
2. ``startup``: ``ovios-shell retadm status`` with one task: the shell's start-up alone;
   ``oneshot``: how soon the one-shot runs cron and monitoring make get to work, timed in src
   itself (from just before the process starts): ``retadm status --json`` to its exit (it runs
   no zfs or ssh at all) and ``retadm inc data/smbvol --dry-run`` to its first command
   (< 0.1 s each: they run without cmd2, see ``ovios_shell_retadm.launcher``), the same lines
   through the full shell (``python -m ovios_shell_retadm.shell``) and the interactive shell's
   start-up to its prompt, for comparison.  The first command is seen by wrappers first on
   PATH: every zfs the package runs starts as ``env PATH=… zfs …`` and every remote command
   as ``ssh …``, and a wrapper named ``env`` or ``ssh`` notes bash's ``$EPOCHREALTIME`` (no
   fork) before it execs the real one, so the figure includes the wrapper's own start
   (~1 ms): it errs on the slow side;
3. ``inc``: ``retadm inc data/smbvol`` failing, the task's destination moved to an address
   nobody answers (192.168.0.99): < 20 s; ``retadm status`` right after: < 5 s (every run
   after the first follows a failed one);
4. ``doctor``: ``retadm doctor data/smbvol``, same destination: < 30 s;
5. ``init``: ``retadm init data/smbvol --dest 192.168.0.99 --remote-pool repl`` refused: < 20 s;
6. ``reset``: the lab's ``reset()`` after a typical test (data/smbvol replicated): < 5 s;
7. ``promote``: ``retadm promote repl/smbvol`` on dst with src's link down: < 30 s.

It brings up its own lab (``benchcmd``, never the test suite's ``ovlab``), starts every
measurement from a reset lab and takes the lab down at the end, unless ``--keep-lab``.
A missed target is reported, not an error: the exit status is 0 when everything ran,
1 when the lab cannot come up or a measurement could not be made (the reason is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from bench_replication import BenchError  # benchmarks/ is sys.path[0] when run as a script

from ovios_lab import Lab, LabError
from ovios_shell_retadm.peer import python_argv

SRC, DST = "src", "dst"
DATASET, REPLICA = "data/smbvol", "repl/smbvol"
NOBODY = "192.168.0.99"  # in the lab's network; nothing answers there
IQN = "iqn.2026-11.com.ovios:esx"
TIMEOUT = 180  # per command: only catches a hang

T = TypeVar("T")


@dataclass
class Figure:
    label: str
    target: float | None  # seconds the median must stay below; None: a figure only
    samples: list[float] = field(default_factory=list)


def figures() -> dict[str, Figure]:
    """Every row of the report, in its order; the measurements fill in the samples."""
    return {
        "options_down": Figure("options (one-shot), autosync on, dst's link down", 2.0),
        "options_up": Figure("options (one-shot), autosync on, dst up", None),
        "startup": Figure("retadm status (start-up alone)", None),
        "oneshot_status": Figure("one-shot retadm status --json, to its exit", 0.1),
        "oneshot_inc": Figure("one-shot retadm inc --dry-run, to its first zfs/ssh", 0.1),
        "full_status": Figure("  the same through the full shell, to its exit", None),
        "full_inc": Figure("  the same through the full shell, to its first zfs/ssh", None),
        "interactive": Figure("interactive ovios-shell, to its prompt", None),
        "inc": Figure(f"retadm inc, destination {NOBODY} (fails)", 20.0),
        "status_after": Figure("retadm status right after that inc", 5.0),
        "doctor": Figure(f"retadm doctor, destination {NOBODY}", 30.0),
        "init": Figure(f"retadm init --dest {NOBODY} (refused)", 20.0),
        "reset": Figure("lab reset() after a replicated dataset", 5.0),
        "promote": Figure("retadm promote on dst, src's link down", 30.0),
    }


# --------------------------------------------------------------------------------------
# running things in the lab


def log(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


class Bench:
    def __init__(self, lab: Lab, repeat: int, verbose: bool):
        self.lab = lab
        self.repeat = repeat
        self.verbose = verbose
        self.figures = figures()
        self.notes: list[str] = []

    def timed(self, key: str, action: Callable[[], T]) -> T:
        """Run ``action``, add its seconds to figure ``key``; its result."""
        started = time.perf_counter()
        result = action()
        seconds = time.perf_counter() - started
        self.figures[key].samples.append(seconds)
        if self.verbose:
            log(f"{key}: {seconds:.3f}s")
        return result

    def shell(self, node: str, *args: str, expect: int = 0) -> subprocess.CompletedProcess:
        """One-shot ``ovios-shell ARGS`` in ``node``; it must exit ``expect``."""
        result = self.lab.exec(node, ["ovios-shell", *args], timeout=TIMEOUT)
        if result.returncode != expect:
            raise BenchError(f"{node}: ovios-shell {' '.join(args)} exited {result.returncode}, not {expect}: "
                             f"{(result.stderr or result.stdout).strip()[-500:]}")
        return result

    def timed_shell(self, key: str, node: str, *args: str, expect: int = 0) -> None:
        self.timed(key, lambda: self.shell(node, *args, expect=expect))

    def sh(self, node: str, script: str) -> str:
        return self.lab.exec(node, ["sh", "-c", script], check=True, timeout=TIMEOUT).stdout

    def node_python(self, node: str, code: str, *args: str) -> str:
        """Python in the node: the interpreter behind its ovios-shell, never the machine's python3."""
        return self.lab.exec(node, python_argv("-c", code, *args), check=True, timeout=TIMEOUT).stdout


@contextmanager
def link_down(bench: Bench, node: str) -> Iterator[None]:
    """``node`` cut off from the lab's network for the block."""
    bench.sh(node, "ip link set eth0 down")
    try:
        yield
    finally:
        bench.sh(node, "ip link set eth0 up")


# --------------------------------------------------------------------------------------
# the states the measurements start from


def replicated(bench: Bench, timeout: float = 120) -> None:
    """A reset lab with data/smbvol replicated to dst as repl/smbvol, the task idle."""
    bench.lab.reset()
    bench.shell(SRC, "retadm", "init", DATASET, "--dest", DST, "--remote-pool", "repl",
                "--remote-name", "smbvol", "--properties", "no")
    deadline = time.monotonic() + timeout
    while True:
        rows = json.loads(bench.shell(SRC, "retadm", "status", "--json").stdout)
        task: dict = next((r for r in rows if r["dataset"] == DATASET), {})
        if task.get("status") == "idle":
            return
        if task.get("status") == "error" or time.monotonic() > deadline:
            raise BenchError(f"the full send of {DATASET} did not end idle: {task}")
        time.sleep(0.2)


def unreachable_task(bench: Bench) -> None:
    """data/smbvol replicated, then its task pointed at an address nobody answers."""
    replicated(bench)
    bench.node_python(SRC, "import sys; from ovios_shell_retadm.store import Store; "
                           "Store().update_task(sys.argv[1], lambda r: {**r, 'destination': sys.argv[2]})",
                      DATASET, NOBODY)


def change_config(bench: Bench, lun: int) -> None:
    """One more LUN mapped on src (a new configuration generation: autosync has a push to do)."""
    bench.node_python(SRC, "import sys; from ovios_shell_retadm.config import files, model; "
                           "n = int(sys.argv[2]); "
                           "files.update(lambda c: model.with_lun(c, sys.argv[1], n, f'esx/lun{n:02d}'))",
                      IQN, str(lun))


PUSHERS = "pgrep -f '[o]vios_shell_retadm.config.autosync' | wc -l"


def wait_no_pusher(bench: Bench, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while int(bench.sh(SRC, PUSHERS)):
        if time.monotonic() > deadline:
            raise BenchError(f"an autosync pusher still runs on src after {timeout}s")
        time.sleep(0.1)


# --------------------------------------------------------------------------------------
# the measurements, one per target


def measure_autosync(bench: Bench) -> None:
    replicated(bench)
    bench.shell(SRC, "options", "autosync.enable", "on")
    for i in range(bench.repeat):  # dst up: each run's push is over before the next run
        change_config(bench, i)
        bench.timed_shell("options_up", SRC, "options")
        wait_no_pusher(bench)
    with link_down(bench, DST):
        for i in range(bench.repeat):
            change_config(bench, 100 + i)
            bench.timed_shell("options_down", SRC, "options")
        running = int(bench.sh(SRC, PUSHERS))
    bench.notes.append(f"autosync: when the last 'options' with dst down had returned, {running} background "
                       f"pusher(s) still waited for dst")


def measure_startup(bench: Bench) -> None:
    replicated(bench)
    for _ in range(bench.repeat):
        bench.timed_shell("startup", SRC, "retadm", "status")


#: run in the node by its ovios-shell's Python: ``REPEAT MODE ARGV…``; prints the samples (s), as JSON.
#: MODE ``exit``: until the process exits; ``first``: until it starts its first env or ssh
#: (seen by wrappers first on PATH); ``prompt``: until the interactive shell shows its prompt.
#: ARGV ``full-shell …``: the full shell, ``python -m ovios_shell_retadm.shell …``.
STARTUP_DRIVER = r"""
import json, os, shutil, subprocess, sys, tempfile, time
import pexpect
repeat, mode, argv = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
if argv[0] == "full-shell":  # the full shell, with this Python (the one behind the node's ovios-shell)
    argv = [sys.executable, "-m", "ovios_shell_retadm.shell", *argv[1:]]
wrappers = tempfile.mkdtemp(prefix="bench-startup-")
stamps = os.path.join(wrappers, "stamps")
for name in ("env", "ssh"):
    real = shutil.which(name)
    with open(os.path.join(wrappers, name), "w") as f:
        f.write(f'#!/bin/bash\necho "$EPOCHREALTIME {name}" >> "$BENCH_STAMPS"\nexec {real} "$@"\n')
    os.chmod(os.path.join(wrappers, name), 0o755)
env = dict(os.environ, PATH=wrappers + ":" + os.environ["PATH"], BENCH_STAMPS=stamps)
samples = []
for _ in range(repeat):
    if os.path.exists(stamps):
        os.unlink(stamps)
    if mode == "prompt":
        started = time.time()
        child = pexpect.spawn(argv[0], argv[1:], env=env, encoding="utf-8", timeout=60)
        child.expect_exact("ovios-shell ➤")  # the blank after it is drawn as a cursor move
        samples.append(time.time() - started)
        child.sendline("quit")
        child.expect(pexpect.EOF)
        continue
    started = time.time()
    proc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    ended = time.time()
    if mode == "exit":
        samples.append(ended - started)
        continue
    if not os.path.exists(stamps):
        sys.exit(f"{' '.join(argv)} ran no env or ssh (exit {proc.returncode}): {proc.stderr.strip()[-300:]}")
    with open(stamps) as f:
        samples.append(float(f.readline().split()[0].replace(",", ".")) - started)
shutil.rmtree(wrappers)
print(json.dumps(samples))
"""


def measure_oneshot(bench: Bench) -> None:
    replicated(bench)
    status, inc = ("retadm", "status", "--json"), ("retadm", "inc", DATASET, "--dry-run")
    full = ("full-shell",)  # STARTUP_DRIVER runs python -m ovios_shell_retadm.shell
    for key, mode, argv in (("oneshot_status", "exit", ("ovios-shell", *status)),
                            ("oneshot_inc", "first", ("ovios-shell", *inc)),
                            ("full_status", "exit", (*full, *status)),
                            ("full_inc", "first", (*full, *inc)),
                            ("interactive", "prompt", ("ovios-shell",))):
        samples = json.loads(bench.node_python(SRC, STARTUP_DRIVER, str(bench.repeat), mode, *argv))
        bench.figures[key].samples += samples
        if bench.verbose:
            log(f"{key}: " + ", ".join(f"{s:.3f}s" for s in samples))


def measure_inc(bench: Bench) -> None:
    unreachable_task(bench)
    for _ in range(bench.repeat):
        bench.timed_shell("inc", SRC, "retadm", "inc", DATASET, expect=1)
        bench.timed_shell("status_after", SRC, "retadm", "status")


def measure_doctor(bench: Bench) -> None:
    unreachable_task(bench)
    for _ in range(bench.repeat):
        bench.timed_shell("doctor", SRC, "retadm", "doctor", DATASET, expect=1)


def measure_init(bench: Bench) -> None:
    bench.lab.reset()  # no task yet: refused for the destination, not as already replicated
    for _ in range(bench.repeat):
        bench.timed_shell("init", SRC, "retadm", "init", DATASET, "--dest", NOBODY, "--remote-pool", "repl",
                          expect=1)


def measure_reset(bench: Bench) -> None:
    for _ in range(bench.repeat):
        replicated(bench)
        actions = bench.timed("reset", bench.lab.reset)
        if {"started the lab", "rebuilt the lab"} & set(actions):
            bench.notes.append(f"reset: one run rebuilt the lab instead of mending it ({actions})")


def measure_promote(bench: Bench) -> None:
    for _ in range(bench.repeat):
        replicated(bench)
        with link_down(bench, SRC):
            bench.timed_shell("promote", DST, "retadm", "promote", REPLICA)


MEASUREMENTS: dict[str, Callable[[Bench], None]] = {
    "autosync": measure_autosync,
    "startup": measure_startup,
    "oneshot": measure_oneshot,
    "inc": measure_inc,
    "doctor": measure_doctor,
    "init": measure_init,
    "reset": measure_reset,
    "promote": measure_promote,
}


# --------------------------------------------------------------------------------------
# report


def row(figure: Figure) -> tuple[str, ...]:
    median = statistics.median(figure.samples)
    target = f"< {figure.target:g}" if figure.target is not None else "-"
    verdict = "-" if figure.target is None else "met" if median < figure.target else "MISSED"
    return (figure.label, target, f"{median:.2f}", f"{min(figure.samples):.2f}", f"{max(figure.samples):.2f}",
            verdict)


def table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(r))
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def report(bench: Bench, load_start: str, load_end: str) -> str:
    measured = [f for f in bench.figures.values() if f.samples]
    lines = [f"ovios-shell commands in lab {bench.lab.name}, {bench.repeat} runs each, seconds:", ""]
    if measured:
        lines += table([("figure", "target", "median", "min", "max", "verdict"), *map(row, measured)])
    lines += ["", f"load average (1, 5, 15 min): {load_start} at the start, {load_end} at the end, "
                  f"on {os.cpu_count()} CPUs", "", "samples (s):"]
    lines += [f"  {f.label}: " + ", ".join(f"{s:.3f}" for s in f.samples) for f in measured]
    lines += [f"note: {note}" for note in bench.notes]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each command (default 5)")
    parser.add_argument("--only", default=",".join(MEASUREMENTS),
                        help=f"comma-separated subset of: {', '.join(MEASUREMENTS)} (default all)")
    parser.add_argument("--keep-lab", action="store_true", help="leave the lab up at the end (reset)")
    parser.add_argument("--lab-name", default="benchcmd", help="the lab's name (default benchcmd; not ovlab)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every timed run")
    args = parser.parse_args(argv)
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    if unknown := sorted(set(only) - set(MEASUREMENTS)):
        parser.error(f"--only: unknown {', '.join(unknown)} (known: {', '.join(MEASUREMENTS)})")
    if args.repeat < 1:
        parser.error("--repeat must be positive")

    load_start = load()
    try:
        lab = Lab(args.lab_name)
        log(f"bringing lab {lab.name} up")
        lab.up()
    except (LabError, OSError, subprocess.SubprocessError) as exc:
        print(f"bench_commands: lab {args.lab_name} cannot come up: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    bench = Bench(lab, args.repeat, args.verbose)
    status = 0
    try:
        for name in (n for n in MEASUREMENTS if n in only):  # always in the report's order
            log(f"measuring {name}")
            try:
                MEASUREMENTS[name](bench)
            except (BenchError, LabError, subprocess.SubprocessError) as exc:
                bench.notes.append(f"{name}: could not be measured: {exc}")
                status = 1
        print(report(bench, load_start, load()), flush=True)
    finally:
        try:
            if args.keep_lab:
                lab.reset()
                log(f"lab {lab.name} kept (reset); 'ovios-lab down --name {lab.name}' removes it")
            else:
                log(f"taking lab {lab.name} down")
                lab.down()
        except (LabError, OSError, subprocess.SubprocessError) as exc:
            print(f"bench_commands: cleanup: {exc}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())

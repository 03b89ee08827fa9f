#!/usr/bin/env python3
"""What ``retadm`` costs against the hand-typed minimum, in the two-node zfs-fuse lab.

    python benchmarks/bench_replication.py [--size-mib 1024] [--repeat 5] [--keep-lab]

A script, not a test (needs root, zfs-fuse and the lab; takes a minute or more).  It
brings up its own lab (``bench``, never the test suite's ``ovlab``), with vdevs big
enough for the data (``OVIOS_LAB_VDEV_SIZE``), writes ``--size-mib`` of incompressible
data into a fresh dataset ``data/bench`` on ``src`` and measures, on ``src``:

1. the full send: ``ovios-shell retadm init data/bench --dest dst ...`` until the task
   is ``idle`` (wall time, and the transfer seconds the task records) against
   ``zfs snapshot data/bench@h1; zfs send data/bench@h1 | ssh dst zfs receive repl/handfull``;
2. one incremental with 1 MiB rewritten: ``ovios-shell retadm inc data/bench`` against
   ``zfs snapshot; zfs send -i | ssh dst zfs receive`` on the hand-made replica, each
   ``--repeat`` times (median and min), with the ssh master connection warm or cold:

   - retadm *warm*: its ControlMaster (ControlPersist) is up, as between cron runs;
   - retadm *cold*: its master is closed before the run (``SshHost.close()``);
   - hand *cold*: plain ``ssh dst`` as typed, a new connection every time;
   - hand *warm*: ``ssh -o ControlPath=...`` over a master opened beforehand.

3. a run with nothing written since the last one: ``retadm inc`` against the hand-typed
   snapshot and empty incremental (on zfs-fuse, which has no ``written`` property, retadm
   cannot tell and runs as usual; on OpenZFS it ends without ssh);
4. ``--many`` (default 50) small datasets, each replicated, with 64 KiB changed in each:
   one ``retadm inc`` of every task (side by side within the options' limits: the default
   ones, then 8 at once) against ``retadm inc`` of one dataset, with the CPU seconds the
   machine spent meanwhile (in all, and in the zfs-fuse daemons) and the shortest time that
   much work can take on its cores;

and counts the processes one ``retadm inc`` executes (``strace -f -e trace=execve``).

The hand-typed chain runs on ``data/benchhand``, a local copy of ``data/bench@h1``
(``zfs send | zfs receive`` keeps the snapshot's guid, so ``repl/handfull@h1`` is its
base): both chains then get exactly one 1 MiB change per incremental, and neither
carries the other's snapshots.

Every time is taken inside the node (bash ``$EPOCHREALTIME`` around the command), so
entering the node costs nothing to either side.  The datasets it made are destroyed at
the end and the lab is taken down, unless ``--keep-lab``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

SRC, DST = "src", "dst"
DATASET = "data/bench"
HAND_SOURCE = "data/benchhand"
REMOTE_POOL, REMOTE_NAME = "repl", "bench"
REMOTE = f"{REMOTE_POOL}/{REMOTE_NAME}"
HAND_REMOTE = "repl/handfull"
BLOB = "blob"
HOLD_TAG = "retadm"
MIB = 1024 * 1024

# temporary files in the node: its /tmp is the machine's, so names carry our pid
_TAG = f"ovios-bench-{os.getpid()}"
HAND_CONTROL_PATH = f"/tmp/{_TAG}.cm"
STRACE_OUT = f"/tmp/{_TAG}.strace"


def vdev_bytes(size_mib: int) -> int:
    """Each pool holds two copies of the data (retadm's and the hand-made one) plus room."""
    return max(256, 2 * size_mib + max(512, size_mib // 2)) * MIB


# --------------------------------------------------------------------------------------
# running things in the lab


class BenchError(Exception):
    pass


@dataclass
class Timed:
    seconds: float
    start: float  # epoch seconds, as the node saw them
    end: float
    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class CpuSpent:
    """CPU seconds the whole machine spent (every core, every process: the lab's nodes are
    namespaces of this kernel), and the part of them spent in the zfs-fuse daemons, which do
    the pools' work for every ``zfs`` command, send and receive of both nodes."""

    busy: float
    pools: float

    @classmethod
    def now(cls) -> CpuSpent:
        """The counters since boot: subtract two of them for what was spent in between."""
        tick = os.sysconf("SC_CLK_TCK")
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle, iowait
        busy = sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal
        pools = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                text = stat.read_text()
            except OSError:
                continue  # gone meanwhile
            head, _, tail = text.rpartition(")")  # the name, in parentheses, may hold anything
            if head.partition("(")[2] == "zfs-fuse":
                fields_after = tail.split()
                pools += int(fields_after[11]) + int(fields_after[12])  # utime, stime
        return cls(busy / tick, pools / tick)

    def __sub__(self, other: CpuSpent) -> CpuSpent:
        return CpuSpent(self.busy - other.busy, self.pools - other.pools)


class Bench:
    def __init__(self, lab, size_mib: int, repeat: int, verbose: bool):
        self.lab = lab
        self.size_mib = size_mib
        self.repeat = repeat
        self.verbose = verbose
        self.shell = "ovios-shell"
        self.python = sys.executable  # the machine's dirs are visible in the nodes
        self.offsets: Counter[str] = Counter()
        self.hand_snapshots = 1  # data/benchhand@h1 is the hand replica's base
        self.results: dict[str, list[float]] = {}
        #: what the machine's CPUs spent during some of the timed runs, by the results' names
        self.cpu: dict[str, list[CpuSpent]] = {}
        self.notes: list[str] = []
        self.made: dict[str, list[str]] = {SRC: [], DST: []}

    def log(self, text: str) -> None:
        print(f"[bench] {text}", file=sys.stderr, flush=True)

    def run(self, node: str, script: str, timeout: float = 120, check: bool = True):
        result = self.lab.exec(node, ["bash", "-c", script], timeout=timeout)
        if check and result.returncode != 0:
            raise BenchError(f"{node}: {script!r} exited {result.returncode}: "
                             f"{(result.stderr or result.stdout).strip()[-800:]}")
        return result

    def timed(self, node: str, command: str, timeout: float = 120, check: bool = True) -> Timed:
        """Run ``command`` (bash, pipefail) in ``node``, timed inside the node."""
        script = (f"set -o pipefail\ns=$EPOCHREALTIME\n{{ {command}\n}}\nrc=$?\ne=$EPOCHREALTIME\n"
                  'printf "\\n@@bench %s %s %s\\n" "$s" "$e" "$rc" >&2\n')
        result = self.lab.exec(node, ["bash", "-c", script], timeout=timeout)
        lines = [line for line in result.stderr.splitlines() if line.startswith("@@bench ")]
        if not lines:
            raise BenchError(f"{node}: no timing from {command!r}: {result.stderr.strip()[-800:]}")
        start, end, rc = lines[-1].split()[1:]
        start_s, end_s = float(start.replace(",", ".")), float(end.replace(",", "."))
        stderr = "\n".join(line for line in result.stderr.splitlines() if not line.startswith("@@bench ")).strip()
        timed = Timed(end_s - start_s, start_s, end_s, int(rc), result.stdout, stderr)
        if self.verbose:
            self.log(f"{node}: {timed.seconds:.3f}s rc={rc}: {command}")
        if check and timed.returncode != 0:
            raise BenchError(f"{node}: {command!r} exited {rc}: {(stderr or result.stdout).strip()[-800:]}")
        return timed

    def zfs_available(self, node: str, dataset: str) -> int:
        out = self.run(node, f"zfs get -H -p -o value available {dataset}").stdout.strip()
        return int(out)

    # -- the product's state -----------------------------------------------------------

    def task_record(self, dataset: str = DATASET) -> dict | None:
        """The task's record in src's store (what ``retadm status --json`` renders).

        Read inside the node: SQLite resolves ``/proc/PID/root`` to the machine's ``/``.
        """
        code = ("import os, sqlite3, sys\n"
                "p = '/etc/ovios/ovios.db'\n"
                "r = None\n"
                "if os.path.exists(p):\n"
                "    c = sqlite3.connect(p, timeout=30)\n"
                "    try:\n"
                "        r = c.execute('SELECT record FROM tasks WHERE dataset = ?', (sys.argv[1],)).fetchone()\n"
                "    except sqlite3.OperationalError:\n"
                "        pass\n"
                "print(r[0] if r else 'null')\n")
        out = self.run(SRC, f"{shlex.quote(self.python)} -c {shlex.quote(code)} {dataset}").stdout
        return json.loads(out)

    def wait_idle(self, dataset: str, timeout: float) -> dict:
        """Poll the task's record until its full replication is done; its record then."""
        deadline = time.monotonic() + timeout
        while True:
            record = self.task_record(dataset)
            state = record.get("state") if record else None
            if record and state == "idle" and record.get("initialised"):
                return record
            if record and state == "error":
                raise BenchError(f"retadm's full send of {dataset} failed: {record.get('error')}")
            if time.monotonic() > deadline:
                raise BenchError(f"retadm's full send of {dataset} not idle after {timeout}s (state {state})")
            time.sleep(0.1)

    def retadm_master(self, action: str) -> None:
        """Open ("open") or close ("close") retadm's own master connection to dst."""
        code = ("import time\n"
                "from ovios_shell_retadm.hosts import SshHost\n"
                "h = SshHost('dst')\n"
                + ("h.close()\n" if action == "close" else "h.run(['true'], timeout=30)\n")
                + "for _ in range(50):\n"
                  "    up = h.master_running()\n"
                  f"    if up == {action == 'open'}: break\n"
                  "    time.sleep(0.1)\n"
                  "print('up' if up else 'down')\n")
        state = self.run(SRC, f"{shlex.quote(self.python)} -c {shlex.quote(code)}").stdout.strip()
        want = "down" if action == "close" else "up"
        if state != want:
            raise BenchError(f"retadm's ssh master is {state} after {action}")

    # -- steps ------------------------------------------------------------------------

    def prepare(self) -> None:
        need = 2 * self.size_mib * MIB + 128 * MIB
        for node, pool in ((SRC, "data"), (DST, REMOTE_POOL)):
            free = self.zfs_available(node, pool)
            if free < need:
                raise BenchError(f"pool {pool} on {node} has {free // MIB} MiB free, {need // MIB} MiB needed: "
                                 f"take the lab down ('ovios-lab down --name {self.lab.name}') so that it "
                                 f"comes back with bigger vdevs")
        self.run(SRC, f"zfs create {DATASET}")
        self.made[SRC].append(DATASET)
        self.log(f"writing {self.size_mib} MiB of incompressible data into /{DATASET}/{BLOB}")
        wrote = self.timed(SRC, f"dd if=/dev/urandom of=/{DATASET}/{BLOB} bs=1M count={self.size_mib} "
                                f"status=none && sync", timeout=120 + self.size_mib)
        self.notes.append(f"writing the {self.size_mib} MiB took {wrote.seconds:.1f}s "
                          f"({self.size_mib / wrote.seconds:.0f} MiB/s through zfs-fuse)")

    def full(self) -> None:
        timeout = 300 + 2 * self.size_mib
        self.log("retadm init (full send in the background)")
        started = self.timed(SRC, f"{self.shell} retadm init {DATASET} --dest {DST} --remote-pool {REMOTE_POOL} "
                                  f"--remote-name {REMOTE_NAME} --properties no", timeout=120)
        self.made[DST].append(REMOTE)
        record = self.wait_idle(DATASET, timeout)
        status = json.loads(self.run(SRC, f"{self.shell} retadm status --json").stdout)
        row = next(r for r in status if r["dataset"] == DATASET)
        if row["status"] != "idle":
            raise BenchError(f"retadm status --json says {row['status']}, not idle")
        # "idle" and last_success are written by the same store update: the wall time
        # ends there, with no polling granularity
        wall = record["last_success"] - started.start
        self.results["full: init -> idle (wall)"] = [wall]
        if "last_seconds" in row:
            transfer, where = row["last_seconds"], "retadm status --json"
        else:
            transfer, where = record.get("last_seconds"), "the task record (status --json does not show it)"
        if transfer is not None:
            self.results["full: transfer seconds recorded"] = [float(transfer)]
            self.notes.append(f"full transfer seconds recorded by the task: {transfer}s, read from {where}")
        self.notes.append(f"'retadm init' itself returned after {started.seconds:.2f}s "
                          f"(preflight, then the background worker holds the lock)")
        self.log("hand-typed full send")
        hand = self.timed(SRC,
                          f"zfs snapshot {DATASET}@h1; zfs send {DATASET}@h1 | ssh {DST} zfs receive {HAND_REMOTE}",
                          timeout=timeout)
        self.made[DST].append(HAND_REMOTE)
        self.results["full: hand-typed (wall)"] = [hand.seconds]

    def hand_chain_source(self) -> None:
        """data/benchhand: a local copy of data/bench@h1, the hand chain's own source."""
        self.log(f"local copy {DATASET}@h1 -> {HAND_SOURCE} (base of the hand-typed incrementals)")
        self.run(SRC, f"set -o pipefail; zfs send {DATASET}@h1 | zfs receive {HAND_SOURCE} && "
                      f"zfs destroy {DATASET}@h1", timeout=300 + 2 * self.size_mib)
        self.made[SRC].append(HAND_SOURCE)

    def change(self, dataset: str) -> str:
        """Rewrite 1 MiB of the blob, at a new offset each time."""
        k = self.offsets[dataset]
        self.offsets[dataset] += 1
        seek = (k * 37 + 3) % self.size_mib
        return (f"dd if=/dev/urandom of=/{dataset}/{BLOB} bs=1M count=1 seek={seek} conv=notrunc "
                f"status=none")

    def retadm_inc(self, warm: bool) -> float:
        self.run(SRC, self.change(DATASET))
        self.retadm_master("open" if warm else "close")
        result = self.timed(SRC, f"{self.shell} retadm inc {DATASET}", timeout=300)
        return result.seconds

    def hand_inc(self, warm: bool) -> float:
        self.run(SRC, self.change(HAND_SOURCE))
        base, self.hand_snapshots = self.hand_snapshots, self.hand_snapshots + 1
        new = self.hand_snapshots
        ssh = f"ssh -o ControlPath={HAND_CONTROL_PATH} {DST}" if warm else f"ssh {DST}"
        if warm:
            self.run(SRC, f"ssh -O check -o ControlPath={HAND_CONTROL_PATH} {DST} 2>/dev/null || "
                          f"ssh -fN -o ControlMaster=yes -o ControlPersist=600 "
                          f"-o ControlPath={HAND_CONTROL_PATH} {DST}")
        result = self.timed(SRC, f"zfs snapshot {HAND_SOURCE}@h{new} && zfs send -i @h{base} {HAND_SOURCE}@h{new} | "
                                 f"{ssh} zfs receive {HAND_REMOTE}", timeout=300)
        return result.seconds

    def retadm_unchanged(self) -> float:
        """``retadm inc`` with nothing written since its last run (master warm)."""
        self.retadm_master("open")
        return self.timed(SRC, f"{self.shell} retadm inc {DATASET}", timeout=300).seconds

    def hand_unchanged(self) -> float:
        """The hand-typed chain's no-change run: a snapshot and an empty incremental, plain ssh."""
        base, self.hand_snapshots = self.hand_snapshots, self.hand_snapshots + 1
        new = self.hand_snapshots
        return self.timed(SRC, f"zfs snapshot {HAND_SOURCE}@h{new} && zfs send -i @h{base} {HAND_SOURCE}@h{new} | "
                               f"ssh {DST} zfs receive {HAND_REMOTE}", timeout=300).seconds

    def incrementals(self) -> None:
        runs = {
            "inc: retadm, master warm": lambda: self.retadm_inc(True),
            "inc: retadm, master cold": lambda: self.retadm_inc(False),
            "inc: hand, plain ssh (cold)": lambda: self.hand_inc(False),
            "inc: hand, ssh master warm": lambda: self.hand_inc(True),
            "no change: retadm, master warm": self.retadm_unchanged,
            "no change: hand, plain ssh (cold)": self.hand_unchanged,
        }
        # round-robin, so that a busy moment on the machine hits every variant alike
        for i in range(self.repeat):
            self.log(f"incrementals, round {i + 1}/{self.repeat}")
            for name, fn in runs.items():
                self.results.setdefault(name, []).append(fn())
        self.retadm_master("open")
        startup = [self.timed(SRC, f"{self.shell} retadm status --json >/dev/null").seconds
                   for _ in range(self.repeat)]
        self.results["ovios-shell retadm status --json (startup)"] = startup
        # what every remote command pays on dst before it runs: bash reads root's
        # ~/.bashrc when started by sshd (it checks $SSH_CLIENT)
        probe = 'env -i HOME=/root PATH=/usr/bin:/bin {}bash -c true'
        rc = statistics.median(self.timed(DST, probe.format("SSH_CLIENT='1 2 3' ")).seconds for _ in range(5))
        plain = statistics.median(self.timed(DST, probe.format("")).seconds for _ in range(5))
        self.notes.append(f"on dst, the shell sshd starts for each remote command costs {rc:.3f}s with "
                          f"root's ~/.bashrc (bash reads it under sshd) against {plain:.3f}s without")

    def sample_with_cpu(self, label: str, command: str, timeout: float) -> None:
        """``timed``; its wall seconds and what the whole machine spent meanwhile
        (:class:`CpuSpent`) recorded under ``label``."""
        before = CpuSpent.now()
        seconds = self.timed(SRC, command, timeout=timeout).seconds
        self.cpu.setdefault(label, []).append(CpuSpent.now() - before)
        self.results.setdefault(label, []).append(seconds)

    def many(self, count: int) -> None:
        """``count`` small datasets replicated, a small change in each; one ``retadm inc`` of them
        all (parallel, the default limits, then 8 at once) against ``retadm inc`` of one."""
        names = [f"data/many{i:02d}" for i in range(count)]
        self.log(f"{count} small datasets, each replicated (retadm init)")
        for name in names:
            self.run(SRC, f"zfs create {name} && dd if=/dev/urandom of=/{name}/{BLOB} bs=64k count=16 status=none")
            self.made[SRC].append(name)
            remote = f"{REMOTE_POOL}/{name.split('/')[-1]}"
            self.timed(SRC, f"{self.shell} retadm init {name} --dest {DST} --remote-pool {REMOTE_POOL} "
                            f"--remote-name {remote.split('/')[-1]} --properties no", timeout=300)
            self.made[DST].append(remote)
            self.wait_idle(name, 300)
        change = "; ".join(f"dd if=/dev/urandom of=/{name}/{BLOB} bs=64k count=1 conv=notrunc status=none"
                           for name in names)
        self.retadm_master("open")
        limits = {"default limits": ("4", "2"), "8 at once": ("8", "8")}
        for i in range(self.repeat):
            self.log(f"{count} datasets, round {i + 1}/{self.repeat}")
            self.run(SRC, f"dd if=/dev/urandom of=/{names[0]}/{BLOB} bs=64k count=1 conv=notrunc status=none")
            self.sample_with_cpu("many: one dataset", f"{self.shell} retadm inc {names[0]}", timeout=300)
            for label, (total, partner) in limits.items():
                self.run(SRC, f"{self.shell} options retadm.parallel {total} && "
                              f"{self.shell} options retadm.parallel.partner {partner}")
                self.run(SRC, change, timeout=300)
                self.run(SRC, self.change(DATASET))  # the big dataset's task runs too: one of count + 1
                self.sample_with_cpu(f"many: all {count + 1} tasks, {label}", f"{self.shell} retadm inc",
                                     timeout=1200)
        self.run(SRC, f"{self.shell} options retadm.parallel 4 && {self.shell} options retadm.parallel.partner 2")
        for name in names:
            self.run(SRC, f"{self.shell} retadm reset {name} --yes", check=False)

    def count_processes(self) -> dict | None:
        have = self.run(SRC, "command -v strace", check=False)
        if have.returncode != 0:
            self.notes.append("strace is not installed in the node: process count skipped")
            return None
        self.run(SRC, self.change(DATASET))
        self.retadm_master("open")
        self.timed(SRC, f"strace -f -qq -s 512 -e trace=execve -e signal=none -o {STRACE_OUT} "
                        f"{self.shell} retadm inc {DATASET}", timeout=300)
        text = self.run(SRC, f"cat {STRACE_OUT}; rm -f {STRACE_OUT}").stdout
        return summarise_execs(text)

    def cleanup(self) -> None:
        # the task's own holds (its tag) go with the task; the datasets then go below
        self.run(SRC, f"{self.shell} retadm reset {DATASET} --yes", check=False)
        for node, datasets in self.made.items():
            for dataset in reversed(datasets):
                # a task set up before task identities held with tag retadm; zfs-fuse cannot
                # list holds, so release that tag on every snapshot, then destroy the dataset
                script = (f"zfs list -H -o name {dataset} >/dev/null 2>&1 || exit 0\n"
                          f"for s in $(zfs list -H -o name -t snapshot -r {dataset}); do "
                          f"zfs release {HOLD_TAG} \"$s\" 2>/dev/null; done\n"
                          f"for i in $(seq 20); do zfs destroy -r {dataset} && exit 0; sleep 0.2; done; exit 1")
                result = self.run(node, script, check=False)
                if result.returncode != 0:
                    self.log(f"could not destroy {node}:{dataset}: {result.stderr.strip()[-300:]}")
        self.run(SRC, f"ssh -O exit -o ControlPath={HAND_CONTROL_PATH} {DST} 2>/dev/null; "
                      f"rm -f {HAND_CONTROL_PATH} {STRACE_OUT}", check=False)


def summarise_execs(trace: str) -> dict:
    """Successful execve calls by program; ssh calls by what they ran remotely."""
    programs: Counter[str] = Counter()
    local_zfs: Counter[str] = Counter()
    remote: Counter[str] = Counter()
    unfinished: dict[str, re.Match] = {}  # by pid: an execve that strace -f printed in two parts
    for line in trace.splitlines():
        pid = line.split(" ", 1)[0]
        match = re.search(r'execve\("([^"]+)", \[(.*)\]', line)
        if match and line.rstrip().endswith("<unfinished ...>"):
            unfinished[pid] = match
            continue
        if match is None and "<... execve resumed>" in line:
            match = unfinished.pop(pid, None)
        if not match or not line.rstrip().endswith("= 0"):
            continue  # PATH lookups that failed
        program = os.path.basename(match.group(1))
        programs[program] += 1
        args = re.findall(r'"((?:[^"\\]|\\.)*)"', match.group(2))
        if program == "zfs" and len(args) > 1:
            local_zfs[args[1]] += 1
        elif program == "ssh" and args:
            command = args[-1]
            words = [word.strip("'\"") for word in command.split()]
            if "-O" in args:
                remote["(ssh -O control)"] += 1
            elif "listing=$(zfs" in command:  # the survey: its listing, then the holds' look
                remote["survey (zfs get, then zfs holds or the hold probe)"] += 1
            elif "zfs" in words:
                remote["zfs " + words[words.index("zfs") + 1]] += 1
            else:
                remote[" ".join(words[-2:]) or "(none)"] += 1
    return {"programs": programs, "local_zfs": local_zfs, "remote": remote}


# --------------------------------------------------------------------------------------
# report


def _fmt(samples: list[float] | None) -> str:
    if not samples:
        return "-"
    if len(samples) == 1:
        return f"{samples[0]:.2f}"
    return f"{statistics.median(samples):.2f} (min {min(samples):.2f})"


def _ratio(a: list[float] | None, b: list[float] | None) -> str:
    if not a or not b:
        return "-"
    return f"{statistics.median(a) / statistics.median(b):.1f}x"


def cpu_notes(bench: Bench) -> list[str]:
    """What the many-datasets runs cost the machine's CPUs, and the shortest wall time that
    cost allows on this machine's cores (medians): where a run is near it, it is bound by CPU,
    and only less work per task makes it faster."""
    one = bench.results.get("many: one dataset")
    cores = os.cpu_count() or 1
    lines = []
    for name, spent in bench.cpu.items():
        walls = bench.results[name]
        busy = statistics.median(s.busy for s in spent)
        pools = statistics.median(s.pools for s in spent)
        wall = statistics.median(walls)
        line = (f"cpu: {name.removeprefix('many: ')}: {busy:.2f} CPU-s over {wall:.2f} s "
                f"({busy / (wall * cores):.0%} of {cores} cores), {pools:.2f} of them in the zfs-fuse daemons")
        if one and name != "many: one dataset":
            floor = busy / cores
            line += (f"; on {cores} cores this work needs at least {floor:.2f} s "
                     f"({floor / statistics.median(one):.1f}x one), the daemons' share alone "
                     f"{pools / cores:.2f} s ({pools / cores / statistics.median(one):.1f}x one)")
        lines.append(line)
    return lines


def report(bench: Bench, execs: dict | None) -> str:
    r = bench.results
    rows = [
        ("full send, wall (init -> idle)", "full: init -> idle (wall)", "full: hand-typed (wall)"),
        ("full send, transfer recorded by task", "full: transfer seconds recorded", "full: hand-typed (wall)"),
        ("inc 1 MiB: retadm warm vs hand plain ssh", "inc: retadm, master warm", "inc: hand, plain ssh (cold)"),
        ("inc 1 MiB: retadm warm vs hand warm", "inc: retadm, master warm", "inc: hand, ssh master warm"),
        ("inc 1 MiB: retadm cold vs hand plain ssh", "inc: retadm, master cold", "inc: hand, plain ssh (cold)"),
        ("no change: retadm warm vs hand plain ssh", "no change: retadm, master warm",
         "no change: hand, plain ssh (cold)"),
        ("ovios-shell start-up (status --json)", "ovios-shell retadm status --json (startup)", None),
    ]
    rows += [(f"{name.removeprefix('many: ')} vs one", name, "many: one dataset")
             for name in r if name.startswith("many: all")]
    table = [("operation", "retadm s", "compared with s", "ratio")]
    for label, ours, theirs in rows:
        a, b = r.get(ours), r.get(theirs) if theirs else None
        if a is None:
            continue
        table.append((label, _fmt(a), _fmt(b), _ratio(a, b)))
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    lines = [f"retadm vs hand-typed zfs send | ssh zfs receive, {bench.size_mib} MiB dataset, "
             f"incrementals x{bench.repeat} (median, min):", ""]
    for j, row in enumerate(table):
        lines.append("  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                               for i, cell in enumerate(row)))
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    lines.append("samples (s):")
    for name, samples in r.items():
        lines.append(f"  {name}: " + ", ".join(f"{s:.3f}" for s in samples))
    if execs is not None:
        lines.append("")
        lines.append("processes executed by one 'ovios-shell retadm inc' (strace -f -e trace=execve, "
                     "successful execs; master warm):")
        lines.append("  " + ", ".join(f"{p} {n}" for p, n in execs["programs"].most_common()))
        lines.append("  local zfs: " + ", ".join(f"{c} {n}" for c, n in execs["local_zfs"].most_common()))
        lines.append("  over ssh:  " + ", ".join(f"{c} {n}" for c, n in execs["remote"].most_common()))
        lines.append("  hand-typed inc: zfs 2 (snapshot, send), ssh 1 (zfs receive)")
    lines += cpu_notes(bench)
    for note in bench.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="size of the dataset's data (default 1024)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each incremental variant (default 5)")
    parser.add_argument("--many", type=int, default=50,
                        help="small datasets for the many-datasets row (default 50; 0 leaves it out)")
    parser.add_argument("--keep-lab", action="store_true", help="leave the lab up at the end (reset)")
    parser.add_argument("--lab-name", default="bench", help="the lab's name (default bench; not ovlab)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every timed command")
    args = parser.parse_args(argv)
    if args.size_mib < 1 or args.repeat < 1 or not 0 <= args.many <= 99:
        parser.error("--size-mib and --repeat must be positive, --many from 0 to 99")
    if os.geteuid() != 0:
        parser.error("needs root (the lab does)")

    # before the lab package is imported: it reads the vdev size once
    os.environ["OVIOS_LAB_VDEV_SIZE"] = str(vdev_bytes(args.size_mib))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from ovios_lab import Lab
    from ovios_lab.spec import LabError

    lab = Lab(args.lab_name)
    bench = Bench(lab, args.size_mib, args.repeat, args.verbose)
    status = 0
    try:
        if lab.is_up():
            bench.log(f"lab {lab.name} is up: resetting it")
            lab.reset()
        else:
            bench.log(f"bringing lab {lab.name} up (vdevs {vdev_bytes(args.size_mib) // MIB} MiB)")
            lab.up()
        load = os.getloadavg()
        bench.prepare()
        bench.full()
        bench.hand_chain_source()
        bench.incrementals()
        execs = bench.count_processes()
        if args.many:
            bench.many(args.many)
        bench.notes.append(f"load average (1 min) {load[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, "
                           f"on {os.cpu_count()} CPUs: other work on the machine shows in the samples")
        print(report(bench, execs), flush=True)
    except (BenchError, LabError) as exc:
        print(f"bench_replication: {exc}", file=sys.stderr)
        if bench.results:
            print(report(bench, None), flush=True)
        status = 1
    finally:
        try:
            if lab.is_up():
                bench.log("destroying the benchmark's datasets")
                bench.cleanup()
                if args.keep_lab:
                    lab.reset()
                    bench.log(f"lab {lab.name} kept (reset); 'ovios-lab down --name {lab.name}' removes it")
                else:
                    bench.log(f"taking lab {lab.name} down")
                    lab.down()
        except (BenchError, LabError, OSError) as exc:
            print(f"bench_replication: cleanup: {exc}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())

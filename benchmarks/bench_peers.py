#!/usr/bin/env python3
"""retadm side by side with the hand-typed chain, syncoid and zfs-autobackup, on OpenZFS.

    python benchmarks/bench_peers.py [--size-mib 64] [--rounds 4] [--change-kib 100] [--keep-lab]

A script that prints figures, not a test (needs root and the OpenZFS QEMU lab; about 20
minutes with the defaults on a busy 2-CPU machine, plus the image build the first time).
It brings up its own OpenZFS lab (``benchz``, never the tests' default), with pools big
enough for one dataset per tool (``OVIOS_LAB_VDEV_SIZE``), and replicates from ``src`` to
``dst`` with four tools, each on its own dataset with identical content:

- ``hand``: ``zfs snapshot``; ``zfs send [-i] | ssh dst zfs receive`` as typed;
- ``retadm``: ``ovios-shell retadm init DATASET --dest dst ...`` (the full send runs in the
  background: timed until the task is ``idle``), then ``ovios-shell retadm inc DATASET``;
- ``syncoid`` (Debian's ``sanoid``): ``syncoid DATASET root@dst:repl/NAME``, its defaults;
- ``zfs-autobackup`` (PyPI): ``zfs set autobackup:benchpeers=true DATASET`` once, then
  ``zfs-autobackup --ssh-target dst benchpeers repl/zab`` (push), its defaults.

Each round starts every tool from scratch (fresh source dataset copied from one template of
``--size-mib`` incompressible data, no replica) and times, tool after tool, three runs:
*full* (the first replication), *inc* (``--change-kib`` rewritten in place, the same bytes
at the same offset for every tool) and *none* (nothing written since the last run).  The
order of the tools rotates from round to round and every phase is interleaved across the
tools, so that load on the machine hits all of them alike.  Times are taken inside ``src``
(bash ``$EPOCHREALTIME``); the medians over ``--rounds`` are printed with their ratio to
the hand-typed chain.  After every inc and none the replica's newest snapshot is checked to
hold the source's current state (``written@SNAP`` is 0 on ``src``).

After the rounds, the fixed costs a retadm run pays in ``src`` before any work of its own:
the interpreter alone, a one-shot ``ovios-shell``'s start-up, ``zpool sync`` and one ``zfs get``
(medians of five), and what they add up to for a run that ends unchanged.

One more round, untimed, counts what each run executes: wrappers for ``zfs`` and ``ssh``
first on ``src``'s PATH (``/usr/local/sbin``; retadm, syncoid and zfs-autobackup all look
them up there) and for ``zfs`` on ``dst`` log one line per execution, and ``dst``'s sshd log
says how many connections came in from ``src``.

The lab is taken down at the end unless ``--keep-lab``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_replication import MIB, Bench, BenchError  # the shared node helpers

SRC, DST = "src", "dst"
TOOLS = ("hand", "retadm", "syncoid", "zfs-autobackup")
LABELS = {"hand": "hand-typed", "retadm": "retadm", "syncoid": "syncoid", "zfs-autobackup": "zfs-autobackup"}
PHASES = ("full", "inc", "none")
PHASE_LABELS = {"full": "full (first replication)", "inc": "small incremental", "none": "no change"}
TEMPLATE = "data/peer-template"
BLOB = "blob"
ZAB_NAME = "benchpeers"  # zfs-autobackup's backup name: property autobackup:benchpeers
ZAB_TARGET = "repl/zab"
CHANGE_FILE = "/tmp/ovios-peer-change"
EXEC_LOG = "/run/ovios-peer-execs.log"
WRAPPED = {SRC: ("zfs", "ssh"), DST: ("zfs",)}
REAL = {"zfs": "/usr/sbin/zfs", "ssh": "/usr/bin/ssh"}
WRAPPER_DIR = "/usr/local/sbin"
RETADM_DB = "/etc/ovios/ovios.db"


def source(tool: str) -> str:
    return f"data/peer-{tool.replace('zfs-autobackup', 'zab')}"


def replica(tool: str) -> str:
    if tool == "zfs-autobackup":
        return f"{ZAB_TARGET}/{source(tool)}"  # zfs-autobackup keeps the source's path under the target
    return f"repl/peer-{tool}"


def vdev_bytes(size_mib: int) -> int:
    """src holds the template and four copies, dst four replicas; plus room for snapshots."""
    return max(256, 7 * size_mib + 192) * MIB


# waits in src until the task is idle (or failed); prints the task's record
_WAIT_IDLE = """
import json, sqlite3, sys, time
dataset, deadline, db = sys.argv[1], time.time() + float(sys.argv[2]), sys.argv[3]
while True:
    record = None
    try:
        con = sqlite3.connect(db, timeout=30)
        row = con.execute('SELECT record FROM tasks WHERE dataset = ?', (dataset,)).fetchone()
        con.close()
        record = json.loads(row[0]) if row else None
    except sqlite3.OperationalError:
        pass
    state = record.get('state') if record else None
    if state == 'idle' and record.get('initialised') or state == 'error' or time.time() > deadline:
        print(json.dumps(record))
        sys.exit(0 if state == 'idle' else 1)
    time.sleep(0.1)
"""


class PeerBench(Bench):
    def __init__(self, lab, size_mib: int, rounds: int, change_kib: int, verbose: bool):
        super().__init__(lab, size_mib, rounds, verbose)
        self.rounds = rounds
        self.change_kib = change_kib
        self.samples: dict[tuple[str, str], list[float]] = {}
        self.counts: dict[tuple[str, str], dict[str, int]] = {}
        self.hand_snap = 0
        self.pending_records: dict[str, float] = {}

    # -- set-up and clean-up ------------------------------------------------------------

    def prepare(self) -> None:
        need = {SRC: (5 * self.size_mib + 64) * MIB, DST: (4 * self.size_mib + 64) * MIB}
        for node, pool in ((SRC, "data"), (DST, "repl")):
            free = self.zfs_available(node, pool)
            if free < need[node]:
                raise BenchError(f"pool {pool} on {node} has {free // MIB} MiB free, {need[node] // MIB} MiB "
                                 f"needed: take the lab down ('ovios-lab --openzfs --name {self.lab.name} down') "
                                 f"so that it comes back with bigger disks")
        for name in ("syncoid", "zfs-autobackup"):
            self.run(SRC, f"command -v {name} >/dev/null || {{ echo '{name} is not in the lab image: "
                          f"rebuild it (ovios-lab image --openzfs)'; exit 1; }}")
        versions = []
        for command in ("zfs version", "syncoid --version", "zfs-autobackup --version"):
            out = self.run(SRC, f"{command} 2>&1", check=False).stdout.strip().splitlines()
            versions.append(out[0] if out else f"{command}: ?")
        self.notes.append("versions: " + "; ".join(versions))
        self.run(SRC, f"zfs destroy -r {TEMPLATE} 2>/dev/null; zfs create {TEMPLATE}")
        self.log(f"writing {self.size_mib} MiB of incompressible data into /{TEMPLATE}/{BLOB}")
        wrote = self.timed(SRC, f"dd if=/dev/urandom of=/{TEMPLATE}/{BLOB} bs=1M count={self.size_mib} "
                                f"status=none && sync", timeout=300 + 4 * self.size_mib)
        self.notes.append(f"writing the {self.size_mib} MiB template took {wrote.seconds:.1f}s in src")

    def release_holds(self, node: str, dataset: str) -> str:
        """Shell: release every hold on the dataset's snapshots (retadm and zfs-autobackup hold)."""
        return (f"zfs list -H -o name -t snapshot -r {dataset} 2>/dev/null | xargs -r zfs holds -H 2>/dev/null | "
                "while IFS=$'\\t' read -r snap tag _; do zfs release \"$tag\" \"$snap\"; done")

    def destroy(self, node: str, dataset: str) -> None:
        script = (f"zfs list -H -o name {dataset} >/dev/null 2>&1 || exit 0\n"
                  f"{self.release_holds(node, dataset)}\n"
                  f"for i in $(seq 20); do zfs destroy -r {dataset} && exit 0; sleep 0.3; done; exit 1")
        self.run(node, script, timeout=300)

    def scrap(self, tool: str) -> None:
        """Nothing of the tool's left: its task, source dataset and replica."""
        if tool == "retadm":
            self.run(SRC, f"ovios-shell retadm reset {source(tool)} --yes", check=False, timeout=300)
        self.destroy(SRC, source(tool))
        self.destroy(DST, ZAB_TARGET if tool == "zfs-autobackup" else replica(tool))

    def fresh(self, tool: str) -> None:
        self.scrap(tool)
        ds = source(tool)
        self.run(SRC, f"zfs create {ds} && cp /{TEMPLATE}/{BLOB} /{ds}/{BLOB} && sync", timeout=300 + self.size_mib)
        if tool == "zfs-autobackup":
            # its README's setup: select by property; the target path exists on the backup side
            self.run(SRC, f"zfs set autobackup:{ZAB_NAME}=true {ds}")
            self.run(DST, f"zfs create {ZAB_TARGET}")
        if tool == "hand":
            self.hand_snap = 0

    def change_script(self, k: int) -> str:
        """Shell: rewrite ``--change-kib`` of the blob in place (same bytes, same offset for every tool)."""
        slots = self.size_mib * 1024 // self.change_kib
        seek = (k * 37 + 3) % slots
        # zpool sync: the write is in the pool's history (``written``) before the tool looks, as a
        # write a few seconds old is; a plain sync only reaches the intent log, and a tool that asks
        # ``written`` within the open transaction group (up to 5 s) sees nothing written yet
        return (f"dd if={CHANGE_FILE} of=/{{ds}}/{BLOB} bs={self.change_kib}K count=1 seek={seek} "
                "conv=notrunc status=none && zpool sync data")

    # -- the tools ----------------------------------------------------------------------

    def command(self, tool: str, phase: str) -> str:
        ds = source(tool)
        if tool == "hand":
            base, self.hand_snap = self.hand_snap, self.hand_snap + 1
            new = f"{ds}@h{self.hand_snap}"
            send = f"zfs send {new}" if phase == "full" else f"zfs send -i @h{base} {new}"
            return f"zfs snapshot {new} && {send} | ssh {DST} zfs receive {replica(tool)}"
        if tool == "retadm":
            if phase == "full":
                return (f"ovios-shell retadm init {ds} --dest {DST} --remote-pool repl "
                        f"--remote-name {replica(tool).split('/', 1)[1]} --properties no")
            return f"ovios-shell retadm inc {ds}"
        if tool == "syncoid":
            return f"syncoid {ds} root@{DST}:{replica(tool)}"
        return f"zfs-autobackup --ssh-target {DST} {ZAB_NAME} {ZAB_TARGET}"

    def once(self, tool: str, phase: str, verify: bool = True) -> float:
        timeout = 300 + 4 * self.size_mib
        ran = self.timed(SRC, self.command(tool, phase), timeout=timeout)
        seconds = ran.seconds
        if tool == "retadm" and phase == "full":
            # init returns once the background worker holds the task: the full send ends
            # with the store update that makes it idle and sets last_success
            out = self.run(SRC, f"python3 -c {shlex.quote(_WAIT_IDLE)} {source(tool)} {timeout} {RETADM_DB}",
                           check=False, timeout=timeout + 60)
            record = json.loads(out.stdout.strip() or "null")
            if out.returncode != 0 or not record:
                raise BenchError(f"retadm's full send did not end idle: {record and record.get('error')}")
            seconds = record["last_success"] - ran.start
        if verify and phase != "full":
            self.verify(tool)
        return seconds

    def verify(self, tool: str) -> None:
        """The replica's newest snapshot holds the source's current state."""
        newest = self.run(DST, f"zfs list -H -o name -t snapshot -s createtxg -d 1 {replica(tool)} | tail -n 1"
                          ).stdout.strip()
        if "@" not in newest:
            raise BenchError(f"{tool}: no snapshot on dst's {replica(tool)}")
        snap = newest.split("@", 1)[1]
        written = self.run(SRC, f"zfs get -H -p -o value written@{snap} {source(tool)}").stdout.strip()
        if written != "0":
            snaps = self.run(SRC, f"zfs list -H -p -o name,createtxg,written -t snapshot -r {source(tool)}").stdout
            raise BenchError(f"{tool}: dst's newest snapshot {newest} is behind the source ({written} bytes "
                             f"written since); the source's snapshots:\n{snaps}")

    # -- rounds -------------------------------------------------------------------------

    def round(self, r: int, count: bool = False) -> None:
        order = TOOLS[r % len(TOOLS):] + TOOLS[:r % len(TOOLS)]
        self.log(f"round {r + 1}{' (counting, untimed)' if count else f'/{self.rounds}'}: {', '.join(order)}")
        for tool in order:
            self.fresh(tool)
        self.run(SRC, f"head -c {self.change_kib * 1024} /dev/urandom > {CHANGE_FILE}")
        for phase in PHASES:
            for tool in order:
                if phase == "inc":
                    self.run(SRC, self.change_script(r).format(ds=source(tool)))
                if count:
                    self.counts[(tool, phase)] = self.counted(tool, phase)
                else:
                    seconds = self.once(tool, phase)
                    self.samples.setdefault((tool, phase), []).append(seconds)
                    if self.verbose:
                        self.log(f"  {tool} {phase}: {seconds:.2f}s")

    # -- what a run cannot do without ---------------------------------------------------

    def floors(self, times: int = 5) -> None:
        """The fixed costs in ``src`` that a retadm run pays before any work of its own
        (medians of ``times``): the interpreter ``ovios-shell`` runs under, started alone; a
        one-shot ``ovios-shell`` (its start-up, imports included); ``zpool sync`` and one
        ``zfs get``.  A run that ends unchanged needs the start-up, ``zpool sync`` (so that
        ``written`` counts the last seconds' writes) and two ``zfs`` reads (the source's
        snapshots and ``written``, this task's holds)."""
        interpreter = "$(sed -n '1s/^#!//p' \"$(readlink -f \"$(command -v ovios-shell)\")\")"
        looks = {
            "interpreter": f"{interpreter} -c pass",
            "start-up": "ovios-shell retadm status --json >/dev/null",
            "zpool sync": "zpool sync data",
            "zfs get": f"zfs get -H -o value written {TEMPLATE} >/dev/null",
        }
        f = {name: statistics.median(self.timed(SRC, command).seconds for _ in range(times))
             for name, command in looks.items()}
        hand = _median(self.samples.get(("hand", "none")))
        unchanged = f["start-up"] + f["zpool sync"] + 2 * f["zfs get"]
        self.notes.append(
            f"fixed costs in src (median of {times}): the interpreter alone {f['interpreter']:.2f}s, "
            f"'ovios-shell retadm status --json' {f['start-up']:.2f}s, 'zpool sync' {f['zpool sync']:.2f}s, "
            f"one 'zfs get' {f['zfs get']:.2f}s: a retadm run that ends unchanged takes at least "
            f"{unchanged:.2f}s" + (f" ({unchanged / hand:.1f}x the hand-typed no change)" if hand else ""))

    # -- counting what a run executes ---------------------------------------------------

    def wrappers(self, install: bool) -> None:
        for node, programs in WRAPPED.items():
            paths = " ".join(f"{WRAPPER_DIR}/{p}" for p in programs)
            if not install:
                self.run(node, f"rm -f {paths} {EXEC_LOG}", check=False)
                continue
            script = "".join(
                f"cat > {WRAPPER_DIR}/{p} <<'EOF'\n#!/bin/sh\n"
                f"printf '%s\\t%s\\n' {p} \"$*\" >> {EXEC_LOG}\nexec {REAL[p]} \"$@\"\nEOF\n"
                f"chmod 755 {WRAPPER_DIR}/{p}\n" for p in programs)
            self.run(node, script)

    def counted(self, tool: str, phase: str) -> dict[str, int]:
        # dst's sshd (the product's, not the lab's control sshd) logs every connection it accepts
        accepted = (f"journalctl -u ssh.service -o cat -q | "
                    f"grep -c '^Accepted .* from {self.lab.node_address(SRC)} ' || true")
        before = int(self.run(DST, accepted).stdout.strip() or 0)
        for node in WRAPPED:
            self.run(node, f": > {EXEC_LOG}")
        self.once(tool, phase, verify=False)
        src_log = self.run(SRC, f"cat {EXEC_LOG}").stdout.splitlines()
        dst_log = self.run(DST, f"cat {EXEC_LOG}").stdout.splitlines()
        connections = int(self.run(DST, accepted).stdout.strip() or 0) - before
        if phase != "full":
            self.verify(tool)
        ssh = [line.split("\t", 1)[1] for line in src_log if line.startswith("ssh\t")]
        if self.verbose:
            for line in [*src_log, "-- dst", *dst_log]:
                self.log(f"    {tool} {phase}: {line}")
        return {
            "local zfs": sum(1 for line in src_log if line.startswith("zfs\t")),
            "ssh runs": sum(1 for a in ssh if " -O " not in f" {a} "),
            "ssh -O": sum(1 for a in ssh if " -O " in f" {a} "),
            "connections": connections,
            "remote zfs": sum(1 for line in dst_log if line.startswith("zfs\t")),
        }

    def cleanup(self) -> None:
        self.wrappers(install=False)
        for tool in TOOLS:
            try:
                self.scrap(tool)
            except BenchError as exc:
                self.log(f"cleanup of {tool}: {exc}")
        self.run(SRC, f"zfs destroy -r {TEMPLATE}; rm -f {CHANGE_FILE}", check=False)


# --------------------------------------------------------------------------------------
# report


def _median(samples: list[float] | None) -> float | None:
    return statistics.median(samples) if samples else None


def report(bench: PeerBench) -> str:
    lines = [f"retadm, syncoid and zfs-autobackup against the hand-typed chain, OpenZFS lab "
             f"(emulated VMs), {bench.size_mib} MiB dataset, inc = {bench.change_kib} KiB rewritten; "
             f"median of {bench.rounds} round(s), seconds (ratio to hand-typed):", ""]
    head = ["run"] + [LABELS[t] for t in TOOLS]
    table = [head]
    for phase in PHASES:
        hand = _median(bench.samples.get(("hand", phase)))
        row = [PHASE_LABELS[phase]]
        for tool in TOOLS:
            m = _median(bench.samples.get((tool, phase)))
            if m is None:
                row.append("-")
            elif tool == "hand" or not hand:
                row.append(f"{m:.2f}")
            else:
                row.append(f"{m:.2f} ({m / hand:.1f}x)")
        table.append(row)
    lines += _render(table)
    if bench.counts:
        lines += ["", "executions per run (counting round, untimed): local zfs / ssh runs (+ ssh -O) / "
                      "new ssh connections to dst / zfs on dst:", ""]
        table = [head]
        for phase in PHASES:
            row = [PHASE_LABELS[phase]]
            for tool in TOOLS:
                c = bench.counts.get((tool, phase))
                if c is None:
                    row.append("-")
                    continue
                ssh = f"{c['ssh runs']}" + (f"+{c['ssh -O']}" if c["ssh -O"] else "")
                row.append(f"{c['local zfs']} / {ssh} / {c['connections']} / {c['remote zfs']}")
            table.append(row)
        lines += _render(table)
    lines += ["", "samples (s):"]
    for (tool, phase), samples in bench.samples.items():
        lines.append(f"  {tool} {phase}: " + ", ".join(f"{s:.2f}" for s in samples))
    lines += [f"note: {note}" for note in bench.notes]
    return "\n".join(lines)


def _render(table: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    out = []
    for j, row in enumerate(table):
        out.append("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)))
        if j == 0:
            out.append("  ".join("-" * w for w in widths))
    return out


# --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=64, help="size of each dataset's data (default 64)")
    parser.add_argument("--rounds", type=int, default=4, help="timed rounds (default 4)")
    parser.add_argument("--change-kib", type=int, default=100, help="rewritten for the incremental (default 100)")
    parser.add_argument("--no-count", action="store_true", help="skip the untimed counting round")
    parser.add_argument("--keep-lab", action="store_true", help="leave the lab up at the end")
    parser.add_argument("--lab-name", default="benchz", help="the OpenZFS lab's name (default benchz)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every command and count")
    args = parser.parse_args(argv)
    if args.size_mib < 1 or args.rounds < 1 or not 0 < args.change_kib <= args.size_mib * 1024:
        parser.error("--size-mib and --rounds must be positive, --change-kib within the data")
    if os.geteuid() != 0:
        parser.error("needs root (the lab does)")

    # before the lab package is imported: it reads the disk size once
    os.environ["OVIOS_LAB_VDEV_SIZE"] = str(vdev_bytes(args.size_mib))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))
    from ovios_lab import OpenZfsLab
    from ovios_lab.spec import LabError

    lab = OpenZfsLab(args.lab_name, log=lambda m: print(f"[lab] {m}", file=sys.stderr, flush=True))
    bench = PeerBench(lab, args.size_mib, args.rounds, args.change_kib, args.verbose)
    status = 0
    try:
        if lab.is_up():
            bench.log(f"lab {lab.name} is up: resetting it")
            lab.reset()
        else:
            bench.log(f"bringing the OpenZFS lab {lab.name} up (pool disks {vdev_bytes(args.size_mib) // MIB} MiB)")
            lab.up()
        load = os.getloadavg()
        started = time.monotonic()
        bench.prepare()
        for r in range(args.rounds):
            bench.round(r)
        bench.floors()
        if not args.no_count:
            bench.wrappers(install=True)
            try:
                bench.round(args.rounds, count=True)
            finally:
                bench.wrappers(install=False)
        end = os.getloadavg()
        bench.notes.append(f"load average (1/5/15 min) {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} at the start, "
                           f"{end[0]:.1f}/{end[1]:.1f}/{end[2]:.1f} at the end, on {os.cpu_count()} CPUs; "
                           f"{(time.monotonic() - started) / 60:.0f} min in all")
        print(report(bench), flush=True)
    except (BenchError, LabError) as exc:
        print(f"bench_peers: {exc}", file=sys.stderr)
        if bench.samples:
            print(report(bench), flush=True)
        status = 1
    finally:
        try:
            if lab.is_up():
                if args.keep_lab:
                    bench.log("destroying the benchmark's datasets")
                    bench.cleanup()
                    bench.log(f"lab {lab.name} kept; 'ovios-lab --openzfs --name {lab.name} down' removes it")
                else:
                    bench.log(f"taking lab {lab.name} down")
                    lab.down()
        except (BenchError, LabError, OSError) as exc:
            print(f"bench_peers: cleanup: {exc}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())

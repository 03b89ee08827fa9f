"""Lab 1: two ZFS nodes (zfs-fuse) on one machine, in Linux namespaces.

``Lab`` is the whole lab (up, down, reset, status, exec); ``Node`` is one running
node (its holder process, daemons, pools and private files).  Each node lives in
its own network, mount and UTS namespaces held open by a holder process (see
:mod:`.holder`); a third holder keeps the lab's switch namespace, where a bridge
joins one veth per node.  Nothing is added to the machine's own network or mount
namespace: killing the lab's processes frees everything but the lab directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import nodefiles, osutil
from .base import LabReport, TwoNodeLab
from .nodefiles import NodePaths
from .pools import NodeZfs
from .spec import (
    DEFAULT_BASE_DIR,
    ENV_MEMBER,
    NODE_IFNAME,
    NODE_NAMES,
    NODES,
    LabError,
    NodeSpec,
    default_dir,
    default_name,
    interface_names,
    node_spec,
    validate_name,
)
from .state import HolderRecord, LabState

STD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
REQUIRED_PROGRAMS = ("zfs-fuse", "zfs", "zpool", "sshd", "ssh", "ssh-keygen", "cron", "unshare",
                     "nsenter", "setsid", "ip")
# directories the lab must not live under: they are private inside the nodes
FORBIDDEN_DIRS = ("/run", "/proc", "/sys", "/dev", *nodefiles.COPIED, *nodefiles.BOUND)
HOLDER_TIMEOUT = 20.0
DAEMON_TIMEOUT = 20.0


def _which(program: str) -> str | None:
    return shutil.which(program, path=os.environ.get("PATH", "") + ":" + STD_PATH)


def preflight() -> list[str]:
    """Why the lab cannot run on this machine (empty when it can)."""
    problems = []
    if os.geteuid() != 0:
        problems.append("the lab needs root")
    missing = [p for p in REQUIRED_PROGRAMS if _which(p) is None]
    if missing:
        problems.append("missing programs: " + ", ".join(missing)
                        + " (apt-get install zfs-fuse openssh-server cron iproute2 util-linux)")
    if not os.path.exists("/dev/fuse"):
        problems.append("/dev/fuse is missing (zfs-fuse needs FUSE)")
    return problems


def node_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a command run in a node: the caller's, minus what belongs to the
    machine (OVIOS_* path overrides, ssh agent, working directory), with root's PATH."""
    source = os.environ if base is None else base
    drop = ("SSH_AUTH_SOCK", "SSH_AGENT_PID", "PWD", "OLDPWD")
    env = {k: v for k, v in source.items() if not k.startswith("OVIOS_") and k not in drop}
    parts = [p for p in env.get("PATH", "").split(":") if p]
    parts += [p for p in STD_PATH.split(":") if p not in parts]
    env.update(PATH=":".join(parts), HOME="/root", USER="root", LOGNAME="root")
    return env


class NodeCommandError(subprocess.CalledProcessError):
    def __str__(self) -> str:
        detail = (self.stderr or self.output or "").strip()
        return f"{super().__str__()}{': ' + detail if detail else ''}"


@dataclass(frozen=True)
class Daemon:
    name: str
    argv: tuple[str, ...]
    pidfile: str  # path inside the node


DAEMONS = (
    Daemon("zfs-fuse", ("/usr/sbin/zfs-fuse", "--no-kstat-mount", "-p", "/run/zfs-fuse.pid"),
           "/run/zfs-fuse.pid"),
    Daemon("sshd", ("/usr/sbin/sshd", "-E", "/var/log/sshd.log"), "/run/sshd.pid"),
    Daemon("cron", ("/usr/sbin/cron",), "/run/crond.pid"),
)
ZFS_SOCKET = "/run/zfs/zfs_socket"


@dataclass
class NodeStatus:
    name: str
    address: str
    pid: int | None
    daemons: dict[str, bool] = field(default_factory=dict)
    pools: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return self.pid is not None and all(self.daemons.values())


@dataclass
class LabStatus(LabReport):
    name: str
    directory: Path
    up: bool
    switch_pid: int | None = None
    nodes: list[NodeStatus] = field(default_factory=list)
    up_seconds: float | None = None

    def text(self) -> str:
        state = "up" if self.up else "down"
        head = f"lab {self.name}: {state} ({self.directory})"
        if self.up_seconds is not None and self.up:
            head += f", started in {self.up_seconds:.1f} s"
        lines = [head]
        if self.switch_pid is not None:
            lines.append(f"  switch  pid {self.switch_pid}")
        for node in self.nodes:
            pid = node.pid if node.pid is not None else "-"
            daemons = " ".join(f"{name}:{'up' if alive else 'DOWN'}" for name, alive in node.daemons.items())
            pools = ",".join(node.pools) or "-"
            lines.append(f"  {node.name:<4} pid {pid}  {node.address}  {daemons}  pools: {pools}")
        return "\n".join(lines)


class Node:
    """One running node of a lab."""

    def __init__(self, lab: Lab, spec: NodeSpec, holder: HolderRecord | None = None):
        self.lab = lab
        self.spec = spec
        self.holder = holder
        self.paths = NodePaths(lab.directory / "nodes" / spec.name)
        self.zfs = NodeZfs(spec, self.paths, self.run_script, self.host_path)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def address(self) -> str:
        return self.spec.address

    @property
    def running_holder(self) -> HolderRecord:
        if self.holder is None:
            raise LabError(f"node {self.name} of lab {self.lab.name} is not running")
        return self.holder

    @property
    def pid(self) -> int:
        return self.running_holder.process.pid

    # -- running things inside -------------------------------------------------------

    def enter_argv(self, argv: list[str]) -> list[str]:
        """nsenter into the node; root and working directory (/root) are the holder's."""
        return ["nsenter", "-t", str(self.pid), "-m", "-n", "-u", "-r", "-w", "--", *argv]

    def run(self, argv: list[str], input: str | None = None, check: bool = False,
            timeout: float | None = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run(
            self.enter_argv(list(argv)), check=False, input=input, text=True, capture_output=True,
            stdin=subprocess.DEVNULL if input is None else None, timeout=timeout,
            env=node_env() if env is None else env, cwd="/")
        result.args = list(argv)
        if check and result.returncode != 0:
            raise NodeCommandError(result.returncode, list(argv), result.stdout, result.stderr)
        return result

    def run_script(self, script: str) -> subprocess.CompletedProcess:
        return self.run(["sh", "-c", script], timeout=60)

    def host_path(self, node_path: str) -> Path:
        """A path inside the node, as the machine reaches it (through the holder's root)."""
        return Path(f"/proc/{self.pid}/root") / node_path.lstrip("/")

    def processes(self) -> list[int]:
        """Every process in the node (all share its network namespace)."""
        if self.holder is None:
            return []
        return osutil.pids_in_namespace("net", self.holder.namespaces["net"])

    # -- daemons ---------------------------------------------------------------------

    def daemon_pid(self, daemon: Daemon) -> int | None:
        pid = osutil.read_pidfile(self.host_path(daemon.pidfile))
        if pid is None or osutil.is_zombie(pid):
            return None
        if osutil.namespace_id(pid, "net") != self.running_holder.namespaces["net"]:
            return None
        return pid

    def daemons_alive(self) -> dict[str, bool]:
        return {d.name: self.daemon_pid(d) is not None for d in DAEMONS}

    def start_daemon(self, daemon: Daemon) -> None:
        log = self.paths.logs / f"{daemon.name}.out"
        env = {"PATH": STD_PATH, "HOME": "/root", "LANG": "C.UTF-8", ENV_MEMBER: self.lab.member_tag}
        with open(log, "ab") as out:
            proc = subprocess.Popen(self.enter_argv(list(daemon.argv)), stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=out, env=env, cwd="/", start_new_session=True)
        try:
            code = proc.wait(timeout=DAEMON_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise LabError(f"{self.name}: {daemon.name} did not start (see {log})") from None
        ready = self._socket_ready if daemon.name == "zfs-fuse" else (
            lambda: self.daemon_pid(daemon) is not None)
        if code != 0 or not osutil.wait_for(ready, DAEMON_TIMEOUT):
            raise LabError(f"{self.name}: {daemon.name} did not start (exit {code}, see {log})")

    def _socket_ready(self) -> bool:
        path = self.host_path(ZFS_SOCKET)
        if not path.exists():
            return False
        with socket.socket(socket.AF_UNIX) as sock:
            try:
                sock.connect(str(path))
            except OSError:
                return False
        return True

    def start(self) -> None:
        """Start the daemons and create the pools (the holder and network are up)."""
        zfs_fuse, sshd, cron = DAEMONS
        self.start_daemon(zfs_fuse)
        self.zfs.create_all()
        self.start_daemon(sshd)
        self.start_daemon(cron)

    def configure_network(self) -> None:
        commands = f"link set lo up\naddr add {self.spec.cidr} dev {NODE_IFNAME}\nlink set {NODE_IFNAME} up\n"
        _ip_batch(self.pid, commands)

    # -- reset -----------------------------------------------------------------------

    def kill_strays(self) -> int:
        """Kill every process in the node but the holder and the daemons."""
        keep = {self.pid} | {pid for d in DAEMONS if (pid := self.daemon_pid(d)) is not None}
        strays = [p for p in self.processes() if p not in keep]
        osutil.kill_and_wait(strays, timeout=10)
        return len(strays)

    def reset(self) -> list[str]:
        actions = []
        if not self.daemons_alive()["zfs-fuse"]:
            raise LabError(f"{self.name}: zfs-fuse is not running")
        if count := self.kill_strays():
            actions.append(f"killed {count} process(es)")
        changed = nodefiles.restore_copies(self.host_path)
        if changed:
            actions.append("restored " + ", ".join(changed))
        for node_path in nodefiles.WIPED:
            if nodefiles.empty_dir(self.host_path(node_path)):
                actions.append(f"emptied {node_path}")
        self._reset_daemons(reload_sshd="/etc" in changed)
        actions += self.zfs.reset()
        return actions

    def _reset_daemons(self, reload_sshd: bool) -> None:
        for daemon in DAEMONS[1:]:
            pid = self.daemon_pid(daemon)
            if pid is None:
                self.start_daemon(daemon)
            elif daemon.name == "sshd" and reload_sshd:
                os.kill(pid, signal.SIGHUP)

    # -- status ----------------------------------------------------------------------

    def status(self) -> NodeStatus:
        if self.holder is None or not self.holder.alive():
            return NodeStatus(self.name, self.address, None, {d.name: False for d in DAEMONS})
        daemons = self.daemons_alive()
        pools = []
        if daemons["zfs-fuse"]:
            result = self.run(["zpool", "list", "-H", "-o", "name"], timeout=30)
            pools = result.stdout.split()
        return NodeStatus(self.name, self.address, self.pid, daemons, pools)


def _ip_batch(pid: int, commands: str) -> None:
    result = subprocess.run(["nsenter", "-t", str(pid), "-n", "--", "ip", "-batch", "-"], check=False,
                            input=commands, text=True, capture_output=True, timeout=30)
    if result.returncode != 0:
        raise LabError(f"network setup failed: {result.stderr.strip()}")


class Lab(TwoNodeLab):
    """The two-node lab.  ``Lab("ovlab").up()`` … ``.down()``."""

    def __init__(self, name: str | None = None, directory: str | os.PathLike | None = None):
        self.name = validate_name(name or default_name())
        self.directory = Path(directory) if directory else default_dir(self.name)
        self.directory = Path(os.path.abspath(self.directory))
        for forbidden in FORBIDDEN_DIRS:
            if self.directory == Path(forbidden) or Path(forbidden) in self.directory.parents:
                raise LabError(f"lab directory {self.directory} cannot be under {forbidden}")
        self.state_path = self.directory / "state.json"

    @property
    def member_tag(self) -> str:
        """The value of $OVIOS_LAB_MEMBER in every process the lab starts."""
        return f"{self.name}:{self.directory}"

    def __repr__(self) -> str:
        return f"Lab({self.name!r}, {str(self.directory)!r})"

    # -- public API ------------------------------------------------------------------

    nodes = NODE_NAMES

    def node(self, name: str) -> Node:
        spec = node_spec(name)
        state = self._load_state()
        return Node(self, spec, state.nodes.get(name) if state else None)

    def node_address(self, node: str) -> str:
        return node_spec(node).address

    def up(self) -> Lab:
        """Start the lab; nothing happens if it is already up and healthy."""
        self._require_runnable()
        with self._locked(create=True):
            state = self._load_state()
            if state is None or not self._healthy(state):
                self._teardown(state, reap=False)  # leftovers of a lab that died
                try:
                    self._build()
                except BaseException:
                    self._remove_directory()
                    raise
        return self

    def down(self) -> None:
        """Stop everything and remove the lab directory (nothing happens when it is down)."""
        self._require_runnable()
        with self._locked(create=False) as locked:
            self._teardown(self._load_state() if locked else None, reap=True)
            if locked:
                self._remove_directory()

    def is_up(self) -> bool:
        state = self._load_state()
        return state is not None and self._healthy(state)

    def status(self) -> LabStatus:
        state = self._load_state()
        if state is None:
            return LabStatus(self.name, self.directory, False)
        nodes = [Node(self, spec, state.nodes.get(spec.name)).status() for spec in NODES]
        switch_pid = state.switch.process.pid if state.switch and state.switch.alive() else None
        up = self._healthy(state)
        return LabStatus(self.name, self.directory, up, switch_pid, nodes, state.up_seconds)

    def exec(self, node: str, argv: list[str], input: str | None = None, check: bool = False,
             timeout: float | None = 120) -> subprocess.CompletedProcess:
        """Run ``argv`` inside ``node``; text output; raises on ``check`` and non-zero exit."""
        if isinstance(argv, str):
            raise TypeError("argv must be a list of strings, e.g. ['sh', '-c', script]")
        return self._running_node(node).run(argv, input=input, check=check, timeout=timeout)

    def exec_argv(self, node: str, argv: list[str], tty: bool = False) -> list[str]:
        """The command line that runs ``argv`` inside ``node`` (for os.execvp); nsenter keeps
        the caller's terminal, so ``tty`` needs nothing."""
        return self._running_node(node).enter_argv(list(argv))

    def exec_env(self) -> dict[str, str]:
        return node_env()

    def reset(self) -> list[str]:
        """Bring a running lab back to its initial state; returns what had to be done.

        Kills stray processes in the nodes, restores ssh/cron/hosts files, empties
        /etc/ovios, /var/log/ovios, /run/ovios and root's crontab, and puts the pools
        back as created (see :mod:`.pools`).  A lab that is not healthy is rebuilt.
        """
        state = self._load_state()
        if state is None or not self._healthy(state):
            self.up()
            return ["started the lab"]
        nodes = [Node(self, spec, state.nodes[spec.name]) for spec in NODES]
        try:
            with ThreadPoolExecutor(len(nodes)) as pool:
                results = list(pool.map(lambda n: n.reset(), nodes))
        except LabError:
            self.down()
            self.up()
            return ["rebuilt the lab"]
        return [f"{n.name}: {a}" for n, actions in zip(nodes, results, strict=True) for a in actions]

    def processes(self) -> list[int]:
        """Every process belonging to the lab (holders, daemons, anything run inside)."""
        return sorted(self._lab_pids(self._load_state()))

    # -- building ----------------------------------------------------------------------

    def _build(self) -> None:
        started = time.monotonic()
        state = LabState(self.name)
        try:
            nodes = {spec.name: Node(self, spec) for spec in NODES}
            nodefiles.prepare(NODES, {n: node.paths for n, node in nodes.items()})
            for node in nodes.values():
                node.zfs.make_vdevs()
            self._start_holders(state, nodes)
            self._wire(state, nodes)
            with ThreadPoolExecutor(len(nodes)) as pool:
                list(pool.map(lambda n: n.start(), nodes.values()))
        except BaseException as exc:
            self._teardown(state)
            if isinstance(exc, LabError):
                raise
            if isinstance(exc, (OSError, subprocess.SubprocessError)):
                raise LabError(f"lab {self.name} failed to start: {exc}") from exc
            raise
        state.ready = True
        state.up_seconds = round(time.monotonic() - started, 2)
        state.save(self.state_path)

    def _start_holders(self, state: LabState, nodes: dict[str, Node]) -> None:
        switch_spec = self.directory / "switch.json"
        logs = {"switch": self.directory / "switch.err"}
        pending = {"switch": self._spawn_holder(switch_spec, {"role": "switch"}, ["--net"],
                                                logs["switch"])}
        for node in nodes.values():
            spec = {"role": "node", "hostname": node.name, "stage": str(node.paths.stage),
                    "overrides": [o.to_json() for o in nodefiles.overrides(node.spec, node.paths)]}
            flags = ["--mount", "--net", "--uts", "--propagation", "private"]
            logs[node.name] = node.paths.logs / "holder.err"
            pending[node.name] = self._spawn_holder(node.paths.holder_spec, spec, flags, logs[node.name])
        errors = []
        for role, fd in pending.items():
            try:
                pid = self._await_holder(fd, role, logs[role])
            except LabError as exc:
                errors.append(str(exc))
                continue
            if role == "switch":
                state.switch = HolderRecord.of(pid, ("net",))
            else:
                state.nodes[role] = nodes[role].holder = HolderRecord.of(pid)
            state.save(self.state_path)  # recorded before anything runs inside
        if errors:
            raise LabError("; ".join(errors))

    def _spawn_holder(self, spec_path: Path, spec: dict, flags: list[str], err_log: Path) -> int:
        read_fd, write_fd = os.pipe()
        spec = dict(spec, ready_fd=write_fd, lab=self.name)
        spec_path.write_text(json.dumps(spec))
        argv = ["setsid", "-f", "unshare", *flags, "--", sys.executable, "-I", "-m",
                "ovios_lab.holder", str(spec_path)]
        env = {"PATH": STD_PATH, "LANG": "C.UTF-8", ENV_MEMBER: self.member_tag}
        try:
            with open(err_log, "ab") as err:
                subprocess.run(argv, pass_fds=(write_fd,), stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=err, env=env, cwd="/",
                               check=True, timeout=HOLDER_TIMEOUT)
        finally:
            os.close(write_fd)
        return read_fd

    @staticmethod
    def _await_holder(fd: int, role: str, err_log: Path) -> int:
        data = b""
        deadline = time.monotonic() + HOLDER_TIMEOUT
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
                if not ready:
                    break
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                data += chunk
        finally:
            os.close(fd)
        words = data.decode(errors="replace").strip().split(" ", 1)
        if words[0] == "ok":
            return int(words[1])
        detail = words[1] if len(words) > 1 else "no answer"
        try:
            last = err_log.read_text(errors="replace").strip().splitlines()[-1:]
        except OSError:
            last = []
        raise LabError(f"{role} holder failed: {detail}" + (f" ({last[0]})" if last else ""))

    def _wire(self, state: LabState, nodes: dict[str, Node]) -> None:
        names = interface_names(self.name)
        bridge = names["bridge"]
        commands = f"link add {bridge} type bridge\nlink set {bridge} up\n"
        for node in nodes.values():
            veth = names[node.name]
            commands += (f"link add {veth} type veth peer name {NODE_IFNAME} netns {node.pid}\n"
                         f"link set {veth} master {bridge}\nlink set {veth} up\n")
        if state.switch is None:
            raise LabError(f"lab {self.name}: its switch is not running")
        _ip_batch(state.switch.process.pid, commands)
        for node in nodes.values():
            node.configure_network()

    # -- health and teardown -------------------------------------------------------------

    def _healthy(self, state: LabState) -> bool:
        if not state.ready or state.name != self.name or state.switch is None:
            return False
        if not all(h.alive() for h in state.holders()) or set(state.nodes) != set(NODE_NAMES):
            return False
        return all(all(Node(self, node_spec(n), h).daemons_alive().values())
                   for n, h in state.nodes.items())

    def _lab_pids(self, state: LabState | None) -> set[int]:
        """Processes of this lab: in its recorded namespaces, or marked in their environment."""
        own_net = osutil.namespace_id("self", "net")
        namespaces: set[tuple[int, int] | None] = set()
        if state is not None:
            namespaces |= {h.namespaces["net"] for h in state.holders()}
        marker = f"{ENV_MEMBER}={self.member_tag}"
        pids = set()
        for pid in osutil.all_pids():
            if osutil.environ_has(pid, marker):
                pids.add(pid)
                namespaces.add(osutil.namespace_id(pid, "net"))
        namespaces.discard(own_net)
        namespaces.discard(None)
        for pid in osutil.all_pids():
            if osutil.namespace_id(pid, "net") in namespaces:
                pids.add(pid)
        pids.discard(os.getpid())
        pids.discard(1)
        return pids

    def _teardown(self, state: LabState | None, reap: bool = False) -> None:
        """Kill the lab's processes and empty its directory (the directory itself stays).

        With ``reap``, also wait (up to a few seconds) until pid 1 has reaped the
        killed processes, so that no zombie of the lab is left in the process list.
        """
        pids = self._lab_pids(state)
        left = osutil.kill_and_wait(sorted(pids), timeout=15, reap_timeout=5 if reap else 0)
        if left:
            raise LabError(f"lab {self.name}: processes would not die: {left}")
        if self.directory.is_dir():
            nodefiles.empty_dir(self.directory)

    def _load_state(self) -> LabState | None:
        state = LabState.load(self.state_path)
        if state is not None and state.name != self.name:
            raise LabError(f"{self.directory} belongs to lab {state.name!r}, not {self.name!r}")
        return state

    def _running_node(self, node: str) -> Node:
        spec = node_spec(node)
        state = self._load_state()
        if state is None or not state.ready or spec.name not in state.nodes \
                or not state.nodes[spec.name].alive():
            raise LabError(f"lab {self.name} is not up (run: ovios-lab up)")
        return Node(self, spec, state.nodes[spec.name])

    @staticmethod
    def _require_runnable() -> None:
        problems = preflight()
        if problems:
            raise LabError("; ".join(problems))

    def _locked(self, create: bool):
        """Serialise up/down of this lab (see :func:`.osutil.locked_directory`)."""
        return osutil.locked_directory(self.directory, create)

    def _remove_directory(self) -> None:
        """Remove the lab directory, and the default base directory once it is empty."""
        shutil.rmtree(self.directory, ignore_errors=True)
        if self.directory.parent == DEFAULT_BASE_DIR:
            with contextlib.suppress(OSError):  # other labs live there
                DEFAULT_BASE_DIR.rmdir()


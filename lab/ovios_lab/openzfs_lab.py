"""Lab 2: two QEMU VMs with Debian 12 and real OpenZFS 2.x, ``src`` and ``dst``.

    lab = OpenZfsLab("labdev").up()          # builds the image first if needed
    lab.exec("src", ["zfs", "version"], check=True).stdout
    lab.reset()
    lab.down()

Each VM boots the cached image (:mod:`.openzfs_image`) through a copy-on-write overlay
in the lab directory, directly from its kernel (TCG: ``/dev/kvm`` here cannot run a
stock kernel), with two NICs:

- user-mode networking with ``restrict=on`` (no way out) and one host forward,
  ``127.0.0.1:<port>`` -> the lab's control sshd in the VM (port 2222, its own keys and
  config, so the product may reconfigure or restart the real sshd);
- the VM-to-VM link: QEMU ``dgram`` netdevs over two Unix sockets in the lab directory
  (UDP on 127.0.0.1 when the path is too long), ``src`` 192.168.0.149, ``dst`` 192.168.0.111.

The machine sees nothing but loopback traffic and the lab's files.  Every VM gets its
configuration (hostname, addresses, keys) and the project (pip-installed from the
working tree, shared read-only with virtio-9p) at boot; see :mod:`.openzfs_guest`.
Commands run in a VM through ``ssh`` with the lab's key and known_hosts file, multiplexed
over one master connection per VM.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import openzfs_guest as guest, openzfs_image, osutil
from .base import LabReport, TwoNodeLab
from .fuse_lab import NodeCommandError
from .openzfs_image import REPO_ROOT, Image
from .spec import ENV_MEMBER, NODE_NAMES, NODES, LabError, NodeSpec, node_spec, validate_name

DEFAULT_NAME = "ovzfs"
ENV_NAME = "OVIOS_OPENZFS_LAB_NAME"
ENV_DIR = "OVIOS_OPENZFS_LAB_DIR"
DEFAULT_BASE_DIR = Path("/var/lib/ovios-lab-openzfs")
ENV_MEMORY = "OVIOS_OPENZFS_VM_MEMORY_MIB"
ENV_CPUS = "OVIOS_OPENZFS_VM_CPUS"
ENV_BOOT_TIMEOUT = "OVIOS_OPENZFS_BOOT_TIMEOUT"
ENV_CPU_MODEL = "OVIOS_OPENZFS_VM_CPU_MODEL"
DEFAULT_MEMORY_MIB = 1536
DEFAULT_CPUS = 2
DEFAULT_CPU_MODEL = "max"
DEFAULT_BOOT_TIMEOUT = 600.0
KIND = "openzfs"
SERIAL_TAIL = 25
STD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_SUN_PATH_MAX = 100  # sun_path is 108 bytes; ssh appends ".<16 random chars>" to its ControlPath


def default_name() -> str:
    return os.environ.get(ENV_NAME) or DEFAULT_NAME


def default_dir(name: str) -> Path:
    value = os.environ.get(ENV_DIR)
    return Path(value) if value else DEFAULT_BASE_DIR / name


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name) or default)
    except ValueError:
        raise LabError(f"{name} must be an integer") from None


def preflight(memory: bool = True) -> list[str]:
    """Why Lab 2 cannot run on this machine (empty when it can; missing packages get installed).

    ``memory``: also check that two more VMs fit in the available memory.
    """
    problems = []
    if os.geteuid() != 0:
        problems.append("the OpenZFS lab needs root")
    if not (REPO_ROOT / "setup.cfg").is_file() or not (REPO_ROOT / "ovios_shell_retadm").is_dir():
        problems.append(f"{REPO_ROOT} is not the project's working tree (install the package editable)")
    available = _available_mib()
    needed = 2 * (_env_int(ENV_MEMORY, DEFAULT_MEMORY_MIB) + 512)
    if memory and available is not None and available < needed:
        problems.append(f"not enough memory: {available} MiB available, two VMs need ~{needed} MiB")
    return problems


def _available_mib() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class VmRecord:
    process: osutil.ProcessId
    ssh_port: int
    boot_seconds: float | None = None
    link: str = ""  # its end of the VM-to-VM link (QEMU -netdev), reused by power_on
    machine_id: str = ""
    powered_off: bool = False  # by power_off: QEMU killed, disks kept for power_on

    def to_json(self) -> dict:
        return {"process": self.process.to_json(), "ssh_port": self.ssh_port, "boot_seconds": self.boot_seconds,
                "link": self.link, "machine_id": self.machine_id, "powered_off": self.powered_off}

    @classmethod
    def from_json(cls, value: dict) -> VmRecord:
        return cls(osutil.ProcessId.from_json(value["process"]), int(value["ssh_port"]), value.get("boot_seconds"),
                   value.get("link", ""), value.get("machine_id", ""), bool(value.get("powered_off")))


@dataclass
class State:
    name: str
    image: str = ""
    vms: dict[str, VmRecord] = field(default_factory=dict)
    ready: bool = False
    up_seconds: float | None = None

    def to_json(self) -> dict:
        return {"kind": KIND, "name": self.name, "image": self.image, "ready": self.ready,
                "up_seconds": self.up_seconds, "vms": {n: v.to_json() for n, v in self.vms.items()}}

    @classmethod
    def load(cls, path: Path) -> State | None:
        try:
            value = json.loads(path.read_text())
            if value.get("kind") != KIND:
                return None
            return cls(value["name"], value.get("image", ""),
                       {n: VmRecord.from_json(v) for n, v in value.get("vms", {}).items()},
                       bool(value.get("ready")), value.get("up_seconds"))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            return None

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        os.replace(tmp, path)


@dataclass
class VmStatus:
    name: str
    address: str
    pid: int | None
    ssh_port: int | None
    reachable: bool = False
    services: dict[str, bool] = field(default_factory=dict)
    zfs_version: str = ""
    pools: list[str] = field(default_factory=list)
    rss_bytes: int | None = None
    powered_off: bool = False

    @property
    def healthy(self) -> bool:
        return self.pid is not None and self.reachable and all(self.services.values())


@dataclass
class OpenZfsLabStatus(LabReport):
    name: str
    directory: Path
    up: bool
    nodes: list[VmStatus] = field(default_factory=list)
    up_seconds: float | None = None
    image: str = ""

    def text(self) -> str:
        state = "up" if self.up else "down"
        head = f"lab {self.name} (openzfs): {state} ({self.directory})"
        if self.up_seconds is not None and self.up:
            head += f", started in {self.up_seconds:.0f} s"
        lines = [head]
        if self.image:
            lines.append(f"  image {self.image}")
        for node in self.nodes:
            pid = node.pid if node.pid is not None else "-"
            ssh = f"127.0.0.1:{node.ssh_port}" if node.ssh_port else "-"
            services = " ".join(f"{name}:{'up' if alive else 'DOWN'}" for name, alive in node.services.items())
            if node.pid is not None and not node.reachable:
                services = "unreachable"
            if node.powered_off:
                services = "powered off"
            lines.append(f"  {node.name:<4} pid {pid}  {node.address}  ssh {ssh}  {services or '-'}  "
                         f"{node.zfs_version or '-'}  pools: {','.join(node.pools) or '-'}  "
                         f"rss {_size(node.rss_bytes)}")
        return "\n".join(lines)


def _size(value: int | None) -> str:
    return "-" if value is None else f"{value / 2 ** 30:.2f} GiB"


class OpenZfsLab(TwoNodeLab):
    """Lab 2: the VMs ``src`` and ``dst`` with OpenZFS (see the module's docstring)."""

    nodes: tuple[str, ...] = NODE_NAMES
    kind = KIND

    def __init__(self, name: str | None = None, directory: str | os.PathLike | None = None,
                 log: Callable[[str], None] | None = None):
        self.name = validate_name(name or default_name())
        self.directory = Path(directory) if directory is not None else default_dir(self.name)
        self.log = log or (lambda message: None)

    def __repr__(self) -> str:
        return f"OpenZfsLab({self.name!r}, {str(self.directory)!r})"

    # -- paths ---------------------------------------------------------------------------

    @property
    def state_path(self) -> Path:
        return self.directory / "state.json"

    @property
    def member_tag(self) -> str:
        return f"{self.name}:{self.directory}"

    def vm_dir(self, node: str) -> Path:
        return self.directory / node

    def serial_log(self, node: str) -> Path:
        return self.vm_dir(node) / "serial.log"

    @property
    def _ssh_dir(self) -> Path:
        return self.directory / "ssh"

    def _control_path(self, node: str) -> Path | None:
        path = self._ssh_dir / f"{node}.ctl"
        return path if len(str(path)) <= _SUN_PATH_MAX - 17 else None

    def node_address(self, node: str) -> str:
        return node_spec(node).address

    # -- public API ---------------------------------------------------------------------------

    def up(self) -> OpenZfsLab:
        """Start the lab (a lab that is up is left alone); builds the image when missing."""
        problems = preflight(memory=False)
        if problems:
            raise LabError("; ".join(problems))
        with self._locked(create=True):
            state = self._load_state()
            if state is not None and self._healthy(state):
                return self
            self._teardown(state)
            problems = preflight()
            if problems:
                raise LabError("; ".join(problems))
            image = openzfs_image.build(log=self.log)
            self._build(image)
        return self

    def down(self) -> None:
        """Kill the VMs and remove the lab directory (the image cache stays)."""
        with self._locked(create=False) as locked:
            self._teardown(self._load_state() if locked else None)
            if locked:
                shutil.rmtree(self.directory, ignore_errors=True)
                if self.directory.parent == DEFAULT_BASE_DIR:
                    with contextlib.suppress(OSError):
                        DEFAULT_BASE_DIR.rmdir()

    def is_up(self) -> bool:
        state = self._load_state()
        return state is not None and self._healthy(state)

    def status(self) -> OpenZfsLabStatus:
        state = self._load_state()
        if state is None:
            return OpenZfsLabStatus(self.name, self.directory, False)
        with ThreadPoolExecutor(len(NODES)) as pool:
            nodes = list(pool.map(lambda spec: self._vm_status(state, spec), NODES))
        up = state.ready and all(n.healthy for n in nodes)
        return OpenZfsLabStatus(self.name, self.directory, up, nodes, state.up_seconds, state.image)

    def exec(self, node: str, argv: list[str], input: str | None = None, check: bool = False,
             timeout: float | None = 120) -> subprocess.CompletedProcess:
        """Run ``argv`` in ``node`` (as root, in /root); text output; raises on ``check`` and non-zero exit."""
        if isinstance(argv, str):
            raise TypeError("argv must be a list of strings, e.g. ['sh', '-c', script]")
        return self._run(self.exec_argv(node, list(argv)), list(argv), input, check, timeout)

    def _run(self, command: list[str], argv: list[str], input: str | None = None, check: bool = False,
             timeout: float | None = 120) -> subprocess.CompletedProcess:
        result = subprocess.run(command, check=False, input=input, text=True, capture_output=True,
                                stdin=subprocess.DEVNULL if input is None else None, timeout=timeout,
                                env=self._ssh_env())
        result.args = argv
        if check and result.returncode != 0:
            raise NodeCommandError(result.returncode, argv, result.stdout, result.stderr)
        return result

    def exec_argv(self, node: str, argv: list[str], tty: bool = False) -> list[str]:
        """The command line (ssh) that runs ``argv`` in ``node``; ``tty`` asks for a terminal."""
        state = self._load_state()
        spec = node_spec(node)
        if state is not None and state.ready and spec.name in state.vms and state.vms[spec.name].powered_off:
            raise LabError(f"{spec.name} of lab {self.name} is powered off "
                           f"(run: ovios-lab power-on --openzfs {spec.name})")
        if state is None or not state.ready or spec.name not in state.vms \
                or not state.vms[spec.name].process.alive():
            raise LabError(f"lab {self.name} is not up (run: ovios-lab up --openzfs)")
        return [*self._ssh_argv(spec.name, state.vms[spec.name].ssh_port, tty=tty), "--", shlex.join(argv)]

    def exec_env(self) -> dict[str, str]:
        """The environment for running :meth:`exec_argv`'s command line."""
        return self._ssh_env()

    def reset(self) -> list[str]:
        """Back to the initial state; returns what had to be done (empty when nothing).

        In each VM: kills processes started through ssh or cron, restores the system files
        the lab wrote (ssh, hosts, crontab, passwd …), empties /etc/ovios, /var/log/ovios,
        /run/ovios and root's crontab, restarts cron and sshd where needed, aborts resumable
        receives, releases holds, destroys every snapshot, bookmark and dataset that was not
        there at the start, restores dataset properties, and data/smbvol's files and
        esx/lun01's data where they changed.  A lab that is not up is started, and one
        whose reset fails is rebuilt.
        """
        state = self._load_state()
        if state is None or not self._healthy(state):
            self.up()
            return ["started the lab"]
        try:
            with ThreadPoolExecutor(len(NODES)) as pool:
                results = list(pool.map(self._reset_node, NODES))
        except (LabError, subprocess.SubprocessError) as exc:
            self.log(f"reset failed ({exc}); rebuilding the lab")
            self.down()
            self.up()
            return ["rebuilt the lab"]
        return [f"{spec.name}: {a}" for spec, actions in zip(NODES, results, strict=True) for a in actions]

    def power_off(self, node: str) -> None:
        """Cut ``node``'s power: its QEMU is killed (SIGKILL: no shutdown, nothing flushed
        inside), its disks stay for :meth:`power_on`.  The other VM keeps running; ``exec``
        to this one fails, ``status`` says it is powered off, ``up()`` rebuilds the lab."""
        spec = node_spec(node)
        with self._locked(create=False) as locked:
            state = self._load_state() if locked else None
            if state is None or not state.ready or spec.name not in state.vms:
                raise LabError(f"lab {self.name} is not up (run: ovios-lab up --openzfs)")
            vm = state.vms[spec.name]
            if vm.powered_off:
                return
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                self._stop_master(spec.name, vm.ssh_port)
            if vm.process.alive() and osutil.kill_and_wait([vm.process.pid], timeout=15, reap_timeout=5):
                raise LabError(f"{spec.name}: qemu (pid {vm.process.pid}) would not die")
            vm.powered_off = True
            state.save(self.state_path)
        self.log(f"lab {self.name}: {spec.name} powered off")

    def power_on(self, node: str) -> float:
        """Start ``node`` again after :meth:`power_off` (or a QEMU that died) with the same
        disks and link; returns the seconds until its pools were imported and mounted.

        The boot script runs again (hostname, keys, the project from the working tree) but
        keeps the reset baseline of the first boot; then the pools (``cachefile=none``: not
        imported at boot) are imported from ``/dev/disk/by-id`` and mounted, and sshd and
        cron must be running.  A VM that is running is left alone (0.0).
        """
        spec = node_spec(node)
        index = NODE_NAMES.index(spec.name) + 1
        with self._locked(create=False) as locked:
            state = self._load_state() if locked else None
            if state is None or not state.ready or spec.name not in state.vms:
                raise LabError(f"lab {self.name} is not up (run: ovios-lab up --openzfs)")
            old = state.vms[spec.name]
            if old.process.alive() and not old.powered_off:
                return 0.0
            link = old.link or (self._unix_links() or {}).get(spec.name)  # a lab started before links were kept
            if not link:
                raise LabError(f"{spec.name}: the lab's state has no record of its link's UDP ports: "
                               "run ovios-lab down --openzfs, then up")
            image = Image(Path(state.image))
            if not image.complete():
                raise LabError(f"the lab's image {image.directory} is gone: run ovios-lab down, then up")
            started = time.monotonic()
            self.log(f"lab {self.name}: powering {spec.name} on")
            self._unlink_link_socket(link)
            for name, text in guest.boot_files(spec, keep_baseline=True).items():
                (self.vm_dir(spec.name) / "seed" / name).write_text(text)
            serial = self.serial_log(spec.name)
            if serial.exists():
                os.replace(serial, serial.with_name(serial.name + ".1"))
            vm = self._start_vm(image, spec, index, link, old.machine_id)
            state.vms[spec.name] = vm
            state.save(self.state_path)  # the new QEMU is the lab's even if the boot fails
            vm.boot_seconds = self._wait_for_boot(spec.name, vm, started)
            self._start_master(spec.name, vm.ssh_port)
            argv = ["bash", "-c", guest.power_on_script(spec), "power-on"]
            result = self._run([*self._ssh_argv(spec.name, vm.ssh_port), "--", shlex.join(argv)], argv, timeout=600)
            if result.returncode != 0:
                raise LabError(f"{spec.name}: after power-on: {(result.stderr or result.stdout).strip()[-2000:]}")
            state.save(self.state_path)
        seconds = round(time.monotonic() - started, 1)
        self.log(f"lab {self.name}: {spec.name} powered on in {seconds:.0f} s (booted in {vm.boot_seconds:.0f} s)")
        return seconds

    def processes(self) -> list[int]:
        """The lab's processes on the machine (QEMU, ssh masters)."""
        return sorted(self._lab_pids(self._load_state()))

    def memory(self) -> dict[str, int | None]:
        """Resident memory of each VM's QEMU process, in bytes."""
        state = self._load_state()
        result: dict[str, int | None] = {}
        for node in self.nodes:
            vm = state.vms.get(node) if state else None
            result[node] = _rss(vm.process.pid) if vm and vm.process.alive() else None
        return result

    # -- ssh -------------------------------------------------------------------------------

    def _ssh_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("SSH_AUTH_SOCK", "SSH_AGENT_PID")}
        env[ENV_MEMBER] = self.member_tag  # an ssh master started by this call is the lab's
        return env

    def _ssh_argv(self, node: str, port: int, tty: bool = False, master: bool = False,
                  connect_timeout: int = 10) -> list[str]:
        argv = ["ssh", "-F", "/dev/null", "-i", str(self._ssh_dir / "id_ed25519"), "-l", "root", "-p", str(port),
                "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                "-o", f"UserKnownHostsFile={self._ssh_dir / 'known_hosts'}", "-o", "GlobalKnownHostsFile=/dev/null",
                "-o", f"HostKeyAlias=ovios-lab-{node}", "-o", "CheckHostIP=no", "-o", "LogLevel=ERROR",
                "-o", f"ConnectTimeout={connect_timeout}", "-o", "ServerAliveInterval=30",
                "-o", "ServerAliveCountMax=10"]
        control = self._control_path(node)
        if master and control is not None:
            argv += ["-o", "ControlMaster=yes", "-o", f"ControlPath={control}", "-o", "ControlPersist=yes",
                     "-N", "-f"]
        elif control is not None:
            argv += ["-o", "ControlMaster=no", "-o", f"ControlPath={control}"]
        argv.append("-t" if tty else "-T")
        return [*argv, "127.0.0.1"]

    def _start_master(self, node: str, port: int) -> None:
        if self._control_path(node) is None:
            return
        with open(self.vm_dir(node) / "ssh-master.log", "ab") as log:
            subprocess.run(self._ssh_argv(node, port, master=True), check=False, stdin=subprocess.DEVNULL, stdout=log,
                           stderr=log, env=self._ssh_env(), timeout=60)

    def _stop_master(self, node: str, port: int) -> None:
        control = self._control_path(node)
        if control is not None and control.exists():
            subprocess.run([*self._ssh_argv(node, port)[:-2], "-O", "exit", "127.0.0.1"], check=False,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=10, env=self._ssh_env())

    # -- building -------------------------------------------------------------------------

    def _build(self, image: Image) -> None:
        started = time.monotonic()
        state = State(self.name, str(image.directory))
        try:
            self.log(f"lab {self.name}: preparing {self.directory}")
            self._prepare(image)
            link = self._link_netdevs()
            for index, spec in enumerate(NODES, start=1):
                state.vms[spec.name] = self._start_vm(image, spec, index, link[spec.name])
                state.save(self.state_path)
            self.log(f"lab {self.name}: booting {', '.join(self.nodes)}")
            with ThreadPoolExecutor(len(NODES)) as pool:
                boots = list(pool.map(lambda s: self._wait_for_boot(s.name, state.vms[s.name], started), NODES))
            for spec, seconds in zip(NODES, boots, strict=True):
                state.vms[spec.name].boot_seconds = seconds
            self.log(f"lab {self.name}: booted in {max(boots):.0f} s; creating the pools")
            for spec in NODES:
                self._start_master(spec.name, state.vms[spec.name].ssh_port)
            with ThreadPoolExecutor(len(NODES)) as pool:
                list(pool.map(lambda s: self._setup_node(s, state.vms[s.name].ssh_port), NODES))
            state.ready = True
        except BaseException as exc:
            with contextlib.suppress(LabError):
                self._teardown(state)
            if isinstance(exc, LabError):
                raise
            if isinstance(exc, (OSError, subprocess.SubprocessError)):
                raise LabError(f"lab {self.name} failed to start: {exc}") from exc
            raise
        state.up_seconds = round(time.monotonic() - started, 1)
        state.save(self.state_path)
        self.log(f"lab {self.name}: up in {state.up_seconds:.0f} s")

    def _prepare(self, image: Image) -> None:
        ssh_dir = self._ssh_dir
        ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        keys = {"lab": ssh_dir / "id_ed25519"}
        for spec in NODES:
            seed = self.vm_dir(spec.name) / "seed"
            for sub in ("ssh", "lab", "network", "files", "project/bin"):
                (seed / sub).mkdir(parents=True, exist_ok=True)
            keys[f"{spec.name}-host"] = seed / "ssh" / "ssh_host_ed25519_key"
            keys[f"{spec.name}-root"] = seed / "ssh" / "id_ed25519"
            keys[f"{spec.name}-lab"] = seed / "lab" / "ssh_host_ed25519_key"
        procs = [subprocess.Popen(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"ovios-lab-{label}",
                                   "-f", str(path)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
                 for label, path in keys.items()]
        if any(p.wait() != 0 for p in procs):
            raise LabError("ssh-keygen failed")

        def pub(label: str) -> list[str]:
            return Path(str(keys[label]) + ".pub").read_text().split()[:2]

        lab_pub = " ".join(pub("lab"))
        project = guest.project_files((REPO_ROOT / "setup.cfg").read_text())
        (ssh_dir / "known_hosts").write_text(
            "".join(f"ovios-lab-{s.name} {' '.join(pub(s.name + '-lab'))}\n" for s in NODES))
        for index, spec in enumerate(NODES, start=1):
            seed = self.vm_dir(spec.name) / "seed"
            peers = [p for p in NODES if p.name != spec.name]
            files = {
                **guest.boot_files(spec),
                "hosts": guest.hosts_file(NODES),
                "crontab": guest.CRONTAB,
                "ssh/sshd-ovios-lab.conf": guest.SSHD_DROPIN,
                "ssh/authorized_keys": "".join(" ".join(pub(p.name + "-root")) + f" root@{p.name}\n" for p in peers),
                "ssh/known_hosts": "".join(f"{p.name},{p.address} {' '.join(pub(p.name + '-host'))}\n" for p in peers),
                "lab/sshd_config": guest.LAB_SSHD_CONFIG,
                "lab/authorized_keys": lab_pub + " ovios-lab\n",
            }
            files.update({f"network/{n}": t for n, t in guest.network_files(spec, index).items()})
            files.update({f"project/{n}": t for n, t in project.items()})
            for rel, text in files.items():
                (seed / rel).parent.mkdir(parents=True, exist_ok=True)
                (seed / rel).write_text(text)
            for pool in spec.pools:
                for ds in pool.datasets:
                    if "lun01.img" in ds.files:  # a zvol in this lab
                        target = seed / "files" / f"{ds.name}.img"
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_bytes(ds.files["lun01.img"])
                        continue
                    for rel, content in ds.files.items():
                        target = seed / "files" / ds.name / rel
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_bytes(content)
                    (seed / "files" / ds.name).mkdir(parents=True, exist_ok=True)
            for path in seed.rglob("*"):
                os.chmod(path, 0o755 if path.is_dir() else 0o644)
            vm = self.vm_dir(spec.name)
            result = subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                                     str(image.disk), str(vm / "root.qcow2")],
                                    check=False, capture_output=True, text=True)
            if result.returncode != 0:
                raise LabError(f"qemu-img create failed: {result.stderr.strip()}")
            for pool in spec.pools:
                with open(vm / f"{pool.name}.img", "wb") as fh:
                    fh.truncate(guest.POOL_DISK_SIZE)  # sparse

    @staticmethod
    def _unlink_link_socket(link: str) -> None:
        """A dead QEMU leaves its dgram socket file behind; binding it again needs it gone."""
        for part in link.split(","):
            if part.startswith("local.path="):
                Path(part[len("local.path="):]).unlink(missing_ok=True)

    def _unix_links(self) -> dict[str, str] | None:
        """The link over Unix sockets in the lab directory (None: their paths are too long)."""
        a, b = NODE_NAMES
        socks = {n: self.directory / f"link-{n}.sock" for n in (a, b)}
        if not all(len(str(p)) < 100 for p in socks.values()):
            return None

        def unix(node: str, other: str) -> str:
            return (f"dgram,id=link,local.type=unix,local.path={socks[node]},"
                    f"remote.type=unix,remote.path={socks[other]}")
        return {a: unix(a, b), b: unix(b, a)}

    def _link_netdevs(self) -> dict[str, str]:
        """The VM-to-VM link: one dgram netdev per VM, each sending to the other's socket."""
        a, b = NODE_NAMES
        links = self._unix_links()
        if links is not None:
            return links
        ports = {n: _free_port(socket.SOCK_DGRAM) for n in (a, b)}

        def udp(node: str, other: str) -> str:
            return (f"dgram,id=link,local.type=inet,local.host=127.0.0.1,local.port={ports[node]},"
                    f"remote.type=inet,remote.host=127.0.0.1,remote.port={ports[other]}")
        return {a: udp(a, b), b: udp(b, a)}

    def _qemu_argv(self, image: Image, spec: NodeSpec, index: int, link: str, port: int,
                   machine_id: str) -> list[str]:
        vm = self.vm_dir(spec.name)
        cmdline = (f"root=/dev/vda rw console=ttyS0,115200 net.ifnames=0 mitigations=off panic=-1 quiet "
                   f"systemd.show_status=1 systemd.machine_id={machine_id}")
        argv = [
            "qemu-system-x86_64", "-name", f"ovios-lab-{self.name}-{spec.name}",
            "-accel", "tcg,thread=multi,tb-size=256", "-cpu", os.environ.get(ENV_CPU_MODEL) or DEFAULT_CPU_MODEL,
            "-smp", str(_env_int(ENV_CPUS, DEFAULT_CPUS)), "-m", str(_env_int(ENV_MEMORY, DEFAULT_MEMORY_MIB)),
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-serial", f"file:{vm / 'serial.log'}", "-monitor", "none",
            "-kernel", str(image.kernel), "-initrd", str(image.initrd), "-append", cmdline,
            "-drive", f"if=none,id=root,file={vm / 'root.qcow2'},format=qcow2,cache=unsafe,discard=unmap",
            "-device", "virtio-blk-pci,drive=root,serial=root",
        ]
        for pool in spec.pools:
            argv += ["-drive", f"if=none,id=d-{pool.name},file={vm / (pool.name + '.img')},format=raw,"
                               "cache=unsafe,discard=unmap",
                     "-device", f"virtio-blk-pci,drive=d-{pool.name},serial={pool.name}"]
        argv += [
            "-netdev", f"user,id=mgmt,restrict=on,net=10.0.2.0/24,"
                       f"hostfwd=tcp:127.0.0.1:{port}-{guest.MGMT_ADDRESS}:{guest.LAB_SSH_PORT}",
            "-device", f"virtio-net-pci,netdev=mgmt,mac={guest.mac(0x0a, index)}",
            "-netdev", link, "-device", f"virtio-net-pci,netdev=link,mac={guest.mac(0x0b, index)}",
            "-device", "virtio-rng-pci",
            "-virtfs", f"local,path={REPO_ROOT},mount_tag=repo,security_model=none,readonly=on",
            "-virtfs", f"local,path={vm / 'seed'},mount_tag=seed,security_model=none,readonly=on",
            "-pidfile", str(vm / "qemu.pid"), "-daemonize",
        ]
        return argv

    def _start_vm(self, image: Image, spec: NodeSpec, index: int, link: str, machine_id: str = "") -> VmRecord:
        vm = self.vm_dir(spec.name)
        env = {"PATH": STD_PATH, "LANG": "C.UTF-8", ENV_MEMBER: self.member_tag}
        machine_id = machine_id or \
            hashlib.sha256(f"{self.member_tag}:{spec.name}:{time.time()}".encode()).hexdigest()[:32]
        for attempt in range(5):
            port = _free_port()
            result = subprocess.run(self._qemu_argv(image, spec, index, link, port, machine_id), check=False,
                                    stdin=subprocess.DEVNULL,
                                    capture_output=True, text=True, env=env, cwd=vm, timeout=120)
            if result.returncode == 0:
                pid = osutil.read_pidfile(vm / "qemu.pid")
                process = osutil.ProcessId.of(pid) if pid else None
                if process is None:
                    raise LabError(f"{spec.name}: qemu started but its pid file {vm / 'qemu.pid'} is unusable")
                return VmRecord(process, port, link=link, machine_id=machine_id)
            if "host forwarding" in result.stderr and attempt < 4:
                continue  # someone took the port meanwhile
            raise LabError(f"{spec.name}: qemu failed to start: {result.stderr.strip()}")
        raise AssertionError("unreachable")

    def serial_tail(self, node: str, lines: int = SERIAL_TAIL) -> str:
        try:
            text = self.serial_log(node).read_text(errors="replace")
        except OSError:
            return "(no serial log)"
        return "\n".join("    " + line.rstrip("\r") for line in text.strip().splitlines()[-lines:])

    def _wait_for_boot(self, node: str, vm: VmRecord, started: float) -> float:
        """Wait until the VM's boot script said ``ok`` (over ssh); returns its boot time in seconds.

        Until the boot script prints its last line on the serial console, only the serial log
        is watched: every ssh attempt costs the booting guest CPU time (sshd re-executes itself
        for each connection, and key exchange is slow under emulation).
        """
        timeout = float(os.environ.get(ENV_BOOT_TIMEOUT) or DEFAULT_BOOT_TIMEOUT)
        deadline = time.monotonic() + timeout
        argv = [*_drop_control_options(self._ssh_argv(node, vm.ssh_port, connect_timeout=60)),
                "--", f"cat {guest.STATUS_FILE}"]
        serial = self.serial_log(node)
        marker = f"ovios-lab boot: {node} ".encode()
        last = "no answer yet"
        while True:
            if not vm.process.alive():
                raise LabError(f"{node}: the VM (qemu) died while booting; last lines of {serial}:\n"
                               f"{self.serial_tail(node)}")
            if time.monotonic() > deadline:
                raise LabError(f"{node}: not up after {timeout:.0f} s ({last}); last lines of {serial}:\n"
                               f"{self.serial_tail(node)}")
            try:
                text = serial.read_bytes()
            except OSError:
                text = b""
            if marker + b"FAILED" in text:
                raise LabError(f"{node}: the VM's boot script failed; last lines of {serial}:\n"
                               f"{self.serial_tail(node)}")
            if marker not in text:
                time.sleep(0.5)
                continue
            try:
                result = subprocess.run(argv, check=False, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                        timeout=90, env=self._ssh_env())
                code, out = result.returncode, result.stdout.strip()
                last = out or result.stderr.strip() or last
            except subprocess.TimeoutExpired:
                code, out, last = None, "", "ssh timed out"
            if code == 0 and out.startswith("ok"):
                return round(time.monotonic() - started, 1)
            if out.startswith("failed"):
                raise LabError(f"{node}: the VM's boot script {out}; last lines of {serial}:\n"
                               f"{self.serial_tail(node)}")
            time.sleep(1)

    def _setup_node(self, spec: NodeSpec, port: int) -> None:
        argv = ["bash", "-c", guest.setup_script(spec), "setup"]
        result = self._run([*self._ssh_argv(spec.name, port), "--", shlex.join(argv)], argv, timeout=600)
        if result.returncode != 0:
            raise LabError(f"{spec.name}: creating the pools failed: "
                           f"{(result.stderr or result.stdout).strip()[-2000:]}")

    def _reset_node(self, spec: NodeSpec) -> list[str]:
        result = self.exec(spec.name, ["bash", "-c", guest.reset_script(spec), "reset"], timeout=600)
        actions = [line[len("ACTION "):] for line in result.stdout.splitlines() if line.startswith("ACTION ")]
        if result.returncode != 0:
            raise LabError(f"{spec.name}: reset failed: {(result.stderr or result.stdout).strip()[-2000:]}")
        return actions

    # -- health, status, teardown -------------------------------------------------------------

    def _healthy(self, state: State) -> bool:
        if not state.ready or state.name != self.name or set(state.vms) != set(NODE_NAMES):
            return False
        if not all(vm.process.alive() for vm in state.vms.values()):
            return False
        for node in self.nodes:
            try:
                if self.exec(node, ["true"], timeout=30).returncode != 0:
                    return False
            except (subprocess.SubprocessError, LabError):
                return False
        return True

    def _vm_status(self, state: State, spec: NodeSpec) -> VmStatus:
        vm = state.vms.get(spec.name)
        pid = vm.process.pid if vm is not None and vm.process.alive() else None
        status = VmStatus(spec.name, spec.address, pid,
                          vm.ssh_port if vm else None, powered_off=vm is not None and vm.powered_off)
        if pid is None:
            return status
        status.rss_bytes = _rss(pid)
        if not state.ready:
            return status
        probe = ("for u in ssh cron; do systemctl is-active --quiet $u && echo $u:up || echo $u:down; done; "
                 "zfs version 2>/dev/null | head -n 1; echo @@; zpool list -H -o name 2>/dev/null")
        try:
            result = self.exec(spec.name, ["sh", "-c", probe], timeout=30)
        except (subprocess.SubprocessError, LabError):
            return status
        if result.returncode != 0 or "@@" not in result.stdout:
            return status
        status.reachable = True
        head, pools = result.stdout.split("@@", 1)
        for line in head.splitlines():
            if ":" in line and line.split(":")[0] in ("ssh", "cron"):
                name, value = line.split(":", 1)
                status.services["sshd" if name == "ssh" else name] = value == "up"
            elif line.startswith("zfs-"):
                status.zfs_version = line.strip()
        status.services["zfs"] = bool(status.zfs_version)
        status.pools = sorted(pools.split())
        return status

    def _lab_pids(self, state: State | None) -> set[int]:
        pids = set()
        if state is not None:
            pids |= {vm.process.pid for vm in state.vms.values() if vm.process.alive()}
        marker = f"{ENV_MEMBER}={self.member_tag}"
        pids |= {pid for pid in osutil.all_pids() if osutil.environ_has(pid, marker)}
        pids.discard(os.getpid())
        pids.discard(1)
        return pids

    def _teardown(self, state: State | None) -> None:
        """Stop the ssh masters, kill the VMs and empty the lab directory."""
        if state is not None:
            for node, vm in state.vms.items():
                with contextlib.suppress(subprocess.SubprocessError, OSError):
                    self._stop_master(node, vm.ssh_port)
        pids = sorted(self._lab_pids(state))
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        left = osutil.kill_and_wait(pids, timeout=15, reap_timeout=5) if pids else []
        if left:
            raise LabError(f"lab {self.name}: processes would not die: {left}")
        if self.directory.is_dir():
            for entry in self.directory.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)

    def _load_state(self) -> State | None:
        state = State.load(self.state_path)
        if state is not None and state.name != self.name:
            raise LabError(f"{self.directory} belongs to lab {state.name!r}, not {self.name!r}")
        return state

    def _locked(self, create: bool):
        """Serialise up/down of this lab (see :func:`.osutil.locked_directory`)."""
        return osutil.locked_directory(self.directory, create)


def _drop_control_options(argv: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg == "-o" and i + 1 < len(argv) and argv[i + 1].startswith("Control"):
            skip = True
            continue
        out.append(arg)
    return out


def _rss(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None

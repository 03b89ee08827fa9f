"""Lab 1 itself: two zfs-fuse nodes in namespaces, real ZFS, real ssh, real cron.

These tests prove the lab the other lab tests stand on: the nodes, their pools and
files, passwordless and strict ssh both ways, cron, ``exec``/``status``/``shell``,
``reset``, and that ``up``/``down`` leave the machine as they found it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pexpect
import pytest

from ovios_lab import Lab
from ovios_lab.osutil import ProcessId
from ovios_lab.spec import ENV_MEMBER, LUN01_FILES, SMBVOL_FILES

from replication_helpers import sh

OTHER = {"src": "dst", "dst": "src"}
POOLS = {"src": {"data", "esx"}, "dst": {"repl"}}
DATASETS = {
    "src": {"data": "/data", "data/smbvol": "/data/smbvol", "esx": "/esx", "esx/lun01": "/esx/lun01"},
    "dst": {"repl": "/repl"},
}
_SCRIPT = Path(sys.executable).parent / "ovios-lab"
CLI = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "ovios_lab.cli"]


def cli(*args: str, lab: Lab | None = None, name: str | None = None, directory: Path | None = None,
        input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``ovios-lab`` for a lab (by default the session's)."""
    env = dict(os.environ)
    if lab is not None:
        name, directory = lab.name, lab.directory
    if name is not None:
        env["OVIOS_LAB_NAME"] = name
    if directory is not None:
        env["OVIOS_LAB_DIR"] = str(directory)
    return subprocess.run(CLI + list(args), check=False, input=input, text=True, capture_output=True, env=env,
                          timeout=timeout, stdin=subprocess.DEVNULL if input is None else None)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- nodes, network, pools ------------------------------------------------------------


def test_both_nodes_are_up_with_the_guide_addresses(lab: Lab) -> None:
    assert lab.is_up()
    assert lab.nodes == ("src", "dst")
    assert lab.node_address("src") == "192.168.0.149"
    assert lab.node_address("dst") == "192.168.0.111"
    for node in lab.nodes:
        assert sh(lab, node, "hostname").stdout.strip() == node
        addresses = sh(lab, node, "ip -4 -o addr show").stdout
        assert f"{lab.node_address(node)}/24" in addresses
        assert "127.0.0.1/8" in addresses  # loopback is up
        hosts = sh(lab, node, "getent hosts src dst").stdout.split()
        assert hosts == ["192.168.0.149", "src", "192.168.0.111", "dst"]


def test_nodes_have_their_own_namespaces(lab: Lab) -> None:
    mine = {kind: os.readlink(f"/proc/self/ns/{kind}") for kind in ("net", "mnt", "uts")}
    seen = {}
    for node in lab.nodes:
        links = sh(lab, node, "readlink /proc/self/ns/net /proc/self/ns/mnt /proc/self/ns/uts")
        seen[node] = links.stdout.split()
        assert not set(seen[node]) & set(mine.values())
    assert not set(seen["src"]) & set(seen["dst"])
    # the machine keeps its hostname and sees none of the nodes' mounts
    assert os.uname().nodename not in ("src", "dst")
    host_mountpoints = {line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()}
    assert not host_mountpoints & {"/data", "/data/smbvol", "/esx", "/esx/lun01", "/repl", "/etc/ovios"}


@pytest.mark.parametrize("node", ["src", "dst"])
def test_pools_and_datasets(fresh_lab: Lab, node: str) -> None:
    pools = sh(fresh_lab, node, "zpool list -H -o name,health").stdout.split("\n")
    assert {line.split("\t")[0] for line in pools if line} == POOLS[node]
    assert all(line.endswith("\tONLINE") for line in pools if line)
    listing = sh(fresh_lab, node, "zfs list -H -o name,mountpoint,mounted").stdout
    datasets = {n: (mp, m) for n, mp, m in (line.split("\t") for line in listing.splitlines())}
    assert datasets == {n: (mp, "yes") for n, mp in DATASETS[node].items()}
    # mounted inside the node's own mount namespace
    mounts = sh(fresh_lab, node, "cat /proc/self/mountinfo").stdout
    for mountpoint in DATASETS[node].values():
        assert re.search(rf" {re.escape(mountpoint)} \S+ - fuse\.zfs ", mounts), mountpoint


def test_sample_files_on_src(fresh_lab: Lab) -> None:
    found = sh(fresh_lab, "src", "cd /data/smbvol && find . -type f | sort").stdout.split()
    assert found == sorted(f"./{rel}" for rel in SMBVOL_FILES)
    assert sh(fresh_lab, "src", "test -d /data/smbvol/docs").returncode == 0
    sums = sh(fresh_lab, "src", "cd /data/smbvol && sha256sum " + " ".join(SMBVOL_FILES)).stdout
    assert {line.split()[1]: line.split()[0] for line in sums.splitlines()} == \
        {rel: sha256(content) for rel, content in SMBVOL_FILES.items()}
    lun = sh(fresh_lab, "src", "sha256sum /esx/lun01/lun01.img").stdout.split()[0]
    assert lun == sha256(LUN01_FILES["lun01.img"])
    assert sh(fresh_lab, "dst", "ls -A /repl").stdout == ""


# -- ssh ------------------------------------------------------------------------------


@pytest.mark.parametrize("by", ["name", "address"])
@pytest.mark.parametrize("node", ["src", "dst"])
def test_passwordless_ssh_reaches_the_other_node(lab: Lab, node: str, by: str) -> None:
    other = OTHER[node]
    target = other if by == "name" else lab.node_address(other)
    result = lab.exec(node, ["ssh", "-o", "BatchMode=yes", target, "hostname; zpool list -H -o name"],
                      timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split()
    assert lines[0] == other
    assert set(lines[1:]) == POOLS[other]


def test_ssh_refuses_unknown_host_keys(lab: Lab) -> None:
    ssh = ["ssh", "-o", "BatchMode=yes"]
    unknown = lab.exec("src", [*ssh, "127.0.0.1", "true"], timeout=60)
    assert unknown.returncode == 255
    assert "Host key verification failed" in unknown.stderr
    unlisted = lab.exec("dst", [*ssh, "-o", "UserKnownHostsFile=/dev/null", "src", "true"], timeout=60)
    assert unlisted.returncode == 255
    assert "Host key verification failed" in unlisted.stderr
    config = lab.exec("src", ["ssh", "-G", "dst"]).stdout
    assert re.search(r"^stricthostkeychecking (true|ask)$", config, re.M), config


def test_host_keys_are_known_by_name_and_address(lab: Lab) -> None:
    for node in lab.nodes:
        other = OTHER[node]
        for key in (other, lab.node_address(other)):
            found = lab.exec(node, ["ssh-keygen", "-F", key, "-f", "/root/.ssh/known_hosts"])
            assert found.returncode == 0, (node, key)
        own_key = sh(lab, other, "cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub").stdout.strip()
        assert own_key in sh(lab, node, "cat /root/.ssh/known_hosts").stdout
    # every node has its own host key and root key
    keys = {sh(lab, n, "cat /etc/ssh/ssh_host_ed25519_key.pub /root/.ssh/id_ed25519.pub").stdout
            for n in lab.nodes}
    assert len(keys) == 2


# -- daemons, exec, status, shell ------------------------------------------------------


def test_each_node_runs_its_own_cron_sshd_and_zfs_fuse(lab: Lab) -> None:
    pids = {}
    for node in lab.nodes:
        for daemon, pidfile, comm in (("cron", "/run/crond.pid", "cron"), ("sshd", "/run/sshd.pid", "sshd"),
                                      ("zfs-fuse", "/run/zfs-fuse.pid", "zfs-fuse")):
            out = sh(lab, node, f"pid=$(cat {pidfile}); echo $pid; cat /proc/$pid/comm; "
                                "readlink /proc/$pid/ns/net /proc/self/ns/net /proc/$pid/ns/mnt /proc/self/ns/mnt")
            pid, actual_comm, net, my_net, mnt, my_mnt = out.stdout.split()
            assert actual_comm == comm, (node, daemon)
            assert (net, mnt) == (my_net, my_mnt), (node, daemon)
            pids[(node, daemon)] = pid
    assert pids[("src", "cron")] != pids[("dst", "cron")]


def test_exec_returns_status_and_passes_stdio(lab: Lab) -> None:
    assert lab.exec("src", ["sh", "-c", "exit 7"]).returncode == 7
    piped = lab.exec("dst", ["sh", "-c", "cat; echo oops >&2"], input="piped\n")
    assert (piped.returncode, piped.stdout, piped.stderr) == (0, "piped\n", "oops\n")
    with pytest.raises(subprocess.CalledProcessError):
        lab.exec("src", ["false"], check=True)
    result = cli("exec", "src", "--", "sh", "-c", "read x; echo got $x on $(hostname); exit 5",
                 lab=lab, input="abc\n")
    assert (result.returncode, result.stdout) == (5, "got abc on src\n")


def test_exec_runs_with_the_nodes_paths_and_ovios_shell(lab: Lab, monkeypatch) -> None:
    monkeypatch.setenv("OVIOS_ETC_DIR", "/tmp/not-in-the-node")
    out = sh(lab, "src", "echo ${OVIOS_ETC_DIR-unset}; pwd; command -v zfs ovios-shell").stdout.split()
    assert out[:2] == ["unset", "/root"]
    assert out[2] == "/usr/sbin/zfs"
    # the node runs this checkout's script, whichever checkout the machine's link names now or
    # comes to name while the lab is up: the node's /usr/bin has its own link
    own_script = Path(sys.executable).parent / "ovios-shell"
    assert lab.exec("src", ["readlink", "/usr/bin/ovios-shell"]).stdout.strip() == str(own_script)
    assert lab.exec("src", ["cat", "/usr/bin/ovios-shell"]).stdout == own_script.read_text()
    probe = f"/usr/bin/ovios-lab-probe-{uuid.uuid4().hex[:8]}"  # what the node writes there stays in it
    sh(lab, "src", f"touch {probe}")
    assert not Path(probe).exists()
    sh(lab, "src", f"rm {probe}")
    # what an ssh session from the other node finds
    over_ssh = lab.exec("src", ["ssh", "-o", "BatchMode=yes", "dst",
                                "command -v zfs ovios-shell && test -x /usr/bin/ovios-shell"])
    assert over_ssh.returncode == 0, over_ssh.stderr
    assert over_ssh.stdout.split()[0] == "/usr/sbin/zfs"
    # as cron runs it: PATH=/usr/bin:/bin
    cron_like = lab.exec("dst", ["env", "-i", "PATH=/usr/bin:/bin", "HOME=/root", "ovios-shell", "help"])
    assert cron_like.returncode == 0, cron_like.stderr


def test_status_reports_nodes_daemons_and_pools(lab: Lab) -> None:
    status = lab.status()
    assert status.up and [n.name for n in status.nodes] == ["src", "dst"]
    assert all(n.healthy for n in status.nodes)
    result = cli("status", lab=lab)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"lab {lab.name}: up")
    for node in status.nodes:
        line = next(entry for entry in lines if entry.strip().startswith(node.name + " "))
        assert f"pid {node.pid}" in line and node.address in line
        assert "zfs-fuse:up sshd:up cron:up" in line
        assert "pools: " + ",".join(sorted(POOLS[node.name])) in line


def test_up_again_changes_nothing(lab: Lab) -> None:
    pids = [n.pid for n in lab.status().nodes]
    first, second = cli("up", lab=lab), cli("up", lab=lab)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert first.stdout == second.stdout
    assert "src  192.168.0.149" in first.stdout and "dst  192.168.0.111" in first.stdout
    assert [n.pid for n in lab.status().nodes] == pids


def test_shell_runs_ovios_shell_in_the_node(lab: Lab) -> None:
    env = dict(os.environ, OVIOS_LAB_NAME=lab.name, OVIOS_LAB_DIR=str(lab.directory),
               PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm", NO_COLOR="1")
    child = pexpect.spawn(CLI[0], [*CLI[1:], "shell", "dst"], env=env, encoding="utf-8", timeout=30)
    try:
        child.expect("ovios-shell ➤")
        child.sendline("shell hostname")
        child.expect("dst")
        child.expect("ovios-shell ➤")
        child.sendline("quit")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0


def test_cli_errors_are_one_line(lab_machine: None, tmp_path: Path) -> None:
    cases = [
        cli("exec", "nosuch", "--", "true"),
        cli("--name", "bad name!", "status"),
        cli("exec", "src", "--", "true", name="ovnotup", directory=tmp_path / "ovnotup"),
        cli("frobnicate"),
    ]
    for result in cases:
        assert result.returncode != 0
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr
    assert "not up" in cases[2].stderr


# -- reset ----------------------------------------------------------------------------

OBSERVE = r"""
zfs list -H -t all -o name | sort
zfs get -H -s local,received,temporary -o name,property,value all
for d in /data /esx /repl; do [ -d $d ] && (cd $d && find . | sort && find . -type f | sort | xargs -r sha256sum); done
ls -A /etc/ovios /var/log/ovios /run/ovios /etc/cron.d
crontab -l 2>&1
sha256sum /etc/ssh/sshd_config /root/.ssh/* /etc/hosts /etc/crontab
"""


def test_reset_restores_the_initial_state(fresh_lab: Lab) -> None:
    lab = fresh_lab
    initial = {node: sh(lab, node, OBSERVE).stdout for node in lab.nodes}
    sh(lab, "src", """set -e
        zfs snapshot data/smbvol@keep; zfs hold retadm data/smbvol@keep
        zfs create data/extra; zfs clone data/smbvol@keep data/clone
        zfs set readonly=on esx/lun01; zfs set ovios:task=1 data/smbvol
        echo changed > /data/smbvol/hello.txt; rm /data/smbvol/docs/notes.md; echo new > /esx/new
        echo db > /etc/ovios/ovios.db; echo log > /var/log/ovios/repl.log; echo 1 > /run/ovios/task.lock
        echo '*/5 * * * * /usr/bin/ovios-shell retadm inc data/smbvol' | crontab -
        echo '* * * * * root true' > /etc/cron.d/extra
        echo 'PermitRootLogin yes' >> /etc/ssh/sshd_config; echo '# x' >> /root/.ssh/known_hosts
        zfs snapshot data/smbvol@sent; zfs send data/smbvol@sent | ssh dst zfs receive repl/smbvol
        ssh dst zfs hold retadm repl/smbvol@sent
        """, check=True)
    stray = sh(lab, "dst", "setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $!").stdout.strip()
    stray_process = ProcessId.of(int(stray))
    assert stray_process is not None and stray_process.alive()
    changed = {node: sh(lab, node, OBSERVE).stdout for node in lab.nodes}
    assert all(changed[n] != initial[n] for n in lab.nodes)

    started = time.monotonic()
    actions = lab.reset()
    took = time.monotonic() - started
    assert actions
    assert {node: sh(lab, node, OBSERVE).stdout for node in lab.nodes} == initial
    assert not stray_process.alive()
    # mended in place, not rebuilt (how long it takes is printed, not asserted: a busy machine)
    assert not {"started the lab", "rebuilt the lab"} & set(actions), actions
    print(f"reset took {took:.1f} s")
    assert lab.reset() == []  # nothing left to do
    # the nodes still talk to each other after sshd got its configuration back
    assert lab.exec("src", ["ssh", "-o", "BatchMode=yes", "dst", "hostname"]).stdout == "dst\n"


def test_node_files_are_private(fresh_lab: Lab) -> None:
    lab = fresh_lab
    host_passwd = Path("/etc/passwd").read_bytes()
    sh(lab, "src", "echo src-only > /etc/ovios/marker; echo x > /var/log/ovios/marker; "
                   "echo y > /run/ovios/marker; useradd -M -s /usr/sbin/nologin labuser", check=True)
    for path in ("/etc/ovios/marker", "/var/log/ovios/marker", "/run/ovios/marker"):
        assert sh(lab, "src", f"test -f {path}").returncode == 0
        assert sh(lab, "dst", f"test -e {path}", check=False).returncode == 1
        assert not Path(path).exists()
    assert sh(lab, "src", "getent passwd labuser").returncode == 0
    assert sh(lab, "dst", "getent passwd labuser", check=False).returncode == 2
    assert Path("/etc/passwd").read_bytes() == host_passwd
    assert any("restored /etc" in action for action in lab.reset())
    assert sh(lab, "src", "getent passwd labuser", check=False).returncode == 2


# -- up and down leave the machine as they found it -------------------------------------

#: places where a careless lab would leave something on the machine
MAY_CREATE = ("/data", "/esx", "/repl", "/etc/ovios", "/var/log/ovios", "/run/ovios", "/root/.ssh",
              "/run/netns", "/zfs-kstat", "/run/zfs", "/run/sshd", "/run/zfs-fuse.pid", "/run/sshd.pid",
              "/run/crond.pid", "/var/mail/root")
LISTED = ("/", "/etc/zfs", "/var/lib/zfs", "/etc/ssh", "/etc/cron.d", "/var/spool/cron/crontabs", "/var/log", "/run")


def _own_tree() -> set[int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat[stat.rindex(")") + 2:].split()[1])
    mine, changed = {os.getpid()}, True
    while changed:
        more = {pid for pid, parent in parents.items() if parent in mine} - mine
        changed, mine = bool(more), mine | more
    return mine


def _processes() -> dict[ProcessId, str]:
    own = _own_tree()
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in own:
            continue
        process = ProcessId.of(int(entry))
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if process is not None:
            table[process] = cmdline.strip()
    return table


@dataclass
class MachineSnapshot:
    processes: dict[ProcessId, str]
    netns: str
    links: list[str]
    mountinfo: str
    files: dict[str, object]

    @classmethod
    def take(cls, lab_parent: Path, lab_name: str) -> MachineSnapshot:
        links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True)
        files: dict[str, object] = {p: os.path.lexists(p) for p in MAY_CREATE}
        files[f"/var/lib/ovios-lab/{lab_name}"] = os.path.lexists(f"/var/lib/ovios-lab/{lab_name}")
        for path in LISTED:
            files["ls " + path] = sorted(os.listdir(path))
        files["tree " + str(lab_parent)] = sorted(str(p.relative_to(lab_parent)) for p in lab_parent.rglob("*"))
        return cls(
            processes=_processes(),
            netns=subprocess.run(["ip", "netns", "list"], check=False, capture_output=True, text=True).stdout,
            links=sorted(line.split(":")[1].strip() for line in links.stdout.splitlines()),
            mountinfo=Path("/proc/self/mountinfo").read_text(),
            files=files,
        )


def _marked(name: str) -> list[int]:
    """Processes whose environment says they belong to lab ``name`` (any directory)."""
    marker = f"{ENV_MEMBER}={name}:".encode()
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(item.startswith(marker) for item in environ):
            found.append(int(entry))
    return found


def _assert_machine_unchanged(before: MachineSnapshot, after: MachineSnapshot,
                              lab_processes: set[ProcessId], name: str, lab_dir: Path) -> None:
    assert after.netns == before.netns
    assert after.links == before.links
    assert after.mountinfo == before.mountinfo
    assert after.files == before.files
    # other people's processes come and go; the lab's must all be gone, and none of the
    # processes that existed before may have been taken for the lab's
    assert lab_processes, "the lab had no processes?"
    assert not lab_processes & set(before.processes)
    assert [p for p in lab_processes if p.alive()] == []
    assert not _marked(name)
    new = {p: cmd for p, cmd in after.processes.items() if p not in before.processes and p.alive()}
    assert not [cmd for cmd in new.values() if str(lab_dir) in cmd or ("lab.holder" in cmd and name in cmd)]


@pytest.fixture
def own_lab(lab_machine: None, tmp_path: Path):
    """A lab of its own (unique name, own directory) for up/down tests."""
    name = "ovt" + uuid.uuid4().hex[:6]
    parent = tmp_path / "labs"
    parent.mkdir()
    yield name, parent / name
    Lab(name, parent / name).down()  # in case a test failed half-way


def test_up_and_down_leave_the_machine_as_it_was(own_lab) -> None:
    name, lab_dir = own_lab
    before = MachineSnapshot.take(lab_dir.parent, name)
    up = cli("up", name=name, directory=lab_dir)
    assert up.returncode == 0, up.stderr
    assert f"lab {name} is up" in up.stdout
    lab = Lab(name, lab_dir)
    assert lab.is_up()
    assert lab.exec("src", ["ssh", "-o", "BatchMode=yes", "dst", "hostname"]).stdout == "dst\n"
    lab_processes = {p for p in map(ProcessId.of, lab.processes()) if p is not None}
    assert _marked(name)  # the sweep after down below is not vacuous
    down = cli("down", name=name, directory=lab_dir)
    assert down.returncode == 0, down.stderr
    assert not lab_dir.exists()
    after = MachineSnapshot.take(lab_dir.parent, name)
    _assert_machine_unchanged(before, after, lab_processes, name, lab_dir)
    again = cli("down", name=name, directory=lab_dir)  # idempotent
    assert again.returncode == 0, again.stderr
    assert cli("status", name=name, directory=lab_dir).stdout.startswith(f"lab {name}: down")


def test_up_recovers_from_a_lab_whose_processes_were_killed(own_lab) -> None:
    name, lab_dir = own_lab
    lab = Lab(name, lab_dir).up()

    def processes() -> set[ProcessId]:
        return {p for p in map(ProcessId.of, lab.processes()) if p is not None}

    def kill_holders() -> None:
        state = json.loads((lab_dir / "state.json").read_text())
        holders = [state["switch"], *state["nodes"].values()]
        for holder in holders:
            os.kill(holder["process"][0], signal.SIGKILL)

    # 1. the holders die, the daemons live on in the orphaned namespaces
    before_crash = processes()
    kill_holders()
    time.sleep(0.2)
    assert not lab.is_up()
    assert cli("status", name=name, directory=lab_dir).returncode != 0
    orphans = {p for p in before_crash if p.alive()}
    assert len(orphans) >= 6  # zfs-fuse, sshd and cron in each node
    result = cli("up", name=name, directory=lab_dir)
    assert result.returncode == 0, result.stderr
    assert lab.is_up()
    assert not [p for p in orphans if p.alive()]

    # 2. the same, and the state file is lost too: found by the marker in their environment
    survivors = processes()
    kill_holders()
    (lab_dir / "state.json").unlink()
    (lab_dir / "junk").write_text("stale\n")
    result = cli("up", name=name, directory=lab_dir)
    assert result.returncode == 0, result.stderr
    assert lab.is_up() and not (lab_dir / "junk").exists()
    assert not [p for p in survivors if p.alive()]
    assert lab.exec("dst", ["ssh", "-o", "BatchMode=yes", "src", "zpool list -H -o name"]).stdout.split() \
        == ["data", "esx"]

    lab.down()
    assert not lab_dir.exists() and not _marked(name)

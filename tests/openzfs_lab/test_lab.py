"""Lab 2 itself: two QEMU VMs with Debian 12 and OpenZFS 2.x, real ssh, real cron.

These prove the lab the OpenZFS tests stand on: the VMs, their pools (with a real zvol),
strict passwordless ssh both ways, cron, the project installed from the working tree,
``exec``/``status``/``shell``, ``reset``, and the guide's first ``retadm init``.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest

from ovios_lab.openzfs_guest import ZVOL_SIZE, volume_digest
from ovios_lab.openzfs_lab import OpenZfsLab
from ovios_lab.spec import LUN01_FILES, SMBVOL_FILES, LabError

from replication_helpers import checksums, node_python, sh, shell, status, wait_for

REPO = Path(__file__).resolve().parents[2]
OTHER = {"src": "dst", "dst": "src"}
POOLS = {"src": {"data", "esx"}, "dst": {"repl"}}
DATASETS = {  # name -> (type, mountpoint, mounted)
    "src": {"data": ("filesystem", "/data", "yes"), "data/smbvol": ("filesystem", "/data/smbvol", "yes"),
            "esx": ("filesystem", "/esx", "yes"), "esx/lun01": ("volume", "-", "-")},
    "dst": {"repl": ("filesystem", "/repl", "yes")},
}
LUN01 = LUN01_FILES["lun01.img"]
_SCRIPT = Path(sys.executable).parent / "ovios-lab"
CLI = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "ovios_lab.cli"]


def cli(lab: OpenZfsLab, *args: str, input: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, OVIOS_OPENZFS_LAB_NAME=lab.name, OVIOS_OPENZFS_LAB_DIR=str(lab.directory))
    return subprocess.run(CLI + list(args), check=False, input=input, text=True, capture_output=True, env=env,
                          timeout=timeout, stdin=subprocess.DEVNULL if input is None else None)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- VMs, network, ZFS ----------------------------------------------------------------------


def test_both_vms_are_up_with_the_guide_addresses(openzfs_lab: OpenZfsLab) -> None:
    lab = openzfs_lab
    assert lab.is_up()
    assert lab.nodes == ("src", "dst")
    assert (lab.node_address("src"), lab.node_address("dst")) == ("192.168.0.149", "192.168.0.111")
    for node in lab.nodes:
        assert sh(lab, node, "hostname").stdout.strip() == node
        addresses = sh(lab, node, "ip -4 -o addr show").stdout
        assert f"{lab.node_address(node)}/24" in addresses
        assert "127.0.0.1/8" in addresses
        assert sh(lab, node, "getent hosts src dst").stdout.split() == ["192.168.0.149", "src", "192.168.0.111", "dst"]
        # a real kernel of its own, not the machine's
        assert sh(lab, node, "uname -r").stdout.strip() != os.uname().release
        # no way out: the only route is the VM-to-VM link and the host forward's subnet
        routes = sh(lab, node, "ip -4 route show").stdout
        assert "default" not in routes, routes


def test_zfs_is_openzfs_2(openzfs_lab: OpenZfsLab) -> None:
    for node in openzfs_lab.nodes:
        version = sh(openzfs_lab, node, "zfs version").stdout.split()
        assert re.fullmatch(r"zfs-2\.\d+\.\d+\S*", version[0]), version
        assert re.fullmatch(r"zfs-kmod-2\.\d+\.\d+\S*", version[1]), version


@pytest.mark.parametrize("node", ["src", "dst"])
def test_pools_and_datasets(fresh_openzfs_lab: OpenZfsLab, node: str) -> None:
    lab = fresh_openzfs_lab
    pools = sh(lab, node, "zpool list -H -o name,health").stdout.splitlines()
    assert {line.split("\t")[0] for line in pools} == POOLS[node]
    assert all(line.endswith("\tONLINE") for line in pools)
    listing = sh(lab, node, "zfs list -H -t all -o name,type,mountpoint,mounted").stdout
    assert {f[0]: tuple(f[1:]) for f in (line.split("\t") for line in listing.splitlines())} == DATASETS[node]


def test_sample_files_and_a_real_zvol_on_src(fresh_openzfs_lab: OpenZfsLab) -> None:
    lab = fresh_openzfs_lab
    assert checksums(lab, "src", "/data/smbvol") == {f"./{rel}": sha256(c) for rel, c in SMBVOL_FILES.items()}
    assert sh(lab, "src", "zfs get -H -p -o value volsize esx/lun01").stdout.strip() == str(ZVOL_SIZE)
    device = sh(lab, "src", "readlink -f /dev/zvol/esx/lun01; test -b /dev/zvol/esx/lun01 && echo block").stdout
    assert re.fullmatch(r"/dev/zd\d+\nblock\n", device), device
    head = sh(lab, "src", f"head -c {len(LUN01)} /dev/zvol/esx/lun01 | sha256sum").stdout.split()[0]
    assert head == sha256(LUN01)
    whole = sh(lab, "src", "sha256sum < /dev/zvol/esx/lun01").stdout.split()[0]
    assert whole == volume_digest(LUN01)
    assert sh(lab, "dst", "ls -A /repl").stdout == ""


# -- ssh, cron ------------------------------------------------------------------------------


@pytest.mark.parametrize("by", ["name", "address"])
@pytest.mark.parametrize("node", ["src", "dst"])
def test_passwordless_ssh_reaches_the_other_vm(openzfs_lab: OpenZfsLab, node: str, by: str) -> None:
    lab = openzfs_lab
    other = OTHER[node]
    target = other if by == "name" else lab.node_address(other)
    result = lab.exec(node, ["ssh", "-o", "BatchMode=yes", target, "hostname; zpool list -H -o name"], timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split()
    assert lines[0] == other
    assert set(lines[1:]) == POOLS[other]


def test_ssh_checks_host_keys_strictly(openzfs_lab: OpenZfsLab) -> None:
    lab = openzfs_lab
    ssh = ["ssh", "-o", "BatchMode=yes"]
    unknown = lab.exec("src", [*ssh, "127.0.0.1", "true"], timeout=60)
    assert unknown.returncode == 255 and "Host key verification failed" in unknown.stderr
    unlisted = lab.exec("dst", [*ssh, "-o", "UserKnownHostsFile=/dev/null", "src", "true"], timeout=60)
    assert unlisted.returncode == 255 and "Host key verification failed" in unlisted.stderr
    config = lab.exec("src", ["ssh", "-G", "dst"]).stdout
    assert re.search(r"^stricthostkeychecking (true|ask)$", config, re.M), config
    for node in lab.nodes:
        other = OTHER[node]
        for key in (other, lab.node_address(other)):
            assert lab.exec(node, ["ssh-keygen", "-F", key, "-f", "/root/.ssh/known_hosts"]).returncode == 0
        own_key = sh(lab, other, "cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub").stdout.strip()
        assert own_key in sh(lab, node, "cat /root/.ssh/known_hosts").stdout
    keys = {sh(lab, n, "cat /etc/ssh/ssh_host_ed25519_key.pub /root/.ssh/id_ed25519.pub").stdout for n in lab.nodes}
    assert len(keys) == 2


def test_cron_runs_jobs(fresh_openzfs_lab: OpenZfsLab) -> None:
    lab = fresh_openzfs_lab
    for node in lab.nodes:
        assert sh(lab, node, "systemctl is-active cron; systemctl is-enabled cron").stdout.split() == \
            ["active", "enabled"]
    sh(lab, "dst", "echo '* * * * * date > /run/ovios/cron-ran' | crontab -")
    deadline = time.monotonic() + 130
    while sh(lab, "dst", "test -s /run/ovios/cron-ran", check=False).returncode != 0:
        assert time.monotonic() < deadline, "cron did not run the job"
        time.sleep(2)


# -- exec, status, shell, the project in the VMs ---------------------------------------------------


def test_exec_returns_status_and_passes_stdio(openzfs_lab: OpenZfsLab) -> None:
    lab = openzfs_lab
    assert lab.exec("src", ["sh", "-c", "exit 7"]).returncode == 7
    piped = lab.exec("dst", ["sh", "-c", "cat; echo oops >&2"], input="piped\n")
    assert (piped.returncode, piped.stdout, piped.stderr) == (0, "piped\n", "oops\n")
    assert lab.exec("src", ["printf", "%s|", "two words", "it's", "$HOME"]).stdout == "two words|it's|$HOME|"
    with pytest.raises(subprocess.CalledProcessError):
        lab.exec("src", ["false"], check=True)
    result = cli(lab, "exec", "--openzfs", "src", "--", "sh", "-c", "read x; echo got $x on $(hostname); exit 5",
                 input="abc\n")
    assert (result.returncode, result.stdout) == (5, "got abc on src\n"), result.stderr
    after = cli(lab, "exec", "dst", "--openzfs", "--", "hostname")
    assert (after.returncode, after.stdout) == (0, "dst\n"), after.stderr


def test_the_project_in_the_vms_is_the_working_tree(openzfs_lab: OpenZfsLab) -> None:
    lab = openzfs_lab
    probe = ("import ovios_shell_retadm, os; print(os.path.dirname(ovios_shell_retadm.__file__))")
    # files edited after the lab started coming up (by someone working in this tree meanwhile)
    # may differ; everything older was copied in at boot (a fresh clone is minutes older)
    started = lab.state_path.stat().st_mtime - (lab.status().up_seconds or 0) - 1
    tree = {str(p.relative_to(REPO / "ovios_shell_retadm")): p for p in (REPO / "ovios_shell_retadm").rglob("*.py")}
    for node in lab.nodes:
        package = node_python(lab, node, probe).stdout.strip()
        assert package.startswith("/usr/local/lib/python3"), package
        listing = sh(lab, node, f"cd {package} && find . -name '*.py' -printf '%P\\0' | xargs -0 sha256sum").stdout
        inside = {path: digest for digest, path in (line.split(None, 1) for line in listing.splitlines())}
        same = [rel for rel, path in tree.items() if path.stat().st_mtime < started]
        assert len(same) > 10 and set(same) <= set(inside), node
        assert {rel: inside[rel] for rel in same} == {rel: sha256(tree[rel].read_bytes()) for rel in same}, node
        assert sh(lab, node, "command -v ovios-shell; readlink -f /usr/bin/ovios-shell; command -v pv").stdout.split() \
            == ["/usr/local/bin/ovios-shell", "/usr/local/bin/ovios-shell", "/usr/bin/pv"]
        options = lab.exec(node, ["ovios-shell", "options"])
        assert options.returncode == 0, options.stderr
        for name in ("ssh.allow.root", "cron.enable", "autosync.enable"):
            assert name in options.stdout
        cron_like = lab.exec(node, ["env", "-i", "PATH=/usr/bin:/bin", "HOME=/root", "ovios-shell", "help"])
        assert cron_like.returncode == 0, cron_like.stderr


def test_status_reports_vms_services_and_pools(openzfs_lab: OpenZfsLab) -> None:
    lab = openzfs_lab
    status_ = lab.status()
    assert status_.up and [n.name for n in status_.nodes] == ["src", "dst"]
    assert all(n.healthy and n.zfs_version.startswith("zfs-2.") for n in status_.nodes)
    result = cli(lab, "status", "--openzfs")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"lab {lab.name} (openzfs): up")
    for node in status_.nodes:
        line = next(entry for entry in lines if entry.strip().startswith(node.name + " "))
        assert f"pid {node.pid}" in line and node.address in line
        assert "sshd:up cron:up zfs:up" in line
        assert "pools: " + ",".join(sorted(POOLS[node.name])) in line
    memory = lab.memory()
    assert all(rss is not None and 0 < rss < 3 * 2 ** 30 for rss in memory.values()), memory


def test_up_again_changes_nothing(openzfs_lab: OpenZfsLab) -> None:
    lab = openzfs_lab
    pids = [n.pid for n in lab.status().nodes]
    result = cli(lab, "up", "--openzfs")  # the same VMs, not booted again (pids below)
    assert result.returncode == 0, result.stderr
    assert "src  192.168.0.149" in result.stdout and "dst  192.168.0.111" in result.stdout
    assert [n.pid for n in lab.status().nodes] == pids


def test_shell_runs_ovios_shell_in_the_vm(openzfs_lab: OpenZfsLab) -> None:
    lab = openzfs_lab
    env = dict(os.environ, OVIOS_OPENZFS_LAB_NAME=lab.name, OVIOS_OPENZFS_LAB_DIR=str(lab.directory),
               PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm", NO_COLOR="1")
    child = pexpect.spawn(CLI[0], [*CLI[1:], "shell", "--openzfs", "dst"], env=env, encoding="utf-8", timeout=90)
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


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    lab = OpenZfsLab("ovznotup", tmp_path / "ovznotup")
    cases = [cli(lab, "exec", "--openzfs", "src", "--", "true"), cli(lab, "image"),
             cli(lab, "exec", "--openzfs", "nosuch", "--", "true")]
    for result in cases:
        assert result.returncode != 0
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr
    assert "not up" in cases[0].stderr
    assert cli(lab, "status", "--openzfs").returncode == 3


# -- reset ------------------------------------------------------------------------------------

OBSERVE = r"""
zpool list -H -o name,health | sort
zfs list -H -t all -o name,type | sort
zfs get -H -s local,received,temporary -o name,property,value all | sort
zfs get -H -o name,value receive_resume_token -t filesystem,volume | sort
for d in /data /esx /repl; do [ -d $d ] && (cd $d && find . | sort && find . -type f | sort | xargs -r sha256sum); done
[ -b /dev/zvol/esx/lun01 ] && sha256sum < /dev/zvol/esx/lun01
ls -A /etc/ovios /var/log/ovios /run/ovios /etc/cron.d
crontab -l 2>&1
systemctl is-active ssh cron
sha256sum /etc/ssh/sshd_config /root/.ssh/* /etc/hosts /etc/crontab /etc/passwd
"""


def test_reset_restores_the_initial_state(fresh_openzfs_lab: OpenZfsLab) -> None:
    lab = fresh_openzfs_lab
    initial = {node: sh(lab, node, OBSERVE).stdout for node in lab.nodes}
    sh(lab, "src", """set -e
        zfs snapshot data/smbvol@keep; zfs hold retadm data/smbvol@keep; zfs bookmark data/smbvol@keep data/smbvol#mark
        zfs create data/extra; zfs clone data/smbvol@keep data/clone; zfs create -V 8M esx/lun02
        zfs snapshot esx/lun01@before
        printf 'overwritten' | dd of=/dev/zvol/esx/lun01 bs=1 seek=4096 conv=notrunc,fsync status=none
        zfs set readonly=on esx/lun01; zfs set ovios:task=1 data/smbvol; zfs set compression=off data/smbvol
        echo changed > /data/smbvol/hello.txt; rm /data/smbvol/docs/notes.md; echo new > /esx/new
        echo db > /etc/ovios/ovios.db; echo log > /var/log/ovios/repl.log; echo 1 > /run/ovios/task.lock
        echo '*/5 * * * * /usr/bin/ovios-shell retadm inc data/smbvol' | crontab -
        echo '* * * * * root true' > /etc/cron.d/extra
        echo 'PermitRootLogin yes' >> /etc/ssh/sshd_config; echo '# x' >> /root/.ssh/known_hosts
        useradd -M -s /usr/sbin/nologin labuser
        zfs snapshot data/smbvol@sent; zfs send data/smbvol@sent | ssh dst zfs receive repl/smbvol
        ssh dst zfs hold retadm repl/smbvol@sent
        """, check=True)
    # an interrupted resumable receive leaves a token on dst
    sh(lab, "src", "zfs send data/smbvol@keep | head -c 40000 | ssh dst zfs receive -s repl/partial; true")
    assert sh(lab, "dst", "zfs get -H -o value receive_resume_token repl/partial").stdout.strip() not in ("", "-")
    sh(lab, "dst", "systemctl stop cron")
    stray = sh(lab, "dst", "setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $!").stdout.strip()
    assert sh(lab, "dst", f"test -d /proc/{stray}", check=False).returncode == 0
    changed = {node: sh(lab, node, OBSERVE).stdout for node in lab.nodes}
    assert all(changed[n] != initial[n] for n in lab.nodes)

    started = time.monotonic()
    actions = lab.reset()
    took = time.monotonic() - started
    assert actions
    after = {node: sh(lab, node, OBSERVE).stdout for node in lab.nodes}
    for node in lab.nodes:
        assert after[node] == initial[node], node
    assert sh(lab, "dst", f"test -d /proc/{stray}", check=False).returncode == 1
    assert sh(lab, "src", "getent passwd labuser", check=False).returncode == 2
    # mended in place, not rebuilt (how long it takes is printed, not asserted: a busy machine)
    assert not {"started the lab", "rebuilt the lab"} & set(actions), actions
    print(f"reset took {took:.1f} s")
    assert lab.reset() == []  # nothing left to do
    assert lab.exec("src", ["ssh", "-o", "BatchMode=yes", "dst", "hostname"]).stdout == "dst\n"


# -- the product on OpenZFS -------------------------------------------------------------------------


def test_retadm_init_replicates_data_smbvol(fresh_openzfs_lab: OpenZfsLab) -> None:
    lab = fresh_openzfs_lab
    result = shell(lab, "src", "retadm", "init", "data/smbvol", "--dest", "dst", "--remote-pool", "repl",
                   "--properties", "no")
    assert result.returncode == 0, result.stderr
    assert "Full replication started in background" in result.stdout
    row = wait_for(lab, "data/smbvol", timeout=240)
    assert row["status"] == "idle", row
    assert checksums(lab, "dst", "/repl/smbvol") == checksums(lab, "src", "/data/smbvol")
    assert sh(lab, "dst", "zfs get -H -o value readonly repl/smbvol").stdout.strip() == "on"
    assert status(lab)["data/smbvol"]["status"] == "idle"
    # and an incremental on top, as cron would run it
    sh(lab, "src", "echo more > /data/smbvol/new.txt; rm /data/smbvol/hello.txt")
    inc = lab.exec("src", ["env", "-i", "PATH=/usr/bin:/bin", "HOME=/root", "/usr/bin/ovios-shell", "retadm", "inc",
                           "data/smbvol"], timeout=300)
    assert (inc.returncode, inc.stdout, inc.stderr) == (0, "", "")
    assert checksums(lab, "dst", "/repl/smbvol") == checksums(lab, "src", "/data/smbvol")
    assert "./new.txt" in checksums(lab, "dst", "/repl/smbvol")


# -- recovery and teardown (last: they restart and stop the session's lab) -------------------------


def _marked(lab: OpenZfsLab) -> list[int]:
    marker = f"OVIOS_LAB_MEMBER={lab.member_tag}".encode()
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                found.append(int(entry))
        except OSError:
            continue
    return found


@pytest.mark.takes_lab_down
def test_up_recovers_from_a_dead_vm(openzfs_lab: OpenZfsLab) -> None:
    lab = openzfs_lab
    old = set(lab.processes())
    src_pid = next(n.pid for n in lab.status().nodes if n.name == "src")
    assert src_pid is not None, "src's VM is not running"
    os.kill(src_pid, 9)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{src_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not lab.is_up()
    assert cli(lab, "status", "--openzfs").returncode == 3
    with pytest.raises(LabError, match="not up"):
        lab.exec("src", ["true"])
    result = cli(lab, "up", "--openzfs", timeout=1200)
    assert result.returncode == 0, result.stderr
    assert lab.is_up()
    assert not old & set(lab.processes())  # the surviving VM was replaced too: a clean start
    assert sh(lab, "src", "zpool list -H -o name").stdout.split() == ["data", "esx"]


@pytest.mark.takes_lab_down
def test_down_leaves_nothing_behind(openzfs_lab: OpenZfsLab) -> None:
    lab = openzfs_lab
    image = lab.status().image
    processes = lab.processes()
    assert len(processes) >= 4  # two VMs, two ssh masters
    result = cli(lab, "down", "--openzfs")  # (cli's timeout only catches a hang)
    assert result.returncode == 0, result.stderr
    assert not lab.directory.exists()
    assert not _marked(lab)
    assert not [p for p in processes if Path(f"/proc/{p}").exists()
                and "zombie" not in Path(f"/proc/{p}/status").read_text().lower()]
    assert Path(image, "base.qcow2").is_file()  # the image cache stays
    assert cli(lab, "down", "--openzfs").returncode == 0  # idempotent
    assert cli(lab, "status", "--openzfs").stdout.startswith(f"lab {lab.name} (openzfs): down")
    if os.environ.get("OVIOS_LAB_KEEP") == "1":
        lab.up()

"""What runs inside Lab 2's VMs: the seed (boot-time configuration) and the pool scripts.

Pure text generation, no I/O.  Every VM boots the same image (see :mod:`.openzfs_image`);
``ovios-lab-boot.service`` mounts the VM's *seed* directory (virtio-9p, read-only) and
runs its ``boot.sh`` (``scripts/boot.sh``, see :func:`boot_files`): hostname, ``/etc/hosts``,
static addresses (systemd-networkd), ssh host and root keys, the lab's own control sshd, and
the project from the working tree (a second read-only 9p share), installed as pip would but
without running pip (see :func:`project_files`).  Then the host creates the pools over ssh
with :func:`setup_script`, and :func:`reset_script` brings a VM back to that state between
tests.  The scripts are files in ``scripts/``; the node's values reach them as ``node.env``
(:func:`node_env`), shell variable assignments the seed holds and the host sends ahead of the
scripts it runs as ``bash -c`` text, so the guest always runs the scripts of the code under test.
"""

from __future__ import annotations

import configparser
import hashlib

from .shell_scripts import assignments, script
from .spec import VDEV_SIZE, NodeSpec

SEED_MOUNT = "/run/ovios-lab/seed"
REPO_MOUNT = "/run/ovios-lab/repo"
STATUS_FILE = "/run/ovios-lab/boot.status"
STATE_DIR = "/var/lib/ovios-lab"  # inside the VM: pristine copies, zfs baseline
LAB_SSH_PORT = 2222  # the lab's control sshd (the product's sshd keeps port 22)
MGMT_ADDRESS = "10.0.2.15"  # user-mode networking's guest address
PREFIX_LEN = 24
MIB = 1024 * 1024
POOL_DISK_SIZE = VDEV_SIZE  # $OVIOS_LAB_VDEV_SIZE as in Lab 1; 256 MiB unless set
ZVOL_SIZE = 64 * MIB

#: files and directories whose boot-time state reset restores (see scripts/signatures.sh)
PRISTINE_PATHS = ("/etc/ssh", "/root/.ssh", "/etc/hosts", "/etc/hostname", "/etc/crontab", "/etc/cron.d",
                  "/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow", "/etc/subuid", "/etc/subgid",
                  "/etc/environment", "/etc/default/cron", "/etc/samba/smb.conf", "/etc/exports")
#: emptied by reset (the product's state, as in Lab 1)
WIPED = ("/etc/ovios", "/var/log/ovios", "/run/ovios")

SSHD_DROPIN = "# ovios lab node: its own host key only\nHostKey /etc/ssh/ssh_host_ed25519_key\n"
CRONTAB = """\
# /etc/crontab of an ovios lab node
SHELL=/bin/sh
PATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin
"""

LAB_SSHD_CONFIG = f"""\
# ovios-lab: the machine's way into this VM (not the product's sshd, which keeps port 22)
Port {LAB_SSH_PORT}
HostKey /etc/ovios-lab/ssh_host_ed25519_key
AuthorizedKeysFile /etc/ovios-lab/authorized_keys
PidFile /run/ovios-lab/sshd.pid
PermitRootLogin prohibit-password
AllowUsers root
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
PrintMotd no
PrintLastLog no
SetEnv LANG=C.UTF-8
ClientAliveInterval 30
ClientAliveCountMax 10
MaxSessions 64
Subsystem sftp internal-sftp
"""


def mac(kind: int, index: int) -> str:
    """Stable MAC addresses: kind 0x0a is the management NIC, 0x0b the VM-to-VM link."""
    return f"52:54:00:{kind:02x}:00:{index:02x}"


def hosts_file(specs: tuple[NodeSpec, ...]) -> str:
    hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    return hosts + "".join(f"{s.address}\t{s.name}\n" for s in specs)


def network_files(spec: NodeSpec, index: int) -> dict[str, str]:
    common = "[Link]\nRequiredForOnline=no\n\n[Network]\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n"
    return {
        "10-ovios-mgmt.network": f"[Match]\nMACAddress={mac(0x0a, index)}\n\n{common}"
                                 f"Address={MGMT_ADDRESS}/24\n",
        "20-ovios-link.network": f"[Match]\nMACAddress={mac(0x0b, index)}\n\n{common}"
                                 f"Address={spec.address}/{PREFIX_LEN}\n",
    }


def node_env(spec: NodeSpec, *, keep_baseline: bool = False) -> str:
    """``node.env``: the node's values for the scripts.

    ``keep_baseline`` (a power-on): the boot keeps the reset baseline of the first boot.
    """
    volumes = _volumes(spec)
    return assignments({
        "NODE_NAME": spec.name, "SEED": SEED_MOUNT, "REPO_MOUNT": REPO_MOUNT, "STATUS_FILE": STATUS_FILE,
        "STATE": STATE_DIR, "PRISTINE_PATHS": " ".join(p.lstrip("/") for p in PRISTINE_PATHS),
        "WIPED_DIRS": " ".join(WIPED), "KEEP_BASELINE": "yes" if keep_baseline else "no",
        "POOLS": " ".join(p.name for p in spec.pools), "DATASETS": " ".join(spec.dataset_names),
        "FILESETS": " ".join(d.name for p in spec.pools for d in p.datasets if d.name not in volumes),
        "VOLUMES": " ".join(volumes), "ZVOL_SIZE_MIB": ZVOL_SIZE // MIB,
    })


def boot_files(spec: NodeSpec, *, keep_baseline: bool = False) -> dict[str, str]:
    """The seed's boot script, what it sources, and the node's values (see :func:`node_env`)."""
    return {"boot.sh": script("boot.sh"), "signatures.sh": script("signatures.sh"),
            "node.env": node_env(spec, keep_baseline=keep_baseline)}


# -- pools: setup and reset ---------------------------------------------------------------


def _volumes(spec: NodeSpec) -> dict[str, bytes]:
    """Datasets that are zvols in this lab (zfs-fuse has none, so Lab 1 makes them filesystems)."""
    return {d.name: d.files["lun01.img"] for p in spec.pools for d in p.datasets if "lun01.img" in d.files}


def volume_digest(data: bytes, size: int = ZVOL_SIZE) -> str:
    digest = hashlib.sha256(data)
    digest.update(bytes(size - len(data)))
    return digest.hexdigest()


def setup_script(spec: NodeSpec) -> str:
    """Create the node's pools and datasets (first boot of a lab), then record the baseline."""
    return node_env(spec) + script("library.sh") + script("setup.sh")


def reset_script(spec: NodeSpec) -> str:
    """Back to the state after setup; prints one ``ACTION ...`` line per thing it had to do."""
    return node_env(spec) + script("signatures.sh") + script("library.sh") + script("reset.sh")


def power_on_script(spec: NodeSpec) -> str:
    """After a power-on: import the node's pools, mount everything, check sshd and cron."""
    return node_env(spec) + script("power-on.sh")


# -- the project's metadata, as pip would install it -----------------------------------------


def project_files(setup_cfg_text: str) -> dict[str, str]:
    """dist-info files and console scripts for the package, from the working tree's setup.cfg.

    Keys are paths relative to the seed's ``project`` directory.
    """
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(setup_cfg_text)
    name = parser.get("metadata", "name")
    version = parser.get("metadata", "version")
    dist = f"{name.replace('-', '_')}-{version}.dist-info"
    requires = [line.strip() for line in parser.get("options", "install_requires", fallback="").splitlines()
                if line.strip()]
    metadata = (f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                f"Summary: {parser.get('metadata', 'description', fallback='')}\n"
                f"Requires-Python: {parser.get('options', 'python_requires', fallback='>=3')}\n"
                + "".join(f"Requires-Dist: {r}\n" for r in requires))
    groups = parser["options.entry_points"] if parser.has_section("options.entry_points") else {}
    entry_points = ""
    scripts: dict[str, str] = {}
    for group, text in groups.items():
        entries = [line.strip() for line in text.splitlines() if line.strip()]
        entry_points += f"[{group}]\n" + "".join(f"{e}\n" for e in entries) + "\n"
        if group == "console_scripts":
            for entry in entries:
                script, target = (part.strip() for part in entry.split("=", 1))
                module, func = target.split(":", 1)
                scripts[f"bin/{script}"] = (
                    "#!/usr/bin/python3\n# -*- coding: utf-8 -*-\nimport re\nimport sys\n"
                    f"from {module} import {func}\n"
                    "if __name__ == '__main__':\n"
                    "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
                    f"    sys.exit({func}())\n")
    files = {f"{dist}/METADATA": metadata, f"{dist}/entry_points.txt": entry_points,
             f"{dist}/top_level.txt": "ovios_shell_retadm\n", f"{dist}/INSTALLER": "ovios-lab\n",
             f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: ovios-lab\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    files.update(scripts)
    return files

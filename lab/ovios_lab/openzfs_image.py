"""Lab 2's disk image: Debian 12 with OpenZFS 2.x from bookworm-backports, for QEMU.

``ovios-lab image --openzfs`` (and ``ovios-lab up --openzfs`` when the image is
missing) builds it from Debian's mirrors and PyPI only:

1. ``debootstrap --variant=minbase bookworm`` into a scratch tree;
2. in a chroot (inside a private mount namespace, so no mount outlives the build):
   the guest packages, ``linux-image-amd64`` + headers, then ``-t bookworm-backports
   zfs-dkms zfsutils-linux`` (DKMS builds the modules for the guest kernel), then the
   compiler, headers and DKMS are purged and the built modules kept (``zfsutils-linux``
   only *recommends* ``zfs-dkms``); the project's Python dependencies are installed
   from wheels fetched from PyPI on the machine (the guest has no network), and so is
   ``zfs-autobackup``; ``sanoid`` (syncoid) comes from Debian.  These two are the peers
   ``benchmarks/bench_peers.py`` compares retadm with: nothing else uses them;
3. the kernel and initrd are copied out (the lab boots them directly), the tree goes
   into an ext4 file (``mkfs.ext4 -d``, no loop mount) and that into ``base.qcow2``.

The result lives in ``/var/cache/ovios-lab/openzfs-<hash>/`` (``$OVIOS_LAB_IMAGE_CACHE``
moves the base), where ``<hash>`` is taken over the recipe below: change the recipe
and the next ``up`` builds a new image.  The image holds no lab-specific data: every
VM gets its hostname, addresses, keys and the project itself at boot from its seed
directory (see :mod:`.openzfs_lab`), through the one unit installed here,
``ovios-lab-boot.service``.
"""

from __future__ import annotations

import configparser
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .shell_scripts import assignments, script
from .spec import LabError

CACHE_ENV = "OVIOS_LAB_IMAGE_CACHE"
MIRROR_ENV = "OVIOS_LAB_DEBIAN_MIRROR"
DEFAULT_CACHE = Path("/var/cache/ovios-lab")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
PYPI_INDEX = "https://pypi.org/simple"
REPO_ROOT = Path(__file__).resolve().parents[2]

#: Debian packages the machine needs for Lab 2 (image build and VMs); the Makefile's list
HOST_PACKAGES: tuple[str, ...] = (
    "qemu-system-x86", "qemu-utils", "debootstrap", "e2fsprogs", "openssh-client", "util-linux",
)
#: programs the lab needs on the machine -> the package that has them
HOST_PROGRAMS: dict[str, str] = {
    "qemu-system-x86_64": "qemu-system-x86", "qemu-img": "qemu-utils", "debootstrap": "debootstrap",
    "mkfs.ext4": "e2fsprogs", "ssh": "openssh-client", "ssh-keygen": "openssh-client",
    "unshare": "util-linux", "chroot": "coreutils",
}

# -- the recipe (everything below goes into the image's hash) ------------------------------

RECIPE_VERSION = 2
SUITE = "bookworm"
COMPONENTS = ("main", "contrib")
#: installed from bookworm in the chroot (--no-install-recommends)
GUEST_PACKAGES: tuple[str, ...] = (
    "systemd-sysv", "udev", "kmod", "iproute2", "procps", "openssh-server", "openssh-client", "cron",
    "python3", "python3-pip", "python3-setuptools", "python3-wheel", "pv", "nano",
    # the services ``restore`` configures (LIO iSCSI targets, Samba, NFS) and their test clients;
    # targetcli asks the system bus for tcmu-runner's backstores and fails without one (dbus.socket:
    # the bus starts on first use)
    "targetcli-fb", "samba", "smbclient", "nfs-kernel-server", "open-iscsi", "dbus",
)
KERNEL_PACKAGES: tuple[str, ...] = ("linux-image-amd64", "linux-headers-amd64")
ZFS_PACKAGES: tuple[str, ...] = ("zfs-dkms", "zfsutils-linux")  # from bookworm-backports
#: the replication tools ``benchmarks/bench_peers.py`` measures retadm against, never used by
#: the product or its tests.  ``sanoid`` (it ships ``syncoid``; its Depends bring pv, lzop and
#: mbuffer, which syncoid uses by default) is installed after ZFS_PACKAGES: it depends on
#: ``zfsutils-linux | zfs-fuse``, which would otherwise pull bookworm's older OpenZFS in first
PEER_PACKAGES: tuple[str, ...] = ("sanoid",)
#: from PyPI wheels like the project's dependencies, pinned so that the image (and the figures
#: in the README) stay the same until the recipe changes
PEER_REQUIREMENTS: tuple[str, ...] = ("zfs-autobackup==3.3",)
#: units the VMs do not need (consoles, maintenance timers, ZFS import/mount at boot: the lab
#: creates its pools after boot; pseudo filesystems and modules nothing here uses).  Every
#: unit costs seconds under emulation.
MASKED_UNITS: tuple[str, ...] = (
    "getty@tty1.service", "serial-getty@ttyS0.service", "getty-static.service", "apt-daily.timer",
    "apt-daily-upgrade.timer", "e2scrub_all.timer", "e2scrub_reap.service", "fstrim.timer",
    "dpkg-db-backup.timer", "systemd-tmpfiles-clean.timer", "systemd-networkd-wait-online.service",
    "systemd-udev-settle.service", "systemd-network-generator.service", "systemd-binfmt.service",
    "proc-sys-fs-binfmt_misc.automount", "proc-sys-fs-binfmt_misc.mount", "systemd-journal-flush.service",
    "systemd-update-utmp.service", "systemd-update-utmp-runlevel.service", "systemd-sysusers.service",
    "systemd-remount-fs.service", "systemd-pstore.service", "kmod-static-nodes.service",
    "modprobe@configfs.service", "modprobe@dm_mod.service", "modprobe@drm.service",
    "modprobe@efi_pstore.service", "modprobe@fuse.service", "modprobe@loop.service",
    "dev-hugepages.mount", "dev-mqueue.mount", "sys-kernel-debug.mount", "sys-kernel-tracing.mount",
    "sys-kernel-config.mount", "sys-fs-fuse-connections.mount",
    "zfs-zed.service", "zfs-import-cache.service", "zfs-import-scan.service", "zfs-mount.service",
    "zfs-share.service", "zfs-volume-wait.service",
)
#: units installed enabled that the VMs must not start at boot (seconds each under emulation)
#: but that ``restore`` or a test may start: disabled, not masked
DISABLED_UNITS: tuple[str, ...] = (
    "smbd.service", "nmbd.service", "samba-ad-dc.service", "nfs-server.service", "nfs-client.target", "rpcbind.service",
    "rpcbind.socket", "iscsid.socket", "open-iscsi.service", "rtslib-fb-targetctl.service", "targetclid.socket",
)
#: kernel module directories no lab VM loads (keeps the image small)
DROPPED_MODULE_DIRS: tuple[str, ...] = (
    "kernel/sound", "kernel/drivers/gpu", "kernel/drivers/media", "kernel/drivers/net/wireless",
    "kernel/drivers/infiniband", "kernel/drivers/staging", "kernel/drivers/bluetooth", "kernel/net/bluetooth",
    "kernel/drivers/isdn", "kernel/drivers/iio", "kernel/drivers/hid", "kernel/drivers/input/joystick",
    "kernel/drivers/input/touchscreen", "kernel/drivers/usb/gadget", "kernel/drivers/net/ethernet",
    "kernel/net/mac80211", "kernel/net/wireless",
)

BOOT_UNIT = """\
[Unit]
Description=ovios-lab: configure this VM from its seed (hostname, network, keys, the project)
After=basic.target
Wants=network-pre.target
Before=network-pre.target ssh.service cron.service

[Service]
Type=oneshot
RemainAfterExit=yes
TimeoutStartSec=900
StandardOutput=journal+console
StandardError=journal+console
ExecStart=/bin/sh -ec 'mkdir -p /run/ovios-lab/seed; modprobe -a 9p 9pnet_virtio; \
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 seed /run/ovios-lab/seed; \
exec /bin/sh /run/ovios-lab/seed/boot.sh'

[Install]
WantedBy=multi-user.target
"""

#: files written into the tree before the chroot script runs: path -> (mode, text)
IMAGE_FILES: dict[str, tuple[int, str]] = {
    "/etc/fstab": (0o644, "/dev/vda / ext4 rw,noatime,errors=remount-ro 0 0\n"
                          "tmpfs /tmp tmpfs rw,nosuid,nodev,size=256m 0 0\n"),
    "/etc/hostname": (0o644, "ovios-lab\n"),
    # a fixed id keeps systemd out of "first boot"; each VM gets its own on the kernel command line
    "/etc/machine-id": (0o444, "0f0e0d0c0b0a09080706050403020100\n"),
    "/etc/default/locale": (0o644, "LANG=C.UTF-8\n"),
    # a small initramfs: the VMs boot from a virtio disk with ext4 and need nothing else
    "/etc/initramfs-tools/conf.d/ovios-lab.conf": (0o644, "MODULES=list\n"),
    "/etc/initramfs-tools/modules": (0o644, "virtio_pci\nvirtio_blk\ncrc32c_generic\next4\n"),
    # the ARC stays small: each VM has ~1.5 GiB and the machine runs two
    "/etc/modprobe.d/ovios-lab-zfs.conf": (0o644, "options zfs zfs_arc_max=201326592\n"),
    "/etc/systemd/journald.conf.d/ovios-lab.conf": (0o644, "[Journal]\nStorage=volatile\nRuntimeMaxUse=32M\n"),
    "/etc/systemd/system/ovios-lab-boot.service": (0o644, BOOT_UNIT),
    "/usr/sbin/policy-rc.d": (0o755, "#!/bin/sh\nexit 101\n"),  # removed again at the end
    "/etc/apt/sources.list": (0o644, ""),  # filled in by build() (mirror is not part of the recipe)
}

#: builds the tree in the chroot; reads image.env (see :func:`_image_env`) from beside it
CHROOT_SCRIPT = "image-chroot.sh"


def requirements(setup_cfg: Path = REPO_ROOT / "setup.cfg") -> tuple[str, ...]:
    """The project's Python dependencies (setup.cfg's install_requires)."""
    parser = configparser.ConfigParser()
    if not parser.read(setup_cfg):
        raise LabError(f"cannot read {setup_cfg}")
    text = parser.get("options", "install_requires", fallback="")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def recipe() -> dict:
    return {
        "version": RECIPE_VERSION, "suite": SUITE, "components": list(COMPONENTS),
        "guest_packages": list(GUEST_PACKAGES), "kernel_packages": list(KERNEL_PACKAGES),
        "zfs_packages": list(ZFS_PACKAGES), "peer_packages": list(PEER_PACKAGES),
        "peer_requirements": list(PEER_REQUIREMENTS), "masked": list(MASKED_UNITS),
        "disabled": list(DISABLED_UNITS),
        "dropped_modules": list(DROPPED_MODULE_DIRS), "requirements": list(requirements()),
        "files": {k: [v[0], v[1]] for k, v in sorted(IMAGE_FILES.items())}, "script": script(CHROOT_SCRIPT),
    }


def recipe_hash() -> str:
    return hashlib.sha256(json.dumps(recipe(), sort_keys=True).encode()).hexdigest()[:12]


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)


@dataclass(frozen=True)
class Image:
    directory: Path

    @property
    def kernel(self) -> Path:
        return self.directory / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.directory / "initrd.img"

    @property
    def disk(self) -> Path:
        return self.directory / "base.qcow2"

    @property
    def info_path(self) -> Path:
        return self.directory / "image.json"

    def complete(self) -> bool:
        return all(p.is_file() for p in (self.kernel, self.initrd, self.disk, self.info_path))

    def info(self) -> dict:
        try:
            return json.loads(self.info_path.read_text())
        except (OSError, ValueError):
            return {}


def current_image() -> Image:
    return Image(cache_root() / f"openzfs-{recipe_hash()}")


# -- machine tools ---------------------------------------------------------------------


def missing_host_packages() -> list[str]:
    path = os.environ.get("PATH", "") + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    return sorted({pkg for prog, pkg in HOST_PROGRAMS.items() if shutil.which(prog, path=path) is None})


def ensure_host_packages(log: Callable[[str], None] = print) -> None:
    """apt-get install what the lab needs on the machine and is missing."""
    missing = missing_host_packages()
    if not missing:
        return
    if os.geteuid() != 0:
        raise LabError("missing Debian packages (need root to install): " + " ".join(missing))
    log("installing Debian packages: " + " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for argv in (["apt-get", "update", "-qq"],
                 ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]):
        result = subprocess.run(argv, check=False, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:]
            raise LabError(f"{' '.join(argv[:2])} failed: {tail[0] if tail else result.returncode}")
    still = missing_host_packages()
    if still:
        raise LabError("still missing after apt-get install: " + " ".join(still))


# -- building ----------------------------------------------------------------------------


def _sources(mirror: str) -> str:
    comps = " ".join(COMPONENTS)
    return (f"deb {mirror} {SUITE} {comps}\n"
            f"deb {mirror} {SUITE}-updates {comps}\n"
            f"deb {SECURITY_MIRROR} {SUITE}-security {comps}\n"
            f"deb {mirror} {SUITE}-backports {comps}\n")


def _image_env() -> str:
    """The chroot script's values (bash arrays)."""
    return assignments({
        "GUEST_PACKAGES": GUEST_PACKAGES, "KERNEL_PACKAGES": KERNEL_PACKAGES, "ZFS_PACKAGES": ZFS_PACKAGES,
        "REQUIREMENTS": requirements(), "PEER_PACKAGES": PEER_PACKAGES, "PEER_REQUIREMENTS": PEER_REQUIREMENTS,
        "MASKED_UNITS": MASKED_UNITS, "DISABLED_UNITS": DISABLED_UNITS,
        "DROPPED_MODULE_DIRS": DROPPED_MODULE_DIRS,
    })


def _pip_env() -> tuple[dict[str, str], list[str]]:
    """pip on the machine, talking to PyPI only (no local indexes, constraints or find-links)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    extra = []
    for var in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        if os.environ.get(var) and os.path.isfile(os.environ[var]):
            extra = ["--cert", os.environ[var]]
            break
    return env, extra


class _Builder:
    def __init__(self, image: Image, log: Callable[[str], None]):
        self.image = image
        self.log = log
        self.work = image.directory.with_name(image.directory.name + ".build")
        self.root = self.work / "root"
        self.log_path = self.work / "build.log"

    def run(self, argv: list[str], what: str, env: dict[str, str] | None = None, timeout: float = 3600) -> None:
        started = time.monotonic()
        with open(self.log_path, "ab") as out:
            out.write(f"\n### {what}: {' '.join(argv)}\n".encode())
            out.flush()
            code: int | str
            try:
                code = subprocess.run(argv, check=False, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                      env=env, timeout=timeout, cwd="/").returncode
            except subprocess.TimeoutExpired:
                code = "timeout"
        self.log(f"  {what}: {time.monotonic() - started:.0f} s")
        if code != 0:
            tail = self.log_path.read_text(errors="replace").strip().splitlines()[-8:]
            raise LabError(f"image build failed at '{what}' (exit {code}); see {self.log_path}:\n  "
                           + "\n  ".join(tail))

    def build(self) -> None:
        started = time.monotonic()
        mirror = os.environ.get(MIRROR_ENV) or DEFAULT_MIRROR
        if self.work.exists():
            shutil.rmtree(self.work)
        self.work.mkdir(parents=True)
        clean_env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root"}

        wheelhouse = self.work / "wheelhouse"
        pip_env, cert = _pip_env()
        self.run([sys.executable, "-m", "pip", "wheel", "--no-cache-dir", "--quiet", "--index-url", PYPI_INDEX,
                  *cert, "--wheel-dir", str(wheelhouse), *requirements(), *PEER_REQUIREMENTS], "wheels from PyPI",
                 env=pip_env, timeout=900)
        self.run(["unshare", "--mount", "--propagation", "private", "debootstrap", "--variant=minbase",
                  "--components=" + ",".join(COMPONENTS), SUITE, str(self.root), mirror],
                 "debootstrap", env=clean_env)
        for path, (mode, text) in IMAGE_FILES.items():
            target = self.root / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink() or target.exists():
                target.unlink()
            target.write_text(_sources(mirror) if path == "/etc/apt/sources.list" else text)
            os.chmod(target, mode)
        shutil.copy2("/etc/resolv.conf", self.root / "etc/resolv.conf", follow_symlinks=True)
        shutil.copytree(wheelhouse, self.root / "tmp/wheelhouse")
        (self.root / "tmp/build.sh").write_text(script(CHROOT_SCRIPT))
        (self.root / "tmp/image.env").write_text(_image_env())
        mounts = (f"set -e; r={self.root}; mount -t proc proc $r/proc; mount -t sysfs sys $r/sys; "
                  f"mount --bind /dev $r/dev; mount -t devpts -o newinstance devpts $r/dev/pts; "
                  f"mount -t tmpfs tmpfs $r/run; exec chroot $r /bin/bash /tmp/build.sh")
        self.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", mounts], "packages in chroot",
                 env=clean_env)

        info = dict(line.split("=", 1) for line in
                    (self.root / "etc/ovios-lab-image").read_text().split() if "=" in line)
        kver = info["kernel"]
        shutil.copy2(self.root / f"boot/vmlinuz-{kver}", self.work / "vmlinuz")
        shutil.copy2(self.root / f"boot/initrd.img-{kver}", self.work / "initrd.img")
        for entry in (self.root / "boot").iterdir():
            if entry.is_file() or entry.is_symlink():
                entry.unlink()
        used = int(subprocess.run(["du", "-s", "-B1", "-x", str(self.root)], capture_output=True, text=True,
                                  check=True).stdout.split()[0])
        size_mib = (int(used * 1.2) >> 20) + 1024  # room for what the VM writes (logs, the project)
        raw = self.work / "root.ext4"
        self.run(["mkfs.ext4", "-q", "-F", "-L", "ovios-root", "-d", str(self.root), str(raw), f"{size_mib}M"],
                 "mkfs.ext4 -d", env=clean_env)
        shutil.rmtree(self.root)
        self.run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(self.work / "base.qcow2")],
                 "qemu-img convert", env=clean_env)
        raw.unlink()
        wheels = sorted(p.name for p in wheelhouse.iterdir())
        shutil.rmtree(wheelhouse)
        record: dict[str, object] = dict(
            info, hash=self.image.directory.name.split("-", 1)[1], recipe=recipe(),
            built=time.strftime("%Y-%m-%dT%H:%M:%S%z"), build_seconds=round(time.monotonic() - started),
            root_used_bytes=used, disk_mib=size_mib, wheels=wheels)
        (self.work / "image.json").write_text(json.dumps(record, indent=2) + "\n")
        os.replace(self.work, self.image.directory)


def build(force: bool = False, log: Callable[[str], None] = print) -> Image:
    """The current recipe's image, built first when missing (or when ``force``)."""
    ensure_host_packages(log)  # qemu and friends, for the lab even when the image is cached
    image = current_image()
    if image.complete() and not force:
        return image
    if os.geteuid() != 0:
        raise LabError("building the OpenZFS image needs root")
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{image.directory.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build per recipe at a time; others wait for it
        if image.complete() and not force:
            return image
        if image.directory.exists():
            shutil.rmtree(image.directory)
        log(f"building the OpenZFS image {image.directory} (several minutes)")
        started = time.monotonic()
        builder = _Builder(image, log)
        try:
            builder.build()
        except BaseException:
            root_dir = builder.root
            if root_dir.exists():  # keep build.log, drop the big tree
                shutil.rmtree(root_dir, ignore_errors=True)
            raise
        log(f"image built in {time.monotonic() - started:.0f} s")
    return image


def main(argv: list[str] | None = None) -> int:  # python -m ovios_lab.openzfs_image
    args = sys.argv[1:] if argv is None else argv
    try:
        image = build(force="--force" in args)
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(image.directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/bin/bash
# ovios-lab: builds the OpenZFS image's tree.  Runs inside it (chroot), as root, with the
# network of the machine.  Its values come from image.env beside it (written by
# openzfs_image.py): GUEST_PACKAGES, KERNEL_PACKAGES, ZFS_PACKAGES, PEER_PACKAGES, REQUIREMENTS,
# PEER_REQUIREMENTS, MASKED_UNITS, DISABLED_UNITS and DROPPED_MODULE_DIRS, each a bash array.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
# shellcheck source=/dev/null # image.env: written at build time
source "$(dirname "$0")/image.env"
APT=(apt-get -y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
step() { echo "=== $(date +%T) $*"; }

step "apt-get update"
apt-get -q update
step "guest packages"
"${APT[@]}" install "${GUEST_PACKAGES[@]}"
step "kernel and headers"
"${APT[@]}" install "${KERNEL_PACKAGES[@]}"
KVER=$(find /lib/modules -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1)
echo "kernel $KVER"
step "OpenZFS from bookworm-backports (DKMS builds for $KVER)"
"${APT[@]}" -t bookworm-backports install "${ZFS_PACKAGES[@]}"
if ! compgen -G "/lib/modules/$KVER/updates/dkms/zfs.ko*" >/dev/null; then
    step "dkms autoinstall -k $KVER"
    dkms autoinstall -k "$KVER"
fi
ls -l "/lib/modules/$KVER/updates/dkms/"
ZFSVER=$(dpkg-query -W -f='${Version}' zfsutils-linux)

step "purge compilers, headers and DKMS (the built modules are kept)"
mkdir -p /root/zfs-modules
cp -a "/lib/modules/$KVER/updates/dkms/." /root/zfs-modules/
# (apt keeps what installed packages suggest or recommend unless told otherwise: gcc would stay)
"${APT[@]}" -o APT::AutoRemove::SuggestsImportant=false -o APT::AutoRemove::RecommendsImportant=false \
    purge --auto-remove zfs-dkms dkms linux-headers-amd64 "linux-headers-$KVER"
dpkg-query -W -f='${Status}\n' zfsutils-linux | grep -q 'install ok installed'
if dpkg-query -W -f='${Status}\n' gcc-12 2>/dev/null | grep -q 'install ok installed'; then
    echo "gcc-12 is still installed"; exit 1
fi
mkdir -p "/lib/modules/$KVER/updates/dkms"
cp -a /root/zfs-modules/. "/lib/modules/$KVER/updates/dkms/"
rm -rf /root/zfs-modules
for dir in "${DROPPED_MODULE_DIRS[@]}"; do rm -rf "/lib/modules/$KVER/$dir"; done
depmod -a "$KVER"
modinfo -k "$KVER" -F version zfs
update-initramfs -u -k "$KVER"

step "the benchmark's peer tools from Debian (after ZFS: they depend on it)"
"${APT[@]}" install "${PEER_PACKAGES[@]}"
dpkg-query -W -f='${Version}\n' zfsutils-linux | grep -qxF "$ZFSVER"  # not replaced by bookworm's
command -v syncoid

step "Python dependencies from PyPI wheels"
python3 -m pip install --break-system-packages --no-index --find-links /tmp/wheelhouse --no-cache-dir \
    --root-user-action=ignore "${REQUIREMENTS[@]}" "${PEER_REQUIREMENTS[@]}"
python3 -c 'import cmd2, sh, pexpect, tabulate; print("cmd2", cmd2.__version__)'
test -x /usr/local/bin/zfs-autobackup  # pip puts scripts there, off this PATH

step "units"
systemctl enable systemd-networkd.service ovios-lab-boot.service ssh.service cron.service
for unit in "${MASKED_UNITS[@]}"; do systemctl mask "$unit"; done
for unit in "${DISABLED_UNITS[@]}"; do systemctl disable "$unit"; done
systemctl list-unit-files --state=enabled --no-legend --no-pager
rm -f /etc/ssh/ssh_host_*  # every VM gets its own from its seed
rm -f /usr/sbin/policy-rc.d /etc/resolv.conf
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/*.log /var/log/apt/* /tmp/* /root/.cache \
    /usr/share/doc/* /usr/share/man/* /usr/share/info/* /usr/share/locale/*
echo "kernel=$KVER" > /etc/ovios-lab-image
echo "zfs=$ZFSVER" >> /etc/ovios-lab-image
step "done"

# shellcheck shell=bash
# ovios-lab: after a power-on, imports the node's pools (created with cachefile=none, so
# nothing imports them at boot) from their disks, mounts everything, checks sshd and cron.
# Sent as bash -c text after node.env (POOLS).
set -u
die() { echo "$*" >&2; exit 1; }
[ -e /dev/zfs ] || modprobe zfs || die "modprobe zfs failed"
for _ in $(seq 50); do [ -e /dev/zfs ] && break; sleep 0.1; done
udevadm settle
missing=""
for pool in $POOLS; do zpool list "$pool" >/dev/null 2>&1 || missing="$missing $pool"; done
if [ -n "$missing" ]; then
    out=$(zpool import -a -N -o cachefile=none -d /dev/disk/by-id 2>&1)
    for pool in $missing; do
        zpool list "$pool" >/dev/null 2>&1 || die "pool $pool was not imported: $out"
    done
fi
zfs mount -a || die "zfs mount -a failed"
udevadm settle
for unit in ssh cron; do
    systemctl is-active --quiet "$unit" || die "$unit is not running: $(systemctl is-active "$unit")"
done
zpool list -H -o name,health

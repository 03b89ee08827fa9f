# shellcheck shell=bash
# ovios-lab: creates the node's pools and datasets (first boot of a lab), then records the
# baseline reset.sh compares with.  Sent as bash -c text after node.env and library.sh.
set -u
load_zfs
udevadm settle
# a machine under load has seen the first zpool create fail ("no such pool or dataset")
# while the module and udev were still settling: three tries, each from nothing
for pool in $POOLS; do
    for attempt in 1 2 3; do
        create_pool "$pool" && break
        [ "$attempt" = 3 ] && die "creating pool $pool failed"
        zpool destroy -f "$pool" 2>/dev/null; sleep 3; udevadm settle
    done
done
udevadm settle
zfs_props > "$STATE/zfs-props"
for name in $FILESETS; do tree_signature "$SEED/files/$name" > "$STATE/files.${name//\//_}"; done
# shellcheck disable=SC2086 # POOLS: pool names, split on purpose
zpool sync $POOLS
for name in $VOLUMES; do volume_state "$name" > "$STATE/volume.${name//\//_}"; done
zpool list -H -o name,health

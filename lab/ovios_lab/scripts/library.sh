# shellcheck shell=bash
# ovios-lab: shell functions shared by setup.sh and reset.sh, sent ahead of them as bash -c
# text after node.env (see openzfs_guest.node_env): SEED, STATE, POOLS, DATASETS (every
# dataset, pools included, parents first), FILESETS and VOLUMES (the datasets that are
# filesystems and zvols) and ZVOL_SIZE_MIB.
export LC_ALL=C
act() { echo "ACTION $*"; }
die() { echo "ovios-lab: $*" >&2; exit 1; }
retry() {  # zfs may call a dataset busy for a moment after a receive or a kill
    for _ in 1 2 3 4 5 6 7 8 9 10; do "$@" 2>/tmp/.ovios-lab-retry && return 0; sleep 0.3; done
    cat /tmp/.ovios-lab-retry >&2; return 1
}
load_zfs() {
    [ -e /dev/zfs ] || modprobe zfs || die "modprobe zfs failed"
    for _ in $(seq 50); do [ -e /dev/zfs ] && return 0; sleep 0.1; done
    die "/dev/zfs did not appear"
}
fill_fileset() {  # the sample files of a filesystem, from the seed
    local mnt; mnt=$(zfs get -H -o value mountpoint "$1")
    find "$mnt" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
    cp -a "$SEED/files/$1/." "$mnt/"
}
fill_volume() {  # a zvol: the sample data at offset 0, zeros (holes) behind it
    udevadm settle
    for _ in $(seq 50); do [ -b "/dev/zvol/$1" ] && break; sleep 0.1; done
    [ -b "/dev/zvol/$1" ] || die "/dev/zvol/$1 did not appear"
    local size; size=$(stat -c %s "$SEED/files/$1.img")
    dd if="$SEED/files/$1.img" of="/dev/zvol/$1" bs=1M conv=notrunc,fsync status=none
    blkdiscard -o "$size" "/dev/zvol/$1" 2>/dev/null || \
        dd if=/dev/zero of="/dev/zvol/$1" bs=1M seek=$((size / 1048576)) conv=notrunc,fsync status=none
}
is_volume() { [[ " $VOLUMES " == *" $1 "* ]]; }
create_pool() {  # the pool $1 and its datasets, each with its sample data
    local name
    zpool create -f -o cachefile=none "$1" "/dev/disk/by-id/virtio-$1" || return 1
    for name in $DATASETS; do
        [[ $name == "$1"/* ]] || continue
        if is_volume "$name"; then
            zfs create -V "${ZVOL_SIZE_MIB}M" "$name" && fill_volume "$name"
        else
            zfs create "$name" && fill_fileset "$name"
        fi || return 1
    done
}
volume_state() {  # the sample data's digest and the logical space the zvol references
    echo "$(head -c "$(stat -c %s "$SEED/files/$1.img")" "/dev/zvol/$1" | sha256sum | cut -d' ' -f1)" \
        "$(zfs get -H -p -o value logicalreferenced "$1")"
}
pool_children() {  # names expected in a pool's mountpoint: its filesystems, relative to it
    local name children=()
    for name in $FILESETS; do
        [[ $name == "$1"/* ]] && children+=("${name#"$1"/}")
    done
    echo "${children[*]}"
}
tree_signature() {  # names, types, modes and contents of a directory tree
    (cd "$1" && find . -mindepth 1 -printf '%P %y %m %l\n' | sort && \
        find . -type f -print0 | sort -z | xargs -0 -r sha256sum)
}
zfs_props() {
    # shellcheck disable=SC2086 # POOLS: pool names, split on purpose
    zfs get -H -p -r -t filesystem,volume -o name,property,value,source -s local,received,temporary all $POOLS \
        2>/dev/null | sort
}

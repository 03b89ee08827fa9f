# shellcheck shell=bash
# ovios-lab: brings the node back to the state after setup.sh; prints one "ACTION ..." line
# per thing it had to do.  Every check is one cheap look (processes cost milliseconds each
# under emulation); the repairs run only where a check failed.  Sent as bash -c text after
# node.env, signatures.sh and library.sh.
set -u
shopt -s nullglob dotglob
TAB=$'\t'
# 1. processes started through ssh (the product's or the lab's) or by cron, but not this script
declare -A keep=()
p=$$
while [ "$p" -gt 1 ] 2>/dev/null; do keep[$p]=1; read -r _ _ _ p _ < "/proc/$p/stat" || break; done
for pid in $(systemctl show -p MainPID --value ssh.service cron.service ovios-lab-sshd.service); do
    keep[$pid]=1
done
killed=()
for unit in ssh.service cron.service ovios-lab-sshd.service; do
    procs=/sys/fs/cgroup/system.slice/$unit/cgroup.procs
    [ -r "$procs" ] || continue
    while read -r pid; do
        [ -n "${keep[$pid]:-}" ] && continue
        kill -KILL "$pid" 2>/dev/null && killed+=("$pid")
    done < "$procs"
done
if [ ${#killed[@]} -gt 0 ]; then
    for _ in $(seq 100); do
        alive=""; for pid in "${killed[@]}"; do [ -d "/proc/$pid" ] && alive=1; done
        [ -z "$alive" ] && break; sleep 0.1
    done
    act "killed ${#killed[@]} process(es)"
fi

# 2. system files as they were after boot (one signature over all; per path only when it differs)
ssh_changed=""
if [ "$(list_signature "$STATE/pristine.list")" != "$(cat "$STATE/pristine.all")" ]; then
    : > "$STATE/pristine.sig.new"
    while read -r path want; do
        if [ "$(path_signature "$path")" != "$want" ]; then
            rm -rf "/${path:?}"
            tar -C / -xpf "$STATE/pristine.tar" "$path"
            act "restored /$path"
            case "$path" in etc/ssh*) ssh_changed=1 ;; etc/hostname) hostname "$(cat /etc/hostname)" ;; esac
        fi
        echo "$path $(path_signature "$path")" >> "$STATE/pristine.sig.new"
    done < "$STATE/pristine.sig"
    mv "$STATE/pristine.sig.new" "$STATE/pristine.sig"
    list_signature "$STATE/pristine.list" > "$STATE/pristine.all"
fi

# 3. the product's state and root's crontab
for d in $WIPED_DIRS; do
    if [ ! -d "$d" ]; then install -d -m 755 "$d"; act "created $d"; continue; fi
    entries=("$d"/*)
    if [ ${#entries[@]} -gt 0 ]; then rm -rf "${entries[@]}"; act "emptied $d"; fi
done
if [ -e /var/spool/cron/crontabs/root ]; then crontab -r; act "removed root's crontab"; fi

# 4. services
[ -d /run/sshd ] || install -d -m 755 /run/sshd
good=$(systemctl show -p ActiveState,UnitFileState ssh.service cron.service \
       | grep -c -x -e ActiveState=active -e UnitFileState=enabled)
if [ "$good" != 4 ]; then
    for unit in ssh cron; do
        systemctl is-enabled --quiet "$unit" || { systemctl enable --quiet "$unit" 2>/dev/null; act "enabled $unit"; }
        systemctl is-active --quiet "$unit" || { systemctl start "$unit"; act "started $unit"; }
    done
fi
if [ -n "$ssh_changed" ]; then
    systemctl reload-or-restart ssh
    for _ in $(seq 100); do [ "$(systemctl is-active ssh)" = active ] && break; sleep 0.1; done
fi

# 4b. the services restore configures (LIO targets, iSCSI sessions, Samba, NFS): none; LIO
#     first, its backstores keep zvols busy (every check is a builtin or one cheap command)
if compgen -G "/sys/class/iscsi_session/session*" >/dev/null; then
    iscsiadm -m node -U all >/dev/null 2>&1; act "logged out of the iSCSI sessions"
fi
if compgen -G "/etc/iscsi/nodes/*" >/dev/null || compgen -G "/etc/iscsi/send_targets/*" >/dev/null; then
    rm -rf /etc/iscsi/nodes/* /etc/iscsi/send_targets/*; act "forgot the iSCSI nodes"
fi
if grep -qE ' nfs4? ' /proc/mounts; then umount -a -f -l -t nfs,nfs4; act "unmounted NFS"; fi
lio=/sys/kernel/config/target
if compgen -G "$lio/iscsi/iqn.*" >/dev/null || compgen -G "$lio/core/*_*/*/" >/dev/null; then
    targetctl clear && act "cleared LIO"
fi
if compgen -G "/etc/rtslib-fb-target/*" >/dev/null; then
    rm -rf /etc/rtslib-fb-target/*; act "removed LIO's saved configuration"
fi
running=$(systemctl is-active smbd nmbd nfs-server iscsid 2>/dev/null | grep -c '^active$' || true)
if [ "$running" != 0 ]; then
    systemctl stop smbd nmbd nfs-server iscsid iscsid.socket; act "stopped Samba/NFS/iscsid"
fi
for f in /etc/exports.d/ovios.exports /etc/samba/ovios-shares.conf /var/lib/samba/private/passdb.tdb; do
    if [ -e "$f" ]; then rm -f "$f"; act "removed $f"; fi
done

# 5. ZFS: one listing of everything, then only the repairs that are needed
load_zfs
imported=$(zpool list -H -o name | sort)
# shellcheck disable=SC2086 # POOLS: pool names, split on purpose
if [ "$imported" != "$(printf '%s\n' $POOLS | sort)" ]; then
    for pool in $imported; do
        case " $POOLS " in *" $pool "*) ;; *) zpool destroy -f "$pool" && act "destroyed pool $pool" ;; esac
    done
    for pool in $POOLS; do
        zpool list "$pool" >/dev/null 2>&1 && continue
        if zpool import -f -d /dev/disk/by-id "$pool" >/dev/null 2>&1; then act "imported pool $pool"
        else create_pool "$pool" || die "creating pool $pool failed"; act "created pool $pool"; fi
    done
fi
tokens=() held=() extra=() snaps=() marks=()
# shellcheck disable=SC2086 # POOLS: pool names, split on purpose
while IFS="$TAB" read -r name type refs token; do
    [ -n "$token" ] && [ "$token" != "-" ] && tokens+=("$name")
    case "$type" in
    snapshot) snaps+=("$name"); [ "$refs" != 0 ] && held+=("$name") ;;
    bookmark) marks+=("$name") ;;
    *) case " $DATASETS " in *" $name "*) ;; *) extra+=("$name") ;; esac ;;
    esac
done < <(zfs list -H -p -t all -o name,type,userrefs,receive_resume_token -r $POOLS)
for name in "${tokens[@]}"; do  # interrupted resumable receives
    retry zfs receive -A "$name" && act "aborted the resumable receive into $name"
done
if [ ${#held[@]} -gt 0 ]; then
    n=0
    while IFS="$TAB" read -r snap tag _; do
        retry zfs release "$tag" "$snap" && n=$((n + 1))
    done < <(zfs holds -H "${held[@]}")
    act "released $n hold(s)"
fi
gone() {  # destroy (-R: with clones and the like); one plain try first, zfs calls cost here
    zfs destroy "$@" 2>/dev/null && return 0
    zfs list -t all "${@: -1}" >/dev/null 2>&1 || return 0  # went with something destroyed before
    retry zfs destroy "$@"
}
if [ ${#extra[@]} -gt 0 ]; then  # datasets that were not there at the start, children first
    for name in $(printf '%s\n' "${extra[@]}" | awk -F/ '{print NF, $0}' | sort -rn | cut -d' ' -f2-); do
        gone -R -f "$name" && act "destroyed $name"
    done
fi
if [ ${#snaps[@]} -gt 0 ]; then  # one command per dataset: fs@a,b,c
    declare -A by_dataset=()
    for snap in "${snaps[@]}"; do
        ds=${snap%%@*}; by_dataset[$ds]="${by_dataset[$ds]:+${by_dataset[$ds]},}${snap#*@}"
    done
    for ds in "${!by_dataset[@]}"; do
        zfs destroy -R "$ds@${by_dataset[$ds]}" 2>/dev/null && continue
        for snap in ${by_dataset[$ds]//,/ }; do gone -R "$ds@$snap"; done
    done
    act "destroyed ${#snaps[@]} snapshot(s)"
fi
if [ ${#marks[@]} -gt 0 ]; then
    for mark in "${marks[@]}"; do gone "$mark"; done
    act "destroyed ${#marks[@]} bookmark(s)"
fi
# properties (local, received, temporary) as they were; mounted filesystems
props=$(zfs_props)
if [ "$props" != "$(cat "$STATE/zfs-props")" ]; then
    while IFS="$TAB" read -r name prop value source; do
        case "$source" in
        temporary) zfs unmount "$name" 2>/dev/null; zfs mount "$name" 2>/dev/null ;;
        *) zfs inherit "$prop" "$name" 2>/dev/null ;;
        esac
    done < <(comm -23 <(echo "$props") "$STATE/zfs-props")
    while IFS="$TAB" read -r name prop value source; do
        [ "$source" = local ] && zfs set "$prop=$value" "$name" 2>/dev/null
    done < <(comm -13 <(zfs_props) "$STATE/zfs-props")
    props=$(zfs_props)
    for pool in $POOLS; do
        if [ "$(grep -E "^${pool}[/@$TAB]" <<< "$props")" != "$(grep -E "^${pool}[/@$TAB]" "$STATE/zfs-props")" ]; then
            { retry zpool destroy -f "$pool" && create_pool "$pool"; } || die "re-creating pool $pool failed"
            act "re-created pool $pool"
        fi
    done
    act "restored dataset properties"
fi
# shellcheck disable=SC2086 # POOLS, FILESETS: dataset names, split on purpose
while IFS="$TAB" read -r name mounted; do
    [ "$mounted" = yes ] && continue
    zfs mount "$name" && act "mounted $name"
done < <(zfs get -H -o name,value mounted $POOLS $FILESETS)
# the files of the filesystems, nothing else in the pools' mountpoints, the zvols' data
for name in $FILESETS; do
    if [ "$(tree_signature "/$name")" != "$(cat "$STATE/files.${name//\//_}")" ]; then
        fill_fileset "$name"; act "restored the files of $name"
    fi
done
for pool in $POOLS; do
    keep_names=" $(pool_children "$pool") "
    for entry in "/$pool"/*; do
        case "$keep_names" in *" ${entry##*/} "*) continue ;; esac
        mountpoint -q "$entry" && continue
        rm -rf "$entry" && act "removed $entry"
    done
done
# (reading a whole zvol costs seconds under emulation: the sample data is compared, and the
#  rest, zeros, i.e. holes, is unchanged while the logical space referenced is)
# shellcheck disable=SC2086 # POOLS: pool names, split on purpose
[ -n "$VOLUMES" ] && zpool sync $POOLS
for name in $VOLUMES; do
    [ -b "/dev/zvol/$name" ] || udevadm settle
    if [ "$(volume_state "$name")" != "$(cat "$STATE/volume.${name//\//_}")" ]; then
        fill_volume "$name"; act "restored the data of $name"
        zpool sync "${name%%/*}"; volume_state "$name" > "$STATE/volume.${name//\//_}"
    fi
done
exit 0

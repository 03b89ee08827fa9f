"""What runs inside Lab 2's VMs: the seed (boot-time configuration) and the pool scripts.

Pure text generation, no I/O.  Every VM boots the same image (see :mod:`.openzfs_image`);
``ovios-lab-boot.service`` mounts the VM's *seed* directory (virtio-9p, read-only) and
runs its ``boot.sh``, written here: hostname, ``/etc/hosts``, static addresses
(systemd-networkd), ssh host and root keys, the lab's own control sshd, and the project
from the working tree (a second read-only 9p share), installed as pip would but without
running pip (see :func:`project_files`).  Then the host
creates the pools over ssh with :func:`setup_script`, and :func:`reset_script` brings a
VM back to that state between tests.  Both are bash scripts passed as ``bash -c`` text,
so the guest always runs the scripts of the code under test.
"""

from __future__ import annotations

import configparser
import hashlib
import shlex

from .spec import NodeSpec

SEED_MOUNT = "/run/ovios-lab/seed"
REPO_MOUNT = "/run/ovios-lab/repo"
STATUS_FILE = "/run/ovios-lab/boot.status"
STATE_DIR = "/var/lib/ovios-lab"  # inside the VM: pristine copies, zfs baseline
LAB_SSH_PORT = 2222  # the lab's control sshd (the product's sshd keeps port 22)
MGMT_ADDRESS = "10.0.2.15"  # user-mode networking's guest address
PREFIX_LEN = 24
POOL_DISK_SIZE = 256 * 1024 * 1024
ZVOL_SIZE = 64 * 1024 * 1024

#: files and directories whose boot-time state reset restores (see PATH_SIGNATURE)
PRISTINE_PATHS = ("/etc/ssh", "/root/.ssh", "/etc/hosts", "/etc/hostname", "/etc/crontab", "/etc/cron.d",
                  "/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow", "/etc/subuid", "/etc/subgid",
                  "/etc/environment", "/etc/default/cron", "/etc/samba/smb.conf", "/etc/exports")
#: emptied by reset (the product's state, as in Lab 1)
WIPED = ("/etc/ovios", "/var/log/ovios", "/run/ovios")

#: a shell expression: the signature of "$path" (relative to /): names, types, modes, owners,
#: sizes, modification and change times.  Nothing can write a file without changing its
#: ctime, so contents need no hashing; a restored file gets a new ctime, so reset records the
#: signatures again after restoring.
PATH_SIGNATURE = ("{ cd / && find \"$path\" -printf '%p %y %m %U %G %s %T@ %C@ %l\\n'; } 2>/dev/null "
                  "| sha256sum | cut -d' ' -f1")
#: the same over every path in $paths (a space-separated list)
ALL_SIGNATURE = ("{ cd / && find $paths -printf '%p %y %m %U %G %s %T@ %C@ %l\\n'; } 2>/dev/null "
                 "| sha256sum | cut -d' ' -f1")

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


def boot_script(spec: NodeSpec) -> str:
    """The seed's boot.sh: runs once per boot, before networking and the product's sshd."""
    q = shlex.quote
    pristine = " ".join(p.lstrip("/") for p in PRISTINE_PATHS)
    return f"""#!/bin/sh
# ovios-lab: configure {spec.name} from its seed ({SEED_MOUNT}); its status goes to {STATUS_FILE}
set -eu
export LC_ALL=C
SEED={SEED_MOUNT}
mkdir -p /run/ovios-lab {STATE_DIR}
echo running > {STATUS_FILE}
step=start
trap 'echo "failed: $step" > {STATUS_FILE}; echo "ovios-lab boot: {spec.name} FAILED at $step" >&2' EXIT
t0=$(date +%s)

step=hostname
echo {q(spec.name)} > /etc/hostname
hostname {q(spec.name)}
cp "$SEED/hosts" /etc/hosts

step=network
mkdir -p /etc/systemd/network
cp "$SEED"/network/*.network /etc/systemd/network/

step=ssh-keys
rm -f /etc/ssh/ssh_host_*
install -m 600 "$SEED/ssh/ssh_host_ed25519_key" /etc/ssh/ssh_host_ed25519_key
install -m 644 "$SEED/ssh/ssh_host_ed25519_key.pub" /etc/ssh/ssh_host_ed25519_key.pub
mkdir -p /etc/ssh/sshd_config.d
install -m 644 "$SEED/ssh/sshd-ovios-lab.conf" /etc/ssh/sshd_config.d/ovios-lab.conf
install -d -m 700 /root/.ssh
install -m 600 "$SEED/ssh/id_ed25519" /root/.ssh/id_ed25519
install -m 644 "$SEED/ssh/id_ed25519.pub" /root/.ssh/id_ed25519.pub
install -m 600 "$SEED/ssh/authorized_keys" /root/.ssh/authorized_keys
install -m 644 "$SEED/ssh/known_hosts" /root/.ssh/known_hosts

step=lab-sshd
install -d -m 700 /etc/ovios-lab
install -m 600 "$SEED/lab/sshd_config" /etc/ovios-lab/sshd_config
install -m 600 "$SEED/lab/ssh_host_ed25519_key" /etc/ovios-lab/ssh_host_ed25519_key
install -m 600 "$SEED/lab/authorized_keys" /etc/ovios-lab/authorized_keys
install -d -m 755 /run/sshd

step=files
install -m 644 "$SEED/crontab" /etc/crontab
mkdir -p /etc/cron.d
for d in {" ".join(WIPED)}; do install -d -m 755 "$d"; done

step=project
# the package straight from the working tree (9p, read-only) and its metadata (entry points,
# console scripts) from the seed: what "pip install --no-deps" would leave, without running
# pip, which costs ~25 s per VM under emulation
SITE=$(echo /usr/local/lib/python3.*/dist-packages)
[ -d "$SITE" ]
mkdir -p {REPO_MOUNT}
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 repo {REPO_MOUNT}
rm -rf "$SITE/ovios_shell_retadm" "$SITE"/ovios_shell_retadm-*.dist-info
tar -C {REPO_MOUNT} --exclude=__pycache__ --exclude='*.py[cod]' --no-same-owner -cf - ovios_shell_retadm \
    | tar -C "$SITE" --no-same-owner -xf -
umount {REPO_MOUNT}
cp -r "$SEED"/project/*.dist-info "$SITE/"
(cd "$SITE" && find ovios_shell_retadm ovios_shell_retadm-*.dist-info -type f | sed 's/$/,,/') \
    > "$(echo "$SITE"/ovios_shell_retadm-*.dist-info)/RECORD"
for script in "$SEED"/project/bin/*; do install -m 755 "$script" /usr/local/bin/; done
ln -sf /usr/local/bin/ovios-shell /usr/bin/ovios-shell
python3 -m compileall -q "$SITE/ovios_shell_retadm" >/dev/null

step=pristine
(cd / && for path in {pristine}; do [ -e "$path" ] && echo "$path"; done) > {STATE_DIR}/pristine.list
tar -C / --format=posix -cpf {STATE_DIR}/pristine.tar -T {STATE_DIR}/pristine.list
while read -r path; do echo "$path $({PATH_SIGNATURE})"; done < {STATE_DIR}/pristine.list \\
    > {STATE_DIR}/pristine.sig
paths="$(tr '\\n' ' ' < {STATE_DIR}/pristine.list)"
echo "$({ALL_SIGNATURE})" > {STATE_DIR}/pristine.all

step=lab-sshd-start
systemd-run --no-block --quiet --unit=ovios-lab-sshd --property=KillMode=process \\
    --property=Restart=always --property=RestartSec=1 /usr/sbin/sshd -D -f /etc/ovios-lab/sshd_config

trap - EXIT
echo "ok $(( $(date +%s) - t0 ))" > {STATUS_FILE}
echo "ovios-lab boot: {spec.name} configured in $(( $(date +%s) - t0 )) s"
"""


# -- pools: setup and reset ---------------------------------------------------------------


def _volumes(spec: NodeSpec) -> dict[str, bytes]:
    """Datasets that are zvols in this lab (zfs-fuse has none, so Lab 1 makes them filesystems)."""
    return {d.name: d.files["lun01.img"] for p in spec.pools for d in p.datasets if "lun01.img" in d.files}


def volume_digest(data: bytes, size: int = ZVOL_SIZE) -> str:
    digest = hashlib.sha256(data)
    digest.update(bytes(size - len(data)))
    return digest.hexdigest()


def _library(spec: NodeSpec) -> str:
    """Shell functions and the node's layout, shared by setup and reset."""
    volumes = _volumes(spec)
    pools = " ".join(p.name for p in spec.pools)
    datasets = " ".join(spec.dataset_names)
    filesets = " ".join(d.name for p in spec.pools for d in p.datasets if d.name not in volumes)
    create_pool = []
    for pool in spec.pools:
        lines = [f"zpool create -f -o cachefile=none {pool.name} /dev/disk/by-id/virtio-{pool.name}"]
        for ds in pool.datasets:
            if ds.name in volumes:
                lines.append(f"zfs create -V {ZVOL_SIZE // (1024 * 1024)}M {ds.name} && fill_volume {ds.name}")
            else:
                lines.append(f"zfs create {ds.name} && fill_fileset {ds.name}")
        create_pool.append(f"    {pool.name}) {' && '.join(lines)} ;;")
    digests = "\n".join(f"    {name}) echo {volume_digest(data)} ;;" for name, data in volumes.items())
    children = "\n".join(
        f"    {p.name}) echo {' '.join(sorted(d.name.split('/', 1)[1] for d in p.datasets if d.name not in volumes))}"
        " ;;"
        for p in spec.pools)
    return f"""
SEED={SEED_MOUNT}
STATE={STATE_DIR}
POOLS="{pools}"
DATASETS=" {datasets} "
FILESETS="{filesets}"
VOLUMES="{' '.join(volumes)}"
export LC_ALL=C
act() {{ echo "ACTION $*"; }}
die() {{ echo "ovios-lab: $*" >&2; exit 1; }}
retry() {{  # zfs may call a dataset busy for a moment after a receive or a kill
    local i
    for i in 1 2 3 4 5 6 7 8 9 10; do "$@" 2>/tmp/.ovios-lab-retry && return 0; sleep 0.3; done
    cat /tmp/.ovios-lab-retry >&2; return 1
}}
load_zfs() {{
    [ -e /dev/zfs ] || modprobe zfs || die "modprobe zfs failed"
    local i; for i in $(seq 50); do [ -e /dev/zfs ] && return 0; sleep 0.1; done
    die "/dev/zfs did not appear"
}}
fill_fileset() {{  # the sample files of a filesystem, from the seed
    local mnt; mnt=$(zfs get -H -o value mountpoint "$1")
    find "$mnt" -mindepth 1 -maxdepth 1 -exec rm -rf {{}} +
    cp -a "$SEED/files/$1/." "$mnt/"
}}
fill_volume() {{  # a zvol: the sample data at offset 0, zeros (holes) behind it
    udevadm settle
    local i; for i in $(seq 50); do [ -b "/dev/zvol/$1" ] && break; sleep 0.1; done
    [ -b "/dev/zvol/$1" ] || die "/dev/zvol/$1 did not appear"
    local size; size=$(stat -c %s "$SEED/files/$1.img")
    dd if="$SEED/files/$1.img" of="/dev/zvol/$1" bs=1M conv=notrunc,fsync status=none
    blkdiscard -o "$size" "/dev/zvol/$1" 2>/dev/null || \
        dd if=/dev/zero of="/dev/zvol/$1" bs=1M seek=$((size / 1048576)) conv=notrunc,fsync status=none
}}
create_pool() {{
    case "$1" in
{chr(10).join(create_pool)}
    *) return 1 ;;
    esac
}}
volume_digest() {{  # of the whole zvol
    case "$1" in
{digests}
    esac
}}
volume_state() {{  # the sample data's digest and the logical space the zvol references
    echo "$(head -c "$(stat -c %s "$SEED/files/$1.img")" "/dev/zvol/$1" | sha256sum | cut -d' ' -f1)" \
        "$(zfs get -H -p -o value logicalreferenced "$1")"
}}
pool_children() {{  # names expected in a pool's mountpoint (child filesystems)
    case "$1" in
{children}
    esac
}}
tree_signature() {{  # names, types, modes and contents of a directory tree
    (cd "$1" && find . -mindepth 1 -printf '%P %y %m %l\\n' | sort && \\
        find . -type f -print0 | sort -z | xargs -0 -r sha256sum)
}}
zfs_props() {{
    zfs get -H -p -r -t filesystem,volume -o name,property,value,source -s local,received,temporary all $POOLS \\
        2>/dev/null | sort
}}
"""


def setup_script(spec: NodeSpec) -> str:
    """Create the node's pools and datasets (first boot of a lab), then record the baseline."""
    return _library(spec) + r"""
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
zpool sync $POOLS
for name in $VOLUMES; do volume_state "$name" > "$STATE/volume.${name//\//_}"; done
zpool list -H -o name,health
"""


_RESET = r"""
set -u
shopt -s nullglob dotglob
TAB=$'\t'
# 1. processes started through ssh (the product's or the lab's) or by cron, but not this script
declare -A keep=()
p=$$
while [ "$p" -gt 1 ] 2>/dev/null; do keep[$p]=1; read -r _ _ _ p _ < /proc/$p/stat || break; done
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
    for i in $(seq 100); do
        alive=""; for pid in "${killed[@]}"; do [ -d /proc/$pid ] && alive=1; done
        [ -z "$alive" ] && break; sleep 0.1
    done
    act "killed ${#killed[@]} process(es)"
fi

# 2. system files as they were after boot (one signature over all; per path only when it differs)
ssh_changed=""
paths="$(tr '\n' ' ' < "$STATE/pristine.list")"
if [ "$(@ALL_SIGNATURE@)" != "$(cat "$STATE/pristine.all")" ]; then
    : > "$STATE/pristine.sig.new"
    while read -r path want; do
        if [ "$(@PATH_SIGNATURE@)" != "$want" ]; then
            rm -rf "/$path"
            tar -C / -xpf "$STATE/pristine.tar" "$path"
            act "restored /$path"
            case "$path" in etc/ssh*) ssh_changed=1 ;; etc/hostname) hostname "$(cat /etc/hostname)" ;; esac
        fi
        echo "$path $(@PATH_SIGNATURE@)" >> "$STATE/pristine.sig.new"
    done < "$STATE/pristine.sig"
    mv "$STATE/pristine.sig.new" "$STATE/pristine.sig"
    echo "$(@ALL_SIGNATURE@)" > "$STATE/pristine.all"
fi

# 3. the product's state and root's crontab
for d in @WIPED@; do
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
    for i in $(seq 100); do [ "$(systemctl is-active ssh)" = active ] && break; sleep 0.1; done
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
pools=$(zpool list -H -o name | sort)
if [ "$(echo $pools)" != "$(echo $(printf '%s\n' $POOLS | sort))" ]; then
    for pool in $pools; do
        case " $POOLS " in *" $pool "*) ;; *) zpool destroy -f "$pool" && act "destroyed pool $pool" ;; esac
    done
    for pool in $POOLS; do
        zpool list "$pool" >/dev/null 2>&1 && continue
        if zpool import -f -d /dev/disk/by-id "$pool" >/dev/null 2>&1; then act "imported pool $pool"
        else create_pool "$pool" || die "creating pool $pool failed"; act "created pool $pool"; fi
    done
fi
tokens=() held=() extra=() snaps=() marks=()
while IFS="$TAB" read -r name type refs token; do
    [ -n "$token" ] && [ "$token" != "-" ] && tokens+=("$name")
    case "$type" in
    snapshot) snaps+=("$name"); [ "$refs" != 0 ] && held+=("$name") ;;
    bookmark) marks+=("$name") ;;
    *) case "$DATASETS" in *" $name "*) ;; *) extra+=("$name") ;; esac ;;
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
        if [ "$(grep -E "^$pool[/@$TAB]" <<< "$props")" != "$(grep -E "^$pool[/@$TAB]" "$STATE/zfs-props")" ]; then
            { retry zpool destroy -f "$pool" && create_pool "$pool"; } || die "re-creating pool $pool failed"
            act "re-created pool $pool"
        fi
    done
    act "restored dataset properties"
fi
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
    for entry in /$pool/*; do
        case "$keep_names" in *" ${entry##*/} "*) continue ;; esac
        mountpoint -q "$entry" && continue
        rm -rf "$entry" && act "removed $entry"
    done
done
# (reading a whole zvol costs seconds under emulation: the sample data is compared, and the
#  rest, zeros, i.e. holes, is unchanged while the logical space referenced is)
[ -n "$VOLUMES" ] && zpool sync $POOLS
for name in $VOLUMES; do
    [ -b "/dev/zvol/$name" ] || udevadm settle
    if [ "$(volume_state "$name")" != "$(cat "$STATE/volume.${name//\//_}")" ]; then
        fill_volume "$name"; act "restored the data of $name"
        zpool sync "${name%%/*}"; volume_state "$name" > "$STATE/volume.${name//\//_}"
    fi
done
exit 0
"""


def reset_script(spec: NodeSpec) -> str:
    """Back to the state after setup; prints one ``ACTION ...`` line per thing it had to do.

    Every check is one cheap look (processes cost milliseconds each under emulation); the
    repairs run only where a check failed.
    """
    return _library(spec) + (_RESET.replace("@ALL_SIGNATURE@", ALL_SIGNATURE)
                             .replace("@PATH_SIGNATURE@", PATH_SIGNATURE).replace("@WIPED@", " ".join(WIPED)))


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

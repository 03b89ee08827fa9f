#!/bin/sh
# ovios-lab: configures this VM from its seed, the directory this script is in (a read-only
# virtio-9p share, mounted by ovios-lab-boot.service).  Runs once per boot, before networking
# and the product's sshd; its status goes to $STATUS_FILE.  The node's values come from
# node.env beside it (see openzfs_guest.node_env).
set -eu
export LC_ALL=C
SEED=$(dirname "$0")
# shellcheck source=/dev/null # node.env: written by the lab for each VM
. "$SEED/node.env"
# shellcheck source=signatures.sh
. "$SEED/signatures.sh"
mkdir -p /run/ovios-lab "$STATE"
echo running > "$STATUS_FILE"
step=start
trap 'echo "failed: $step" > "$STATUS_FILE"; echo "ovios-lab boot: $NODE_NAME FAILED at $step" >&2' EXIT
t0=$(date +%s)

step=hostname
echo "$NODE_NAME" > /etc/hostname
hostname "$NODE_NAME"
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
for d in $WIPED_DIRS; do install -d -m 755 "$d"; done

step=project
# the package straight from the working tree (9p, read-only) and its metadata (entry points,
# console scripts) from the seed: what "pip install --no-deps" would leave, without running
# pip, which costs ~25 s per VM under emulation
SITE=$(echo /usr/local/lib/python3.*/dist-packages)
[ -d "$SITE" ]
mkdir -p "$REPO_MOUNT"
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 repo "$REPO_MOUNT"
rm -rf "$SITE/ovios_shell_retadm" "$SITE"/ovios_shell_retadm-*.dist-info
tar -C "$REPO_MOUNT" --exclude=__pycache__ --exclude='*.py[cod]' --no-same-owner -cf - ovios_shell_retadm \
    | tar -C "$SITE" --no-same-owner -xf -
umount "$REPO_MOUNT"
cp -r "$SEED"/project/*.dist-info "$SITE/"
(cd "$SITE" && find ovios_shell_retadm ovios_shell_retadm-*.dist-info -type f | sed 's/$/,,/') \
    > "$(echo "$SITE"/ovios_shell_retadm-*.dist-info)/RECORD"
for script in "$SEED"/project/bin/*; do install -m 755 "$script" /usr/local/bin/; done
ln -sf /usr/local/bin/ovios-shell /usr/bin/ovios-shell
python3 -m compileall -q "$SITE/ovios_shell_retadm" >/dev/null

step=pristine
# the reset baseline; after a power-on (KEEP_BASELINE=yes) the first boot's, where there is one
if [ "$KEEP_BASELINE" != yes ] || [ ! -s "$STATE/pristine.tar" ]; then
    (cd / && for path in $PRISTINE_PATHS; do [ -e "$path" ] && echo "$path"; done) > "$STATE/pristine.list"
    tar -C / --format=posix -cpf "$STATE/pristine.tar" -T "$STATE/pristine.list"
    while read -r path; do echo "$path $(path_signature "$path")"; done < "$STATE/pristine.list" \
        > "$STATE/pristine.sig"
    list_signature "$STATE/pristine.list" > "$STATE/pristine.all"
fi

step=lab-sshd-start
systemd-run --no-block --quiet --unit=ovios-lab-sshd --property=KillMode=process \
    --property=Restart=always --property=RestartSec=1 /usr/sbin/sshd -D -f /etc/ovios-lab/sshd_config

trap - EXIT
echo "ok $(( $(date +%s) - t0 ))" > "$STATUS_FILE"
echo "ovios-lab boot: $NODE_NAME configured in $(( $(date +%s) - t0 )) s"

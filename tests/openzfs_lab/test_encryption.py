"""Encrypted datasets on real OpenZFS 2.x (QEMU lab): replicated raw (``send -w``), so the
replica stays encrypted and its key stays on the source; promoted with the key; refused
where the destination pool cannot hold them raw, unless a decrypted replica is asked for."""

from __future__ import annotations

from openzfs_helpers import SLOW, kill_transfer_when, last_end, sent_bytes
from replication_helpers import checksums, sh, shell, snapshots, status, wait_for

KEY = "/root/secret.key"
PASSPHRASE = "correct horse battery staple"


def encrypted_dataset(lab, dataset: str = "data/secret") -> None:
    """An encrypted filesystem on src (a passphrase in a key file) with some data in it."""
    sh(lab, "src", f"printf '%s' '{PASSPHRASE}' > {KEY} && chmod 600 {KEY} && "
                   f"zfs create -o encryption=on -o keyformat=passphrase -o keylocation=file://{KEY} {dataset} && "
                   f"dd if=/dev/urandom of=/{dataset}/blob bs=64k count=8 status=none && "
                   f"echo hello > /{dataset}/readme.txt")


def init_args(remote_pool: str = "repl", *more: str) -> tuple[str, ...]:
    return ("retadm", "init", "data/secret", "--dest", "dst", "--remote-pool", remote_pool,
            "--remote-name", "secret", "--properties", "no", *more)


def test_an_encrypted_dataset_travels_raw_and_is_promoted_with_its_key(fresh_openzfs_lab):
    lab = fresh_openzfs_lab
    encrypted_dataset(lab)
    result = shell(lab, "src", *init_args(), timeout=SLOW)
    assert result.returncode == 0, result.stderr
    row = wait_for(lab, "data/secret", timeout=SLOW)
    assert row["status"] == "idle", row

    props = sh(lab, "dst", "zfs get -H -o property,value encryption,keystatus,mounted repl/secret").stdout
    found = dict(line.split("\t") for line in props.splitlines())
    assert found["encryption"] != "off", found
    assert found["keystatus"] == "unavailable", found
    assert found["mounted"] == "no", found
    assert "replicated raw" in result.stdout, result.stdout
    assert row["send_mode"] == "raw", row
    assert sh(lab, "dst", "cat /repl/secret/readme.txt", check=False).returncode != 0  # nothing readable
    assert "encrypted, replicated raw" in shell(lab, "src", "retadm", "status").stdout
    doctor = shell(lab, "src", "retadm", "doctor", "data/secret", timeout=SLOW).stdout
    line = next(line for line in doctor.splitlines() if " encryption: " in line)
    assert line.startswith("  OK") and "replicated raw" in line and "key is not loaded on dst" in line, doctor

    # an incremental after writes arrives raw (a non-raw one onto this replica fails in ZFS)
    sh(lab, "src", "echo more >> /data/secret/readme.txt; zfs snapshot data/secret@tuesday")
    result = shell(lab, "src", "retadm", "inc", "data/secret", timeout=SLOW)
    assert result.returncode == 0, result.stderr
    assert "tuesday" in snapshots(lab, "dst", "repl/secret")
    assert sh(lab, "dst", "zfs get -H -o value keystatus repl/secret").stdout.strip() == "unavailable"
    log = sh(lab, "src", "cat /var/log/ovios/repl.log").stdout
    assert "raw (encrypted, the key stays on the source)" in log

    # promote without the key: one line, non-zero, nothing changed
    result = shell(lab, "dst", "retadm", "promote", "repl/secret", timeout=SLOW)
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "encrypted" in result.stderr and "--key-file" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert sh(lab, "dst", "zfs get -H -o value ovios:retadm.promoted repl/secret").stdout.strip() == "-"

    # a wrong key: one line, nothing changed
    sh(lab, "dst", "printf '%s' 'not the passphrase' > /root/wrong.key")
    result = shell(lab, "dst", "retadm", "promote", "repl/secret", "--key-file", "/root/wrong.key", timeout=SLOW)
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "not the passphrase" not in result.stdout + result.stderr
    assert sh(lab, "dst", "zfs get -H -o value ovios:retadm.promoted repl/secret").stdout.strip() == "-"

    # with the key: loaded, promoted, mounted, the data the source's
    sh(lab, "dst", f"printf '%s' '{PASSPHRASE}' > {KEY} && chmod 600 {KEY}")
    result = shell(lab, "dst", "retadm", "promote", "repl/secret", "--key-file", KEY, timeout=SLOW)
    assert result.returncode == 0, result.stderr
    assert PASSPHRASE not in result.stdout + result.stderr
    props = sh(lab, "dst", "zfs get -H -o property,value keystatus,mounted,readonly repl/secret").stdout
    assert dict(line.split("\t") for line in props.splitlines()) == \
        {"keystatus": "available", "mounted": "yes", "readonly": "off"}
    assert checksums(lab, "src", "/data/secret") == checksums(lab, "dst", "/repl/secret")
    # the key is in no log, store or run file of either node (grep: 1 = not found)
    for node in ("src", "dst"):
        found = sh(lab, node, f"grep -rlF '{PASSPHRASE}' /var/log/ovios /etc/ovios /run/ovios", check=False)
        assert found.returncode == 1 and found.stdout == "", (node, found.stdout)


def test_a_pool_without_encryption_is_refused_unless_a_decrypted_replica_is_asked_for(fresh_openzfs_lab):
    lab = fresh_openzfs_lab
    encrypted_dataset(lab)
    sh(lab, "dst", "rm -f /var/tmp/plain.img && truncate -s 128M /var/tmp/plain.img && "
                   "zpool create -o cachefile=none -o feature@encryption=disabled plain /var/tmp/plain.img")
    result = shell(lab, "src", *init_args("plain"), timeout=SLOW)
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "encrypted" in result.stderr and "feature@encryption" in result.stderr, result.stderr
    assert "--decrypted" in result.stderr, result.stderr
    assert "data/secret" not in status(lab)
    assert sh(lab, "dst", "zfs list plain/secret", check=False).returncode != 0

    result = shell(lab, "src", *init_args("plain", "--decrypted"), timeout=SLOW)
    assert result.returncode == 0, result.stderr
    assert "will NOT be" in result.stderr, result.stderr
    row = wait_for(lab, "data/secret", timeout=SLOW)
    assert row["status"] == "idle", row
    assert row["send_mode"] == "decrypted", row
    assert "replicated DECRYPTED" in shell(lab, "src", "retadm", "status").stdout
    assert sh(lab, "dst", "zfs get -H -o value encryption plain/secret").stdout.strip() == "off"
    assert checksums(lab, "src", "/data/secret") == checksums(lab, "dst", "/plain/secret")


def test_an_interrupted_raw_full_send_resumes_raw(fresh_openzfs_lab):
    lab = fresh_openzfs_lab
    encrypted_dataset(lab)
    sh(lab, "src", "dd if=/dev/urandom of=/data/secret/big bs=1M count=32 status=none")
    result = shell(lab, "src", *init_args(), timeout=SLOW)
    assert result.returncode == 0, result.stderr
    kill_transfer_when(lab, "data/secret", 8 << 20)
    row = wait_for(lab, "data/secret", ("error",), timeout=SLOW)
    assert "died" in row["reason"], row
    assert sh(lab, "dst", "zfs get -H -o value receive_resume_token repl/secret").stdout.strip() not in ("", "-")

    result = shell(lab, "src", "retadm", "inc", "data/secret", timeout=SLOW)
    assert result.returncode == 0, result.stderr
    assert "resume the interrupted transfer" in sh(lab, "src", "cat /var/log/ovios/repl.log").stdout
    assert sent_bytes(last_end(lab, "data/secret")) < 32 << 20  # resumed, not sent again
    props = sh(lab, "dst", "zfs get -H -o property,value encryption,keystatus repl/secret").stdout
    found = dict(line.split("\t") for line in props.splitlines())
    assert found["encryption"] != "off" and found["keystatus"] == "unavailable", found
    assert status(lab)["data/secret"]["status"] == "idle"


def test_a_raw_replica_is_promoted_replicated_back_and_switched_back_encrypted(fresh_openzfs_lab):
    lab = fresh_openzfs_lab
    encrypted_dataset(lab)
    result = shell(lab, "src", *init_args(), timeout=SLOW)
    assert result.returncode == 0, result.stderr
    assert wait_for(lab, "data/secret", timeout=SLOW)["status"] == "idle"
    sh(lab, "dst", f"printf '%s' '{PASSPHRASE}' > {KEY} && chmod 600 {KEY}")
    for args in (("promote", "repl/secret", "--key-file", KEY), ("reverse", "repl/secret", "--yes")):
        if args[0] == "reverse":
            sh(lab, "dst", "echo failover > /repl/secret/failover.txt")
        result = shell(lab, "dst", "retadm", *args, timeout=SLOW)
        assert result.returncode == 0, result.stdout + result.stderr
    assert status(lab, "dst")["repl/secret"]["send_mode"] == "raw"
    result = shell(lab, "dst", "retadm", "switchback", "repl/secret", "--yes", timeout=SLOW)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sh(lab, "src", "zfs get -H -o value encryption data/secret").stdout.strip() != "off"
    files = checksums(lab, "src", "/data/secret")
    assert "./failover.txt" in files and files == checksums(lab, "dst", "/repl/secret")
    # the original task goes on, raw, onto its replica again
    sh(lab, "src", "echo home > /data/secret/home.txt")
    result = shell(lab, "src", "retadm", "inc", "data/secret", timeout=SLOW)
    assert result.returncode == 0, result.stderr
    assert sh(lab, "dst", "zfs get -H -o value encryption repl/secret").stdout.strip() != "off"

"""Stream flags on zfs-fuse: its ``zfs send`` has none of -L, -c and -e, its probe says so,
and a task set up there records none and sends exactly as before."""

from __future__ import annotations

import re

from replication_helpers import checksums, init, node_python, sh, shell, status

FLAGS = re.compile(r" -[Lce] ")


def test_zfs_fuse_records_no_stream_flags_and_sends_without_them(fresh_lab):
    lab = fresh_lab
    probe = node_python(lab, "src", "from ovios_shell_retadm.hosts import LocalHost; "
                                    "from ovios_shell_retadm.zfs import ZfsNode; "
                                    "c = ZfsNode(LocalHost()).capabilities(refresh=True); "
                                    "print(c.send_large_blocks, c.send_compressed, c.send_embedded)").stdout
    assert probe.split() == ["False", "False", "False"], probe

    dry = shell(lab, "src", "retadm", "init", "data/smbvol", "--dest", "dst", "--remote-pool", "repl",
                "--remote-name", "smbvol", "--properties", "no", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    sends = re.findall(r"zfs send [^|]*", dry.stdout)
    assert sends and not any(FLAGS.search(line) for line in sends), dry.stdout

    row = init(lab, "data/smbvol", "smbvol")
    assert row["send_flags"] == [], row
    sh(lab, "src", "echo changed >> /data/smbvol/readme.txt")
    dry = shell(lab, "src", "retadm", "inc", "data/smbvol", "--dry-run")
    sends = re.findall(r"zfs send [^|]*", dry.stdout)
    assert sends and not any(FLAGS.search(line) for line in sends), dry.stdout
    assert shell(lab, "src", "retadm", "inc", "data/smbvol").returncode == 0
    assert checksums(lab, "src", "/data/smbvol") == checksums(lab, "dst", "/repl/smbvol")
    assert status(lab)["data/smbvol"]["send_flags"] == []
    doctor = shell(lab, "src", "retadm", "doctor", "data/smbvol").stdout
    assert "OK    send flags: none" in doctor, doctor

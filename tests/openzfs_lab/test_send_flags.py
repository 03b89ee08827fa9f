"""Stream flags on real OpenZFS 2.x (QEMU lab): a task set up where both sides support them
sends compressed, large-block, embedded-data streams (``send -L -c -e``) for good, so a
``recordsize=1M`` dataset arrives with its blocks whole and compressed as they were; a task
recorded without flags (set up before they existed) goes on without them."""

from __future__ import annotations

import json
import re

from openzfs_helpers import SLOW, last_end, sent_bytes
from replication_helpers import checksums, node_python, sh, shell, status, wait_for

FLAGS = ["-L", "-c", "-e"]
MIB = 1 << 20


def large_compressible_dataset(lab, dataset: str = "data/big") -> None:
    """1M records, lz4: 24 MiB of text that compresses well, and 4 MiB that does not."""
    sh(lab, "src", f"zfs create -o recordsize=1M -o compression=lz4 {dataset} && "
                   f"yes 'ovios retadm sends its blocks as they are on disk' | head -c {24 * MIB} > /{dataset}/text && "
                   f"dd if=/dev/urandom of=/{dataset}/noise bs=1M count=4 status=none && sync", timeout=SLOW)


def block_size(lab, node: str, path: str) -> int:
    """A file's data block size: what ZFS reports as its I/O block (``st_blksize``)."""
    return int(sh(lab, node, f"stat -c %o {path}").stdout.strip())


def space(lab, node: str, dataset: str) -> dict[str, str]:
    out = sh(lab, node, f"zfs get -H -p -o property,value recordsize,compressratio,used,logicalused {dataset}").stdout
    return dict(line.split("\t") for line in out.splitlines())


def sends(text: str) -> list[str]:
    """The ``zfs send`` command lines a dry run prints."""
    return re.findall(r"zfs send [^|]*", text)


def test_a_large_block_compressed_dataset_travels_with_its_blocks_as_they_are(fresh_openzfs_lab):
    lab = fresh_openzfs_lab
    large_compressible_dataset(lab)
    args = ("retadm", "init", "data/big", "--dest", "dst", "--remote-pool", "repl", "--remote-name", "big",
            "--properties", "no")
    dry = shell(lab, "src", *args, "--dry-run", timeout=SLOW)
    assert dry.returncode == 0, dry.stderr
    assert sends(dry.stdout) and all(" -L -c -e " in line for line in sends(dry.stdout)), dry.stdout

    result = shell(lab, "src", *args, timeout=SLOW)
    assert result.returncode == 0, result.stderr
    row = wait_for(lab, "data/big", timeout=SLOW)
    assert row["status"] == "idle", row
    assert row["send_flags"] == FLAGS, row
    full = sent_bytes(last_end(lab, "data/big"))

    sh(lab, "src", f"yes 'and its changes too' | head -c {8 * MIB} >> /data/big/text; zfs snapshot data/big@tuesday")
    dry = shell(lab, "src", "retadm", "inc", "data/big", "--dry-run", timeout=SLOW)
    assert sends(dry.stdout) and all(" -L -c -e " in line for line in sends(dry.stdout)), dry.stdout
    result = shell(lab, "src", "retadm", "inc", "data/big", timeout=SLOW)
    assert result.returncode == 0, result.stderr
    assert status(lab)["data/big"]["send_flags"] == FLAGS

    assert checksums(lab, "src", "/data/big") == checksums(lab, "dst", "/repl/big")
    # -L: the replica's blocks are 1M as on the source, not split into 128K ones
    assert block_size(lab, "dst", "/repl/big/text") == block_size(lab, "src", "/data/big/text") == MIB
    # -c: the stream carried the compressed blocks: far fewer bytes than the data holds
    source, replica = space(lab, "src", "data/big"), space(lab, "dst", "repl/big")
    print(f"full send {full} bytes; source {source}; replica {replica}")
    assert full < 12 * MIB, full  # 28 MiB of data, 24 of it compressing to almost nothing
    assert int(replica["logicalused"]) > 2 * int(replica["used"]), replica
    assert abs(int(replica["used"]) - int(source["used"])) < 2 * MIB, (source, replica)
    assert "OK    send flags: -L -c -e" in shell(lab, "src", "retadm", "doctor", "data/big", timeout=SLOW).stdout


def test_a_task_recorded_without_flags_goes_on_without_them(fresh_openzfs_lab):
    """A task set up before stream flags existed (none recorded) never gets -L: its replica's
    large blocks stay split as its earlier sends split them, and the run records 'none'."""
    lab = fresh_openzfs_lab
    large_compressible_dataset(lab)
    node_python(lab, "src", "import sys; from ovios_shell_retadm.replication.task_store import TaskRecord, "
                            "TaskStore, new_identity; assert TaskStore().create(TaskRecord(dataset='data/big', "
                            "destination='dst', remote_dataset='repl/big', properties=False, "
                            "identity=new_identity(), send_mode='plain'))")
    row = status(lab)["data/big"]
    assert row["send_flags"] is None, row
    dry = shell(lab, "src", "retadm", "inc", "data/big", "--dry-run", timeout=SLOW)
    assert sends(dry.stdout), dry.stdout
    assert not any(re.search(r" -[Lce] ", line) for line in sends(dry.stdout)), dry.stdout
    result = shell(lab, "src", "retadm", "inc", "data/big", timeout=SLOW)
    assert result.returncode == 0, result.stderr
    row = status(lab)["data/big"]
    assert row["status"] == "idle" and row["send_flags"] == [], row
    print(f"full send without flags {sent_bytes(last_end(lab, 'data/big'))} bytes; "
          f"source {space(lab, 'src', 'data/big')}; replica {space(lab, 'dst', 'repl/big')}")
    sh(lab, "src", "echo more >> /data/big/noise; zfs snapshot data/big@tuesday")
    assert shell(lab, "src", "retadm", "inc", "data/big", timeout=SLOW).returncode == 0
    assert checksums(lab, "src", "/data/big") == checksums(lab, "dst", "/repl/big")
    assert block_size(lab, "dst", "/repl/big/text") == 128 << 10  # split, as it always was
    records = json.loads(shell(lab, "src", "retadm", "status", "--json").stdout)
    assert [r["send_flags"] for r in records] == [[]]

"""Names ZFS allows and replication must carry, on the lab (real zfs-fuse, real ssh).

- a user snapshot with a space in its name (``@before upgrade``): the oldest one (sent in
  full), held by another tool, and the common snapshot a run goes on from;
- a dataset with ``:`` in its name (``data/smb:vol`` → ``repl/smb:vol``): promote, reverse
  and switchback, whose origin mark ``<host>:<dataset>`` then holds two ``:``.
"""

from __future__ import annotations

from replication_helpers import checksums, guids, init, prop, sh, shell, snapshots, status, writable

LOG = "/var/log/ovios/repl.log"


def _inc(lab, dataset: str = "data/smbvol", node: str = "src"):
    return shell(lab, node, "retadm", "inc", dataset)


def test_user_snapshots_with_spaces_oldest_held_and_common(fresh_lab):
    lab = fresh_lab
    # the oldest snapshot, held by another tool: sent in full, its hold probed every run
    sh(lab, "src", "echo one > /data/smbvol/one.txt; zfs snapshot 'data/smbvol@before upgrade';"
                   " zfs hold keep 'data/smbvol@before upgrade'; echo two > /data/smbvol/two.txt")
    init(lab, "data/smbvol", "smbvol")
    tracking = status(lab)["data/smbvol"]["last_snapshot"]
    assert snapshots(lab, "dst", "repl/smbvol") == ["before upgrade", tracking]
    assert guids(lab, "dst", "repl/smbvol")["before upgrade"] == guids(lab, "src", "data/smbvol")["before upgrade"]

    # one more user snapshot with a space travels with an incremental
    sh(lab, "src", "echo three > /data/smbvol/three.txt; zfs snapshot 'data/smbvol@after fix';"
                   " echo four > /data/smbvol/four.txt")
    result = _inc(lab)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    tracking = status(lab)["data/smbvol"]["last_snapshot"]
    assert snapshots(lab, "dst", "repl/smbvol") == ["before upgrade", "after fix", tracking]

    # our tracking snapshot destroyed by hand on the source: @after fix is the common one now
    tag = status(lab)["data/smbvol"]["hold_tag"]
    sh(lab, "src", f"zfs release {tag} data/smbvol@{tracking}; zfs destroy data/smbvol@{tracking};"
                   " echo five > /data/smbvol/five.txt")
    result = _inc(lab)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    log = sh(lab, "src", f"cat {LOG}").stdout
    assert f"what='roll the destination back to @after fix: discards its changes since then and destroys " \
           f"@{tracking}'" in log, log
    assert "what='send the changes @after fix -> @retadm_" in log, log
    common = status(lab)["data/smbvol"]["last_snapshot"]
    assert snapshots(lab, "dst", "repl/smbvol") == ["before upgrade", "after fix", common]
    src_guids, dst_guids = guids(lab, "src", "data/smbvol"), guids(lab, "dst", "repl/smbvol")
    assert all(src_guids[name] == dst_guids[name] for name in ("before upgrade", "after fix", common))
    assert checksums(lab, "src", "/data/smbvol") == checksums(lab, "dst", "/repl/smbvol")
    assert {"./one.txt", "./three.txt", "./five.txt"} <= set(checksums(lab, "dst", "/repl/smbvol"))
    assert prop(lab, "src", "userrefs", "data/smbvol@before upgrade") == "1"  # the other tool's hold stays
    assert status(lab)["data/smbvol"]["status"] == "idle"


def test_failover_and_failback_of_a_dataset_with_colons_in_its_name(fresh_lab):
    lab = fresh_lab
    sh(lab, "src", "zfs create 'data/smb:vol' && echo one > '/data/smb:vol/one.txt'")
    init(lab, "data/smb:vol", "smb:vol")
    assert prop(lab, "dst", "ovios:retadm.origin", "repl/smb:vol") == "192.168.0.149:data/smb:vol"

    dry = shell(lab, "dst", "retadm", "promote", "repl/smb:vol", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "  mark the task of data/smb:vol broken on 192.168.0.149 (if it answers)\n" in dry.stdout, dry.stdout
    promoted = shell(lab, "dst", "retadm", "promote", "repl/smb:vol")
    assert (promoted.returncode, promoted.stderr) == (0, ""), promoted.stderr
    assert writable(lab, "dst", "/repl/smb:vol")
    row = status(lab)["data/smb:vol"]
    assert row["status"] == "broken" and "promoted on its partner" in row["reason"], row
    sh(lab, "dst", "echo failover > '/repl/smb:vol/failover.txt'")

    back = shell(lab, "dst", "retadm", "reverse", "repl/smb:vol", "--yes")
    assert back.returncode == 0, back.stderr
    assert "repl/smb:vol: replicated back to 192.168.0.149:data/smb:vol at @" in back.stdout, back.stdout
    assert checksums(lab, "src", "/data/smb:vol") == checksums(lab, "dst", "/repl/smb:vol")
    assert prop(lab, "src", "ovios:retadm.origin", "data/smb:vol") == "192.168.0.111:repl/smb:vol"

    sh(lab, "dst", "echo later > '/repl/smb:vol/later.txt'")
    switched = shell(lab, "dst", "retadm", "switchback", "repl/smb:vol", "--yes")
    assert switched.returncode == 0, switched.stderr
    assert switched.stdout.startswith("switch back repl/smb:vol -> 192.168.0.149:data/smb:vol:"), switched.stdout
    assert prop(lab, "dst", "ovios:retadm.origin", "repl/smb:vol") == "192.168.0.149:data/smb:vol"
    assert prop(lab, "src", "ovios:retadm.origin", "data/smb:vol") == "-"
    assert writable(lab, "src", "/data/smb:vol") and not writable(lab, "dst", "/repl/smb:vol")

    sh(lab, "src", "echo home > '/data/smb:vol/home.txt'")
    result = _inc(lab, "data/smb:vol")
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    files = checksums(lab, "src", "/data/smb:vol")
    assert files == checksums(lab, "dst", "/repl/smb:vol")
    assert {"./one.txt", "./failover.txt", "./later.txt", "./home.txt"} <= set(files)
    assert status(lab)["data/smb:vol"]["status"] == "idle"

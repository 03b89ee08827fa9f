"""retadm reset on the lab: the task and its marks go, the replicated data stays."""

from __future__ import annotations

from replication_helpers import checksums, init, set_task_field, sh, shell, snapshots, status


def _marks(lab) -> dict[str, str]:
    listing = "zfs list -H -t all -o name,userrefs 2>/dev/null"
    return {node: sh(lab, node, listing).stdout for node in ("src", "dst")}


def test_reset_removes_tracking_snapshots_and_holds_and_keeps_the_data(fresh_lab):
    lab = fresh_lab
    init(lab, "data/smbvol", "smbvol")
    sh(lab, "src", "zfs snapshot data/smbvol@keepme; echo x >> /data/smbvol/readme.txt")
    assert shell(lab, "src", "retadm", "inc", "data/smbvol").returncode == 0
    before = _marks(lab)

    dry = shell(lab, "src", "retadm", "reset", "data/smbvol", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("dry run: reset data/smbvol -> dst:repl/smbvol (the replicated data stays):")
    assert "destroy @retadm_" in dry.stdout and "on the destination" in dry.stdout
    assert "keepme" not in dry.stdout
    unconfirmed = shell(lab, "src", "retadm", "reset", "data/smbvol")
    assert unconfirmed.returncode == 1
    assert unconfirmed.stderr.strip() == "retadm reset: not confirmed; nothing was changed (use --yes in scripts)"
    assert _marks(lab) == before and "data/smbvol" in status(lab)

    done = shell(lab, "src", "retadm", "reset", "data/smbvol", "--yes")
    assert done.returncode == 0, done.stderr
    assert "data/smbvol" not in status(lab)
    for node, dataset in (("src", "data/smbvol"), ("dst", "repl/smbvol")):
        assert snapshots(lab, node, dataset) == ["keepme"]  # the user's snapshot stays; ours are gone
        assert sh(lab, node, f"zfs get -H -o value userrefs {dataset}@keepme").stdout.strip() == "0"
    assert checksums(lab, "src", "/data/smbvol") == checksums(lab, "dst", "/repl/smbvol")

    # the dataset can be set up again (the old replica keeps its name and data)
    init(lab, "data/smbvol", "smbvol2")
    assert checksums(lab, "src", "/data/smbvol") == checksums(lab, "dst", "/repl/smbvol2")


def test_reset_with_the_partner_unreachable_says_what_was_left(fresh_lab):
    lab = fresh_lab
    init(lab, "data/smbvol", "smbvol")
    # the partner moved away: the task now names an address nobody answers
    set_task_field(lab, "data/smbvol", "destination", "192.168.0.99")
    result = shell(lab, "src", "retadm", "reset", "data/smbvol", "--yes")
    assert result.returncode == 0, result.stderr
    assert "192.168.0.99 is unreachable" in result.stderr
    assert "were left in place" in result.stderr
    assert [s for s in snapshots(lab, "src", "data/smbvol") if s.startswith("retadm_")] == []
    assert [s for s in snapshots(lab, "dst", "repl/smbvol") if s.startswith("retadm_")] != []


def test_reset_of_a_dataset_without_a_task_is_refused(fresh_lab):
    result = shell(fresh_lab, "src", "retadm", "reset", "data/smbvol", "--yes")
    assert (result.returncode, result.stderr.strip()) == (1, "retadm reset: data/smbvol has no replication task")

"""``retadm edit --address`` on the lab: the task follows its destination to a new address only
where that address reaches the same replica (its origin mark, the common snapshot's guid)."""

from __future__ import annotations

from replication_helpers import init, sh, shell, status

DST_IP = "192.168.0.111"  # dst, as the lab's nodes also know it


def test_a_new_address_that_reaches_the_same_replica(fresh_lab):
    lab = fresh_lab
    init(lab, "data/smbvol", "smbvol")
    mark = sh(lab, "dst", "zfs get -H -o value ovios:retadm.origin repl/smbvol").stdout.strip()

    # not the task's replica there (another origin mark): refused, nothing changed
    sh(lab, "dst", "zfs set ovios:retadm.origin=elsewhere:data/other repl/smbvol")
    refused = shell(lab, "src", "retadm", "edit", "data/smbvol", "--address", DST_IP)
    assert (refused.returncode, refused.stderr.strip()) == (1, (
        f"retadm edit: repl/smbvol on {DST_IP} is not marked as a replica of data/smbvol (its origin mark: "
        "elsewhere:data/other): that is not the task's replica")), refused.stderr
    assert status(lab)["data/smbvol"]["destination"] == "dst"
    sh(lab, "dst", f"zfs set ovios:retadm.origin={mark} repl/smbvol")

    dry = shell(lab, "src", "retadm", "edit", "data/smbvol", "--address", DST_IP, "--dry-run")
    assert dry.stdout == (f"dry run: data/smbvol -> dst:repl/smbvol: would change destination dst -> {DST_IP} "
                          "(the replica there is the task's)\n"), dry.stderr
    assert status(lab)["data/smbvol"]["destination"] == "dst"
    moved = shell(lab, "src", "retadm", "edit", "data/smbvol", "--address", DST_IP)
    assert (moved.returncode, moved.stdout) == (0, f"data/smbvol -> dst:repl/smbvol: destination dst -> {DST_IP}\n")
    row = status(lab)["data/smbvol"]
    assert (row["destination"], row["target"]) == (DST_IP, f"{DST_IP}:repl/smbvol")

    # the next run goes on from the same common snapshot over the new address
    sh(lab, "src", "echo moved > /data/smbvol/moved.txt")
    result = shell(lab, "src", "retadm", "inc", "data/smbvol")
    assert (result.returncode, result.stderr) == (0, "")
    assert sh(lab, "dst", "cat /repl/smbvol/moved.txt").stdout == "moved\n"
    assert status(lab)["data/smbvol"]["status"] == "idle"

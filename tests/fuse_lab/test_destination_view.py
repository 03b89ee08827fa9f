"""The destination's view on the lab: ``retadm status`` on the partner lists the replicas it
holds for src's tasks — source, newest snapshot and its age, restore points, promoted or not."""

from __future__ import annotations

import json

from replication_helpers import init, shell, status


def test_the_partner_shows_the_replicas_it_holds(fresh_lab):
    lab = fresh_lab
    init(lab, "data/smbvol", "smbvol", retention="last=2")
    for _ in range(2):
        assert shell(lab, "src", "retadm", "inc", "data/smbvol").returncode == 0
    newest = status(lab)["data/smbvol"]["last_snapshot"]

    [row] = json.loads(shell(lab, "dst", "retadm", "status", "--replicas", "--json").stdout)
    assert (row["dataset"], row["newest"], row["restore_points"], row["promoted"]) == \
        ("repl/smbvol", newest, 1, None), row
    assert row["origin"].endswith(":data/smbvol") and 0 <= row["age_seconds"] < 120, row
    table = shell(lab, "dst", "retadm", "status").stdout.splitlines()
    assert table[0].split() == ["INCOMING", "REPLICA", "SOURCE", "NEWEST", "SNAPSHOT", "AGE", "RESTORE", "POINTS",
                                "PROMOTED"], table
    cells = table[2].split()
    assert (cells[0], cells[1], cells[2], cells[-2:]) == ("repl/smbvol", row["origin"], f"@{newest}", ["1", "no"])
    assert shell(lab, "dst", "retadm", "status", "--json").stdout.strip() == "[]"  # the tasks' list, as ever

    # the source holds none; its status is the tasks alone
    assert "INCOMING" not in shell(lab, "src", "retadm", "status").stdout
    assert shell(lab, "src", "retadm", "status", "--replicas").stdout.splitlines()[-1] == \
        "(no incoming replicas: no partner replicates here)"
    named = shell(lab, "src", "retadm", "status", "repl/smbvol", "--replicas")
    assert (named.returncode, named.stderr.strip()) == \
        (1, "retadm status: repl/smbvol is no replica of a partner's task here")

    # promoted: what a failover made of it shows
    assert shell(lab, "dst", "retadm", "promote", "repl/smbvol", timeout=120).returncode == 0
    [row] = json.loads(shell(lab, "dst", "retadm", "status", "repl/smbvol", "--replicas", "--json").stdout)
    assert row["promoted"], row
    assert shell(lab, "dst", "retadm", "status", "repl/smbvol").stdout.splitlines()[2].split()[-3:-1] == \
        ["yes,", "at"]

"""``completions/ovios-shell.bash`` inside lab node ``src``, where ``zfs list`` answers:
the datasets it offers."""

from __future__ import annotations

import json
import time

from ovios_lab import Lab

from completion_helpers import completion_script, parse
from replication_helpers import shell, wait_for


def complete_in(lab: Lab, *words: str, node: str = "src") -> list[str]:
    result = lab.exec(node, ["bash", "-c", completion_script(list(words))], timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return parse(result.stdout)


def test_datasets_local_then_replicated(fresh_lab: Lab):
    lab = fresh_lab
    # init: the local filesystems and volumes, not the pools
    assert complete_in(lab, "ovios-shell", "retadm", "init", "") == ["data/smbvol", "esx/lun01"]
    assert complete_in(lab, "ovios-shell", "retadm", "init", "e") == ["esx/lun01"]
    # inc: nothing before init, because the node's ovios-shell answers "no task" (not because it
    # does not answer: the same completion lists data/smbvol after init, below)
    assert json.loads(lab.exec("src", ["ovios-shell", "retadm", "status", "--json"], check=True).stdout) == []
    assert complete_in(lab, "ovios-shell", "retadm", "inc", "") == []

    init = lab.exec("src", ["ovios-shell", "retadm", "init", "data/smbvol", "--dest", "dst", "--remote-pool", "repl"])
    assert init.returncode == 0, init.stderr

    # inc and status: the replicated datasets only; init: what is left to replicate
    assert complete_in(lab, "ovios-shell", "retadm", "inc", "") == ["data/smbvol"]
    assert complete_in(lab, "ovios-shell", "retadm", "inc", "d") == ["data/smbvol"]
    assert complete_in(lab, "ovios-shell", "retadm", "inc", "e") == []
    assert complete_in(lab, "ovios-shell", "retadm", "status", "") == ["data/smbvol"]
    assert complete_in(lab, "ovios-shell", "retadm", "init", "") == ["esx/lun01"]
    # once the dataset is given, no second one is offered
    assert complete_in(lab, "ovios-shell", "retadm", "inc", "data/smbvol", "") == []
    assert complete_in(lab, "ovios-shell", "retadm", "init", "--dest", "dst", "") == ["esx/lun01"]

    # let the background full replication finish before the next reset kills what runs
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        status = lab.exec("src", ["ovios-shell", "retadm", "status", "--json"])
        if json.loads(status.stdout)[0]["status"] != "running_full":
            break
        time.sleep(0.5)


def test_partners_pools_and_replicas(fresh_lab: Lab):
    """--dest: the partners this node knows (not itself); --remote-pool: that partner's pools,
    asked over ssh; promote, reverse and switchback: only the replicas each can act on."""
    lab = fresh_lab
    dst = lab.node_address("dst")
    partners = complete_in(lab, "ovios-shell", "retadm", "init", "--dest", "")
    assert "dst" in partners and dst in partners and "src" not in partners, partners
    assert complete_in(lab, "ovios-shell", "retadm", "init", "--dest", "d") == ["dst"]
    assert complete_in(lab, "ovios-shell", "retadm", "init", "data/smbvol", "--dest", "dst", "--remote-pool", "") \
        == ["repl"]
    # a partner that does not answer completes nothing, and soon
    started = time.monotonic()
    assert complete_in(lab, "ovios-shell", "retadm", "init", "--dest", "192.0.2.1", "--remote-pool", "") == []
    assert time.monotonic() - started < 20
    assert complete_in(lab, "ovios-shell", "options", "ssh.allow.root", "") == ["keys", "off", "on"]  # bash sorts

    # before any replica: nothing to promote on dst
    assert complete_in(lab, "ovios-shell", "retadm", "promote", "", node="dst") == []
    init = shell(lab, "src", "retadm", "init", "data/smbvol", "--dest", "dst", "--remote-pool", "repl")
    assert init.returncode == 0, init.stderr
    assert wait_for(lab, "data/smbvol")["status"] == "idle"
    # the replica, and not dst's other datasets; not reversible before it is promoted
    assert complete_in(lab, "ovios-shell", "retadm", "promote", "", node="dst") == ["repl/smbvol"]
    assert complete_in(lab, "ovios-shell", "retadm", "reverse", "", node="dst") == []
    # the source's own dataset carries no mark of its own: nothing to promote on src
    assert complete_in(lab, "ovios-shell", "retadm", "promote", "") == []

    promoted = shell(lab, "dst", "retadm", "promote", "repl/smbvol")
    assert promoted.returncode == 0, promoted.stderr
    assert complete_in(lab, "ovios-shell", "retadm", "promote", "", node="dst") == []
    assert complete_in(lab, "ovios-shell", "retadm", "reverse", "", node="dst") == ["repl/smbvol"]
    assert complete_in(lab, "ovios-shell", "retadm", "switchback", "", node="dst") == []  # no reverse yet

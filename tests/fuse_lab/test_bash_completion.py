"""``completions/ovios-shell.bash`` inside lab node ``src``, where ``zfs list`` answers:
the datasets it offers."""

from __future__ import annotations

import json
import time

from ovios_lab import Lab

from completion_helpers import completion_script, parse


def complete_in(lab: Lab, *words: str) -> list[str]:
    result = lab.exec("src", ["bash", "-c", completion_script(list(words))], timeout=60)
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

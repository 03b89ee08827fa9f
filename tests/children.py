"""The children scenario, run on both labs: a task replicates one dataset; init and doctor say
which children it leaves out, ``--recursive`` is refused with the reason, and a child given a
task of its own is replicated, and no longer named."""

from __future__ import annotations

from replication_helpers import init, sh, shell, status, wait_for

NOTE = ("data/smbvol has child datasets this task does not replicate: data/smbvol/projects, "
        "data/smbvol/projects/archive (a task replicates one dataset; give each child a task of its own: "
        "'retadm init data/smbvol/projects')")


def children_are_named_and_each_gets_a_task(lab, timeout: float = 120) -> None:
    sh(lab, "src", "zfs create data/smbvol/projects && zfs create data/smbvol/projects/archive"
                   " && echo kept > /data/smbvol/projects/archive/file.txt")
    recursive = shell(lab, "src", "retadm", "init", "data/smbvol", "--dest", "dst", "--remote-pool", "repl",
                      "--recursive")
    assert recursive.returncode == 2 and recursive.stderr.startswith("retadm init: --recursive is not offered: a task "
                                                                     "replicates one dataset"), recursive.stderr
    assert status(lab) == {}

    started = shell(lab, "src", "retadm", "init", "data/smbvol", "--dest", "dst", "--remote-pool", "repl",
                    "--retention", "daily=7", timeout=timeout)
    assert started.returncode == 0 and f"warning: {NOTE}" in started.stderr, started.stderr
    wait_for(lab, "data/smbvol", timeout=timeout)
    doctor = shell(lab, "src", "retadm", "doctor", "data/smbvol", timeout=timeout).stdout
    assert f"WARN  children: {NOTE}" in doctor, doctor

    init(lab, "data/smbvol/projects/archive", "archive")
    init(lab, "data/smbvol/projects", "projects")
    doctor = shell(lab, "src", "retadm", "doctor", "data/smbvol", timeout=timeout).stdout
    assert "OK    children: none, or each replicated by a task of its own" in doctor, doctor
    assert sh(lab, "dst", "cat /repl/archive/file.txt").stdout == "kept\n"

"""Fault scenarios that run the same way on both labs (zfs-fuse and OpenZFS).

Each one breaks a replicated ``data/smbvol`` -> ``dst:repl/smbvol`` by hand, checks what
``status``, ``doctor`` and ``repair`` say about it, and ends with the next normal ``inc``
replicating: every file equal, every user snapshot on both sides with the same guid, one
tracking snapshot per side, held on both.  ``timeout`` is per shell command (the OpenZFS
lab is emulated and slow).
"""

from __future__ import annotations

from replication_helpers import checksums, guids, init, node_python, sh, shell, snapshots, status


def assert_replicated(lab, user_snapshots: tuple[str, ...] = (), user_files: tuple[str, ...] = (),
                      kept: tuple[str, ...] = ()) -> str:
    """The state after a good run: idle, one tracking snapshot on each side, the same one,
    held on both, recorded; every file equal; every user snapshot and file still there.
    ``kept``: older tracking snapshots the run had to leave on the source (busy)."""
    row = status(lab)["data/smbvol"]
    assert (row["status"], row["reason"]) == ("idle", None), row
    common = row["last_snapshot"]
    src_tracking = [s for s in snapshots(lab, "src", "data/smbvol") if s.startswith("retadm_")]
    dst_tracking = [s for s in snapshots(lab, "dst", "repl/smbvol") if s.startswith("retadm_")]
    assert (src_tracking, dst_tracking) == ([*kept, common], [common]), (src_tracking, dst_tracking, row)
    for node, dataset in (("src", "data/smbvol"), ("dst", "repl/smbvol")):
        assert sh(lab, node, f"zfs get -H -o value userrefs {dataset}@{common}").stdout.strip() == "1", node
    source = checksums(lab, "src", "/data/smbvol")
    assert source == checksums(lab, "dst", "/repl/smbvol")
    for name in user_files:
        assert f"./{name}" in source, name
    src_guids, dst_guids = guids(lab, "src", "data/smbvol"), guids(lab, "dst", "repl/smbvol")
    for name in user_snapshots:
        assert name in src_guids and src_guids[name] == dst_guids.get(name), name
    return common


def _start(lab) -> str:
    """A user file and snapshot, replicated; then one more incremental.  Returns the
    tracking snapshot both sides share."""
    sh(lab, "src", "echo mine > /data/smbvol/mine.txt; zfs snapshot data/smbvol@monday")
    init(lab, "data/smbvol", "smbvol")
    sh(lab, "src", "echo tuesday > /data/smbvol/tuesday.txt")
    return _inc_ok(lab)


def _replication_state(lab) -> dict:
    """What a dry run must leave as it is: each side's snapshots (guids), holds and readonly,
    bookmarks, the replica's files and the task's record."""
    state: dict = {}
    for node, dataset in (("src", "data/smbvol"), ("dst", "repl/smbvol")):
        bookmarks = sh(lab, node, f"zfs list -H -o name -t bookmark -d 1 {dataset}", check=False)  # not on zfs-fuse
        state[node] = (guids(lab, node, dataset),
                       sh(lab, node, f"zfs get -H -o name,property,value userrefs,readonly -d 1 {dataset}").stdout,
                       bookmarks.returncode, bookmarks.stdout)
    state["replica files"] = checksums(lab, "dst", "/repl/smbvol")
    state["record"] = node_python(lab, "src", "import json; from ovios_shell_retadm.store import Store; "
                                              "print(json.dumps(Store().tasks_of('data/smbvol')[0]))").stdout
    return state


def _inc_ok(lab, timeout: float = 600) -> str:
    result = shell(lab, "src", "retadm", "inc", "data/smbvol", timeout=timeout)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    return status(lab)["data/smbvol"]["last_snapshot"]


def destination_rolled_back(lab, timeout: float = 600) -> None:
    """The guide's example: the destination rolled back to an older snapshot by hand (its
    hold on the newer tracking snapshot released first, as ZFS demands).  Nothing on the
    source is lost; the next run sends from the snapshot the two sides still share."""
    common = _start(lab)
    tag = status(lab)["data/smbvol"]["hold_tag"]
    sh(lab, "dst", f"zfs release {tag} repl/smbvol@{common}; zfs rollback -r repl/smbvol@monday")
    assert snapshots(lab, "dst", "repl/smbvol") == ["monday"]
    sh(lab, "src", "echo wednesday > /data/smbvol/wednesday.txt")

    doctor = shell(lab, "src", "retadm", "doctor", "data/smbvol", timeout=timeout)
    assert doctor.returncode == 0, doctor.stdout  # a warning: the next run copes
    assert "  WARN  common snapshot: @monday (guid " in doctor.stdout, doctor.stdout
    assert f"the recorded @{common} (guid " in doctor.stdout and "is missing on the destination" in doctor.stdout
    # repair rolls a replica back only when it may have been written since the common snapshot:
    # OpenZFS tells (``written``), zfs-fuse cannot, so there it may have been
    written = sh(lab, "dst", "zfs get -H -p -o value written repl/smbvol", check=False)
    may_be_written = written.returncode != 0 or written.stdout.strip() != "0"
    before = _replication_state(lab)
    dry = shell(lab, "src", "retadm", "repair", "data/smbvol", "--dry-run", timeout=timeout)
    assert (dry.returncode, dry.stderr) == (0, ""), dry.stderr
    lines = dry.stdout.splitlines()
    assert lines[0] == "dry run: data/smbvol -> dst:repl/smbvol (nothing is changed)", dry.stdout
    steps = [line.strip() for line in lines[1:]]
    if may_be_written:
        # back to @monday, the newest snapshot the replica has: no snapshot of it is lost
        assert steps == ["roll the destination back to @monday: discards its changes since then and destroys "
                         "no snapshot", "then: a normal run from what the destination has afterwards"], dry.stdout
    else:
        # nothing to roll back: the normal run, from @monday, with the source's snapshots after it
        assert not [step for step in steps if step.startswith(("roll ", "then:"))], dry.stdout
        sends = [step for step in steps if step.startswith("send ")]
        assert len(sends) == 1 and sends[0].startswith("send the changes @monday -> @retadm_"), dry.stdout
        assert sends[0].endswith(" and every snapshot in between"), dry.stdout
        assert f"destroy @{common} on the source" in steps, dry.stdout  # superseded, released first
        commands = [step for step in steps if step.startswith("command: ")]
        assert len(commands) == 1 and "zfs send" in commands[0] and "@monday" in commands[0], dry.stdout
    assert _replication_state(lab) == before  # a dry run changes nothing

    _inc_ok(lab, timeout)
    assert_replicated(lab, user_snapshots=("monday",), user_files=("mine.txt", "tuesday.txt", "wednesday.txt"))
    log = sh(lab, "src", "cat /var/log/ovios/repl.log").stdout
    assert "send the changes @monday -> @retadm_" in log, log


def destination_modified(lab, timeout: float = 600) -> None:
    """Files written on the replica (readonly lifted by hand) and a snapshot taken there:
    inc refuses, repair shows what is lost there, asks, and only then rolls back."""
    common = _start(lab)
    sh(lab, "dst", "zfs set readonly=off repl/smbvol; echo local > /repl/smbvol/local.txt;"
                   " zfs snapshot repl/smbvol@dstonly")
    sh(lab, "src", "echo wednesday > /data/smbvol/wednesday.txt")

    refused = shell(lab, "src", "retadm", "inc", "data/smbvol", timeout=timeout)
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert f"has diverged after @{common}" in refused.stderr and "@dstonly" in refused.stderr
    assert status(lab)["data/smbvol"]["status"] == "error"

    unconfirmed = shell(lab, "src", "retadm", "repair", "data/smbvol", timeout=timeout)
    assert unconfirmed.returncode == 1 and "not confirmed; nothing was changed" in unconfirmed.stderr
    assert "destroys @dstonly" in unconfirmed.stdout, unconfirmed.stdout
    assert "dstonly" in snapshots(lab, "dst", "repl/smbvol")
    assert "local.txt" in sh(lab, "dst", "ls /repl/smbvol").stdout

    done = shell(lab, "src", "retadm", "repair", "data/smbvol", "--yes", timeout=timeout)
    assert done.returncode == 0, done.stderr
    _inc_ok(lab, timeout)
    assert "dstonly" not in snapshots(lab, "dst", "repl/smbvol")
    assert_replicated(lab, user_snapshots=("monday",), user_files=("mine.txt", "tuesday.txt", "wednesday.txt"))
    # read-only again (zfs-fuse shows a mounted replica's readonly as "off temporary": write)
    write = sh(lab, "dst", "echo x > /repl/smbvol/intruder.txt", check=False)
    assert write.returncode != 0 and "Read-only" in write.stderr, write


def holds_released(lab, timeout: float = 600) -> None:
    """Our holds released by hand on both sides: doctor says so, the next run puts them back."""
    common = _start(lab)
    tag = status(lab)["data/smbvol"]["hold_tag"]
    assert tag.startswith("retadm_")  # the task's own tag, not every task's
    sh(lab, "src", f"zfs release {tag} data/smbvol@{common}")
    sh(lab, "dst", f"zfs release {tag} repl/smbvol@{common}")
    doctor = shell(lab, "src", "retadm", "doctor", "data/smbvol", timeout=timeout)
    warning = f"  WARN  holds: @{common} is not held (tag {tag}) on the source and the destination: "
    assert warning in doctor.stdout, doctor.stdout
    _inc_ok(lab, timeout)
    # held again on both sides (OpenZFS sees that nothing was written and re-holds the same
    # snapshot; zfs-fuse cannot tell, and sends a new one)
    assert_replicated(lab, user_snapshots=("monday",), user_files=("mine.txt", "tuesday.txt"))

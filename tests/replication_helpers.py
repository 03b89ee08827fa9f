"""Helpers for the tests that replicate on the lab: run the shell, wait, compare."""

from __future__ import annotations

import json
import time

from ovios_shell_retadm.peer import python_argv


def shell(lab, node: str, *args: str, env: tuple[str, ...] = (), input: str | None = None, timeout: float = 120):
    """One-shot ``ovios-shell ARGS`` inside a node (no terminal; ``input``: its stdin)."""
    return lab.exec(node, ["env", *env, "ovios-shell", *args], input=input, timeout=timeout)


def sh(lab, node: str, script: str, check: bool = True, timeout: float = 120):
    return lab.exec(node, ["sh", "-c", script], check=check, timeout=timeout)


def node_python(lab, node: str, code: str, *args: str, input: str | None = None, check: bool = True):
    """``python -c CODE ARGS`` inside a node, with the Python behind the node's ovios-shell
    (the machine's ``python3`` need not have this package)."""
    return lab.exec(node, python_argv("-c", code, *args), input=input, check=check)


def set_task_field(lab, dataset: str, field: str, value: str, node: str = "src") -> None:
    """Change one field of the dataset's only task's record in the node's store (what no command
    changes yet); a changed destination or remote dataset is a changed key: stored anew under it."""
    node_python(lab, node, "import sys; from ovios_shell_retadm.replication.task_store import TaskRecord, TaskStore; "
                           "tasks = TaskStore(); [old] = tasks.of(sys.argv[1]); "
                           "new = TaskRecord.from_dict({**old.to_dict(), sys.argv[2]: sys.argv[3]}); "
                           "tasks.delete(old.key); assert tasks.create(new)",
                dataset, field, value)


def status(lab, node: str = "src") -> dict[str, dict]:
    result = shell(lab, node, "retadm", "status", "--json")
    assert result.returncode == 0, result.stderr
    return {row["dataset"]: row for row in json.loads(result.stdout)}


def wait_for(lab, dataset: str, states: tuple[str, ...] = ("idle", "error"), timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        row = status(lab).get(dataset)
        if row and row["status"] in states:
            return row
        if time.monotonic() > deadline:
            raise AssertionError(f"{dataset} did not reach {states} in {timeout}s: {row}")
        time.sleep(0.3)


def init(lab, dataset: str, remote_name: str, properties: str = "no", retention: str = "none") -> dict:
    """``retadm init`` of ``dataset`` to dst's pool repl, waited for.  Without restore points unless
    asked: these tests count the snapshots run by run, and with a policy by the hour two runs either
    side of one would keep one more (test_retention.py is about the policies)."""
    result = shell(lab, "src", "retadm", "init", dataset, "--dest", "dst", "--remote-pool", "repl",
                   "--remote-name", remote_name, "--properties", properties, "--retention", retention)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[+] Full replication started in background.\nMonitor /var/log/ovios/repl.log\n"
    row = wait_for(lab, dataset)
    assert row["status"] == "idle", row
    return row


def checksums(lab, node: str, directory: str) -> dict[str, str]:
    """sha256 of every file under a directory, by relative path."""
    out = sh(lab, node, f"cd {directory} && find . -type f -print0 | sort -z | xargs -0 -r sha256sum").stdout
    return {path: digest for digest, path in (line.split(None, 1) for line in out.splitlines())}


def snapshots(lab, node: str, dataset: str) -> list[str]:
    out = sh(lab, node, f"zfs list -H -o name -t snapshot -s createtxg | grep '^{dataset}@' || true").stdout
    return [line.split("@", 1)[1] for line in out.splitlines()]


def guids(lab, node: str, dataset: str) -> dict[str, str]:
    out = sh(lab, node, f"zfs get -H -p -o name,value guid -d 1 {dataset} | grep @ || true").stdout
    return {name.split("@", 1)[1]: guid for name, guid in (line.split("\t") for line in out.splitlines())}


def pause_inc(lab, *args: str) -> None:
    """Start ``retadm inc data/smbvol ARGS...`` on src and stop its runner (SIGSTOP) right after
    its start event: however fast the transfer would be, it cannot end until the test sends
    SIGCONT.  The start event is the first one logged after the call (earlier runs have theirs)."""
    inc = " ".join(["ovios-shell", "retadm", "inc", "data/smbvol", *args])
    sh(lab, "src", "log=/var/log/ovios/repl.log; before=$(grep -cs ' inc start ' $log);"
                   f" setsid {inc} >/run/inc.out 2>&1 </dev/null &"
                   " for i in $(seq 400); do [ $(grep -cs ' inc start ' $log) -gt $before ] && break; sleep 0.05; done;"
                   " kill -STOP $(grep ' inc start ' $log | tail -1 | sed 's/.* pid=//')")


def start_inc_paused(lab) -> dict:
    """An inc of data/smbvol caught mid-run (see :func:`pause_inc`); its status row
    (running_inc), whose ``pid`` the test sends SIGCONT to."""
    pause_inc(lab)
    row = status(lab)["data/smbvol"]
    assert row["status"] == "running_inc", row
    return row


def held_by(lab, node: str, snapshot: str, tags: tuple[str, ...]) -> set[str]:
    """Which of ``tags`` hold ``snapshot`` (zfs-fuse lists no holds: a release tells)."""
    found = set()
    for tag in tags:
        if sh(lab, node, f"zfs release {tag} {snapshot} 2>/dev/null", check=False).returncode == 0:
            sh(lab, node, f"zfs hold {tag} {snapshot}")
            found.add(tag)
    return found


def prop(lab, node: str, name: str, dataset: str) -> str:
    """A property's value on a node (``zfs get -H -o value``)."""
    return sh(lab, node, f"zfs get -H -o value {name} '{dataset}'").stdout.strip()


def writable(lab, node: str, directory: str) -> bool:
    return sh(lab, node, f"echo probe > '{directory}/.probe' && rm '{directory}/.probe'", check=False).returncode == 0

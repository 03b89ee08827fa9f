"""retadm doctor on the lab: a healthy task, then things broken on purpose, one at a time."""

from __future__ import annotations

import time

from ovios_shell_retadm.replication.doctor import CHECKS

from replication_helpers import init, set_task_field, sh, shell, start_inc_paused, wait_for

LEVELS = ("OK", "WARN", "FAIL", "SKIP")
#: the tasks here keep restore points (a task without any gets a warning of its own)
POLICY = "daily=7"


def doctor(lab, *args: str) -> tuple[int, dict[str, tuple[str, str]], str]:
    """Exit status, {check name: (level, rest of the line)}, and the whole output."""
    result = shell(lab, "src", "retadm", "doctor", *args)
    assert "Traceback" not in result.stdout + result.stderr
    checks = {}
    for line in result.stdout.splitlines():
        words = line.split(None, 1)
        if line.startswith("  ") and words and words[0] in LEVELS:
            name, _, rest = words[1].partition(": ")
            checks[name] = (words[0], rest)
    return result.returncode, checks, result.stdout


def levels(checks: dict[str, tuple[str, str]]) -> dict[str, str]:
    return {name: level for name, (level, _) in checks.items()}


def not_ok(checks) -> dict[str, str]:
    return {name: level for name, level in levels(checks).items() if level != "OK"}


def test_a_healthy_task_then_cron_set_up(fresh_lab):
    lab = fresh_lab
    init(lab, "data/smbvol", "smbvol", retention=POLICY)
    code, checks, out = doctor(lab, "data/smbvol")
    assert code == 0, out
    assert out.startswith("data/smbvol -> dst:repl/smbvol\n")
    assert len(checks) == len(CHECKS) and checks["ssh src→dst"] == ("OK", "passwordless")
    assert checks["ssh dst→src"][0] == "OK" and checks["destination pool repl"] == ("OK", "ONLINE")
    # the lab is fresh: no cron line, and cron.enable is off (its daemon runs anyway)
    assert not_ok(checks) == {"cron line": "WARN", "cron service": "WARN"}, out
    assert "'edit-cron' and add e.g.: */5 * * * * /usr/bin/ovios-shell retadm inc data/smbvol" in \
        checks["cron line"][1]
    assert out.rstrip().endswith(f"1 task: {len(CHECKS) - 2} OK, 2 WARN, 0 FAIL")

    # a daily line at an hour far from now (so cron does not fire during the test), cron enabled
    hour = (time.localtime().tm_hour + 12) % 24
    line = f"0 {hour} * * * /usr/bin/ovios-shell retadm inc data/smbvol\n"
    lab.exec("src", ["crontab", "-"], input=line, check=True)
    assert shell(lab, "src", "options", "cron.enable", "on").returncode == 0
    code, checks, out = doctor(lab)  # without a dataset: every task
    assert code == 0 and not_ok(checks) == {}, out
    assert checks["cron line"] == ("OK", f"'0 {hour} * * *' (line 1)")
    assert f"3 × the schedule '0 {hour} * * *'" in checks["lag"][1]

    json_run = shell(lab, "src", "retadm", "doctor", "--json")
    assert json_run.returncode == 0 and '"level": "FAIL"' not in json_run.stdout


def test_things_broken_on_purpose(fresh_lab):
    lab = fresh_lab
    row = init(lab, "data/smbvol", "smbvol", retention=POLICY)
    assert shell(lab, "src", "options", "cron.enable", "on").returncode == 0
    lab.exec("src", ["crontab", "-"], input="0 3 31 2 * /usr/bin/ovios-shell retadm inc data/smbvol\n", check=True)
    assert not_ok(doctor(lab, "data/smbvol")[1]) == {}

    # our hold released by hand on the destination: a warning that says how to put it back
    common = row["last_snapshot"]
    tag = row["hold_tag"]
    sh(lab, "dst", f"zfs release {tag} repl/smbvol@{common}")
    code, checks, out = doctor(lab, "data/smbvol")
    assert code == 0 and not_ok(checks) == {"holds": "WARN"}, out
    assert checks["holds"][1].startswith(f"@{common} is not held (tag {tag}) on the destination")
    assert f"zfs hold {tag} repl/smbvol@{common} (on dst)" in checks["holds"][1]

    # cron stopped
    assert shell(lab, "src", "options", "cron.enable", "off").returncode == 0
    code, checks, out = doctor(lab, "data/smbvol")
    assert code == 0 and not_ok(checks) == {"holds": "WARN", "cron service": "WARN"}, out
    assert checks["cron service"][1].startswith("cron is off: scheduled runs do not happen")

    # the replica destroyed on the destination: a failure; what needs it is not checked
    sh(lab, "dst", "for i in 1 2 3 4 5 6 7 8 9 10; do zfs destroy -r repl/smbvol && break; sleep 0.5; done")
    code, checks, out = doctor(lab, "data/smbvol")
    assert code == 1, out
    assert checks["replica repl/smbvol"][0] == "FAIL"
    assert "does not exist on dst" in checks["replica repl/smbvol"][1]
    assert "'retadm repair data/smbvol' sends it again in full" in checks["replica repl/smbvol"][1]
    for name in ("encryption", "common snapshot", "holds", "restore points", "read-only", "mountpoint", "divergence",
                 "resume token"):
        assert checks[name] == ("SKIP", "not checked: repl/smbvol does not exist"), (name, out)
    assert levels(checks)["ssh src→dst"] == "OK" and levels(checks)["destination pool repl"] == "OK"
    assert out.rstrip().endswith("1 FAIL, 8 SKIP")


def test_a_diverged_destination_fails_with_the_repair_hint(fresh_lab):
    lab = fresh_lab
    init(lab, "data/smbvol", "smbvol", retention=POLICY)
    sh(lab, "dst", "zfs set readonly=off repl/smbvol; echo local > /repl/smbvol/local.txt;"
                   " zfs snapshot repl/smbvol@dstonly")
    code, checks, out = doctor(lab, "data/smbvol")
    assert code == 1, out
    level, text = checks["divergence"]
    assert level == "FAIL" and "has diverged after @retadm_" in text and "@dstonly" in text
    assert "'retadm repair data/smbvol --dry-run'" in text


def test_a_running_then_dead_run(fresh_lab):
    lab = fresh_lab
    init(lab, "data/smbvol", "smbvol", retention=POLICY)
    sh(lab, "src", "echo more >> /data/smbvol/readme.txt")
    running = start_inc_paused(lab)
    code, checks, out = doctor(lab, "data/smbvol")
    assert checks["last run"] == ("OK", f"running_inc (pid {running['pid']})"), out

    sh(lab, "src", f"kill -KILL {running['pid']}")
    wait_for(lab, "data/smbvol", ("error",), timeout=10)
    code, checks, out = doctor(lab, "data/smbvol")
    assert code == 0, out
    level, text = checks["last run"]
    assert level == "WARN", out
    assert text.startswith(f"the run (pid {running['pid']}) died before it finished — hint: "
                           "'retadm inc data/smbvol' starts again from what landed")
    # and the next run goes through; doctor is content again (but for cron, not set up here)
    assert shell(lab, "src", "retadm", "inc", "data/smbvol").returncode == 0
    code, checks, out = doctor(lab, "data/smbvol")
    assert code == 0 and not_ok(checks) == {"cron line": "WARN", "cron service": "WARN"}, out


def test_an_unreachable_destination_fails_once_and_skips_the_rest(fresh_lab):
    lab = fresh_lab
    init(lab, "data/smbvol", "smbvol", retention=POLICY)
    set_task_field(lab, "data/smbvol", "destination", "192.168.0.99")
    code, checks, out = doctor(lab, "data/smbvol")  # (how fast: benchmarks/bench_commands.py)
    assert code == 1, out
    assert checks["ssh src→192.168.0.99"][0] == "FAIL"
    assert "unreachable" in checks["ssh src→192.168.0.99"][1]
    assert levels(checks)["local zfs"] == "OK" and levels(checks)["last run"] == "OK"
    skipped = [name for name, level in levels(checks).items() if level == "SKIP"]
    # what needs the destination is skipped: all but local zfs, the children, the failed ssh, the
    # send flags, the last run, the cron line and service, the configuration capture, and the lag
    assert len(skipped) == len(CHECKS) - 9 and "replica repl/smbvol" in skipped

"""Crontab checks (pure): what cron accepts, what it rejects, which datasets a line replicates."""

from __future__ import annotations

import pytest

from ovios_shell_retadm import cron

GUIDE_EXAMPLE = """\
# OviOS replication — every 5 minutes
*/5 * * * *  /usr/bin/ovios-shell retadm inc data/smbvol
*/5 * * * *  /usr/bin/ovios-shell retadm inc esx/lun01
"""


def test_the_guides_example_parses_into_two_entries():
    entries, problems = cron.parse(GUIDE_EXAMPLE)
    assert problems == []
    assert [(e.line, e.schedule) for e in entries] == [(2, "*/5 * * * *"), (3, "*/5 * * * *")]
    assert [cron.replicated_datasets(e) for e in entries] == [["data/smbvol"], ["esx/lun01"]]


@pytest.mark.parametrize("line", [
    "0 2 * * 1-5 /bin/true",
    "0,30 8-18/2 1 jan-jun mon /bin/true",
    "@reboot /bin/true",
    "@daily /bin/true",
    "MAILTO=root",
    "PATH = /usr/bin:/bin",
    "   # comment",
    "",
    "0 0 * * 7 /bin/true",
])
def test_valid_lines(line):
    assert cron.parse(line + "\n")[1] == []


@pytest.mark.parametrize("line, message", [
    ("*/5 * * * /bin/true", "expected five time fields and a command"),
    ("60 * * * * /bin/true", "minute 60 is out of range 0-59"),
    ("* 24 * * * /bin/true", "hour 24 is out of range 0-23"),
    ("* * 0 * * /bin/true", "day of month 0 is out of range 1-31"),
    ("* * * 13 * /bin/true", "month 13 is out of range 1-12"),
    ("* * * * 8 /bin/true", "day of week 8 is out of range 0-7"),
    ("*/0 * * * * /bin/true", "bad step '0' in minute"),
    ("10-5 * * * * /bin/true", "range 10-5 in minute runs backwards"),
    ("every * * * * /bin/true", "'every' is not a valid minute"),
    ("@sometimes /bin/true", "unknown schedule @sometimes"),
    ("@daily", "no command"),
])
def test_invalid_lines_are_reported_with_their_number(line, message):
    entries, problems = cron.parse("# header\n" + line + "\n")
    assert entries == []
    assert [(p.line, p.message) for p in problems] == [(2, message)]
    assert str(problems[0]).startswith("line 2: " + message)


@pytest.mark.parametrize("command, datasets", [
    ("/usr/bin/ovios-shell retadm inc data/smbvol", ["data/smbvol"]),
    ("/usr/bin/ovios-shell retadm inc --dry-run data/smbvol >/dev/null 2>&1", ["data/smbvol"]),
    ("ovios-shell retadm inc 'esx/lun01'  # nightly", ["esx/lun01"]),
    ("/usr/bin/ovios-shell retadm status", []),
    ("/usr/bin/ovios-shell retadm inc", []),
    ("/bin/echo 'unbalanced", []),
])
def test_replicated_datasets(command, datasets):
    assert cron.replicated_datasets(cron.Entry(1, "* * * * *", command)) == datasets

"""repl.log lines: a value is written as one plain word, or quoted so that it reads back
exactly (a snapshot may be named ``before upgrade``; a value is never trimmed)."""

from __future__ import annotations

import ast
import re

import pytest

from ovios_shell_retadm.eventlog import format_event


def _fields(line: str) -> dict[str, str]:
    """key=value pairs of a line, a quoted value read back as the string literal it is."""
    found = {}
    for key, quoted, plain in re.findall(r" (\w+)=(?:('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")|(\S+))", line):
        found[key] = ast.literal_eval(quoted) if quoted else plain
    return found


@pytest.mark.parametrize("value", [
    "hold @before upgrade on the source", "before upgrade", " leading", "trailing ", "a\tb", "two\nlines",
    "it's", 'say "x"', "back\\slash", "", "x" * 300,
])
def test_values_read_back_exactly_and_a_line_stays_one_line(value):
    line = format_event("data/smbvol", "inc", "step", {"what": value, "pid": 42})
    assert line.endswith("\n") and "\n" not in line[:-1]
    assert _fields(line) == {"what": value, "pid": "42"}


def test_plain_words_stay_as_they_are():
    line = format_event("data/smbvol", "inc", "end", {"snapshot": "retadm_20261126T055353.807Z", "bytes": 3034504,
                                                      "sends": 1, "duration": "2.5s", "to": "dst:repl/smb:vol"})
    assert line.split(" ", 1)[1] == ("data/smbvol inc end snapshot=retadm_20261126T055353.807Z bytes=3034504 "
                                     "sends=1 duration=2.5s to=dst:repl/smb:vol\n")
    spaced = format_event("data/smbvol", "inc", "end", {"snapshot": "before upgrade"})
    assert spaced.endswith(" snapshot='before upgrade'\n")

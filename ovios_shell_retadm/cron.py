"""Root's crontab: reading, checking and installing it.

The checks are pure functions over the crontab text (Vixie/Debian cron syntax),
so they are tested without cron; :class:`Crontab` talks to the real ``crontab``
command, which validates again and signals the daemon.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import dataclass

# The crontab line the guide gives for scheduling.
CRON_COMMAND = "/usr/bin/ovios-shell retadm inc"

_SPECIAL = {"@reboot", "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_ENV_LINE = re.compile(r"^\s*[A-Za-z_][A-Za-z0-9_]*\s*=")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


@dataclass(frozen=True)
class Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    names_start: int = 0


_FIELDS = (
    Field("minute", 0, 59),
    Field("hour", 0, 23),
    Field("day of month", 1, 31),
    Field("month", 1, 12, _MONTHS, 1),
    Field("day of week", 0, 7, _DAYS, 0),
)


@dataclass(frozen=True)
class Problem:
    line: int  # 1-based
    text: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}: {self.text.strip()}"


@dataclass(frozen=True)
class Entry:
    line: int
    schedule: str
    command: str


def _value(token: str, field: Field) -> int:
    lowered = token.lower()
    if lowered in field.names:
        return field.names.index(lowered) + field.names_start
    if not token.isdigit():
        raise ValueError(f"{token!r} is not a valid {field.name}")
    number = int(token)
    if not field.low <= number <= field.high:
        raise ValueError(f"{field.name} {number} is out of range {field.low}-{field.high}")
    return number


def check_field(text: str, field: Field) -> None:
    """Raise ValueError with a short reason when ``text`` is not a valid cron field."""
    for part in text.split(","):
        body, slash, step = part.partition("/")
        if slash and (not step.isdigit() or int(step) == 0):
            raise ValueError(f"bad step {step!r} in {field.name}")
        if body == "*":
            continue
        start, dash, end = body.partition("-")
        low = _value(start, field)
        if dash and _value(end, field) < low:
            raise ValueError(f"range {body} in {field.name} runs backwards")


def parse(text: str) -> tuple[list[Entry], list[Problem]]:
    """Split a crontab into its job entries and the lines cron would reject."""
    entries: list[Entry] = []
    problems: list[Problem] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or _ENV_LINE.match(line):
            continue
        words = stripped.split(None, 1)
        if words[0].startswith("@"):
            if words[0].lower() not in _SPECIAL:
                problems.append(Problem(number, line, f"unknown schedule {words[0]}"))
            elif len(words) < 2:
                problems.append(Problem(number, line, "no command"))
            else:
                entries.append(Entry(number, words[0], words[1].strip()))
            continue
        words = stripped.split(None, 5)
        if len(words) < 6:
            problems.append(Problem(number, line, "expected five time fields and a command"))
            continue
        try:
            for token, field in zip(words[:5], _FIELDS, strict=True):
                check_field(token, field)
        except ValueError as exc:
            problems.append(Problem(number, line, str(exc)))
            continue
        entries.append(Entry(number, " ".join(words[:5]), words[5].strip()))
    return entries, problems


def replicated_datasets(entry: Entry) -> list[str]:
    """The datasets a crontab entry runs ``retadm inc`` for (empty when it does not)."""
    try:
        words = shlex.split(entry.command.split("#", 1)[0])
    except ValueError:
        return []
    found: list[str] = []
    for i in range(len(words) - 1):
        if words[i] == "retadm" and words[i + 1] == "inc":
            found.extend(w for w in words[i + 2:] if not w.startswith("-") and w not in (";", "&&", "||", "|"))
            break
    return found[:1]


class CrontabError(Exception):
    pass


class Crontab:
    """One user's crontab through the ``crontab`` command."""

    def __init__(self, user: str = "root", binary: str = "crontab"):
        self.user = user
        self.binary = binary

    def read(self) -> str:
        try:
            proc = subprocess.run([self.binary, "-u", self.user, "-l"], check=False, capture_output=True, text=True,
                                  timeout=30)
        except OSError as exc:
            raise CrontabError(f"cannot run {self.binary}: {exc.strerror} (is cron installed?)") from exc
        if proc.returncode == 0:
            return proc.stdout
        if "no crontab for" in proc.stderr:
            return ""
        raise CrontabError(f"crontab -l failed: {proc.stderr.strip()}")

    def install(self, text: str) -> None:
        try:
            proc = subprocess.run([self.binary, "-u", self.user, "-"], check=False, input=text, capture_output=True,
                                  text=True, timeout=30)
        except OSError as exc:
            raise CrontabError(f"cannot run {self.binary}: {exc.strerror}") from exc
        if proc.returncode != 0:
            raise CrontabError(f"crontab refused the file: {proc.stderr.strip()}")

"""Restore points: which of a task's tracking snapshots the replica keeps.

Without a policy a replica holds one point in time, the common snapshot, and a source
emptied or encrypted by mistake is replicated over at the next cron tick.  A policy keeps
older tracking snapshots on the destination as restore points, thinned the way snapshot
managers thin theirs: the newest ``last`` ones, plus one for each of the newest ``hourly`` hours,
``daily`` days, ``weekly`` (ISO) weeks and ``monthly`` months that have a snapshot.  The one
kept for a period is its newest: the replica as it was at the end of that hour, day, week.

Periods count only the ones that have a snapshot, never the clock's: a node that could not
replicate for a week still keeps its seven daily points when it comes back, instead of
finding them all aged out at its first run.  A snapshot's time is the UTC timestamp in its
name (``retadm_<identity>_20261203T101200.123Z``).  Pure functions only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from datetime import UTC, datetime

#: The periods a policy can thin to, in the order ``text`` writes them.
KINDS = ("last", "hourly", "daily", "weekly", "monthly")

#: a tracking snapshot's name ends with its UTC time: these seconds, then ``.mmmZ``
_SECONDS = "%Y%m%dT%H%M%S"
_STAMP = re.compile(r"(\d{8}T\d{6})\.(\d{3})Z$")

_PERIOD: dict[str, Callable[[datetime], tuple[int, ...]]] = {
    "hourly": lambda t: (t.year, t.month, t.day, t.hour),
    "daily": lambda t: (t.year, t.month, t.day),
    "weekly": lambda t: tuple(t.isocalendar())[:2],
    "monthly": lambda t: (t.year, t.month),
}


class RetentionError(ValueError):
    """A policy that cannot be read; the message is one line for the user."""


@dataclass(frozen=True)
class Retention:
    """How many restore points of each kind the replica keeps (0: none of that kind).

    ``Retention()`` keeps nothing but the common snapshot: what a task did before policies.
    """

    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0

    @classmethod
    def parse(cls, text: str) -> Retention:
        """``hourly=24,daily=7`` (any of :data:`KINDS`, each at most once) or ``none``."""
        text = text.strip()
        if text == "none":
            return cls()
        counts: dict[str, int] = {}
        for part in text.split(","):
            kind, _, number = (word.strip() for word in part.partition("="))
            if kind not in KINDS or not number.isdigit():
                raise RetentionError(f"invalid retention {text!r}: give KIND=N[,KIND=N…] with KIND one of "
                                     f"{', '.join(KINDS)} (e.g. hourly=24,daily=7,weekly=4), or none")
            if kind in counts:
                raise RetentionError(f"invalid retention {text!r}: {kind} is given twice")
            counts[kind] = int(number)
        return cls(**counts)

    @property
    def text(self) -> str:
        """The policy as ``parse`` reads it: ``none`` when it keeps no restore point."""
        given = [f"{f.name}={getattr(self, f.name)}" for f in fields(self) if getattr(self, f.name)]
        return ",".join(given) or "none"

    @property
    def keeps_any(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    def keep(self, names: Iterable[str]) -> frozenset[str]:
        """The restore points among ``names`` (one task's tracking snapshots): what the policy
        keeps.  A name without a readable timestamp is never kept by a period, only by ``last``."""
        ordered = sorted(names, key=_sort_key)
        kept = set(ordered[-self.last:]) if self.last else set()
        timed = [(name, when) for name in ordered if (when := snapshot_time(name)) is not None]
        for kind, period in _PERIOD.items():
            wanted = getattr(self, kind)
            if not wanted:
                continue
            newest: dict[tuple[int, ...], str] = {}
            for name, when in timed:  # oldest first: the last one seen in a period is its newest
                newest[period(when)] = name
            kept.update(newest[key] for key in sorted(newest)[-wanted:])
        return frozenset(kept)


#: No restore points: only the common snapshot, what a task did before policies.
NONE = Retention()

#: What ``retadm init`` keeps when not told: a day of hours, a week of days, a month of weeks.
DEFAULT = Retention(hourly=24, daily=7, weekly=4)


def stamp(when: datetime) -> str:
    """The time a tracking snapshot's name ends with (UTC, to the millisecond)."""
    return f"{when:{_SECONDS}}.{when.microsecond // 1000:03d}Z"


def snapshot_time(name: str) -> datetime | None:
    """The UTC time in a tracking snapshot's name (:func:`stamp`); None if it has none."""
    found = _STAMP.search(name)
    if found is None:
        return None
    try:
        seconds = datetime.strptime(found.group(1), _SECONDS)
    except ValueError:
        return None
    return seconds.replace(microsecond=int(found.group(2)) * 1000, tzinfo=UTC)


def _sort_key(name: str) -> tuple[datetime, str]:
    return (snapshot_time(name) or datetime.min.replace(tzinfo=UTC), name)

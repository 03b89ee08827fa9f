"""``retadm doctor``: what is wrong with a replication task, and what to run about it.

A diagnosis is a list of small checks, each a :class:`Check` — ``OK``, ``WARN`` or
``FAIL``, one line saying what was found and, where something is wrong, a hint that
names the command to run.  ``FAIL`` means the next run cannot succeed (or the chain is
broken) until someone acts; ``WARN`` means replication works now but something will
hurt later or needs a look.  A check whose premise could not be established — the
destination is unreachable, the replica is gone — is not run: it is reported as
``SKIP`` with the reason, after the one ``FAIL`` that explains it.

Doctor only reads.  The one exception is inherited from :meth:`Pair.observe` on ZFS
implementations that cannot list holds (zfs-fuse): there a hold is detected by trying
to place it, and the probe's new holds are released at once.

The checks, in order, are :data:`CHECKS` (``retadm doctor --help`` prints them).

The work is in two parts: :mod:`.facts` reads everything a task's checks look at, once
(ssh, zfs, cron, the task's lock); :mod:`.checks` makes the checks from those facts and
does no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ..task_store import TaskRecord
from .checks import CHECKS, FAIL, LEVELS, OK, SKIP, WARN, Check, Diagnosis, check_table, examine, summary, to_json
from .facts import Environment, gather

__all__ = ["CHECKS", "FAIL", "LEVELS", "OK", "SKIP", "WARN", "Check", "Diagnosis", "Environment", "check_table",
           "diagnose", "summary", "to_json"]


def diagnose(records: Sequence[TaskRecord], env: Environment | None = None) -> Iterator[Diagnosis]:
    """Each task's diagnosis, as soon as its checks are done (each takes a few seconds);
    ``env``, what every task shares, is read once for all of them."""
    env = env or Environment.read()
    for record in records:
        yield examine(gather(record, env))

"""Every exit status ``ovios-shell`` and the commands it runs give, in one place.

A command of the shell reports its status by storing it in the app's ``last_result``; the
shell turns it into the process's exit status in one-shot runs (see :mod:`.shell`).  An error
a user can cause is a :class:`CommandError`: one line, with its status.
"""

from __future__ import annotations

OK = 0
#: the command ran and failed (one line on stderr says why)
FAILED = 1
#: bad arguments or values
USAGE = 2
#: sysexits' EX_DATAERR: the partner refused a pushed configuration (``autosync_receive``)
DATA_REFUSED = 65
#: sysexits' EX_TEMPFAIL: another run of the task holds its lock; cron tries again next time
BUSY = 75
UNKNOWN_COMMAND = 127
#: Ctrl-C (128 + SIGINT)
INTERRUPTED = 130


class CommandError(Exception):
    """An error the user can cause: reported as one line, with an exit status."""

    def __init__(self, message: str, status: int = FAILED):
        super().__init__(message)
        self.status = status

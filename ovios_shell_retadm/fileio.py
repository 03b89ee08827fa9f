"""Writing a file so that no reader, and no crash, ever sees half of it; creating the product's
private files and directories with exact modes, whatever the umask."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path


def write_atomically(path: Path, text: str, mode: int = 0o644) -> None:
    """Replace ``path`` with ``text``: a temporary file in the same directory, fsynced,
    renamed over it, the directory fsynced; a reader sees the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def make_private_dir(path: Path, mode: int = 0o700) -> Path:
    """Create the directory ``path``, and each missing parent, with exactly ``mode`` whatever the
    process umask (mkdir's mode is masked by it); directories that exist are left as they are.

    For the product's own directories (``/etc/ovios``, ``/run/ovios`` and below): they hold
    secrets, locks and ssh control sockets, so no other user may read or write them."""
    missing = []
    current = path
    while not os.path.lexists(current):
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, mode & 0o700)  # never wider than asked, even for an instant
        except FileExistsError:
            continue  # made at the same moment by another process (with this same function)
        os.chmod(directory, mode)
    return path


def make_private_file(path: Path, mode: int = 0o600, *, create: bool = True) -> None:
    """Give the file ``path`` exactly ``mode`` (creating it empty when it is missing and ``create``
    is set); a file owned by another user, or a symbolic link, is left alone."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags | (os.O_CREAT if create else 0), mode & 0o700)
    except FileNotFoundError:
        if create:
            raise
        return
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return
        raise
    try:
        info = os.fstat(fd)
        if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) != mode:
            os.fchmod(fd, mode)
    finally:
        os.close(fd)

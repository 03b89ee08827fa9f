"""What the restore backends share: OS paths, commands, atomic writes, process lookups."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from ..hosts import safe_environ


class ApplyError(Exception):
    """An action failed; the message is one line for the user."""


def os_path(path: str) -> Path:
    """An operating-system path, moved under ``$OVIOS_ROOT`` for tests like every other path."""
    return Path(os.environ.get("OVIOS_ROOT", "/")) / path.lstrip("/")


def moved() -> bool:
    """Whether paths are moved (a test): system-wide commands that ignore paths are not run then."""
    return os.environ.get("OVIOS_ROOT", "/") not in ("", "/")


def run(argv: Sequence[str], what: str, input: str | None = None, timeout: float = 120) -> str:
    """Run a command; its stdout, or ApplyError naming ``what`` and the command's last words."""
    try:
        proc = subprocess.run(list(argv), check=False, input=input, capture_output=True, text=True, timeout=timeout,
                              env=safe_environ(), stdin=None if input is not None else subprocess.DEVNULL)
    except FileNotFoundError:
        raise ApplyError(f"{what}: {argv[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise ApplyError(f"{what}: {argv[0]} did not finish in {timeout:g} s") from None
    if proc.returncode != 0:
        lines = [line.strip() for line in (proc.stderr + "\n" + proc.stdout).splitlines() if line.strip()]
        raise ApplyError(f"{what}: {lines[-1] if lines else f'{argv[0]} exit {proc.returncode}'}")
    return proc.stdout


def process_running(name: str) -> bool:
    """Whether a process (or kernel thread) with this command name runs here."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    return True
            except OSError:
                continue
    return False

"""What the last capture of the node's services left (see :mod:`.restore.capture`), in
``/etc/ovios/capture.json``: each part's files as ``stat`` saw them, and the notes on what it
could not carry.  Read by ``retadm status`` and ``doctor`` without importing the capture."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import settings
from .fileio import write_atomically

#: the parts, in the order their notes are shown
PARTS = ("luns", "shares", "exports", "users")


def state_path() -> Path:
    return settings.etc_dir() / "capture.json"


def load_state() -> dict[str, Any]:
    """``{"fingerprints": {part: …}, "notes": {part: [line, …]}}``; empty when there is none."""
    try:
        data = json.loads(state_path().read_text())
        return {"fingerprints": dict(data.get("fingerprints", {})), "notes": dict(data.get("notes", {}))}
    except (OSError, ValueError, AttributeError):
        return {"fingerprints": {}, "notes": {}}


def save_state(fingerprints: dict[str, Any], notes: dict[str, list[str]]) -> None:
    write_atomically(state_path(), json.dumps({"fingerprints": fingerprints, "notes": notes}, indent=1) + "\n",
                     mode=0o600)


def notes() -> list[str]:
    """What the last capture could not carry, one line each."""
    recorded = load_state()["notes"]
    return [note for part in PARTS for note in recorded.get(part, [])]

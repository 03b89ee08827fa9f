"""NFS: the exports restore defines, in ``/etc/exports.d/ovios.exports`` (ours, rewritten
whole; ``/etc/exports`` and other files are never touched), then ``exportfs -ra``.  Each
export is preceded by a mark naming the partner it was restored from (as in :mod:`.samba`)."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..fileio import write_atomically
from ..hosts import SAFE_PATH
from .common import ApplyError, moved, os_path, process_running, run
from .planner import Action, NfsState
from .samba import MARK, MARK_PATTERN

EXPORTS_FILE = "/etc/exports.d/ovios.exports"
HEADER = ("# OviOS NFS exports, written by 'ovios-shell restore' from the synced configuration.\n"
          "# restore rewrites this file whole: edit the configuration, not this file.\n")


def exports_path() -> Path:
    return os_path(EXPORTS_FILE)


def _quote(path: str) -> str:
    return f'"{path}"' if any(c.isspace() for c in path) else path


def parse(text: str) -> dict[str, str]:
    """``path clients(options)`` lines → {path: "clients(options)"} (a quoted path may hold spaces)."""
    exports: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith('"'):
            path, _, rest = line[1:].partition('"')
        else:
            path, _, rest = line.partition(" ")
        exports[path] = rest.strip()
    return exports


def parse_ours(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """Our exports file → ({path: spec}, {path: the partner it was restored from}); an export
    without a mark (written before marks were) has no partner."""
    owners: dict[str, str] = {}
    mark: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        found = MARK_PATTERN.fullmatch(line)
        if found:
            mark = found.group(1)
        elif line and not line.startswith("#"):
            if mark is not None:
                owners.update((path, mark) for path in parse(line))
            mark = None
    return parse(text), owners


def render(exports: dict[str, str], owners: dict[str, str] | None = None) -> str:
    owners = owners or {}
    return HEADER + "".join((f"{MARK}{owners[path]}\n" if path in owners else "") + f"{_quote(path)} {spec}\n"
                            for path, spec in sorted(exports.items()))


def observe() -> NfsState:
    exports_file = str(exports_path())
    if shutil.which("exportfs", path=SAFE_PATH) is None:
        return NfsState(available=False, problem="the NFS server is not installed here (no exportfs: "
                                                  "package nfs-kernel-server)", exports_file=exports_file)
    try:
        ours, owners = parse_ours(exports_path().read_text(errors="replace"))
    except FileNotFoundError:
        ours, owners = {}, {}
    return NfsState(ours=ours, owners=owners, running=process_running("nfsd"), exports_file=exports_file)


def _ours() -> tuple[dict[str, str], dict[str, str]]:
    try:
        return parse_ours(exports_path().read_text())
    except FileNotFoundError:
        return {}, {}


def apply(action: Action) -> None:
    a = action.args
    if action.kind == "set_export":
        exports, owners = _ours()
        exports[a["path"]], owners[a["path"]] = a["spec"], a["owner"]
        write_atomically(exports_path(), render(exports, owners))
    elif action.kind == "remove_export":
        exports, owners = _ours()
        exports.pop(a["path"], None)
        owners.pop(a["path"], None)
        write_atomically(exports_path(), render(exports, owners))
    elif action.kind == "refresh":
        if not moved():  # exportfs reads the real /etc/exports.d, whatever OVIOS_ROOT says
            run(["exportfs", "-ra"], action.description)
    else:  # pragma: no cover
        raise ApplyError(f"unknown NFS action {action.kind}")

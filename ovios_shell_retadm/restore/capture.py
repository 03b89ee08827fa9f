"""The other way round from restore: the node's live services read back into its
configuration (``/etc/ovios/config.json``), which autosync pushes to the partners.

The administrator sets the services up with the usual tools; what serves a dataset is
captured, part by part (:data:`PARTS`):

- ``luns``: LIO's saved configuration (``targetcli saveconfig``, which targetcli does on
  exit): each iSCSI target's LUNs backed by a zvol, with their ids, and its ACLs;
- ``shares``: Samba's shares whose path is a dataset's mountpoint (``testparm -s``: smb.conf
  with its includes, as smbd reads it), read-only or not, and their valid users;
- ``exports``: the NFS exports of a dataset's mountpoint (``/etc/exports``, ``exports.d``);
- ``users``: Samba's accounts with their NT hashes (``pdbedit -L -w``), never clear text.

What serves no dataset is not replication's business and is left out without a word;
what serves one but cannot be carried faithfully (a LUN on a disk, a share of a directory
inside a dataset, a second client of an export, CHAP …) is a *note*, which ``retadm
status`` and ``doctor`` show.

Cheap when nothing changed: a part is read again only when one of its files changed (size,
time, inode: a few ``stat`` calls, kept with the notes by :mod:`..captured`).  A
part whose files do not exist on this node (the service is not set up here) leaves its
section of config.json as it is, so a configuration written by other means stays.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from .. import captured
from ..captured import PARTS
from ..config import files
from ..config.model import ConfigError, Configuration, Export, Lun, Share, Target, User, checked, iscsi_name
from . import lio, nfs, samba
from .common import ApplyError, os_path, run

#: each part's files: a change to any of them means the part is read again.  The first one
#: says whether the service is set up here at all (for exports, any of them does): a node with
#: no Samba account database has no users to capture, whatever /etc/passwd says
SOURCES: dict[str, tuple[str, ...]] = {
    "luns": (lio.SAVE_FILE,),
    "shares": (samba.CONFIG_FILE, "/etc/samba/*.conf"),
    "exports": ("/etc/exports", "/etc/exports.d/*.exports"),
    "users": ("/var/lib/samba/private/passdb.tdb", "/etc/passwd"),
}
#: the field of :class:`Configuration` each part fills
FIELD = {"luns": "targets", "shares": "shares", "exports": "exports", "users": "users"}
_ZVOL_DIR = "/dev/zvol/"
_CLIENT = re.compile(r"([^\s(]+)(?:\(([^)]*)\))?")
#: a share's parameters that are carried (testparm -s prints only what differs from Samba's default)
_CARRIED = {"path", "read only", "valid users"}
_TIMEOUT = 30


# -- reading each part (pure: text in, entries and notes out) --------------------------------


def targets_from_saveconfig(saved: Mapping[str, Any], zvol_of: Callable[[str], str | None]
                            ) -> tuple[tuple[Target, ...], list[str]]:
    """LIO's saved configuration → iSCSI targets with their zvol LUNs and ACLs, and notes."""
    notes: list[str] = []
    devices = {f"/backstores/{so.get('plugin', '')}/{so.get('name', '')}": str(so.get("dev", ""))
               for so in saved.get("storage_objects", [])}
    targets = []
    for entry in saved.get("targets", []):
        if entry.get("fabric") != "iscsi":
            notes.append(f"LIO {entry.get('fabric')} target {entry.get('wwn')}: only iSCSI targets are carried")
            continue
        iqn = iscsi_name(str(entry.get("wwn", "")))
        tpgs = entry.get("tpgs", [])
        if len(tpgs) > 1:
            notes.append(f"iSCSI target {iqn}: only its first TPG is carried ({len(tpgs)} configured)")
        tpg = tpgs[0] if tpgs else {}
        if str(tpg.get("attributes", {}).get("authentication", "0")) == "1" or any(
                acl.get("chap_userid") or acl.get("chap_password") for acl in tpg.get("node_acls", [])):
            notes.append(f"iSCSI target {iqn}: CHAP authentication is not carried")
        luns = []
        for lun in tpg.get("luns", []):
            device = devices.get(str(lun.get("storage_object", "")), "")
            volume = zvol_of(device) if device else None
            if volume is None:
                notes.append(f"LUN {lun.get('index')} of {iqn} is backed by {device or lun.get('storage_object')}, "
                              "not a zvol: not carried")
                continue
            luns.append(Lun(int(lun.get("index", 0)), volume))
        acls = tuple(sorted(iscsi_name(str(acl.get("node_wwn", ""))) for acl in tpg.get("node_acls", [])))
        if luns:
            targets.append(Target(iqn, acls, tuple(sorted(luns, key=lambda lun: lun.id))))
    return tuple(sorted(targets, key=lambda target: target.iqn)), notes


def shares_from_testparm(text: str, dataset_at: Mapping[str, str]) -> tuple[tuple[Share, ...], list[str]]:
    """``testparm -s`` output → the shares of datasets' mountpoints, and notes."""
    sections, _ = samba.parse(text)
    shares, notes = [], []
    for name, params in sorted(sections.items()):
        path = params.get("path", "").rstrip("/") or "/"
        if name.lower() in ("global", "homes", "printers") or "path" not in params:
            continue
        dataset = dataset_at.get(path)
        if dataset is None:
            inside = _dataset_containing(path, dataset_at)
            if inside:
                notes.append(f"SMB share {name} serves {path}, a directory inside {inside}: not carried "
                             "(a share must serve a dataset's mountpoint)")
            continue
        dropped = sorted(set(params) - _CARRIED)
        if dropped:
            notes.append(f"SMB share {name}: {', '.join(repr(p) for p in dropped)} not carried")
        shares.append(Share(name, dataset, read_only=params.get("read only", "yes").lower() in ("yes", "true", "1"),
                            valid_users=tuple(params.get("valid users", "").replace(",", " ").split())))
    return tuple(shares), notes


def exports_from(text: str, dataset_at: Mapping[str, str]) -> tuple[tuple[Export, ...], list[str]]:
    """exports(5) text → the exports of datasets' mountpoints (one client each), and notes."""
    exports, notes = [], []
    for path, spec in sorted(nfs.parse(_joined(text)).items()):
        dataset = dataset_at.get(path.rstrip("/") or "/")
        if dataset is None:
            inside = _dataset_containing(path, dataset_at)
            if inside:
                notes.append(f"NFS export {path} is a directory inside {inside}: not carried")
            continue
        clients = _CLIENT.findall(spec)
        if not clients:
            continue
        (client, options), rest = clients[0], clients[1:]
        if rest:
            notes.append(f"NFS export {path}: only its first client ({client}) is carried, not "
                         f"{', '.join(c for c, _ in rest)}")
        exports.append(Export(dataset, client, options or "ro"))  # exports(5): ro unless rw is said
    return tuple(exports), notes


def users_from_pdbedit(text: str) -> tuple[tuple[User, ...], list[str]]:
    """``pdbedit -L -w`` (smbpasswd format: ``name:uid:LM:NT:[flags]:…``) → users, and notes."""
    users, notes = [], []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) < 5:
            continue
        name, uid, nt, flags = fields[0], fields[1], fields[3], fields[4]
        if "D" in flags.strip("[]"):
            notes.append(f"Samba user {name} is disabled: not carried")
            continue
        if not uid.isdigit() or not re.fullmatch(r"[0-9A-Fa-f]{32}", nt):
            notes.append(f"Samba user {name} has no NT hash: not carried")
            continue
        users.append(User(name, int(uid), nt.upper()))
    return tuple(users), notes


def _joined(text: str) -> str:
    """exports(5) lines with their backslash continuations joined."""
    return re.sub(r"\\\n", " ", text)


def _dataset_containing(path: str, dataset_at: Mapping[str, str]) -> str | None:
    inside = [(mountpoint, dataset) for mountpoint, dataset in dataset_at.items()
              if mountpoint != "/" and path.startswith(mountpoint + "/")]
    return max(inside)[1] if inside else None


# -- reading the node ------------------------------------------------------------------------


def fingerprints() -> dict[str, list[list[Any]] | None]:
    """Each part's files as ``stat`` sees them (None: the service is not set up here, see
    :data:`SOURCES`)."""
    found: dict[str, list[list[Any]] | None] = {}
    for part, patterns in SOURCES.items():
        seen = []
        for pattern in patterns:
            for path in _expand(pattern):
                try:
                    st = path.stat()
                except OSError:
                    continue
                seen.append([str(path), st.st_size, st.st_mtime_ns, st.st_ino])
        primary = part == "exports" or (seen and seen[0][0] == str(os_path(patterns[0])))
        found[part] = seen if seen and primary else None
    return found


def _expand(pattern: str) -> list[Path]:
    path = os_path(pattern)
    return sorted(path.parent.glob(path.name)) if "*" in pattern else [path]


def _mountpoints() -> dict[str, str]:
    """Each mounted filesystem dataset's mountpoint → the dataset."""
    listing = run(["zfs", "list", "-H", "-o", "name,mountpoint,mounted", "-t", "filesystem"],
                  "listing the datasets' mountpoints", timeout=_TIMEOUT)
    return {fields[1].rstrip("/") or "/": fields[0] for fields in (line.split("\t") for line in listing.splitlines())
            if len(fields) == 3 and fields[1].startswith("/") and fields[2] == "yes"}


def _zvol_of(device: str) -> str | None:
    if device.startswith(_ZVOL_DIR):
        return device[len(_ZVOL_DIR):]
    real = os.path.realpath(device)
    for root, _, names in os.walk(_ZVOL_DIR):
        for name in names:
            link = os.path.join(root, name)
            if os.path.realpath(link) == real and not re.search(r"-part[0-9]+$", name):
                return link[len(_ZVOL_DIR):]
    return None


def read_part(part: str, mountpoints: Callable[[], Mapping[str, str]]) -> tuple[tuple[Any, ...], list[str]]:
    """The live entries of one part (what its :data:`FIELD` of :class:`Configuration` holds),
    and notes; ``mountpoints`` gives the datasets' mountpoints (:func:`_mountpoints`)."""
    if part == "luns":
        return targets_from_saveconfig(json.loads(os_path(lio.SAVE_FILE).read_text()), _zvol_of)
    if part == "shares":
        parameters = run(["testparm", "-s", "--suppress-prompt", str(os_path(samba.CONFIG_FILE))],
                         "reading the Samba shares", timeout=_TIMEOUT)
        return shares_from_testparm(parameters, mountpoints())
    if part == "exports":
        text = "".join(path.read_text(errors="replace") + "\n" for pattern in SOURCES["exports"]
                       for path in _expand(pattern) if path.is_file())
        return exports_from(text, mountpoints())
    return users_from_pdbedit(run(["pdbedit", "-L", "-w"], "reading the Samba accounts", timeout=_TIMEOUT))


def refresh() -> list[str]:
    """Capture the parts whose files changed since the last capture into config.json (a new
    generation only where the content changed); returns the parts read.  Never raises for a
    part that cannot be read: that part keeps its section, a note says why, and the next
    trigger tries it again."""
    state = captured.load_state()
    recorded = dict(state["fingerprints"])
    now = fingerprints()
    changed = [part for part in PARTS if now[part] != recorded.get(part)]
    if not changed:
        return []
    notes = {part: list(state["notes"].get(part, [])) for part in PARTS}
    fields: dict[str, Any] = {}
    read = []
    mountpoints = functools.cache(_mountpoints)  # shares and exports both need them: one zfs list
    for part in changed:
        if now[part] is None:  # not set up here (any more): only what an earlier capture put there goes
            if recorded.get(part) is not None:
                fields[FIELD[part]] = ()
            notes[part] = []
            read.append(part)
            continue
        try:
            fields[FIELD[part]], notes[part] = read_part(part, mountpoints)
        except (ApplyError, OSError, ValueError) as exc:
            notes[part] = [f"{part} not captured: {exc}"]
            continue
        read.append(part)
    try:
        if fields:
            files.update(lambda config: _with(config, fields))
        recorded |= {part: now[part] for part in read}
    except ConfigError as exc:
        notes |= {part: [f"{part} not captured: {exc}"] for part in read}
    captured.save_state(recorded, notes)
    return changed


def _with(config: Configuration, fields: Mapping[str, Any]) -> Configuration:
    # the rules across entries (a valid user must be a user …) hold for the whole configuration
    return checked(replace(config, **fields))

"""Samba: the shares restore defines, in a file of ours, and the users' accounts.

- Shares live in ``/etc/samba/ovios-shares.conf`` (:data:`SHARES_FILE`), which ``smb.conf``
  includes once (a line ``include = …`` at its end, added by restore).  That file is
  ours: restore rewrites it whole, and never edits the sections of ``smb.conf`` itself (a
  share of the same name there is refused).  Each share is preceded by a mark naming the
  partner it was restored from (``# ovios-restore from=src``; ``from=-``: the datasets'
  properties, no synced configuration), so a restore from one partner leaves another's alone.
- Accounts are imported with their NT hash: ``pdbedit -i smbpasswd:FILE`` reads a file in
  smbpasswd format and adds the account, or updates it when it exists (no clear-text
  password is ever needed).  The Unix user must exist first (:mod:`.users`).
- A running smbd is told to re-read its configuration (``smbcontrol smbd reload-config``).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from ..fileio import write_atomically
from ..hosts import SAFE_PATH
from .common import ApplyError, os_path, process_running, run
from .planner import Action, SambaState

CONFIG_FILE = "/etc/samba/smb.conf"
SHARES_FILE = "/etc/samba/ovios-shares.conf"
HEADER = ("# OviOS SMB shares, written by 'ovios-shell restore' from the synced configuration.\n"
          "# Included from smb.conf; restore rewrites this file whole: edit the configuration, not this file.\n")
_SECTION = re.compile(r"\s*\[([^\]]+)\]\s*")  # fullmatch, as every pattern here
_PARAM = re.compile(r"\s*([^=#;]+?)\s*=\s*(.*?)\s*")
#: the mark before each entry of our files: the partner it was restored from
MARK = "# ovios-restore from="
MARK_PATTERN = re.compile(r"#\s*ovios-restore\s+from=(\S+)\s*")


def config_path() -> Path:
    return os_path(CONFIG_FILE)


def shares_path() -> Path:
    return os_path(SHARES_FILE)


def parse(text: str) -> tuple[dict[str, dict[str, str]], list[str]]:
    """``smb.conf`` text → ({section: {parameter: value}}, include targets).  Parameter names
    are lower case with single spaces, as Samba compares them."""
    sections: dict[str, dict[str, str]] = {}
    includes: list[str] = []
    current: dict[str, str] | None = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith(("#", ";")):
            continue
        section = _SECTION.fullmatch(line)
        if section:
            current = sections.setdefault(section.group(1).strip(), {})
            continue
        param = _PARAM.fullmatch(line)
        if param:
            key = " ".join(param.group(1).lower().split())
            if key in ("include", "config file"):
                includes.append(param.group(2))
            elif current is not None:
                current[key] = param.group(2)
    return sections, includes


def parse_ours(text: str) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """Our shares file → ({share: parameters}, {share: the partner it was restored from});
    a share without a mark (written before marks were) has no partner."""
    owners: dict[str, str] = {}
    mark: str | None = None
    for line in text.splitlines():
        found = MARK_PATTERN.fullmatch(line.strip())
        if found:
            mark = found.group(1)
            continue
        section = _SECTION.fullmatch(line)
        if section:
            if mark is not None:
                owners[section.group(1).strip()] = mark
            mark = None
    return parse(text)[0], owners


def render(shares: dict[str, dict[str, str]], owners: dict[str, str] | None = None) -> str:
    owners = owners or {}
    out = [HEADER]
    for name in sorted(shares, key=str.lower):
        out.append(f"\n{MARK}{owners[name]}\n" if name in owners else "\n")
        out.append(f"[{name}]\n")
        out.extend(f"   {key} = {value}\n" for key, value in shares[name].items())
    return "".join(out)


def _pdbedit() -> list[str]:
    return ["pdbedit", "-s", str(config_path())]


def observe() -> SambaState:
    conf = config_path()
    if not conf.exists() or shutil.which("pdbedit", path=SAFE_PATH) is None:
        return SambaState(available=False, problem=f"Samba is not installed here (no {conf} or pdbedit)",
                          config_file=str(conf), shares_file=str(shares_path()))
    sections, includes = parse(conf.read_text(errors="replace"))
    try:
        ours, owners = parse_ours(shares_path().read_text(errors="replace"))
    except FileNotFoundError:
        ours, owners = {}, {}
    accounts: dict[str, str] = {}
    try:
        listing = run([*_pdbedit(), "-L", "-w"], "pdbedit -L")
    except ApplyError as exc:
        return SambaState(available=False, problem=str(exc), config_file=str(conf), shares_file=str(shares_path()))
    for line in listing.splitlines():
        fields = line.split(":")
        if len(fields) >= 4:
            accounts[fields[0]] = fields[3].upper()
    return SambaState(included=str(shares_path()) in includes, ours=ours, owners=owners,
                      foreign=frozenset(name.lower() for name in sections if name.lower() != "global"),
                      accounts=accounts, running=process_running("smbd"),
                      config_file=str(conf), shares_file=str(shares_path()))


def apply(action: Action) -> None:
    a = action.args
    if action.kind == "set_share":
        shares, owners = _ours()
        for name in [n for n in shares if n.lower() == a["name"].lower()]:  # Samba's names ignore case
            shares.pop(name)
            owners.pop(name, None)
        shares[a["name"]], owners[a["name"]] = dict(a["params"]), a["owner"]
        write_atomically(shares_path(), render(shares, owners))
    elif action.kind == "remove_share":
        shares, owners = _ours()
        shares.pop(a["name"], None)
        owners.pop(a["name"], None)
        write_atomically(shares_path(), render(shares, owners))
    elif action.kind == "include":
        conf = config_path()
        text = conf.read_text()
        if not text.endswith("\n"):
            text += "\n"
        if not shares_path().exists():
            write_atomically(shares_path(), render({}))
        write_atomically(conf, text + f"\n# OviOS shares (ovios-shell restore)\ninclude = {shares_path()}\n")
    elif action.kind == "set_account":
        _import_account(a["name"], a["uid"], a["nt_hash"], action.description)
    elif action.kind == "reload":
        run(["smbcontrol", "-s", str(config_path()), "smbd", "reload-config"], action.description)
    else:  # pragma: no cover
        raise ApplyError(f"unknown Samba action {action.kind}")


def _ours() -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    try:
        return parse_ours(shares_path().read_text())
    except FileNotFoundError:
        return {}, {}


def _import_account(name: str, uid: int, nt_hash: str, what: str) -> None:
    # smbpasswd format: name:uid:LM hash:NT hash:[flags]:LCT-<last change, hex seconds>:
    line = f"{name}:{uid}:{'X' * 32}:{nt_hash}:[U          ]:LCT-{int(time.time()):08X}:\n"
    with tempfile.TemporaryDirectory(prefix="ovios-restore-") as directory:  # mode 0700: a secret inside
        path = os.path.join(directory, "smbpasswd")
        with open(path, "w") as handle:
            handle.write(line)
        run([*_pdbedit(), "-i", f"smbpasswd:{path}"], what)

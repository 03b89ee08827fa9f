"""LIO iSCSI targets: observed in configfs, changed through ``targetcli`` (targetcli-fb).

configfs (``/sys/kernel/config/target``) is the kernel's own view, so reading it is exact
and costs no process: storage objects under ``core/<hba>/<name>`` (``udev_path``, and
``readonly: N`` in ``info``), targets under ``iscsi/<iqn>/tpgt_1`` (``lun/lun_N`` holding a
link to the storage object, ``acls/<initiator>``, ``attrib/<name>``, ``np/<ip:port>``).
When the target modules are not loaded yet there is nothing configured (targetcli loads
them and mounts configfs on its first call).

Every change is one ``targetcli`` command line (one-shot targetcli exits non-zero with the
error on failure), and each is checked in configfs afterwards.  ``saveconfig`` writes
``/etc/rtslib-fb-target/saveconfig.json``, which ``rtslib-fb-targetctl.service`` loads at boot.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from ..hosts import SAFE_PATH
from .common import ApplyError, os_path, run
from .planner import PORTAL, Action, Backstore, LioState, LioTarget

CONFIGFS = "/sys/kernel/config/target"
SAVE_FILE = "/etc/rtslib-fb-target/saveconfig.json"
_READONLY = re.compile(r"readonly: (\d)")


def observe() -> LioState:
    if shutil.which("targetcli", path=SAFE_PATH) is None and not os_path("/usr/bin/targetcli").exists():
        return LioState(available=False, problem="targetcli is not installed (package targetcli-fb)")
    root = os_path(CONFIGFS)
    backstores = tuple(_backstores(root / "core"))
    targets = tuple(_targets(root / "iscsi"))
    if not backstores and not targets and _saved_config_has_objects():
        return LioState(available=False, problem=(
            f"LIO's saved configuration ({SAVE_FILE}) is not loaded: load it first (targetctl restore) "
            "so that restore adds to it instead of replacing it"))
    return LioState(backstores=backstores, targets=targets)


def _saved_config_has_objects() -> bool:
    try:
        data = json.loads(os_path(SAVE_FILE).read_text())
    except (OSError, ValueError):
        return False
    return bool(isinstance(data, dict) and (data.get("storage_objects") or data.get("targets")))


def _read(path: Path, default: str = "") -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return default


def _dirs(path: Path) -> list[Path]:
    try:
        return sorted(p for p in path.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:
        return []


def _backstores(core: Path):
    for hba in _dirs(core):
        if hba.name == "alua":
            continue
        for obj in _dirs(hba):
            if obj.name == "alua" or not (obj / "info").exists():
                continue
            match = _READONLY.search(_read(obj / "info"))
            yield Backstore(obj.name, _read(obj / "udev_path"), bool(match and match.group(1) == "1"))


def _targets(iscsi: Path):
    for target in _dirs(iscsi):
        if not target.name.startswith(("iqn.", "eui.", "naa.")):
            continue
        tpg = target / "tpgt_1"
        luns: dict[int, str] = {}
        for lun in _dirs(tpg / "lun"):
            if not lun.name.startswith("lun_"):
                continue
            links = [p for p in lun.iterdir() if p.is_symlink()]
            if links:
                luns[int(lun.name[4:])] = os.path.basename(os.readlink(links[0]))
        attributes = {p.name: _read(p) for p in (tpg / "attrib").glob("*") if p.is_file()}
        yield LioTarget(target.name, luns, frozenset(p.name for p in _dirs(tpg / "acls")), attributes,
                        frozenset(p.name for p in _dirs(tpg / "np")))


def _targetcli(*args: str, what: str) -> None:
    run(["targetcli", *args], what)


def apply(action: Action) -> None:
    a = action.args
    if action.kind == "create_backstore":
        _targetcli("/backstores/block", "create", f"name={a['name']}", f"dev={a['device']}",
                   f"readonly={'true' if a['readonly'] else 'false'}", what=action.description)
        _check(any(b.name == a["name"] and b.device == a["device"] for b in observe().backstores), action)
    elif action.kind == "create_target":
        _targetcli("/iscsi", "create", a["iqn"], what=action.description)
        if not _observed_target(action).portals:  # targetcli's auto_add_default_portal is off here
            _targetcli(f"/iscsi/{a['iqn']}/tpg1/portals", "create", *PORTAL.split(":"), what=action.description)
        if a["attributes"]:  # opened by the action that created it, never later (see the planner)
            _set_attributes(action)
    elif action.kind == "add_portal":
        _targetcli(f"/iscsi/{a['iqn']}/tpg1/portals", "create", *PORTAL.split(":"), what=action.description)
        _check(bool(_observed_target(action).portals), action)
    elif action.kind == "set_attributes":
        _set_attributes(action)
    elif action.kind == "add_lun":
        _targetcli(f"/iscsi/{a['iqn']}/tpg1/luns", "create", f"/backstores/block/{a['backstore']}",
                   f"lun={a['lun']}", what=action.description)
        _check(_observed_target(action).luns.get(a["lun"]) == a["backstore"], action)
    elif action.kind == "add_acl":
        _targetcli(f"/iscsi/{a['iqn']}/tpg1/acls", "create", a["initiator"], what=action.description)
        _check(a["initiator"] in _observed_target(action).acls, action)
    elif action.kind == "save":
        _targetcli("saveconfig", what=action.description)
    else:  # pragma: no cover - the planner makes no other kind
        raise ApplyError(f"unknown LIO action {action.kind}")


def _set_attributes(action: Action) -> None:
    a = action.args
    _targetcli(f"/iscsi/{a['iqn']}/tpg1", "set", "attribute",
               *(f"{k}={v}" for k, v in sorted(a["attributes"].items())), what=action.description)
    have = _observed_target(action).attributes
    _check(all(have.get(k) == v for k, v in a["attributes"].items()), action)


def _check(ok: bool, action: Action) -> None:
    if not ok:
        raise ApplyError(f"{action.description}: targetcli reported success, but configfs does not show it")


def _observed_target(action: Action) -> LioTarget:
    """The action's target as configfs shows it after the action (a missing one fails it)."""
    target = observe().target(action.args["iqn"])
    if target is None:
        raise ApplyError(f"{action.description}: targetcli reported success, but configfs does not show "
                         f"the target {action.args['iqn']}")
    return target

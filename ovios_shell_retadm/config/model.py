"""The OviOS configuration as values, and its JSON format (format 1).

A configuration file looks like this (every list may be empty or absent)::

    {
      "format": 1,
      "node": "src",                    # the node whose configuration this is
      "generation": 7,                  # +1 on every change; a partner's copy says which it has
      "updated": "2026-11-26T09:00:00Z",
      "iscsi": {"targets": [
        {"iqn": "iqn.2026-11.com.ovios:esx",
         "acls": ["iqn.1998-01.com.vmware:esx1"],   # empty: any initiator may log in
         "luns": [{"id": 0, "volume": "esx/lun01"}]}]},
      "smb": {"shares": [
        {"name": "smbvol", "dataset": "data/smbvol", "read_only": false, "valid_users": ["alice"]}]},
      "nfs": {"exports": [
        {"dataset": "data/smbvol", "clients": "192.168.0.0/24", "options": "rw,sync,no_subtree_check"}]},
      "users": [{"name": "alice", "uid": 2001, "nt_hash": "<32 hex digits>"}]
    }

Shares and exports name a *dataset*, not a path: the path is wherever that dataset is
mounted on the node that serves it.  Users carry the NT hash Samba authenticates with
(never a clear-text password).  :func:`parse` refuses anything malformed with one line
that names the field; :func:`dump` writes the canonical text (sorted, so that equal
configurations are equal bytes and :func:`digest` can compare them).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace
from typing import Any

FORMAT = 1

# Every pattern is used with ``fullmatch``: a whole value, never a prefix of one (``$``
# would let a trailing newline through, and a share "foo\n" would break smb.conf).
#: iqn.YYYY-MM.<reversed domain>[:name], in lower case (iSCSI names are case-insensitive and
#: LIO keeps them in lower case); the domain has a dot in it and no _ anywhere, as LIO demands
_IQN = re.compile(r"iqn\.[0-9]{4}-(0[1-9]|1[0-2])\.[a-z0-9-]+(\.[a-z0-9-]+)+(:[a-z0-9.:-]+)?")
_SHARE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")
#: Samba's own sections (compared in lower case, as Samba does): never a share of ours
SAMBA_SECTIONS = ("global", "homes", "printers", "ipc$")
_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_DATASET = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*(/[A-Za-z0-9_.:-]+)+")
_NT_HASH = re.compile(r"[0-9A-Fa-f]{32}")
_CLIENTS = re.compile(r"[A-Za-z0-9.:/*_-]+")
_NFS_OPTIONS = re.compile(r"[a-z0-9_=,]+")
#: a node's name (its host name): what /etc/ovios/synced/<node>.json is called
_NODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")


class ConfigError(ValueError):
    """A configuration that does not follow the format; the message names the field."""


@dataclass(frozen=True)
class Lun:
    id: int
    volume: str  # a zvol, "pool/name"


@dataclass(frozen=True)
class Target:
    iqn: str
    acls: tuple[str, ...] = ()
    luns: tuple[Lun, ...] = ()


@dataclass(frozen=True)
class Share:
    name: str
    dataset: str
    read_only: bool = False
    valid_users: tuple[str, ...] = ()


@dataclass(frozen=True)
class Export:
    dataset: str
    clients: str
    options: str = "rw,sync,no_subtree_check"


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    nt_hash: str


@dataclass(frozen=True)
class Configuration:
    node: str = ""
    generation: int = 0
    updated: str = ""
    targets: tuple[Target, ...] = ()
    shares: tuple[Share, ...] = ()
    exports: tuple[Export, ...] = ()
    users: tuple[User, ...] = ()

    def target(self, iqn: str) -> Target | None:
        return next((t for t in self.targets if t.iqn == iqn), None)

    def content(self) -> Configuration:
        """The same configuration without its bookkeeping (node, generation, time)."""
        return replace(self, node="", generation=0, updated="")


# -- building (the library API other verbs and tests use) ----------------------------------


def with_lun(config: Configuration, iqn: str, lun_id: int, volume: str, acls: tuple[str, ...] = ()) -> Configuration:
    """``volume`` mapped as LUN ``lun_id`` of target ``iqn`` (the target made if missing).

    Refuses a LUN id the target already uses for another volume."""
    target = config.target(iqn) or Target(iqn, tuple(acls))
    taken = next((lun for lun in target.luns if lun.id == lun_id), None)
    if taken is not None and taken.volume != volume:
        raise ConfigError(f"LUN {lun_id} of {iqn} is already {taken.volume}")
    luns = tuple(sorted({*target.luns, Lun(lun_id, volume)}, key=lambda lun: lun.id))
    target = replace(target, luns=luns, acls=tuple(sorted({*target.acls, *acls})))
    others = tuple(t for t in config.targets if t.iqn != iqn)
    return checked(replace(config, targets=tuple(sorted((*others, target), key=lambda t: t.iqn))))


def with_share(config: Configuration, share: Share) -> Configuration:
    shares = tuple(s for s in config.shares if s.name != share.name)
    return checked(replace(config, shares=tuple(sorted((*shares, share), key=lambda s: s.name))))


def with_export(config: Configuration, export: Export) -> Configuration:
    exports = tuple(e for e in config.exports if e.dataset != export.dataset)
    return checked(replace(config, exports=tuple(sorted((*exports, export), key=lambda e: e.dataset))))


def with_user(config: Configuration, user: User) -> Configuration:
    users = tuple(u for u in config.users if u.name != user.name)
    return checked(replace(config, users=tuple(sorted((*users, user), key=lambda u: u.name))))


def nt_hash(password: str) -> str:
    """Samba's NT hash of a password (MD4 of its UTF-16LE), for :class:`User`."""
    from ._md4 import md4

    return md4(password.encode("utf-16-le")).hex().upper()


# -- the JSON format -----------------------------------------------------------------------


def to_json(config: Configuration) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "node": config.node,
        "generation": config.generation,
        "updated": config.updated,
        "iscsi": {"targets": [{"iqn": t.iqn, "acls": list(t.acls),
                               "luns": [{"id": lun.id, "volume": lun.volume} for lun in t.luns]}
                              for t in config.targets]},
        "smb": {"shares": [{"name": s.name, "dataset": s.dataset, "read_only": s.read_only,
                            "valid_users": list(s.valid_users)} for s in config.shares]},
        "nfs": {"exports": [{"dataset": e.dataset, "clients": e.clients, "options": e.options}
                            for e in config.exports]},
        "users": [{"name": u.name, "uid": u.uid, "nt_hash": u.nt_hash} for u in config.users],
    }


def dump(config: Configuration) -> str:
    return json.dumps(to_json(config), indent=2, sort_keys=True) + "\n"


def digest(config: Configuration) -> str:
    """A short fingerprint of what the configuration says (bookkeeping left out)."""
    return hashlib.sha256(dump(config.content()).encode()).hexdigest()[:16]


def parse(text: str) -> Configuration:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"not JSON: {exc}") from None
    return from_json(data)


def from_json(data: Any) -> Configuration:
    obj = _obj(data, "configuration")
    if obj.get("format") != FORMAT:
        raise ConfigError(f"format {obj.get('format')!r} is not supported (this version reads format {FORMAT})")
    iscsi_targets = _list(_obj(obj.get("iscsi", {}), "iscsi").get("targets", []), "iscsi.targets")
    targets = tuple(_target(t, f"iscsi.targets[{i}]") for i, t in enumerate(iscsi_targets))
    shares = tuple(_share(s, f"smb.shares[{i}]")
                   for i, s in enumerate(_list(_obj(obj.get("smb", {}), "smb").get("shares", []), "smb.shares")))
    exports = tuple(_export(e, f"nfs.exports[{i}]")
                    for i, e in enumerate(_list(_obj(obj.get("nfs", {}), "nfs").get("exports", []), "nfs.exports")))
    users = tuple(_user(u, f"users[{i}]") for i, u in enumerate(_list(obj.get("users", []), "users")))
    return checked(Configuration(
        node=_node(obj.get("node", "")), generation=_int(obj.get("generation", 0), "generation"),
        updated=_printable(obj.get("updated", ""), "updated"), targets=targets, shares=shares, exports=exports,
        users=users))


def checked(config: Configuration) -> Configuration:
    """The rules across entries: unique names, one volume per LUN id, one target per volume."""
    _unique([t.iqn for t in config.targets], "iscsi target")
    _unique([s.name.lower() for s in config.shares], "SMB share")
    _unique([e.dataset for e in config.exports], "NFS export of")
    _unique([u.name for u in config.users], "user")
    for target in config.targets:
        _unique([str(lun.id) for lun in target.luns], f"LUN id in {target.iqn}:")
    known = {u.name for u in config.users}
    for share in config.shares:
        for name in share.valid_users:
            if name not in known:
                raise ConfigError(f"SMB share {share.name}: valid user {name} is not a configured user")
    return config


def iscsi_name(name: str) -> str:
    """An iSCSI name as LIO keeps it: in lower case (iSCSI names are case-insensitive)."""
    return name.lower()


def share_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a share of ours (None: it can); one line."""
    if name.lower() in SAMBA_SECTIONS:
        return f"{name!r} is Samba's own section, not a share name"
    if not _SHARE.fullmatch(name):
        return f"{name!r} is not a share name (letters, digits, . _ -)"
    return None


def node_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a node's name (None: it can); one line."""
    if not _NODE.fullmatch(name) or ".." in name:
        return f"{name!r} is not a node name (letters, digits, . _ -)"
    return None


def _node(value: Any) -> str:
    name = _str(value, "node")
    problem = node_name_problem(name) if name else None
    if problem:
        raise ConfigError(f"node: {problem}")
    return name


def _printable(value: Any, where: str) -> str:
    text = _str(value, where)
    if not text.isprintable():
        raise ConfigError(f"{where}: {text!r} holds control characters")
    return text


def _unique(values: list[str], what: str) -> None:
    seen = set()
    for value in values:
        if value in seen:
            raise ConfigError(f"{what} {value} is defined twice")
        seen.add(value)


def _target(data: Any, where: str) -> Target:
    obj = _obj(data, where)
    iqn = iscsi_name(_str(obj.get("iqn"), f"{where}.iqn"))
    if not _IQN.fullmatch(iqn):
        raise ConfigError(f"{where}.iqn: {iqn!r} is not an iSCSI qualified name (iqn.YYYY-MM.reversed.domain:name)")
    acls = tuple(iscsi_name(_str(a, f"{where}.acls")) for a in _list(obj.get("acls", []), f"{where}.acls"))
    for acl in acls:
        if not _IQN.fullmatch(acl):
            raise ConfigError(f"{where}.acls: {acl!r} is not an initiator name (iqn.YYYY-MM.domain:name)")
    luns = []
    for i, lun in enumerate(_list(obj.get("luns", []), f"{where}.luns")):
        lobj = _obj(lun, f"{where}.luns[{i}]")
        lun_id = _int(lobj.get("id"), f"{where}.luns[{i}].id")
        if not 0 <= lun_id <= 255:
            raise ConfigError(f"{where}.luns[{i}].id: {lun_id} is not a LUN id (0-255)")
        luns.append(Lun(lun_id, _dataset(lobj.get("volume"), f"{where}.luns[{i}].volume")))
    return Target(iqn, tuple(sorted(acls)), tuple(sorted(luns, key=lambda lun: lun.id)))


def _share(data: Any, where: str) -> Share:
    obj = _obj(data, where)
    name = _str(obj.get("name"), f"{where}.name")
    problem = share_name_problem(name)
    if problem:
        raise ConfigError(f"{where}.name: {problem}")
    read_only = obj.get("read_only", False)
    if not isinstance(read_only, bool):
        raise ConfigError(f"{where}.read_only: must be true or false")
    users = tuple(_user_name(u, f"{where}.valid_users")
                  for u in _list(obj.get("valid_users", []), f"{where}.valid_users"))
    return Share(name, _dataset(obj.get("dataset"), f"{where}.dataset"), read_only, users)


def _export(data: Any, where: str) -> Export:
    obj = _obj(data, where)
    clients = _str(obj.get("clients"), f"{where}.clients")
    if not _CLIENTS.fullmatch(clients):
        raise ConfigError(f"{where}.clients: {clients!r} is not a host, network or *")
    options = _str(obj.get("options", "rw,sync,no_subtree_check"), f"{where}.options")
    if not _NFS_OPTIONS.fullmatch(options):
        raise ConfigError(f"{where}.options: {options!r} is not a list of export options")
    return Export(_dataset(obj.get("dataset"), f"{where}.dataset"), clients, options)


def _user(data: Any, where: str) -> User:
    obj = _obj(data, where)
    uid = _int(obj.get("uid"), f"{where}.uid")
    if not 1000 <= uid < 60000:
        raise ConfigError(f"{where}.uid: {uid} is not a user id for people (1000-59999)")
    nt = _str(obj.get("nt_hash"), f"{where}.nt_hash")
    if not _NT_HASH.fullmatch(nt):
        raise ConfigError(f"{where}.nt_hash: not 32 hex digits")
    return User(_user_name(obj.get("name"), f"{where}.name"), uid, nt.upper())


def _user_name(value: Any, where: str) -> str:
    name = _str(value, where)
    if not _USER.fullmatch(name):
        raise ConfigError(f"{where}: {name!r} is not a user name (lower case letters, digits, _ -)")
    return name


def _dataset(value: Any, where: str) -> str:
    name = _str(value, where)
    if not _DATASET.fullmatch(name) or ".." in name or len(name) > 200:
        raise ConfigError(f"{where}: {name!r} is not a dataset name (pool/name)")
    return name


def _obj(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: must be an object")
    return value


def _list(value: Any, where: str) -> list:
    if not isinstance(value, list):
        raise ConfigError(f"{where}: must be a list")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: must be text")
    return value


def _int(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{where}: must be a whole number")
    return value

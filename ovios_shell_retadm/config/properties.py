"""The per-dataset part of the configuration, kept in ZFS user properties.

These travel with the data when a task replicates properties (``retadm init …
--properties yes``, ``zfs send -p``), so a replicated LUN knows its mapping on the
partner even without autosync, as the guide's ``restore luns`` expects:

=======================  ===================================================  ==========
property                 value                                                on
=======================  ===================================================  ==========
``ovios:lun.mapping``    ``<target iqn>,lun<id>`` (several: space-separated)  zvols
``ovios:smb.share``      the share name (``-``/absent: not shared)            filesystems
``ovios:nfs.export``     ``<clients>(<options>)``                             filesystems
=======================  ===================================================  ==========
"""

from __future__ import annotations

import re

from .model import ConfigError, Configuration, Lun, Target, checked, iscsi_name

LUN_MAPPING = "ovios:lun.mapping"
SMB_SHARE = "ovios:smb.share"
NFS_EXPORT = "ovios:nfs.export"
ALL = (LUN_MAPPING, SMB_SHARE, NFS_EXPORT)

_MAPPING = re.compile(r"(?P<iqn>[iI][qQ][nN]\.[^,\s]+),lun(?P<id>[0-9]{1,3})")  # fullmatch: whole parts


def lun_mapping(targets: tuple[Target, ...], volume: str) -> str | None:
    """The ``ovios:lun.mapping`` value for ``volume`` (None: not mapped)."""
    found = [f"{t.iqn},lun{lun.id}" for t in targets for lun in t.luns if lun.volume == volume]
    return " ".join(found) or None


def parse_lun_mapping(value: str) -> list[tuple[str, int]]:
    """``iqn…,lun0 iqn…,lun3`` → ``[(iqn, 0), (iqn, 3)]``; ConfigError names a bad part."""
    mappings = []
    for part in value.split():
        match = _MAPPING.fullmatch(part)
        if match is None:
            raise ConfigError(f"{LUN_MAPPING}: {part!r} is not <target iqn>,lun<id>")
        mappings.append((iscsi_name(match["iqn"]), int(match["id"])))
    return mappings


def targets_from_properties(volumes: dict[str, str]) -> Configuration:
    """The targets that replicated zvols' mapping properties describe (``restore luns``
    without autosync): ``{volume: ovios:lun.mapping value}`` → a configuration with
    targets and LUNs only (no ACLs: those live in the synced configuration)."""
    luns: dict[str, list[Lun]] = {}
    for volume, value in sorted(volumes.items()):
        for iqn, lun_id in parse_lun_mapping(value):
            luns.setdefault(iqn, []).append(Lun(lun_id, volume))
    targets = tuple(Target(iqn, (), tuple(sorted(found, key=lambda lun: lun.id)))
                    for iqn, found in sorted(luns.items()))
    return checked(Configuration(targets=targets))

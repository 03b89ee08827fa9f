"""What ``restore`` must do: desired configuration + observed service state → a plan.

Pure functions over values; nothing here reads a file or runs a command.  A plan is a
list of :class:`Action` (each with the one line that ``--dry-run`` prints and a normal
run prints as it does it), a list of refusals (a plan with any refusal is not applied at
all: nothing half-done) and notes (facts worth a line that do not stop anything, such as
a replica that is still read-only).  Applying a plan and observing again gives a plan
with no actions: that is what makes ``restore`` idempotent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from ..config import properties
from ..config.model import SAMBA_SECTIONS, ConfigError, Configuration, Export, Share, User, share_name_problem
from ..config.receive import address, origin_splits
from ..replication.model import ORIGIN_PROPERTY

PARTS = ("users", "luns", "shares", "exports")  # the order ``restore all`` applies them in

PORTAL = "0.0.0.0:3260"
#: TPG attributes for a target without ACLs: any initiator may log in and write
OPEN_ATTRIBUTES = {"authentication": "0", "cache_dynamic_acls": "1", "demo_mode_write_protect": "0",
                   "generate_node_acls": "1"}
#: for a target with ACLs: only those initiators
ACL_ATTRIBUTES = {"generate_node_acls": "0"}
#: what a TPG the kernel just created has (``targetcli /iscsi create`` leaves them)
NEW_TPG_ATTRIBUTES = {"authentication": "0", "cache_dynamic_acls": "0", "demo_mode_write_protect": "1",
                      "generate_node_acls": "0"}
ZVOL_DIR = "/dev/zvol/"
#: the iSCSI names LIO (rtslib's normalize_wwn) accepts, once in lower case: a naming authority
#: with a dot in it, no _ and no white space (used with fullmatch: whole names only)
LIO_IQN = re.compile(r"iqn\.[0-9]{4}-[0-1][0-9]\.[^\s_]*\.[^\s_]*")


# -- what is there: local datasets ---------------------------------------------------------


@dataclass(frozen=True)
class DatasetInfo:
    """A local dataset as ``zfs get`` shows it."""

    name: str
    type: str  # "filesystem" or "volume"
    mountpoint: str = "-"  # "-", "none" or "legacy": no path to serve
    mounted: bool = False
    readonly: bool = False
    lun_mapping: str = "-"  # ovios:lun.mapping ("-": none)
    smb_share: str = "-"  # ovios:smb.share
    nfs_export: str = "-"  # ovios:nfs.export
    origin: str = "-"  # ovios:retadm.origin, "<source host>:<dataset>" on a replica ("-": not one)
    key_loaded: bool = True  # False: an encrypted dataset (a raw replica) whose key is not loaded

    @property
    def path(self) -> str | None:
        return self.mountpoint if self.mountpoint.startswith("/") else None


# -- what is there: the services ------------------------------------------------------------


@dataclass(frozen=True)
class Backstore:
    """An LIO block storage object."""

    name: str
    device: str  # its udev_path, e.g. /dev/zvol/repl/lun01
    readonly: bool = False


@dataclass(frozen=True)
class LioTarget:
    """An iSCSI target (its TPG 1, the only one restore uses)."""

    iqn: str
    luns: dict[int, str] = field(default_factory=dict)  # LUN id -> backstore name
    acls: frozenset[str] = frozenset()
    attributes: dict[str, str] = field(default_factory=dict)
    portals: frozenset[str] = frozenset()


@dataclass(frozen=True)
class LioState:
    available: bool = True
    problem: str = ""  # why not available
    backstores: tuple[Backstore, ...] = ()
    targets: tuple[LioTarget, ...] = ()

    def target(self, iqn: str) -> LioTarget | None:
        return next((t for t in self.targets if t.iqn == iqn), None)

    def backstore(self, name: str) -> Backstore | None:
        return next((b for b in self.backstores if b.name == name), None)


@dataclass(frozen=True)
class SambaState:
    available: bool = True
    problem: str = ""
    config_file: str = "/etc/samba/smb.conf"
    shares_file: str = "/etc/samba/ovios-shares.conf"
    included: bool = False  # smb.conf includes shares_file
    ours: dict[str, dict[str, str]] = field(default_factory=dict)  # share -> parameters, in shares_file
    owners: dict[str, str] = field(default_factory=dict)  # share -> the partner restored from (none: unmarked)
    foreign: frozenset[str] = frozenset()  # sections of smb.conf itself, lower case
    accounts: dict[str, str] = field(default_factory=dict)  # user -> NT hash (upper case)
    running: bool = False


@dataclass(frozen=True)
class NfsState:
    available: bool = True
    problem: str = ""
    exports_file: str = "/etc/exports.d/ovios.exports"
    ours: dict[str, str] = field(default_factory=dict)  # path -> "clients(options)"
    owners: dict[str, str] = field(default_factory=dict)  # path -> the partner restored from (none: unmarked)
    running: bool = False


@dataclass(frozen=True)
class Observed:
    datasets: dict[str, DatasetInfo] = field(default_factory=dict)
    unix_users: dict[str, int] = field(default_factory=dict)  # name -> uid
    lio: LioState = LioState()
    samba: SambaState = SambaState()
    nfs: NfsState = NfsState()


# -- what is wanted ---------------------------------------------------------------------------


#: the owner of entries a restore without any synced configuration writes (not a node name)
PROPERTIES_ONLY = "-"


@dataclass(frozen=True)
class Partner:
    """The node whose synced configuration a restore applies: its name (the synced file's) and
    the addresses it is known by here (what its pushes came from, what its name resolves to)."""

    name: str
    addresses: frozenset[str] = frozenset()

    def is_host(self, host: str) -> bool:
        """Whether the host part of an origin mark (the address a replica's node reached the
        source at) is this partner: its name, or one of its addresses."""
        return host.lower() == self.name.lower() or address(host) in {address(a) for a in self.addresses}

    def replica_of(self, info: DatasetInfo) -> str | None:
        """The partner's dataset ``info`` is a replica of (None: it is not a replica of the partner's)."""
        return next((dataset for host, dataset in origin_splits(info.origin) if self.is_host(host)), None)


@dataclass(frozen=True)
class Claim:
    """One LUN as some source wants it."""

    iqn: str
    lun: int
    volume: str
    origin: str  # "the synced configuration" or "ovios:lun.mapping of repl/lun01"


@dataclass(frozen=True)
class Desired:
    claims: tuple[Claim, ...] = ()
    acls: dict[str, tuple[str, ...]] = field(default_factory=dict)  # target -> initiators
    shares: tuple[Share, ...] = ()
    exports: tuple[Export, ...] = ()
    users: tuple[User, ...] = ()
    #: whose entries these are: the partner's name (PROPERTIES_ONLY: no synced configuration);
    #: a restore adds, changes and removes only the entries of the shares and exports files it owns
    owner: str = PROPERTIES_ONLY


_EXPORT_PROPERTY = re.compile(r"(?P<clients>[^()\s]+)\((?P<options>[a-z0-9_=,]+)\)")  # fullmatch


def desired(config: Configuration | None, datasets: dict[str, DatasetInfo],
            partner: Partner | None = None) -> tuple[Desired, list[str]]:
    """What the synced configuration (None: there is none) and the local datasets'
    properties ask for, and notes on what cannot be served here.

    The synced configuration names datasets as they are on the partner.  An entry goes to
    the partner's replica of that dataset here: the dataset whose origin mark names the
    partner and that dataset (whatever its name here; the one of the same name first).  A
    dataset here without that mark, even of the same name, is not the partner's: the entry
    is skipped with a note.  With a partner, only its replicas' properties count too.
    """
    notes: list[str] = []
    claims: list[Claim] = []
    acls: dict[str, tuple[str, ...]] = {}
    shares: list[Share] = []
    exports: list[Export] = []
    if config is not None and partner is None:
        partner = Partner(config.node)
    config = config or Configuration()
    for target in config.targets:
        acls[target.iqn] = tuple(target.acls)
        for lun in target.luns:
            what = f"LUN {lun.id} of {target.iqn}"
            info = _replica(lun.volume, datasets, partner, what, notes)
            if info is not None and info.type != "volume":
                notes.append(f"skipped {what}: {info.name} is not a zvol")
            elif info is not None:
                claims.append(Claim(target.iqn, lun.id, info.name, "the synced configuration"))
    for share in config.shares:
        what = f"SMB share {share.name}"
        info = _replica(share.dataset, datasets, partner, what, notes)
        if info is not None and _serveable(info.name, datasets, what, notes):
            shares.append(replace(share, dataset=info.name))
    for export in config.exports:
        info = _replica(export.dataset, datasets, partner, "NFS export", notes)
        if info is not None and _serveable(info.name, datasets, "NFS export", notes):
            exports.append(replace(export, dataset=info.name))

    for info in sorted(datasets.values(), key=lambda d: d.name):
        if partner is not None and partner.replica_of(info) is None:
            if any(v not in ("", "-") for v in (info.lun_mapping, info.smb_share, info.nfs_export)):
                notes.append(f"skipped the ovios:* properties of {info.name}: not a replica of {partner.name}'s "
                             f"datasets ({ORIGIN_PROPERTY} is {info.origin})")
            continue
        _from_properties(info, datasets, claims, acls, shares, exports, notes)
    owner = partner.name if partner is not None else PROPERTIES_ONLY
    return Desired(tuple(claims), acls, tuple(shares), tuple(exports), tuple(config.users), owner), notes


def _replica(dataset: str, datasets: dict[str, DatasetInfo], partner: Partner | None, what: str,
             notes: list[str]) -> DatasetInfo | None:
    """The partner's replica of its ``dataset`` here (None, with a note: there is none)."""
    if partner is None:  # pragma: no cover - a configuration always has its partner
        return datasets.get(dataset)
    found = sorted((i for i in datasets.values() if partner.replica_of(i) == dataset),
                   key=lambda i: (i.name != dataset, i.name))
    if found:
        return found[0]
    same = datasets.get(dataset)
    if same is not None:
        notes.append(f"skipped {what}: {dataset} here is not {partner.name}'s {dataset} "
                     f"({ORIGIN_PROPERTY} is {same.origin})")
    else:
        notes.append(f"skipped {what}: no replica of {partner.name}'s {dataset} on this node")
    return None


def _from_properties(info: DatasetInfo, datasets: dict[str, DatasetInfo], claims: list[Claim],
                     acls: dict[str, tuple[str, ...]], shares: list[Share], exports: list[Export],
                     notes: list[str]) -> None:
    """What one dataset's ``ovios:*`` properties add (the synced configuration's entries win)."""
    if info.type == "volume" and info.lun_mapping not in ("", "-"):
        try:
            mappings = properties.parse_lun_mapping(info.lun_mapping)
        except ConfigError as exc:
            notes.append(f"ignored {properties.LUN_MAPPING} of {info.name}: {exc}")
            mappings = []
        for iqn, lun_id in mappings:
            claim = Claim(iqn, lun_id, info.name, f"{properties.LUN_MAPPING} of {info.name}")
            if not any((c.iqn, c.lun, c.volume) == (iqn, lun_id, info.name) for c in claims):
                claims.append(claim)
                acls.setdefault(iqn, ())
    if info.type == "filesystem" and info.smb_share not in ("", "-"):
        name = info.smb_share
        problem = share_name_problem(name)
        if problem:
            notes.append(f"ignored {properties.SMB_SHARE} of {info.name}: {problem}")
        elif (not any(s.name.lower() == name.lower() for s in shares)  # the synced configuration has it
              and _serveable(info.name, datasets, f"SMB share {name}", notes)):
            shares.append(Share(name, info.name))
    if info.type == "filesystem" and info.nfs_export not in ("", "-"):
        match = _EXPORT_PROPERTY.fullmatch(info.nfs_export)
        if match is None:
            notes.append(f"ignored {properties.NFS_EXPORT} of {info.name}: {info.nfs_export!r} "
                         "is not <clients>(<options>)")
        elif (not any(e.dataset == info.name for e in exports)
              and _serveable(info.name, datasets, "NFS export", notes)):
            exports.append(Export(info.name, match["clients"], match["options"]))


def _serveable(dataset: str, datasets: dict[str, DatasetInfo], what: str, notes: list[str]) -> bool:
    info = datasets.get(dataset)
    if info is None or info.type != "filesystem":
        notes.append(f"skipped {what}: {dataset} is not a filesystem on this node")
        return False
    if info.path is None:
        notes.append(f"skipped {what}: {dataset} has no mountpoint (mountpoint={info.mountpoint})")
        return False
    return True


# -- the plan -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    service: str  # "users", "lio", "samba", "nfs": the backend that applies it
    kind: str
    description: str
    args: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, service: str, kind: str, description: str, **args: Any) -> None:
        self.actions.append(Action(service, kind, description, args))

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


def plan(parts: tuple[str, ...], want: Desired, seen: Observed) -> Plan:
    """The plan for ``parts`` (a subset of :data:`PARTS`)."""
    result = Plan()
    if "users" in parts:
        _plan_users(want, seen, result)
    if "luns" in parts:
        _plan_luns(want, seen, result)
    if "shares" in parts:
        _plan_shares(want, seen, result, users_too="users" in parts)
    if "exports" in parts:
        _plan_exports(want, seen, result)
    return result


def _readonly_note(info: DatasetInfo, plan_: Plan) -> None:
    if not info.key_loaded:
        plan_.note(f"{info.name} is encrypted and its key is not loaded here: it cannot be mounted or served "
                   f"until it is (retadm promote {info.name} --key-file PATH loads it)")
    if info.readonly:
        plan_.note(f"{info.name} is read-only (a replica not promoted yet): clients can read it, "
                   f"writes fail until it is promoted (retadm promote {info.name})")


# users ------------------------------------------------------------------------------------------


def _plan_users(want: Desired, seen: Observed, out: Plan) -> None:
    if not want.users:
        return
    by_uid = {uid: name for name, uid in seen.unix_users.items()}
    for user in want.users:
        have = seen.unix_users.get(user.name)
        if have is None:
            if user.uid in by_uid:
                out.refusals.append(f"user {user.name}: uid {user.uid} is already user {by_uid[user.uid]} here")
                continue
            out.add("users", "add_user", f"add Unix user {user.name} (uid {user.uid})", name=user.name, uid=user.uid)
        elif have != user.uid:
            out.refusals.append(f"user {user.name} exists here with uid {have}, the configuration says "
                                f"{user.uid}: change one of them by hand")
            continue
    if not seen.samba.available:
        out.refusals.append(f"Samba accounts cannot be restored: {seen.samba.problem}")
        return
    for user in want.users:
        hash_ = seen.samba.accounts.get(user.name)
        if hash_ == user.nt_hash.upper():
            continue
        verb = "add Samba account" if hash_ is None else "update the Samba password of"
        out.add("samba", "set_account", f"{verb} {user.name} (NT hash from the configuration)",
                name=user.name, uid=user.uid, nt_hash=user.nt_hash.upper())


# LUNs -------------------------------------------------------------------------------------------


def backstore_name(volume: str) -> str:
    """The LIO storage object name for a zvol: ``repl/lun01`` → ``repl-lun01``."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", volume)


def _describe_backstore(store: Backstore | None, name: str) -> str:
    if store is None:
        return f"backstore {name}"
    if store.device.startswith(ZVOL_DIR):
        return f"{store.device[len(ZVOL_DIR):]} (backstore block/{store.name})"
    return f"backstore {store.name} ({store.device})"


def _plan_luns(want: Desired, seen: Observed, out: Plan) -> None:
    if not want.claims:
        return
    lio = seen.lio
    if not lio.available:
        out.refusals.append(f"iSCSI targets cannot be restored: {lio.problem}")
        return
    by_device = {b.device: b for b in lio.backstores}
    taken_names = {b.name for b in lio.backstores}

    # which claims can be honoured, target by target and LUN id by LUN id
    granted: list[Claim] = []
    groups: dict[tuple[str, int], list[Claim]] = {}
    for claim in want.claims:
        groups.setdefault((claim.iqn, claim.lun), []).append(claim)
    for (iqn, lun_id), claims in sorted(groups.items()):
        target = lio.target(iqn)
        occupant_name = target.luns.get(lun_id) if target else None
        if occupant_name is not None:
            occupant = lio.backstore(occupant_name)
            device = occupant.device if occupant else None
            for claim in claims:
                if device == ZVOL_DIR + claim.volume:
                    granted.append(claim)
                else:
                    out.refusals.append(
                        f"LUN {lun_id} of {iqn} is already used by {_describe_backstore(occupant, occupant_name)}: "
                        f"not mapping {claim.volume} there (from {claim.origin}); give it another LUN id")
            continue
        volumes = sorted({c.volume for c in claims})
        if len(volumes) > 1:
            out.refusals.append(f"LUN {lun_id} of {iqn} is wanted by both {' and '.join(volumes)} "
                                f"({'; '.join(sorted({c.origin for c in claims}))}): give one another LUN id")
            continue
        claim = claims[0]
        if target is not None:
            store = by_device.get(ZVOL_DIR + claim.volume)
            other = next((i for i, n in target.luns.items() if store is not None and n == store.name), None)
            if other is not None:
                out.refusals.append(f"{claim.volume} is already LUN {other} of {iqn}: not mapping it again "
                                    f"as LUN {lun_id} (from {claim.origin})")
                continue
        granted.append(claim)
    for name in sorted({c.iqn for c in granted} | {i for c in granted for i in want.acls.get(c.iqn, ())}):
        if not LIO_IQN.fullmatch(name):
            out.refusals.append(f"{name}: LIO accepts only iSCSI names whose naming authority has a dot in it and "
                                "that hold no _ or white space (iqn.YYYY-MM.<reversed domain>[:name], "
                                "e.g. iqn.2026-11.com.example:esx)")
    if out.refusals:
        return

    # backstores, then targets, their attributes and portal, LUNs, ACLs; saveconfig last
    names: dict[str, str] = {}  # volume -> backstore name
    for claim in granted:
        info = seen.datasets[claim.volume]
        _readonly_note(info, out)
        if claim.volume in names:
            continue
        device = ZVOL_DIR + claim.volume
        store = by_device.get(device)
        if store is not None:
            names[claim.volume] = store.name
            if store.readonly and not info.readonly:
                out.note(f"backstore block/{store.name} serves {claim.volume} read-only although it is writable "
                         f"now: delete it with targetcli and run restore again to serve it writable")
            continue
        name, n = backstore_name(claim.volume), 1
        while name in taken_names:
            n += 1
            name = f"{backstore_name(claim.volume)}-{n}"
        taken_names.add(name)
        names[claim.volume] = name
        mode = " read-only" if info.readonly else ""
        out.add("lio", "create_backstore", f"create{mode} LIO block backstore {name} on {device}",
                name=name, device=device, readonly=info.readonly)

    for iqn in sorted({c.iqn for c in granted}):
        target = lio.target(iqn)
        acls = want.acls.get(iqn, ())
        if target is None:
            _create_target(iqn, acls, out)
            have_luns: dict[int, str] = {}
            have_acls: frozenset[str] = frozenset()
        else:
            _existing_target(target, acls, out)
            have_luns, have_acls = target.luns, target.acls
        for claim in sorted((c for c in granted if c.iqn == iqn), key=lambda c: c.lun):
            if claim.lun in have_luns:
                continue
            out.add("lio", "add_lun", f"map {claim.volume} as LUN {claim.lun} of {iqn}",
                    iqn=iqn, lun=claim.lun, backstore=names[claim.volume], volume=claim.volume)
        for initiator in acls:
            if initiator not in have_acls:
                out.add("lio", "add_acl", f"allow initiator {initiator} on {iqn}", iqn=iqn, initiator=initiator)
    if any(a.service == "lio" for a in out.actions):
        out.add("lio", "save", "save the LIO configuration (survives a reboot)")


def _settings(attributes: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(attributes.items()))


def _create_target(iqn: str, acls: tuple[str, ...], out: Plan) -> None:
    """A new target: with ACLs only their initiators may log in (what a new TPG has); without,
    it is opened to any initiator by the same action, whose line says so."""
    wanted = ACL_ATTRIBUTES if acls else OPEN_ATTRIBUTES
    change = {k: v for k, v in wanted.items() if NEW_TPG_ATTRIBUTES.get(k) != v}
    access = (f", open to any initiator (no ACLs configured: {_settings(change)})" if not acls
              else ", only the configured initiators may log in")
    out.add("lio", "create_target", f"create iSCSI target {iqn} (TPG 1, portal {PORTAL}){access}",
            iqn=iqn, attributes=change)


def _existing_target(target: LioTarget, acls: tuple[str, ...], out: Plan) -> None:
    """A target that exists here keeps its access: never opened (its own ACLs, or a choice made
    here, stay), only restricted to ACLs when the configuration names initiators."""
    if not target.portals:
        out.add("lio", "add_portal", f"add portal {PORTAL} to {target.iqn}", iqn=target.iqn)
    if not acls:
        if any(target.attributes.get(k) != v for k, v in OPEN_ATTRIBUTES.items()):
            out.note(f"iSCSI target {target.iqn} already exists here: who may log in stays as it is (restore never "
                     "opens an existing target; no ACLs are configured for it: add the initiators' ACLs with "
                     "targetcli)")
        return
    change = {k: v for k, v in ACL_ATTRIBUTES.items() if target.attributes.get(k) != v}
    if change:
        out.add("lio", "set_attributes", f"{target.iqn}: only the configured initiators may log in "
                f"({_settings(change)})", iqn=target.iqn, attributes=change)


# shares -----------------------------------------------------------------------------------------


def share_parameters(share: Share, path: str) -> dict[str, str]:
    """The ``smb.conf`` parameters of a share, as our file writes them."""
    params = {"path": path, "read only": "yes" if share.read_only else "no", "browseable": "yes"}
    if share.valid_users:
        params["valid users"] = " ".join(share.valid_users)
    return params


def _source(owner: str | None) -> str:
    return "the datasets' properties" if owner == PROPERTIES_ONLY else str(owner)


def _plan_shares(want: Desired, seen: Observed, out: Plan, users_too: bool) -> None:
    """Shares of ``want.owner`` only: another partner's entries in our file are never changed,
    removed or taken over; an entry without a mark (an older restore's) is adopted when wanted."""
    samba = seen.samba
    mine = {name for name in samba.ours if samba.owners.get(name) == want.owner}
    if not want.shares and not mine:
        return
    if not samba.available:
        if want.shares:
            out.refusals.append(f"SMB shares cannot be restored: {samba.problem}")
        return
    changed = False
    wanted = {s.name: s for s in want.shares}
    for share in want.shares:
        if share.name.lower() in samba.foreign:
            out.refusals.append(f"SMB share {share.name} is already defined in {samba.config_file}: "
                                "not defining it twice")
            continue
        if share.name.lower() in SAMBA_SECTIONS:
            out.refusals.append(f"SMB share {share.name} is one of Samba's own sections (global, homes, printers, "
                                "IPC$): not a share name")
            continue
        same = [n for n in samba.ours if n.lower() == share.name.lower()]
        others = sorted({samba.owners[n] for n in same if samba.owners.get(n, want.owner) != want.owner})
        if others:
            out.refusals.append(f"SMB share {share.name} in {samba.shares_file} was restored from "
                                f"{_source(others[0])}: not replacing it with the one from {_source(want.owner)}")
            continue
        info = seen.datasets[share.dataset]
        params = share_parameters(share, info.path or "")
        _readonly_note(info, out)
        if not info.mounted:
            out.note(f"{share.dataset} is not mounted (service zfs mount-all): share {share.name} shows "
                     "an empty directory until it is")
        if not users_too:
            missing = [u for u in share.valid_users if u not in samba.accounts]
            if missing:
                out.note(f"share {share.name}: valid user(s) {' '.join(missing)} have no Samba account "
                         "(restore users)")
        have = samba.ours.get(share.name)
        if have == params and samba.owners.get(share.name) == want.owner:
            continue
        changed = True
        if have is None:
            out.add("samba", "set_share", f"add SMB share {share.name} ({info.path})", name=share.name,
                    params=params, owner=want.owner)
        else:
            diff = [f"{k} {have.get(k, '-')} → {v}" for k, v in params.items() if have.get(k) != v]
            if samba.owners.get(share.name) != want.owner:
                diff.append(f"restored from {_source(want.owner)}")
            out.add("samba", "set_share", f"update SMB share {share.name}: {', '.join(diff)}", name=share.name,
                    params=params, owner=want.owner)
    for name in sorted(mine - set(wanted)):
        changed = True
        out.add("samba", "remove_share", f"remove SMB share {name} (not in the configuration any more)", name=name)
    if out.refusals:
        return
    if want.shares and not samba.included:
        changed = True
        out.add("samba", "include", f"include {samba.shares_file} from {samba.config_file}")
    _samba_reload(changed, bool(want.shares), samba, out)


def _samba_reload(changed: bool, serving: bool, samba: SambaState, out: Plan) -> None:
    if changed and samba.running:
        out.add("samba", "reload", "reload smbd")
    elif serving and not samba.running:
        out.note("smbd is not running: start it to serve the shares (service smb start)")


# exports ----------------------------------------------------------------------------------------


def _plan_exports(want: Desired, seen: Observed, out: Plan) -> None:
    """Exports of ``want.owner`` only, as for shares (see :func:`_plan_shares`)."""
    nfs = seen.nfs
    mine = {path for path in nfs.ours if nfs.owners.get(path) == want.owner}
    if not want.exports and not mine:
        return
    if not nfs.available:
        if want.exports:
            out.refusals.append(f"NFS exports cannot be restored: {nfs.problem}")
        return
    wanted: dict[str, str] = {}
    for export in want.exports:
        info = seen.datasets[export.dataset]
        _readonly_note(info, out)
        if not info.mounted:
            out.note(f"{export.dataset} is not mounted (service zfs mount-all): its export cannot be mounted "
                     "until it is")
        wanted[info.path or ""] = f"{export.clients}({export.options})"
    changed = False
    for path, spec in sorted(wanted.items()):
        have, owner = nfs.ours.get(path), nfs.owners.get(path)
        if have is not None and owner not in (None, want.owner):
            out.refusals.append(f"the export of {path} in {nfs.exports_file} was restored from {_source(owner)}: "
                                f"not replacing it with the one from {_source(want.owner)}")
            continue
        if have == spec and owner == want.owner:
            continue
        changed = True
        if have is None:
            description = f"export {path} to {spec}"
        else:
            description = f"change the export of {path} to {spec}"
            if owner != want.owner:
                description += f" (restored from {_source(want.owner)})"
        out.add("nfs", "set_export", description, path=path, spec=spec, owner=want.owner)
    if out.refusals:
        return
    for path in sorted(mine - set(wanted)):
        changed = True
        out.add("nfs", "remove_export", f"stop exporting {path} (not in the configuration any more)", path=path)
    if changed:
        out.add("nfs", "refresh", "exportfs -ra (the kernel's export table)")
    if wanted and not nfs.running:
        out.note("the NFS server is not running: start it to serve the exports (service nfs start)")

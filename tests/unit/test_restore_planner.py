"""restore's planner: desired configuration + observed services → actions, refusals, notes.

Pure: no service runs here.  The round trip "apply, observe again, plan again → nothing"
is modelled by :func:`applied`, which turns a plan's actions into the state the services
would then show; the real round trip runs in the OpenZFS lab (tests/openzfs_lab/test_restore.py).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from cmd2.py_bridge import PyBridge

from ovios_shell_retadm.config import files
from ovios_shell_retadm.config.model import (
    Configuration,
    Export,
    Share,
    User,
    nt_hash,
    with_export,
    with_lun,
    with_share,
    with_user,
)
from ovios_shell_retadm.restore import planner
from ovios_shell_retadm.restore.planner import (
    Backstore,
    DatasetInfo,
    LioState,
    LioTarget,
    NfsState,
    Observed,
    SambaState,
    desired,
    plan,
)
from ovios_shell_retadm.shell import OviosShell

IQN = "iqn.2026-11.com.ovios:esx"
ESX1 = "iqn.1998-01.com.vmware:esx1"
ALICE = User("alice", 2001, nt_hash("secret"))


#: the partner the synced configurations come from; the datasets here are its replicas by default
SRC = planner.Partner("src", frozenset({"192.168.0.149"}))


def zvol(name: str, mapping: str = "-", readonly: bool = False, origin: str | None = None) -> DatasetInfo:
    return DatasetInfo(name, "volume", lun_mapping=mapping, readonly=readonly,
                       origin=f"192.168.0.149:{name}" if origin is None else origin)


def fs(name: str, readonly: bool = False, mounted: bool = True, origin: str | None = None, **props) -> DatasetInfo:
    return DatasetInfo(name, "filesystem", mountpoint=f"/{name}", mounted=mounted, readonly=readonly,
                       origin=f"192.168.0.149:{name}" if origin is None else origin, **props)


def datasets(*infos: DatasetInfo) -> dict[str, DatasetInfo]:
    return {i.name: i for i in infos}


def synced() -> Configuration:
    config = with_lun(Configuration(), IQN, 0, "repl/lun01", acls=(ESX1,))
    config = with_user(config, ALICE)
    config = with_share(config, Share("smbvol", "repl/smbvol", valid_users=("alice",)))
    return with_export(config, Export("repl/smbvol", "192.168.0.0/24"))


def node(**changes) -> Observed:
    base = Observed(datasets=datasets(zvol("repl/lun01", readonly=True), fs("repl/smbvol", readonly=True)),
                    unix_users={"root": 0}, samba=SambaState(), nfs=NfsState(), lio=LioState())
    return replace(base, **changes)


def applied(seen: Observed, result: planner.Plan) -> Observed:
    """The state the services show after the plan's actions (what the backends do)."""
    stores = {b.name: b for b in seen.lio.backstores}
    targets = {t.iqn: t for t in seen.lio.targets}
    users, ours, accounts = dict(seen.unix_users), dict(seen.samba.ours), dict(seen.samba.accounts)
    included, exports = seen.samba.included, dict(seen.nfs.ours)
    share_owners, export_owners = dict(seen.samba.owners), dict(seen.nfs.owners)
    for action in result.actions:
        a = action.args
        if action.kind == "create_backstore":
            stores[a["name"]] = Backstore(a["name"], a["device"], a["readonly"])
        elif action.kind == "create_target":
            targets[a["iqn"]] = LioTarget(a["iqn"], {}, frozenset(),
                                          {**planner.NEW_TPG_ATTRIBUTES, **a["attributes"]},
                                          frozenset({planner.PORTAL}))
        elif action.kind == "set_attributes":
            t = targets[a["iqn"]]
            targets[a["iqn"]] = replace(t, attributes={**t.attributes, **a["attributes"]})
        elif action.kind == "add_lun":
            t = targets[a["iqn"]]
            targets[a["iqn"]] = replace(t, luns={**t.luns, a["lun"]: a["backstore"]})
        elif action.kind == "add_acl":
            t = targets[a["iqn"]]
            targets[a["iqn"]] = replace(t, acls=t.acls | {a["initiator"]})
        elif action.kind == "add_user":
            users[a["name"]] = a["uid"]
        elif action.kind == "set_account":
            accounts[a["name"]] = a["nt_hash"]
        elif action.kind == "set_share":
            ours[a["name"]] = a["params"]
            share_owners[a["name"]] = a["owner"]
        elif action.kind == "remove_share":
            ours.pop(a["name"])
            share_owners.pop(a["name"], None)
        elif action.kind == "include":
            included = True
        elif action.kind == "set_export":
            exports[a["path"]] = a["spec"]
            export_owners[a["path"]] = a["owner"]
        elif action.kind == "remove_export":
            exports.pop(a["path"])
            export_owners.pop(a["path"], None)
    return replace(seen, unix_users=users,
                   lio=replace(seen.lio, backstores=tuple(stores.values()), targets=tuple(targets.values())),
                   samba=replace(seen.samba, ours=ours, owners=share_owners, accounts=accounts, included=included),
                   nfs=replace(seen.nfs, ours=exports, owners=export_owners))


def run(parts, config, seen, partner=SRC):
    want, notes = desired(config, seen.datasets, partner if config is not None else None)
    return plan(parts, want, seen), notes


def kinds(result: planner.Plan) -> list[str]:
    return [a.kind for a in result.actions]


def test_restore_all_on_a_bare_node_does_every_kind_in_order_then_nothing():
    seen = node()
    result, notes = run(planner.PARTS, synced(), seen)
    assert result.refusals == [] and notes == []
    assert kinds(result) == ["add_user", "set_account", "create_backstore", "create_target", "add_lun", "add_acl",
                             "save", "set_share", "include", "set_export", "refresh"]
    lines = [a.description for a in result.actions]
    assert lines[0] == "add Unix user alice (uid 2001)"
    assert lines[2] == "create read-only LIO block backstore repl-lun01 on /dev/zvol/repl/lun01"
    assert lines[3] == f"create iSCSI target {IQN} (TPG 1, portal 0.0.0.0:3260), only the configured initiators " \
                       "may log in"
    assert lines[4] == f"map repl/lun01 as LUN 0 of {IQN}"
    assert lines[5] == f"allow initiator {ESX1} on {IQN}"
    assert lines[9] == "export /repl/smbvol to 192.168.0.0/24(rw,sync,no_subtree_check)"
    # the replicas are not promoted: said once each, not refused
    assert sorted(n.split()[0] for n in result.notes if "read-only" in n) == ["repl/lun01", "repl/smbvol"]
    assert any("smbd is not running" in n for n in result.notes)
    again, _ = run(planner.PARTS, synced(), applied(seen, result))
    assert again.actions == [] and again.refusals == []


def test_a_target_without_acls_lets_any_initiator_log_in_and_write():
    seen = node(datasets=datasets(zvol("repl/lun01", mapping=f"{IQN},lun0")))
    result, _ = run(("luns",), None, seen)  # no synced configuration: the replica's property alone
    assert kinds(result) == ["create_backstore", "create_target", "add_lun", "save"]
    assert result.actions[1].args["attributes"] == {"cache_dynamic_acls": "1", "demo_mode_write_protect": "0",
                                                     "generate_node_acls": "1"}
    assert result.actions[0].args["readonly"] is False
    assert plan(("luns",), desired(None, seen.datasets)[0], applied(seen, result)).actions == []


def test_an_existing_target_and_backstore_are_reused():
    store = Backstore("mine", "/dev/zvol/repl/lun01")
    target = LioTarget(IQN, {3: "other"}, frozenset(), dict(planner.OPEN_ATTRIBUTES), frozenset({"0.0.0.0:3260"}))
    seen = node(datasets=datasets(zvol("repl/lun01", f"{IQN},lun0")),
                lio=LioState(backstores=(store, Backstore("other", "/dev/sdb")), targets=(target,)))
    result, _ = run(("luns",), None, seen)
    assert [(a.kind, a.args.get("backstore")) for a in result.actions] == [("add_lun", "mine"), ("save", None)]


def test_a_backstore_name_taken_by_another_device_gets_a_suffix():
    seen = node(datasets=datasets(zvol("repl/lun01", f"{IQN},lun0")),
                lio=LioState(backstores=(Backstore("repl-lun01", "/dev/sdb"),)))
    result, _ = run(("luns",), None, seen)
    assert result.actions[0].args["name"] == "repl-lun01-2"


def test_a_lun_id_used_by_another_backstore_is_refused_naming_target_id_and_occupant():
    target = LioTarget(IQN, {0: "own"}, frozenset(), {}, frozenset({"0.0.0.0:3260"}))
    seen = node(datasets=datasets(zvol("repl/lun01", f"{IQN},lun0"), zvol("repl/own")),
                lio=LioState(backstores=(Backstore("own", "/dev/zvol/repl/own"),), targets=(target,)))
    result, _ = run(("luns",), None, seen)
    assert result.actions == []
    assert result.refusals == [f"LUN 0 of {IQN} is already used by repl/own (backstore block/own): not mapping "
                               f"repl/lun01 there (from ovios:lun.mapping of repl/lun01); give it another LUN id"]


def test_two_zvols_wanting_one_lun_id_are_refused_and_nothing_else_is_planned():
    seen = node(datasets=datasets(zvol("repl/a", f"{IQN},lun0"), zvol("repl/b", f"{IQN},lun0"),
                                  zvol("repl/c", f"{IQN},lun1")))
    result, _ = run(("luns",), None, seen)
    assert result.actions == []
    assert result.refusals == [f"LUN 0 of {IQN} is wanted by both repl/a and repl/b (ovios:lun.mapping of repl/a; "
                               "ovios:lun.mapping of repl/b): give one another LUN id"]


def test_the_second_zvol_on_a_taken_id_after_a_first_restore_is_refused():
    first = node(datasets=datasets(zvol("repl/lun01", f"{IQN},lun0", readonly=True)))
    after = applied(first, run(("luns",), None, first)[0])
    second = replace(after, datasets={**after.datasets, "repl/lun02": zvol("repl/lun02", f"{IQN},lun0")})
    result, _ = run(("luns",), None, second)
    assert result.actions == []
    assert result.refusals == [f"LUN 0 of {IQN} is already used by repl/lun01 (backstore block/repl-lun01): not "
                               "mapping repl/lun02 there (from ovios:lun.mapping of repl/lun02); give it another "
                               "LUN id"]


def test_one_zvol_as_a_second_lun_of_the_same_target_is_refused():
    target = LioTarget(IQN, {2: "repl-lun01"}, frozenset(), dict(planner.OPEN_ATTRIBUTES), frozenset({"x"}))
    seen = node(datasets=datasets(zvol("repl/lun01", f"{IQN},lun0")),
                lio=LioState(backstores=(Backstore("repl-lun01", "/dev/zvol/repl/lun01"),), targets=(target,)))
    result, _ = run(("luns",), None, seen)
    assert result.refusals == [f"repl/lun01 is already LUN 2 of {IQN}: not mapping it again as LUN 0 "
                               "(from ovios:lun.mapping of repl/lun01)"]


def test_synced_entries_for_datasets_that_are_not_here_are_skipped_with_a_note():
    config = with_lun(with_share(Configuration(), Share("data", "data/smbvol")), IQN, 0, "esx/lun01")
    seen = node(datasets=datasets(zvol("repl/lun01", f"{IQN},lun0"), fs("repl/smbvol", smb_share="smbvol")))
    want, notes = desired(config, seen.datasets, SRC)
    assert notes == [f"skipped LUN 0 of {IQN}: no replica of src's esx/lun01 on this node",
                     "skipped SMB share data: no replica of src's data/smbvol on this node"]
    # the replicas' own properties stand in
    assert [(c.lun, c.volume) for c in want.claims] == [(0, "repl/lun01")]
    assert [(s.name, s.dataset) for s in want.shares] == [("smbvol", "repl/smbvol")]


def test_exports_from_properties_and_a_malformed_property_is_a_note():
    seen = node(datasets=datasets(fs("repl/a", nfs_export="192.168.0.0/24(ro,sync)"),
                                  fs("repl/b", nfs_export="everyone"), zvol("repl/c", "lun0")))
    want, notes = desired(None, seen.datasets)
    assert [(e.dataset, e.clients, e.options) for e in want.exports] == [("repl/a", "192.168.0.0/24", "ro,sync")]
    assert len(notes) == 2 and all(n.startswith("ignored ovios:") for n in notes)


def test_users_with_a_different_uid_or_a_taken_uid_are_refused():
    config = with_user(with_user(Configuration(), ALICE), User("bob", 2002, nt_hash("x")))
    seen = node(unix_users={"alice": 1005, "carol": 2002})
    result, _ = run(("users",), config, seen)
    assert result.refusals == ["user alice exists here with uid 1005, the configuration says 2001: change one of "
                               "them by hand", "user bob: uid 2002 is already user carol here"]


def test_a_changed_password_updates_the_account_and_reloads_nothing_extra():
    seen = node(unix_users={"alice": 2001}, samba=SambaState(accounts={"alice": nt_hash("old")}, running=True))
    result, _ = run(("users",), with_user(Configuration(), ALICE), seen)
    assert [a.description for a in result.actions] == [
        "update the Samba password of alice (NT hash from the configuration)"]


def test_shares_changes_removals_foreign_names_and_reload():
    old = {"smbvol": {"path": "/old", "read only": "no", "browseable": "yes"}, "gone": {"path": "/x"}}
    seen = node(datasets=datasets(fs("repl/smbvol")), samba=SambaState(ours=old, included=True, running=True,
                                                                       owners={"smbvol": "src", "gone": "src"},
                                                                       accounts={"alice": ALICE.nt_hash}))
    config = with_share(with_user(Configuration(), ALICE), Share("smbvol", "repl/smbvol", valid_users=("alice",)))
    result, _ = run(("shares",), config, seen)
    assert [a.description for a in result.actions] == [
        "update SMB share smbvol: path /old → /repl/smbvol, valid users - → alice",
        "remove SMB share gone (not in the configuration any more)", "reload smbd"]
    foreign = replace(seen, samba=replace(seen.samba, foreign=frozenset({"smbvol"})))
    refused, _ = run(("shares",), config, foreign)
    assert refused.refusals == ["SMB share smbvol is already defined in /etc/samba/smb.conf: not defining it twice"]


def test_services_that_are_not_installed_are_refused_only_when_needed():
    absent = node(lio=LioState(available=False, problem="targetcli is not installed"),
                  samba=SambaState(available=False, problem="Samba is not installed"),
                  nfs=NfsState(available=False, problem="no exportfs"))
    result, _ = run(planner.PARTS, synced(), absent)
    assert result.refusals == ["Samba accounts cannot be restored: Samba is not installed",
                               "iSCSI targets cannot be restored: targetcli is not installed",
                               "SMB shares cannot be restored: Samba is not installed",
                               "NFS exports cannot be restored: no exportfs"]
    nothing, _ = run(planner.PARTS, Configuration(), absent)
    assert nothing.refusals == [] and nothing.actions == []


def test_an_unmounted_filesystem_and_a_stopped_nfs_server_are_notes():
    seen = node(datasets=datasets(fs("repl/smbvol", mounted=False)))
    result, _ = run(("exports",), with_export(Configuration(), Export("repl/smbvol", "*")), seen)
    assert kinds(result) == ["set_export", "refresh"]
    assert any("not mounted" in n for n in result.notes) and any("NFS server is not running" in n
                                                                 for n in result.notes)


@pytest.mark.parametrize("parts", [("luns",), ("shares",), ("exports",), ("users",), planner.PARTS])
def test_each_part_plans_only_its_own_services(parts):
    result, _ = run(parts, synced(), node())
    services = {"luns": {"lio"}, "shares": {"samba"}, "exports": {"nfs"}, "users": {"users", "samba"}}
    allowed = set().union(*(services[p] for p in parts))
    assert result.actions and {a.service for a in result.actions} <= allowed


def test_the_command_wants_from_when_several_partners_synced_here(tmp_path, monkeypatch):


    monkeypatch.setenv("OVIOS_ROOT", str(tmp_path))
    run_ = PyBridge(OviosShell())
    assert run_("restore users").stderr.strip().endswith("no users to restore")
    for name in ("src", "other"):
        files.store_synced(replace(Configuration(), node=name, generation=1))
    result = run_("restore all --dry-run")
    assert (result.data, result.stderr.strip()) == (
        2, "restore all: configurations synced from other, src are here: say which with --from NODE")
    missing = run_("restore luns --from nosuch")
    assert missing.data == 1 and "no configuration synced from nosuch" in missing.stderr
    assert run_("restore").stdout.strip() == "usage: restore [all|luns|shares|exports|users] [--from NODE] [--dry-run]"


def test_the_subcommands_and_partners_complete(tmp_path, monkeypatch):
    monkeypatch.setenv("OVIOS_ROOT", str(tmp_path))
    files.store_synced(replace(Configuration(), node="src", generation=1))
    app = OviosShell()
    line = "restore "
    assert sorted(app.complete("", line, len(line), len(line)).to_strings()) == sorted(
        ["all", "luns", "shares", "exports", "users"])
    line = "restore luns --from "
    assert list(app.complete("", line, len(line), len(line)).to_strings()) == ["src"]


def test_names_lio_would_refuse_are_refused_before_anything_is_done():
    seen = node(datasets=datasets(zvol("repl/lun01", "iqn.2026-11.ovios:esx,lun0")))
    result, _ = run(("luns",), None, seen)
    assert result.actions == []
    assert result.refusals == ["iqn.2026-11.ovios:esx: LIO accepts only iSCSI names whose naming authority has a "
                               "dot in it and that hold no _ or white space (iqn.YYYY-MM.<reversed domain>[:name], "
                               "e.g. iqn.2026-11.com.example:esx)"]


def test_share_names_and_exports_from_properties_are_whole_values_and_not_sambas_sections():
    seen = node(datasets=datasets(fs("repl/a", smb_share="foo\n"), fs("repl/b", smb_share="Homes"),
                                  fs("repl/c", smb_share="ok", nfs_export="*(rw)\n"), fs("repl/d", smb_share="IPC$")))
    want, notes = desired(None, seen.datasets)
    assert [s.name for s in want.shares] == ["ok"] and want.exports == ()
    assert notes == ["ignored ovios:smb.share of repl/a: 'foo\\n' is not a share name (letters, digits, . _ -)",
                     "ignored ovios:smb.share of repl/b: 'Homes' is Samba's own section, not a share name",
                     "ignored ovios:nfs.export of repl/c: '*(rw)\\n' is not <clients>(<options>)",
                     "ignored ovios:smb.share of repl/d: 'IPC$' is Samba's own section, not a share name"]


@pytest.mark.parametrize("name", ["global", "HOMES", "printers", "ipc$"])
def test_a_share_named_like_one_of_sambas_own_sections_is_refused(name):
    want = planner.Desired(shares=(Share(name, "repl/smbvol"),))
    result = plan(("shares",), want, node())
    assert result.actions == [] and result.refusals == [
        f"SMB share {name} is one of Samba's own sections (global, homes, printers, IPC$): not a share name"]


def test_iscsi_names_from_properties_are_lower_cased_as_lio_does_and_underscores_refused():
    seen = node(datasets=datasets(zvol("repl/lun01", "IQN.2026-11.com.OviOS:ESX,lun0")))
    result, _ = run(("luns",), None, seen)
    assert result.refusals == [] and {a.args["iqn"] for a in result.actions if "iqn" in a.args} == {IQN}
    assert plan(("luns",), desired(None, seen.datasets)[0], applied(seen, result)).actions == []
    bad = node(datasets=datasets(zvol("repl/lun01", "iqn.2026-11.com.ovios:esx_1,lun0")))
    refused, _ = run(("luns",), None, bad)
    assert refused.actions == [] and refused.refusals == [
        "iqn.2026-11.com.ovios:esx_1: LIO accepts only iSCSI names whose naming authority has a dot in it and that "
        "hold no _ or white space (iqn.YYYY-MM.<reversed domain>[:name], e.g. iqn.2026-11.com.example:esx)"]


# -- an existing target's access is never relaxed -------------------------------------------------

CLOSED = {"authentication": "0", "cache_dynamic_acls": "0", "demo_mode_write_protect": "1", "generate_node_acls": "0"}


@pytest.mark.parametrize("config", [None, with_lun(Configuration(), IQN, 0, "repl/lun01")])
def test_a_lun_claim_without_acls_never_opens_a_target_that_exists_here(config):
    """From the property or a synced target without ACLs: the LUN is mapped, the target stays closed."""
    target = LioTarget(IQN, {3: "own"}, frozenset({ESX1}), dict(CLOSED), frozenset({planner.PORTAL}))
    seen = node(datasets=datasets(zvol("repl/lun01", f"{IQN},lun0")),
                lio=LioState(backstores=(Backstore("own", "/dev/sdb"),), targets=(target,)))
    result, _ = run(("luns",), config, seen)
    assert result.refusals == [] and kinds(result) == ["create_backstore", "add_lun", "save"]
    assert f"iSCSI target {IQN} already exists here: who may log in stays as it is (restore never opens an " \
           "existing target; no ACLs are configured for it: add the initiators' ACLs with targetcli)" in result.notes
    again = plan(("luns",), desired(config, seen.datasets)[0], applied(seen, result))
    assert again.actions == [] and applied(seen, result).lio.target(IQN).attributes == CLOSED


def test_a_new_target_without_acls_is_opened_by_its_create_action_which_says_so():
    seen = node(datasets=datasets(zvol("repl/lun01", f"{IQN},lun0")))
    result, _ = run(("luns",), None, seen)
    create = result.actions[1]
    assert (create.kind, create.description) == (
        "create_target", f"create iSCSI target {IQN} (TPG 1, portal 0.0.0.0:3260), open to any initiator (no ACLs "
                         "configured: cache_dynamic_acls=1 demo_mode_write_protect=0 generate_node_acls=1)")
    assert "set_attributes" not in kinds(result)


# -- a partner's entries go to that partner's replicas only ---------------------------------------

def test_synced_entries_apply_only_to_the_partners_replicas_by_their_origin_mark():
    config = Configuration()
    for name in ("mine", "byname", "local", "other", "renamed"):
        config = with_share(config, Share(name, f"repl/{name}"))
        config = with_export(config, Export(f"repl/{name}", "*"))
    config = with_lun(with_lun(config, IQN, 0, "repl/lun01"), IQN, 1, "repl/lun02")
    seen = node(datasets=datasets(
        fs("repl/mine"), fs("repl/byname", origin="src:repl/byname"), fs("repl/local", origin="-"),
        fs("repl/other", origin="192.168.0.150:repl/other"), fs("repl/renamed", origin="192.168.0.149:data/x"),
        zvol("repl/lun01"), zvol("repl/lun02", origin="-")))
    want, notes = desired(config, seen.datasets, SRC)
    assert [s.dataset for s in want.shares] == ["repl/byname", "repl/mine"]
    assert [e.dataset for e in want.exports] == ["repl/byname", "repl/mine"]
    assert [c.volume for c in want.claims] == ["repl/lun01"]
    assert "skipped SMB share local: repl/local here is not src's repl/local (ovios:retadm.origin is -)" in notes
    assert "skipped NFS export: repl/other here is not src's repl/other (ovios:retadm.origin is " \
           "192.168.0.150:repl/other)" in notes
    assert "skipped SMB share renamed: repl/renamed here is not src's repl/renamed (ovios:retadm.origin is " \
           "192.168.0.149:data/x)" in notes
    assert f"skipped LUN 1 of {IQN}: repl/lun02 here is not src's repl/lun02 (ovios:retadm.origin is -)" in notes


def test_with_a_partner_the_properties_of_other_datasets_are_not_its_to_apply():
    seen = node(datasets=datasets(fs("repl/a", smb_share="a"), fs("repl/b", origin="-", smb_share="b"),
                                  zvol("repl/c", f"{IQN},lun0", origin="192.168.0.150:esx/c")))
    want, notes = desired(Configuration(node="src"), seen.datasets, SRC)
    assert [s.name for s in want.shares] == ["a"] and want.claims == ()
    assert notes == ["skipped the ovios:* properties of repl/b: not a replica of src's datasets "
                     "(ovios:retadm.origin is -)",
                     "skipped the ovios:* properties of repl/c: not a replica of src's datasets "
                     "(ovios:retadm.origin is 192.168.0.150:esx/c)"]
    alone, _ = desired(None, seen.datasets)  # no synced configuration: every dataset's properties, as before
    assert [s.name for s in alone.shares] == ["a", "b"] and len(alone.claims) == 1


# -- a restore touches only its own partner's entries ---------------------------------------------

PARAMS = {"path": "/repl/a", "read only": "no", "browseable": "yes"}


def two_partners(**changes) -> Observed:
    samba = SambaState(ours={"a": PARAMS, "b": {**PARAMS, "path": "/repl/b"}}, owners={"a": "src", "b": "other"},
                       included=True, running=True)
    nfs = NfsState(ours={"/repl/a": "*(rw)", "/repl/b": "*(rw)"}, owners={"/repl/a": "src", "/repl/b": "other"})
    base = {"samba": samba, "nfs": nfs, "datasets": datasets(fs("repl/a"), fs("repl/b", origin="192.168.0.150:repl/b"))}
    return node(**{**base, **changes})


def test_a_restore_from_one_partner_removes_nothing_restored_from_another():
    result, _ = run(("shares", "exports"), Configuration(node="src"), two_partners())
    assert [a.description for a in result.actions] == [
        "remove SMB share a (not in the configuration any more)", "reload smbd",
        "stop exporting /repl/a (not in the configuration any more)", "exportfs -ra (the kernel's export table)"]


def test_a_restore_never_takes_over_an_entry_of_another_partner():
    config = with_export(with_share(Configuration(), Share("B", "repl/b")), Export("repl/b", "*", "ro"))
    seen = two_partners(datasets=datasets(fs("repl/a"), fs("repl/b")))
    result, _ = run(("shares", "exports"), config, seen)
    assert result.refusals == [
        "SMB share B in /etc/samba/ovios-shares.conf was restored from other: not replacing it with the one from src",
        "the export of /repl/b in /etc/exports.d/ovios.exports was restored from other: not replacing it with the one "
        "from src"]


def test_entries_carry_their_partner_and_unmarked_ones_are_adopted_when_wanted():
    config = with_export(with_share(Configuration(), Share("a", "repl/a")), Export("repl/a", "*", "rw"))
    unmarked = two_partners(samba=SambaState(ours={"a": PARAMS}, included=True),
                            nfs=NfsState(ours={"/repl/a": "*(rw)"}))
    result, _ = run(("shares", "exports"), config, unmarked)
    assert [(a.description, a.args.get("owner")) for a in result.actions] == [
        ("update SMB share a: restored from src", "src"),
        ("change the export of /repl/a to *(rw) (restored from src)", "src"),
        ("exportfs -ra (the kernel's export table)", None)]
    assert run(("shares", "exports"), config, applied(unmarked, result))[0].actions == []
    bare, _ = run(("shares",), None, node(datasets=datasets(fs("repl/p", smb_share="p"))))
    assert bare.actions[0].args["owner"] == planner.PROPERTIES_ONLY


def test_a_partners_entry_goes_to_its_replica_here_whatever_the_replicas_name():
    config = with_export(with_share(Configuration(), Share("y", "data/y")), Export("data/y", "*"))
    config = with_lun(config, IQN, 0, "esx/lun01")
    seen = node(datasets=datasets(fs("repl/y", origin="192.168.0.149:data/y"), fs("data/y", origin="-"),
                                  zvol("repl/lun01", origin="src:esx/lun01")))
    result, notes = run(("luns", "shares", "exports"), config, seen)
    assert notes == [] and result.refusals == []
    assert [a.description for a in result.actions if a.kind in ("add_lun", "set_share", "set_export")] == [
        f"map repl/lun01 as LUN 0 of {IQN}", "add SMB share y (/repl/y)",
        "export /repl/y to *(rw,sync,no_subtree_check)"]

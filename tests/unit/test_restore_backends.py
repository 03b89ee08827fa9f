"""restore's file backends without the services: what their files say about each entry."""

from __future__ import annotations

from ovios_shell_retadm.config import receive
from ovios_shell_retadm.restore import nfs, samba, system
from ovios_shell_retadm.restore.planner import DatasetInfo, Partner
from ovios_shell_retadm.store import Store


def test_each_export_names_its_partner_and_reads_back():
    exports = {"/repl/a": "*(rw)", "/repl/my b": "10.0.0.0/8(ro)"}
    text = nfs.render(exports, {"/repl/a": "src", "/repl/my b": "other"})
    assert '# ovios-restore from=src\n/repl/a *(rw)\n' in text
    assert '# ovios-restore from=other\n"/repl/my b" 10.0.0.0/8(ro)\n' in text
    assert nfs.parse_ours(text) == (exports, {"/repl/a": "src", "/repl/my b": "other"})


def test_entries_written_before_the_marks_have_no_partner():
    assert nfs.parse_ours(nfs.HEADER + "/repl/a *(rw)\n") == ({"/repl/a": "*(rw)"}, {})
    shares, owners = samba.parse_ours(samba.HEADER + "\n[a]\n   path = /repl/a\n")
    assert shares == {"a": {"path": "/repl/a"}} and owners == {}


def test_a_partner_is_known_by_the_address_its_pushes_came_from(tmp_path, monkeypatch):
    monkeypatch.setenv("OVIOS_ROOT", str(tmp_path))
    Store().update_sync("src", receive.RECEIVE, lambda old: {"sender": "::ffff:192.168.0.149"})
    partner = system.partner("src")
    assert partner.name == "src" and "192.168.0.149" in partner.addresses
    assert partner.replica_of(DatasetInfo("repl/x", "filesystem", origin="192.168.0.149:data/x")) == "data/x"
    assert partner.replica_of(DatasetInfo("repl/x", "filesystem", origin="src:data/x")) == "data/x"
    assert partner.replica_of(DatasetInfo("repl/x", "filesystem", origin="192.168.0.150:data/x")) is None
    assert partner.replica_of(DatasetInfo("repl/x", "filesystem")) is None


def test_origin_marks_with_bracketed_ipv6_hosts_or_colons_in_the_dataset_name_the_partner():
    partner = Partner("src", frozenset({"fd00::1", "192.168.0.149"}))
    for mark, dataset in (("[fd00::1]:data/x", "data/x"), ("fd00:0::1:data/x", "data/x"),
                          ("192.168.0.149:data/smb:vol", "data/smb:vol"), ("src:data/a:b", "data/a:b")):
        assert partner.replica_of(DatasetInfo("repl/x", "filesystem", origin=mark)) == dataset, mark
    assert partner.replica_of(DatasetInfo("repl/x", "filesystem", origin="[fd00::2]:data/x")) is None
    assert {"fd00::1", "192.168.0.149"} <= set(receive.origin_hosts("[fd00::1]:data/x")) | set(
        receive.origin_hosts("192.168.0.149:data/smb:vol"))

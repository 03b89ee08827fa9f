"""The OviOS configuration: its format, its atomic files, its ZFS user properties."""

from __future__ import annotations

import io
import itertools
import json
import multiprocessing
import os
import re
import signal
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from ovios_shell_retadm import settings
from ovios_shell_retadm.config import files, properties
from ovios_shell_retadm.config.model import (
    ConfigError,
    Configuration,
    Export,
    Share,
    User,
    digest,
    dump,
    nt_hash,
    parse,
    with_export,
    with_lun,
    with_share,
    with_user,
)

IQN = "iqn.2026-11.com.ovios:esx"


@pytest.fixture(autouse=True)
def etc(tmp_path, monkeypatch):
    monkeypatch.setenv("OVIOS_ETC_DIR", str(tmp_path / "etc"))
    return tmp_path / "etc"


def sample() -> Configuration:
    config = with_lun(Configuration(), IQN, 0, "esx/lun01", acls=("iqn.1998-01.com.vmware:esx1",))
    config = with_user(config, User("alice", 2001, nt_hash("secret")))
    config = with_share(config, Share("smbvol", "data/smbvol", valid_users=("alice",)))
    return with_export(config, Export("data/smbvol", "192.168.0.0/24"))


def test_the_documented_example_parses_and_round_trips():
    text = dump(sample())
    assert parse(text) == sample()
    data = json.loads(text)
    assert data["format"] == 1 and data["iscsi"]["targets"][0]["luns"] == [{"id": 0, "volume": "esx/lun01"}]


def test_nt_hash_is_sambas():
    assert nt_hash("password") == "8846F7EAEE8FB117AD06BDD830B7586C"  # the well-known value


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(format=2), "format 2 is not supported"),
    (lambda d: d["iscsi"]["targets"][0].update(iqn="esx"), "iscsi.targets[0].iqn: 'esx' is not an iSCSI"),
    (lambda d: d["iscsi"]["targets"][0].update(iqn="iqn.2026-11.ovios:esx"),  # LIO refuses: no dot
     "iscsi.targets[0].iqn: 'iqn.2026-11.ovios:esx' is not an iSCSI"),
    (lambda d: d["iscsi"]["targets"][0]["luns"].append({"id": 0, "volume": "esx/lun02"}),
     "LUN id in iqn.2026-11.com.ovios:esx: 0 is defined twice"),
    (lambda d: d["iscsi"]["targets"][0]["luns"][0].update(id=300), "300 is not a LUN id"),
    (lambda d: d["smb"]["shares"][0].update(dataset="../etc"), "smb.shares[0].dataset: '../etc' is not a dataset"),
    (lambda d: d["smb"]["shares"][0].update(valid_users=["bob"]), "valid user bob is not a configured user"),
    (lambda d: d["users"][0].update(nt_hash="xyz"), "users[0].nt_hash: not 32 hex digits"),
    (lambda d: d["users"][0].update(uid=0), "users[0].uid: 0 is not a user id"),
    (lambda d: d["nfs"]["exports"][0].update(options="rw;rm -rf /"), "is not a list of export options"),
    (lambda d: d.update(users={}), "users: must be a list"),
])
def test_malformed_configurations_are_refused_naming_the_field(change, message):
    data = json.loads(dump(sample()))
    change(data)
    with pytest.raises(ConfigError, match=None) as caught:
        parse(json.dumps(data))
    assert message in str(caught.value)


def test_a_lun_id_taken_by_another_volume_is_refused():
    with pytest.raises(ConfigError, match=re.escape("LUN 0 of iqn.2026-11.com.ovios:esx is already esx/lun01")):
        with_lun(sample(), IQN, 0, "esx/lun02")
    assert with_lun(sample(), IQN, 0, "esx/lun01") == sample()  # the same mapping again: no change


def test_update_counts_generations_and_skips_no_op_changes(etc):
    first = files.update(lambda c: sample(), node="src")
    assert (first.node, first.generation) == ("src", 1)
    assert files.update(lambda c: c) == first  # nothing changed, nothing written
    second = files.update(lambda c: with_lun(c, IQN, 1, "esx/lun02"))
    assert second.generation == 2 and files.load() == second
    assert oct(os.stat(files.local_path()).st_mode & 0o777) == "0o600"
    assert digest(first) != digest(second) and digest(first) == digest(sample())


def _add_luns(start: int) -> None:
    for lun in range(start, start + 5):
        files.update(partial(with_lun, iqn=IQN, lun_id=lun, volume=f"esx/lun{lun:02d}"), node="src")


def test_concurrent_writers_lose_no_change():
    workers = [multiprocessing.Process(target=_add_luns, args=(i * 5,)) for i in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    config = files.load()
    assert [lun.id for lun in config.target(IQN).luns] == list(range(30)) and config.generation == 30


def _replacing_with(config: Configuration) -> Callable[[Configuration], Configuration]:
    """A change for files.update that replaces the whole configuration."""
    return lambda _old: config


def _rewritten(round_: int, n: int) -> Configuration:
    """The content of a writer's ``n``-th update in round ``round_`` (each one different)."""
    return with_share(Configuration(), Share(f"r{round_}s{n}", "data/smbvol"))


def _rewrite_then_stop_mid_write(pipe, round_: int, complete: int, fraction: float) -> None:
    """``complete`` whole updates of the configuration, then one more that stops part-way
    through writing its file: ``fraction`` of the text is written (and flushed), then it sends
    what it was writing to ``pipe`` and waits there to be killed.

    A text file opened for writing goes through ``io.open`` (``os.fdopen``, ``Path.open``,
    ``Path.write_text``): this process wraps it for the files in the configuration directory."""
    real_open = io.open
    directory = settings.etc_dir().resolve()
    writes = 0

    class StopsMidWrite:
        def __init__(self, handle, name):
            self._handle, self._name = handle, name

        def write(self, text):
            cut = min(len(text) - 1, max(1, int(len(text) * fraction)))
            self._handle.write(text[:cut])
            self._handle.flush()
            pipe.send({"file": self._name, "written": text[:cut], "text": text})
            threading.Event().wait()  # until the SIGKILL

        def __getattr__(self, name):
            return getattr(self._handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self._handle.__exit__(*exc)

    def opening(file, mode="r", *args, **kwargs):
        nonlocal writes
        handle = real_open(file, mode, *args, **kwargs)
        name = Path(os.readlink(f"/proc/self/fd/{file}") if isinstance(file, int) else file).resolve()
        if "w" in mode and "b" not in mode and name.parent == directory:
            writes += 1
            if writes > complete:
                return StopsMidWrite(handle, str(name))
        return handle

    io.open = opening  # in this process only: it is spawned for the test
    for n in itertools.count(1):
        files.update(_replacing_with(_rewritten(round_, n)), node="src")


def test_a_writer_killed_mid_write_leaves_a_whole_file():
    committed = files.update(lambda c: sample(), node="src")
    ctx = multiprocessing.get_context("spawn")
    # (whole updates before the one that is killed, how much of its text it has written)
    for round_, (complete, fraction) in enumerate([(0, 0.5), (1, 0.01), (2, 0.99), (0, 0.3), (1, 0.7)]):
        reader, writer_end = ctx.Pipe(duplex=False)
        writer = ctx.Process(target=_rewrite_then_stop_mid_write, args=(writer_end, round_, complete, fraction))
        writer.start()
        writer_end.close()
        try:
            # a bound that only catches a writer that never gets into its write (a hang)
            assert reader.poll(120), "the writer never got into the middle of a write"
            stopped = reader.recv()
        finally:
            os.kill(writer.pid, signal.SIGKILL)
            writer.join()
        assert writer.exitcode == -signal.SIGKILL
        # the kill landed mid-write: the file being written holds the first part of the new text only
        assert 0 < len(stopped["written"]) < len(stopped["text"])
        assert Path(stopped["file"]).read_text() == stopped["written"]
        assert parse(stopped["text"]).generation == committed.generation + complete + 1
        config = files.load()  # parses: the old file or a new one, never half
        # exactly the last whole update: nothing of the killed one, no mix of the two
        assert config.generation == committed.generation + complete, config
        if complete == 0:
            assert config == committed
        else:
            assert config.content() == _rewritten(round_, complete).content(), config
        committed = config


def test_a_late_older_push_does_not_replace_a_newer_copy():
    newer = files.update(lambda c: sample(), node="src")
    assert files.store_synced(newer) is True
    older = Configuration(node="src", generation=newer.generation - 1)
    assert files.store_synced(older) is False
    assert files.load(files.synced_path("src")) == newer
    with pytest.raises(ConfigError):
        files.synced_path("../etc")


def test_lun_mapping_properties_round_trip_and_describe_targets():
    config = with_lun(sample(), IQN, 3, "esx/lun03")
    value = properties.lun_mapping(config.targets, "esx/lun03")
    assert value == f"{IQN},lun3"
    assert properties.parse_lun_mapping(f"{IQN},lun0 {IQN},lun3") == [(IQN, 0), (IQN, 3)]
    described = properties.targets_from_properties({"repl/a": f"{IQN},lun0", "repl/b": f"{IQN},lun1"})
    assert [(lun.id, lun.volume) for lun in described.target(IQN).luns] == [(0, "repl/a"), (1, "repl/b")]
    with pytest.raises(ConfigError, match="is defined twice"):
        properties.targets_from_properties({"repl/a": f"{IQN},lun0", "repl/b": f"{IQN},lun0"})
    with pytest.raises(ConfigError, match="is not <target iqn>,lun<id>"):
        properties.parse_lun_mapping("tgt1:0")


names = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True)


@hsettings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 255), names), max_size=8, unique_by=lambda t: t[0]),
       st.lists(names, max_size=5, unique=True))
def test_any_built_configuration_round_trips(luns, shares):
    config = Configuration()
    for lun_id, volume in luns:
        config = with_lun(config, IQN, lun_id, f"pool/{volume}")
    for name in shares:
        config = with_share(config, Share(name, f"data/{name}", read_only=len(name) % 2 == 0))
    assert parse(dump(config)) == config


# -- whole values only (a trailing newline is not part of a name), Samba's own sections -----------

def _added_user(d: dict, name: str) -> None:
    d["users"].append({"name": name, "uid": 2002, "nt_hash": "0" * 32})


@pytest.mark.parametrize("change, message", [
    (lambda d: d["smb"]["shares"][0].update(name="foo\n"), r"smb.shares[0].name: 'foo\n' is not a share name"),
    (lambda d: d["smb"]["shares"][0].update(dataset="data/smbvol\n"), "smb.shares[0].dataset: 'data/smbvol\\n'"),
    (lambda d: d["nfs"]["exports"][0].update(options="rw,sync\n"), "is not a list of export options"),
    (lambda d: d["nfs"]["exports"][0].update(clients="192.168.0.0/24\n"), "is not a host, network or *"),
    (lambda d: d["iscsi"]["targets"][0].update(iqn=IQN + "\n"), "iscsi.targets[0].iqn: "),
    (lambda d: d["iscsi"]["targets"][0].update(acls=["iqn.1998-01.com.vmware:esx1\n"]), "is not an initiator"),
    (lambda d: d["users"][0].update(nt_hash="0" * 32 + "\n"), "users[0].nt_hash: not 32 hex digits"),
    (lambda d: _added_user(d, "bob\n"), r"users[1].name: 'bob\n' is not a user name"),
    (lambda d: d["iscsi"]["targets"][0].update(iqn="iqn.2026-11.com.ovios:esx_1"), "'iqn.2026-11.com.ovios:esx_1'"),
    (lambda d: d.update(node="src\n"), r"node: 'src\n' is not a node name"),
    (lambda d: d.update(node="s\x00rc"), r"node: 's\x00rc' is not a node name"),
])
def test_a_value_with_a_trailing_newline_or_a_character_lio_refuses_is_refused(change, message):
    data = json.loads(dump(sample()))
    change(data)
    with pytest.raises(ConfigError, match=None) as caught:
        parse(json.dumps(data))
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("name", ["global", "homes", "Printers", "IPC$", "HOMES"])
def test_sambas_own_sections_are_not_share_names(name):
    data = json.loads(dump(sample()))
    data["smb"]["shares"][0]["name"] = name
    with pytest.raises(ConfigError, match=None) as caught:
        parse(json.dumps(data))
    assert "smb.shares[0].name: " in str(caught.value)


def test_iscsi_names_are_case_insensitive_and_kept_in_lower_case_as_lio_does():
    data = json.loads(dump(sample()))
    data["iscsi"]["targets"][0]["iqn"] = "IQN.2026-11.com.OviOS:ESX"
    data["iscsi"]["targets"][0]["acls"] = ["iqn.1998-01.com.VMware:ESX1"]
    config = parse(json.dumps(data))
    assert config.targets[0].iqn == IQN and config.targets[0].acls == ("iqn.1998-01.com.vmware:esx1",)
    assert parse(dump(config)) == config
    assert properties.parse_lun_mapping("IQN.2026-11.COM.ovios:Esx,lun3") == [(IQN, 3)]


def test_a_synced_file_name_is_a_node_name_without_control_characters():
    for name in ("src\n", "s\x00rc", "a b", "-x", ""):
        with pytest.raises(ConfigError):
            files.synced_path(name)
    assert files.synced_path("dst-1.example.com").name == "dst-1.example.com.json"

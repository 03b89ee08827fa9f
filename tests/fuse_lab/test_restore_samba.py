"""restore's Samba backend on this machine, in a temporary root (OVIOS_ROOT): the shares file,
the include line, what Samba's own parser (testparm) makes of them, and observing again."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace

import pytest
from cmd2.py_bridge import PyBridge

from ovios_shell_retadm.config import files
from ovios_shell_retadm.config.model import Configuration, Share, User, nt_hash, with_user
from ovios_shell_retadm.restore import planner, samba, system
from ovios_shell_retadm.restore.planner import DatasetInfo, Desired, Observed
from ovios_shell_retadm.shell import OviosShell

from tiers import cannot_run


@pytest.fixture(autouse=True)
def samba_tools() -> None:
    missing = [tool for tool in ("testparm", "pdbedit") if shutil.which(tool) is None]
    if missing:
        cannot_run("the Samba tests", f"{', '.join(missing)} missing (apt-get install samba)")



@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("OVIOS_ROOT", str(tmp_path))
    state = tmp_path / "var/lib/samba"
    for key in ("private", "lock", "state", "cache", "pid"):
        (state / key).mkdir(parents=True)
    conf = tmp_path / "etc/samba/smb.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("[global]\n" + "".join(f"   {key} = {state}/{key.split()[0]}\n" for key in (
        "private dir", "lock directory", "state directory", "cache directory", "pid directory"))
        + "   passdb backend = tdbsam\n\n[printers]\n   path = /var/tmp\n   printable = yes\n")
    return tmp_path


def samba_view(root) -> str:  # Samba's own reading of the configuration (defaults left out)
    return subprocess.run(["testparm", "-s", str(root / "etc/samba/smb.conf")], capture_output=True, text=True,
                          check=True).stdout


def test_shares_are_written_included_once_and_read_back_by_samba(root):
    datasets = {"repl/smbvol": DatasetInfo("repl/smbvol", "filesystem", "/repl/smbvol", True, False)}
    want = Desired(shares=(Share("smbvol", "repl/smbvol"),))
    seen = Observed(datasets=datasets, samba=samba.observe())
    assert seen.samba.available and seen.samba.foreign == frozenset({"printers"})
    plan = planner.plan(("shares",), want, seen)
    assert [a.kind for a in plan.actions] == ["set_share", "include"]
    system.execute(plan, lambda line: None)

    parsed = samba_view(root)
    assert "[smbvol]\n\tpath = /repl/smbvol\n\tread only = No" in parsed
    again = planner.plan(("shares",), want, Observed(datasets=datasets, samba=samba.observe()))
    assert again.actions == [] and again.refusals == []
    conf = (root / "etc/samba/smb.conf").read_text()
    assert conf.count("include = ") == 1 and conf.startswith("[global]\n")

    # the share leaves the configuration: restore removes it from its own file, nothing else
    gone = planner.plan(("shares",), Desired(), Observed(datasets=datasets, samba=samba.observe()))
    assert [a.description for a in gone.actions] == ["remove SMB share smbvol (not in the configuration any more)"]
    system.execute(gone, lambda line: None)
    assert "[smbvol]" not in samba_view(root) and "[printers]" in samba_view(root)
    assert (root / "etc/samba/smb.conf").read_text() == conf


def test_a_share_named_like_one_of_smb_conf_is_refused(root):
    datasets = {"repl/p": DatasetInfo("repl/p", "filesystem", "/repl/p", True, False)}
    plan = planner.plan(("shares",), Desired(shares=(Share("Printers", "repl/p"),)),
                        Observed(datasets=datasets, samba=samba.observe()))
    assert plan.refusals == [f"SMB share Printers is already defined in {root}/etc/samba/smb.conf: "
                             "not defining it twice"]


def test_each_share_names_its_partner_and_a_restore_from_another_leaves_it_alone(root):
    datasets = {name: DatasetInfo(name, "filesystem", f"/{name}", True, False) for name in ("repl/a", "repl/b")}

    def restore(want: Desired) -> planner.Plan:
        plan = planner.plan(("shares",), want, Observed(datasets=datasets, samba=samba.observe()))
        assert plan.refusals == []
        system.execute(plan, lambda line: None)
        return plan

    restore(Desired(shares=(Share("a", "repl/a"),), owner="src"))
    restore(Desired(shares=(Share("b", "repl/b"),), owner="other"))
    text = (root / "etc/samba/ovios-shares.conf").read_text()
    assert "\n# ovios-restore from=src\n[a]\n" in text and "\n# ovios-restore from=other\n[b]\n" in text
    assert samba.observe().owners == {"a": "src", "b": "other"}
    assert "[a]\n" in samba_view(root) and "[b]\n" in samba_view(root)

    # other's configuration no longer has b: b goes, src's a stays, marker and all
    gone = restore(Desired(owner="other"))
    assert [a.kind for a in gone.actions] == ["remove_share"]
    assert samba.observe().owners == {"a": "src"} and "[a]\n" in samba_view(root) and "[b]" not in samba_view(root)


def test_the_command_prints_the_dry_run_and_changes_nothing(root):
    """`restore users --dry-run` through the shell (Samba's pdbedit asked): every action
    printed, no file touched."""
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    alice = User("alice", 2001, nt_hash("secret"))
    files.store_synced(replace(with_user(Configuration(), alice), node="src", generation=3))

    def tree():  # (the shell's option store, which its hooks may create, and the databases
        # Samba's pdbedit opens, left out)
        return sorted(path.relative_to(root) for path in root.rglob("*")
                      if "ovios.db" not in path.name and not path.is_relative_to(root / "var/lib/samba"))

    before = tree()
    result = PyBridge(OviosShell())("restore users --dry-run")
    assert result.stdout.splitlines()[0] == "using the configuration synced from src (generation 3)"
    assert "would add Unix user alice (uid 2001)" in result.stdout.splitlines()
    assert tree() == before
    assert (root / "etc/passwd").read_text() == "root:x:0:0:root:/root:/bin/bash\n"

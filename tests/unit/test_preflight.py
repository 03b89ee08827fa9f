"""preflight: the checks of a source as init's one look saw it (a :class:`Candidate` value), and
reverse_ssh: the partner's script run for real by /bin/sh here, as sshd would run it there
(``SSH_CONNECTION`` set), with an ``ssh`` first on its PATH that stands for the way back (it
exits with the status given).  Reaching back for real runs in the labs."""

from __future__ import annotations

import pytest

from ovios_shell_retadm.hosts import Host
from ovios_shell_retadm.replication import preflight
from ovios_shell_retadm.replication.model import ORIGIN_PROPERTY, PROMOTED_PROPERTY
from ovios_shell_retadm.replication.task_store import TaskRecord, TaskStore
from ovios_shell_retadm.zfs import Candidate, Capabilities, ZfsNode

UNSET = ("-", "-")


def candidate(dataset: str = "data/x", kind: str | None = "filesystem", origin=UNSET, promoted=UNSET) -> Candidate:
    return Candidate(dataset, kind, (), {ORIGIN_PROPERTY: origin, PROMOTED_PROPERTY: promoted}, None, Capabilities())


@pytest.mark.parametrize(("seen", "refusal"), [
    (candidate(kind=None), "dataset data/x does not exist"),
    (candidate("data", "filesystem"), "data is a pool; retadm replicates datasets, not whole pools"),
])
def test_a_source_that_cannot_be_one_is_refused(seen: Candidate, refusal: str) -> None:
    with pytest.raises(preflight.PreflightError, match=refusal):
        preflight.source_dataset(seen)


def test_a_filesystem_or_volume_is_a_source() -> None:
    assert preflight.source_dataset(candidate()) == "filesystem"
    assert preflight.source_dataset(candidate(kind="volume")) == "volume"


@pytest.mark.parametrize(("origin", "promoted", "cascade"), [
    (UNSET, UNSET, False),
    (("src:data/x", "local"), UNSET, True),
    (("src:data/x", "received"), UNSET, False),  # the sender's own mark, sent along with -p
    (("src:data/x", "local"), ("2026-01-01T00:00:00Z", "local"), False),  # promoted: no longer a replica
])
def test_a_replica_here_makes_a_cascade(origin, promoted, cascade: bool) -> None:
    assert preflight.is_replica(candidate(origin=origin, promoted=promoted)) is cascade


def test_children_that_have_tasks_of_their_own_are_not_named(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OVIOS_ETC_DIR", str(tmp_path))
    tasks = TaskStore()
    assert tasks.create(TaskRecord("data/x/a", "dst", "repl/a", False))
    assert preflight.unreplicated_children(["data/x/a", "data/x/b"], tasks) == ["data/x/b"]


class _Partner(Host):
    """Runs argv here, in the environment sshd would give it on the partner."""

    name = "dst"

    def __init__(self, tmp_path, connection: str, back: int = 0):
        fake = tmp_path / "ssh"
        fake.write_text(f"#!/bin/sh\necho 'ssh back: exit {back}' >&2\nexit {back}\n")
        fake.chmod(0o755)
        self.env = [f"SSH_CONNECTION={connection}", f"PATH={tmp_path}:/usr/bin:/bin"]

    def argv_for(self, argv):
        return ["env", *self.env, *argv]


def test_the_partner_says_the_address_it_sees_and_that_it_reaches_back(tmp_path) -> None:
    assert preflight.reverse_ssh(_Partner(tmp_path, "192.168.0.149 40022 192.168.0.111 22")) == "192.168.0.149"


def test_a_partner_that_cannot_reach_back_is_refused_with_the_reason(tmp_path) -> None:
    refusal = r"back to 192\.168\.0\.149 does not work \(ssh back: exit 255\)"
    with pytest.raises(preflight.PreflightError, match=refusal):
        preflight.reverse_ssh(_Partner(tmp_path, "192.168.0.149 40022 192.168.0.111 22", back=255))


@pytest.mark.parametrize("seen", ["bad;name", "-oProxyCommand=x"])
def test_an_address_that_is_not_one_is_a_refusal_not_a_crash(tmp_path, seen: str) -> None:
    with pytest.raises(preflight.PreflightError, match="which is not an address") as refused:
        preflight.reverse_ssh(_Partner(tmp_path, f"{seen} 40022 192.168.0.111 22"))
    assert "\n" not in str(refused.value)


class _NothingRuns(Host):
    """A partner on which running anything fails the test."""

    name = "dst"

    def argv_for(self, argv):
        raise AssertionError(f"ran {argv}")


@pytest.mark.parametrize("remote", ["repl", "repl/bad name", "-repl/x", "repl/x@snap"])
def test_a_destination_that_is_not_a_dataset_name_is_refused_before_anything_runs(remote: str) -> None:
    with pytest.raises(preflight.InvalidValue) as refused:
        preflight.landing(ZfsNode(_NothingRuns()), remote)
    assert "\n" not in str(refused.value)

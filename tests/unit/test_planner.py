"""The pure replication planner, without ZFS.

Example tests pin down every branch; the property tests run plans against a small
model of two ZFS sides (snapshots with guids, holds, bookmarks) that fails the way ZFS
fails: a receive whose base is not the destination's newest snapshot, a snapshot
received twice or under a name already taken, a destroy of a held snapshot.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ovios_shell_retadm.replication.model import (
    HOLD_TAG,
    AbortResume,
    CreateBookmark,
    CreateSnapshot,
    DestinationDiverged,
    DestinationExists,
    DestinationMissing,
    DestinationPromoted,
    DestroyBookmark,
    DestroySnapshot,
    Hold,
    MarkOrigin,
    NameClash,
    NoCommonSnapshot,
    Observed,
    ObservedBookmark,
    ObservedSnapshot,
    PairCapabilities,
    Plan,
    RecordCommon,
    Refusal,
    Release,
    ResumeSend,
    Rollback,
    SendFull,
    SendIncremental,
    SetReadonly,
    Side,
    Step,
    Task,
)
from ovios_shell_retadm.replication.planner import (
    find_common,
    plan_full,
    plan_incremental,
    plan_repair,
    plan_resume,
    unchanged_since_recorded,
)

TASK = Task("data/smbvol", "node2", "repl/smbvol", properties=True)
BOOKMARKS = PairCapabilities(bookmarks=True)
NO_BOOKMARKS = PairCapabilities(bookmarks=False)
SRC, DST = Side.SOURCE, Side.DESTINATION


def snaps(*specs: tuple[str, int]) -> tuple[ObservedSnapshot, ...]:
    """Snapshots in creation order from (name, guid) pairs."""
    return tuple(ObservedSnapshot(name, guid, txg) for txg, (name, guid) in enumerate(specs, start=1))


def observed(
    source: tuple[ObservedSnapshot, ...],
    destination: tuple[ObservedSnapshot, ...] | None,
    **kwargs: Any,
) -> Observed:
    kwargs.setdefault("written", True)
    kwargs.setdefault("capabilities", NO_BOOKMARKS)
    kwargs.setdefault("destination_readonly", True if destination is not None else None)
    return Observed(source=source, destination=destination, **kwargs)


def held(*names: str) -> frozenset[str]:
    return frozenset(names)


# -- find_common ---------------------------------------------------------------------------


def test_common_is_the_newest_shared_guid():
    source = snaps(("a", 1), ("b", 2), ("c", 3))
    destination = snaps(("a", 1), ("b", 2))
    assert find_common(source, destination) == source[1]


def test_same_name_with_another_guid_is_not_common():
    source = snaps(("a", 1), ("b", 2))
    destination = snaps(("a", 1), ("b", 99))
    assert find_common(source, destination) == source[0]
    assert find_common(source[1:], destination) is None


def test_common_ignores_names_entirely():
    source = snaps(("renamed", 7))
    destination = snaps(("original", 7))
    assert find_common(source, destination) == source[0]


def test_bookmark_is_common_when_no_snapshot_qualifies():
    source = snaps(("x", 5))
    marks = (ObservedBookmark("gone", 3, 0),)
    destination = snaps(("gone", 3))
    assert find_common(source, destination, marks) == marks[0]


def test_newer_bookmark_wins_over_older_snapshot():
    source = (ObservedSnapshot("a", 1, 1),)
    marks = (ObservedBookmark("b", 2, 2),)
    destination = snaps(("a", 1), ("b", 2))
    assert find_common(source, destination, marks) == marks[0]


def test_snapshot_wins_over_its_own_bookmark():
    source = snaps(("a", 1))
    marks = (ObservedBookmark("a", 1, 1),)
    assert find_common(source, snaps(("a", 1)), marks) == source[0]


def test_no_common_when_nothing_is_shared():
    assert find_common(snaps(("a", 1)), snaps(("a", 2))) is None
    assert find_common((), snaps(("a", 2))) is None


# -- plan_full --------------------------------------------------------------------------------


def test_full_refuses_when_destination_exists():
    result = plan_full(observed(snaps(("a", 1)), ()), TASK, "retadm_1")
    assert result == Refusal(DestinationExists("repl/smbvol"))


def test_full_of_a_dataset_without_snapshots_sends_the_new_one():
    result = plan_full(observed((), None, capabilities=BOOKMARKS), TASK, "retadm_1")
    assert result == Plan(
        (
            CreateSnapshot("retadm_1"),
            SendFull("retadm_1", True),
            SetReadonly(),
            Hold(SRC, "retadm_1"),
            Hold(DST, "retadm_1"),
            CreateBookmark("retadm_1", "retadm_1"),
            RecordCommon("retadm_1", None),
        ),
        None,
        "retadm_1",
    )


def test_full_sends_the_oldest_then_everything_after_it():
    source = snaps(("daily1", 1), ("daily2", 2))
    result = plan_full(observed(source, None), replace(TASK, properties=False), "retadm_1")
    assert isinstance(result, Plan)
    assert result.steps == (
        CreateSnapshot("retadm_1"),
        SendFull("daily1", False),
        SetReadonly(),
        SendIncremental("daily1", False, "retadm_1", False),
        Hold(SRC, "retadm_1"),
        Hold(DST, "retadm_1"),
        RecordCommon("retadm_1", None),
    )


def test_full_cleans_up_an_earlier_task_on_the_source():
    source = snaps(("retadm_0", 1), ("daily", 2))
    marks = (ObservedBookmark("retadm_0", 1, 1),)
    obs = observed(source, None, source_holds=held("retadm_0"), source_bookmarks=marks, capabilities=BOOKMARKS)
    result = plan_full(obs, TASK, "retadm_1")
    assert isinstance(result, Plan)
    assert result.steps[-4:] == (
        Release(SRC, "retadm_0"),
        DestroySnapshot(SRC, "retadm_0"),
        DestroySnapshot(DST, "retadm_0"),
        DestroyBookmark("retadm_0"),
    )


def test_full_refuses_a_taken_name():
    result = plan_full(observed(snaps(("retadm_1", 1)), None), TASK, "retadm_1")
    assert result == Refusal(NameClash(SRC, ("retadm_1",)))


def test_new_snapshot_must_carry_the_prefix():
    with pytest.raises(ValueError):
        plan_full(observed((), None), TASK, "daily")
    with pytest.raises(ValueError):
        plan_incremental(observed((), ()), TASK, "daily")
    with pytest.raises(ValueError):
        Task("a", "b", "c", True, prefix="")


# -- plan_incremental: refusals ---------------------------------------------------------------


def test_incremental_refuses_a_missing_destination():
    result = plan_incremental(observed(snaps(("a", 1)), None), TASK, "retadm_2")
    assert result == Refusal(DestinationMissing("repl/smbvol"))


def test_incremental_refuses_without_a_common_guid():
    source = snaps(("retadm_1", 1), ("daily", 2))
    destination = snaps(("retadm_1", 10), ("daily", 20))
    assert plan_incremental(observed(source, destination), TASK, "retadm_2") == Refusal(NoCommonSnapshot())


def test_incremental_refuses_a_diverged_destination():
    source = snaps(("retadm_1", 1), ("daily", 2))
    destination = snaps(("retadm_1", 1), ("local", 30), ("daily", 31))
    result = plan_incremental(observed(source, destination), TASK, "retadm_2")
    assert result == Refusal(DestinationDiverged("retadm_1", ("local", "daily")))


def _lost_tracking(**kwargs: object) -> Observed:
    """@retadm_1 was replicated after @monday, then destroyed on the source by hand
    (released first); the destination still has it, with our hold."""
    source = snaps(("monday", 1))
    destination = snaps(("monday", 1), ("retadm_1", 2))
    kwargs.setdefault("destination_holds", held("retadm_1"))
    kwargs.setdefault("destination_written", None)
    kwargs.setdefault("destination_readonly", None)
    return observed(source, destination, **kwargs)


def test_tracking_snapshots_the_source_lost_are_rolled_back_not_divergence():
    result = plan_incremental(_lost_tracking(), TASK, "retadm_2")
    assert isinstance(result, Plan) and result.needs_replan and not result.sends
    assert result.steps == (Release(DST, "retadm_1"), Rollback("monday", ("retadm_1",)))
    assert result.common == ObservedSnapshot("monday", 1, 1) and result.target == "monday"
    # known not written: the same, even on a replica left writable
    written_not = _lost_tracking(destination_written=False, destination_readonly=False, destination_holds=held())
    assert plan_incremental(written_not, TASK, "retadm_2").steps == (Rollback("monday", ("retadm_1",)),)


@pytest.mark.parametrize("kwargs", [
    {"destination_written": True},  # written since: the rollback would lose data
    {"destination_written": None, "destination_readonly": False},  # may have been written
])
def test_lost_tracking_snapshots_on_a_written_replica_are_divergence(kwargs):
    result = plan_incremental(_lost_tracking(**kwargs), TASK, "retadm_2")
    assert result == Refusal(DestinationDiverged("monday", ("retadm_1",)))


def test_a_user_snapshot_among_the_extra_ones_is_divergence():
    source = snaps(("monday", 1))
    destination = snaps(("monday", 1), ("retadm_1", 2), ("local", 3))
    result = plan_incremental(observed(source, destination, destination_written=False), TASK, "retadm_2")
    assert result == Refusal(DestinationDiverged("monday", ("retadm_1", "local")))


def test_after_the_rollback_the_run_goes_on_from_the_user_snapshot():
    world = World(written=True, capabilities=NO_BOOKMARKS)
    world.snapshot("monday")
    world.destination = Dataset(readonly=True)
    world.destination.take("monday", world.source.require("monday").guid)
    world.destination.take("retadm_lost", world.guid())  # its twin on the source is gone
    world.destination.holds.add("retadm_lost")
    world.written = True
    result = run(world)  # checks the plans and the settled state
    assert isinstance(result, Plan) and result.common.name == "monday"
    assert [s.name for s in world.destination.snapshots] == ["monday", result.target]


def test_incremental_refuses_a_reused_name_the_replica_kept():
    source = snaps(("retadm_1", 2), ("monday", 3))
    destination = snaps(("monday", 1), ("retadm_1", 2))
    result = plan_incremental(observed(source, destination), TASK, "retadm_2")
    assert result == Refusal(NameClash(DST, ("monday",)))


def test_incremental_refuses_a_taken_name():
    """Two runs within one tick of the clock; a bookmark's name counts too."""
    source = snaps(("retadm_1", 1))
    assert plan_incremental(observed(source, source), TASK, "retadm_1") == Refusal(NameClash(SRC, ("retadm_1",)))
    marks = (ObservedBookmark("retadm_2", 9, 1),)
    result = plan_incremental(observed(source, source, source_bookmarks=marks), TASK, "retadm_2")
    assert result == Refusal(NameClash(SRC, ("retadm_2",)))


# -- plan_incremental: plans ------------------------------------------------------------------


def settled(obs_source: tuple[ObservedSnapshot, ...], **kwargs: object) -> Observed:
    """A healthy state after a run that made the last source snapshot common."""
    last = obs_source[-1].name
    kwargs.setdefault("source_holds", held(last))
    kwargs.setdefault("destination_holds", held(last))
    kwargs.setdefault("recorded_guid", obs_source[-1].guid)
    return observed(obs_source, obs_source, **kwargs)


def test_incremental_sends_from_the_common_and_retires_it():
    source = snaps(("retadm_1", 1))
    obs = replace(settled(source), source=snaps(("retadm_1", 1), ("daily", 2)))
    result = plan_incremental(obs, TASK, "retadm_2")
    assert result == Plan(
        (
            CreateSnapshot("retadm_2"),
            SendIncremental("retadm_1", False, "retadm_2", True),
            Hold(SRC, "retadm_2"),
            Hold(DST, "retadm_2"),
            RecordCommon("retadm_2", None),
            Release(SRC, "retadm_1"),
            Release(DST, "retadm_1"),
            DestroySnapshot(SRC, "retadm_1"),
            DestroySnapshot(DST, "retadm_1"),
        ),
        source[0],
        "retadm_2",
    )
    assert result.sends


def test_nothing_changed_is_an_empty_plan():
    obs = settled(snaps(("daily", 1), ("retadm_1", 2)), written=False)
    result = plan_incremental(obs, TASK, "retadm_2")
    assert result == Plan((), obs.source[1], "retadm_1")
    assert not result.sends
    assert result.describe() == ("nothing to do: the destination is up to date at @retadm_1",)


def test_unknown_written_counts_as_written():
    obs = settled(snaps(("retadm_1", 1)), written=None)
    result = plan_incremental(obs, TASK, "retadm_2")
    assert isinstance(result, Plan) and result.sends and result.target == "retadm_2"


# -- unchanged_since_recorded: the cron run that needs no ssh ---------------------------------

CASCADE = replace(TASK, cascade=True)


def newest_held(source):
    return held(source[-1].name) if source else held()


@pytest.mark.parametrize("source, written, task, recorded, unchanged", [
    (snaps(("daily", 1), ("retadm_1", 2)), False, TASK, 2, True),
    # written since, or ZFS cannot tell: the run goes on
    (snaps(("retadm_1", 2)), True, TASK, 2, False),
    (snaps(("retadm_1", 2)), None, TASK, 2, False),
    # a user's snapshot (or another task's) is newer than the recorded one: it has to travel
    (snaps(("retadm_1", 2), ("daily", 3)), False, TASK, 2, False),
    # the recorded snapshot is no longer the newest one by guid (same name, new snapshot)
    (snaps(("retadm_1", 7)), False, TASK, 2, False),
    # nothing recorded, or nothing on the source
    (snaps(("retadm_1", 2)), False, TASK, None, False),
    ((), False, TASK, 2, False),
    # the newest snapshot is the recorded one but not the task's own: a tracking one goes on top
    (snaps(("daily", 2)), False, TASK, 2, False),
    # a cascade sends what arrived; what is written on its source (a replica) is not its own
    (snaps(("upstream_1", 2)), True, CASCADE, 2, True),
    (snaps(("upstream_1", 2), ("upstream_2", 3)), False, CASCADE, 2, False),
])
def test_unchanged_since_recorded(source, written, task, recorded, unchanged):
    assert unchanged_since_recorded(source, written, task, recorded, newest_held(source)) is unchanged


@pytest.mark.parametrize("task", [TASK, CASCADE])
def test_a_hold_released_by_hand_is_a_runs_to_put_back(task):
    """Without the task's hold on the recorded snapshot, the run goes on: it looks at both
    sides, and holds again on each the snapshot that lacks it."""
    source = snaps(("retadm_1", 1), ("retadm_2", 2))
    assert not unchanged_since_recorded(source, False, task, 2, held())
    assert not unchanged_since_recorded(source, False, task, 2, held("retadm_1"))


@given(st.lists(st.tuples(st.sampled_from(["retadm_", "daily_"]), st.integers(1, 9)), min_size=1, max_size=6,
                unique_by=lambda spec: spec[1]),
       st.sampled_from([True, False, None]), st.booleans(), st.booleans())
def test_unchanged_means_the_planner_would_send_and_hold_nothing(specs, written, recorded_newest, newest_is_held):
    """Whenever a run would end before the destination, the full plan (with the destination
    as the last run left it: the recorded snapshot in common, held) sends nothing and has no
    hold to put back (what it may still prune, older tracking snapshots, the next run does)."""
    source = snaps(*((f"{prefix}{guid}", guid) for prefix, guid in specs))
    recorded = source[-1 if recorded_newest else 0].guid
    source_holds = newest_held(source) if newest_is_held else held()
    if not unchanged_since_recorded(source, written, TASK, recorded, source_holds):
        assert not (recorded_newest and newest_is_held and written is False and source[-1].name.startswith("retadm_"))
        return
    newest = source[-1].name
    obs = observed(source, source, written=written, source_holds=source_holds, destination_holds=held(newest),
                   recorded_guid=recorded)
    plan = plan_incremental(obs, TASK, "retadm_99")
    assert isinstance(plan, Plan) and not plan.sends and plan.target == newest
    assert not [step for step in plan.steps if isinstance(step, Hold)]


def test_data_landed_but_bookkeeping_did_not():
    """The previous run died after its send: nothing is resent, the chain is settled."""
    source = snaps(("retadm_1", 1), ("retadm_2", 2))
    obs = observed(
        source,
        source,
        written=False,
        source_holds=held("retadm_1", "retadm_2"),
        destination_holds=held("retadm_1"),
        capabilities=BOOKMARKS,
        source_bookmarks=(ObservedBookmark("retadm_1", 1, 1),),
        recorded_guid=1,
    )
    result = plan_incremental(obs, TASK, "retadm_3")
    assert result == Plan(
        (
            Hold(DST, "retadm_2"),
            CreateBookmark("retadm_2", "retadm_2"),
            RecordCommon("retadm_2", 2),
            Release(SRC, "retadm_1"),
            Release(DST, "retadm_1"),
            DestroySnapshot(SRC, "retadm_1"),
            DestroySnapshot(DST, "retadm_1"),
            DestroyBookmark("retadm_1"),
        ),
        source[1],
        "retadm_2",
    )


def test_landed_snapshot_is_the_base_when_written_since():
    source = snaps(("retadm_1", 1), ("retadm_2", 2))
    obs = observed(source, source, written=True, source_holds=held("retadm_1"), destination_holds=held("retadm_1"))
    result = plan_incremental(obs, TASK, "retadm_3")
    assert isinstance(result, Plan)
    assert [s for s in result.steps if isinstance(s, SendIncremental)] == [
        SendIncremental("retadm_2", False, "retadm_3", True)
    ]
    assert DestroySnapshot(SRC, "retadm_2") in result.steps


def test_user_snapshot_as_newest_common_still_gets_a_tracking_snapshot():
    """The anchor hold stays on our own snapshot, so the user's pruning is never blocked."""
    obs = observed(snaps(("retadm_1", 1), ("daily", 2)), snaps(("retadm_1", 1), ("daily", 2)), written=False)
    result = plan_incremental(obs, TASK, "retadm_2")
    assert isinstance(result, Plan)
    assert SendIncremental("daily", False, "retadm_2", True) in result.steps


def test_user_snapshot_with_our_hold_is_released_not_destroyed():
    source = snaps(("daily", 1), ("retadm_1", 2))
    obs = settled(source, source_holds=held("daily", "retadm_1"), destination_holds=held("daily", "retadm_1"))
    result = plan_incremental(obs, TASK, "retadm_2")
    assert isinstance(result, Plan)
    assert Release(SRC, "daily") in result.steps and Release(DST, "daily") in result.steps
    assert not any(isinstance(s, DestroySnapshot) and s.snapshot == "daily" for s in result.steps)


def test_send_from_a_bookmark_goes_one_snapshot_at_a_time_first():
    """ZFS refuses -I from a bookmark: -i to the first snapshot after it, then -I."""
    destination = snaps(("old", 1), ("retadm_1", 2))
    source = (ObservedSnapshot("old", 1, 1), ObservedSnapshot("daily", 3, 3))
    marks = (ObservedBookmark("retadm_1", 2, 2),)
    obs = observed(source, destination, source_bookmarks=marks, capabilities=BOOKMARKS)
    result = plan_incremental(obs, TASK, "retadm_2")
    assert isinstance(result, Plan)
    assert result.common == marks[0]
    sends = [s for s in result.steps if isinstance(s, SendIncremental)]
    assert sends == [
        SendIncremental("retadm_1", True, "daily", True),
        SendIncremental("daily", False, "retadm_2", True),
    ]
    assert DestroyBookmark("retadm_1") in result.steps


def test_send_from_a_bookmark_without_intermediates_is_one_send():
    destination = snaps(("retadm_1", 2))
    obs = observed((), destination, source_bookmarks=(ObservedBookmark("retadm_1", 2, 1),), capabilities=BOOKMARKS)
    result = plan_incremental(obs, TASK, "retadm_2")
    assert isinstance(result, Plan)
    assert [s for s in result.steps if isinstance(s, SendIncremental)] == [
        SendIncremental("retadm_1", True, "retadm_2", True)
    ]


def test_writable_destination_is_made_readonly_first():
    obs = replace(settled(snaps(("retadm_1", 1)), written=False), destination_readonly=False)
    result = plan_incremental(obs, TASK, "retadm_2")
    assert result == Plan((SetReadonly(),), obs.source[0], "retadm_1")
    obs = replace(obs, written=True)
    result = plan_incremental(obs, TASK, "retadm_2")
    assert isinstance(result, Plan) and result.steps[:2] == (SetReadonly(), CreateSnapshot("retadm_2"))


def test_input_order_does_not_matter():
    source = snaps(("daily", 1), ("retadm_1", 2), ("weekly", 3))
    obs = settled(source[:2], written=True)
    obs = replace(obs, source=source)
    assert obs.destination is not None
    reverse = replace(obs, source=source[::-1], destination=obs.destination[::-1])
    assert plan_incremental(obs, TASK, "retadm_2") == plan_incremental(reverse, TASK, "retadm_2")


def test_describe_reads_like_the_plan():
    obs = replace(settled(snaps(("retadm_1", 1))), capabilities=BOOKMARKS)
    result = plan_incremental(obs, TASK, "retadm_2")
    assert isinstance(result, Plan)
    assert result.describe() == (
        "create snapshot @retadm_2 on the source",
        "send the changes @retadm_1 -> @retadm_2 and every snapshot in between, with properties",
        f"hold @retadm_2 on the source (tag {HOLD_TAG})",
        f"hold @retadm_2 on the destination (tag {HOLD_TAG})",
        "bookmark @retadm_2 as #retadm_2 on the source",
        "record @retadm_2 as the last common snapshot",
        f"release the {HOLD_TAG} hold on @retadm_1 on the source",
        f"release the {HOLD_TAG} hold on @retadm_1 on the destination",
        "destroy @retadm_1 on the source",
        "destroy @retadm_1 on the destination",
    )


def test_refusals_explain_themselves():
    messages = [
        Refusal(DestinationMissing("repl/a")).describe(),
        Refusal(DestinationExists("repl/a")).describe(),
        Refusal(NoCommonSnapshot()).describe(),
        Refusal(DestinationDiverged("retadm_1", ("x", "y"))).describe(),
        Refusal(NameClash(DST, ("monday",))).describe(),
    ]
    assert messages == [
        "the destination repl/a does not exist; initialise the task first",
        "the destination repl/a already exists",
        "the source and the destination have no snapshot in common",
        "the destination has diverged after @retadm_1: @x, @y",
        "the destination already has other snapshots named @monday",
    ]


# -- a model of two ZFS sides -----------------------------------------------------------------


class ZfsError(Exception):
    """The model refused an operation the way ZFS would."""


@dataclass
class Dataset:
    snapshots: list[ObservedSnapshot] = field(default_factory=list)
    holds: set[str] = field(default_factory=set)
    bookmarks: list[ObservedBookmark] = field(default_factory=list)
    readonly: bool = False
    txg: int = 0

    def get(self, name: str) -> ObservedSnapshot | None:
        return next((s for s in self.snapshots if s.name == name), None)

    def require(self, name: str) -> ObservedSnapshot:
        snapshot = self.get(name)
        if snapshot is None:
            raise ZfsError(f"could not find @{name}")
        return snapshot

    def take(self, name: str, guid: int) -> None:
        if self.get(name) is not None:
            raise ZfsError(f"@{name} already exists")
        if any(s.guid == guid for s in self.snapshots):
            raise ZfsError(f"guid of @{name} already received")
        self.txg += 1
        self.snapshots.append(ObservedSnapshot(name, guid, self.txg))

    def destroy(self, name: str) -> None:
        snapshot = self.require(name)
        if name in self.holds:
            raise ZfsError(f"@{name} is busy (held)")
        self.snapshots.remove(snapshot)

    def hold(self, name: str) -> None:
        self.require(name)
        if name in self.holds:
            raise ZfsError("tag already exists on this dataset")
        self.holds.add(name)

    def release(self, name: str) -> None:
        if name not in self.holds:
            raise ZfsError("no such tag on this dataset")
        self.holds.remove(name)

    def newest(self) -> ObservedSnapshot | None:
        return self.snapshots[-1] if self.snapshots else None

    def user_snapshots(self) -> set[tuple[str, int]]:
        return {(s.name, s.guid) for s in self.snapshots if not TASK.owns(s.name)}

    def ours(self) -> list[str]:
        return [s.name for s in self.snapshots if TASK.owns(s.name)]


@dataclass
class World:
    source: Dataset = field(default_factory=Dataset)
    destination: Dataset | None = None
    #: None: this ZFS has no ``written`` property, it stays unknown.
    written: bool | None = True
    capabilities: PairCapabilities = BOOKMARKS
    recorded: int | None = None
    last_guid: int = 1000
    runs: int = 0

    def guid(self) -> int:
        self.last_guid += 1
        return self.last_guid

    def tracking_name(self) -> str:
        self.runs += 1
        return f"retadm_run{self.runs}"

    def side(self, side: Side) -> Dataset:
        if side is SRC:
            return self.source
        if self.destination is None:
            raise ZfsError("destination does not exist")
        return self.destination

    def observe(self) -> Observed:
        dst = self.destination
        return Observed(
            source=tuple(self.source.snapshots),
            destination=tuple(dst.snapshots) if dst else None,
            source_bookmarks=tuple(self.source.bookmarks),
            source_holds=frozenset(self.source.holds),
            destination_holds=frozenset(dst.holds) if dst else frozenset(),
            written=self.written,
            capabilities=self.capabilities,
            destination_readonly=dst.readonly if dst else None,
            recorded_guid=self.recorded,
        )

    def snapshot(self, name: str) -> None:
        """Someone (us or the user) snapshots the source."""
        self.source.take(name, self.guid())
        if self.written is not None:
            self.written = False

    def apply(self, step: Step) -> None:
        match step:
            case CreateSnapshot(name):
                self.snapshot(name)
            case SendFull(name, _):
                if self.destination is not None:
                    raise ZfsError("destination exists (would need -F)")
                sent = self.source.require(name)
                self.destination = Dataset()
                self.destination.take(sent.name, sent.guid)
            case SendIncremental(base, from_bookmark, target, _):
                self.send_incremental(base, from_bookmark, target)
            case Hold(side, name):
                self.side(side).hold(name)
            case Release(side, name):
                self.side(side).release(name)
            case DestroySnapshot(side, name):
                self.side(side).destroy(name)
            case CreateBookmark(name, mark):
                self.bookmark(name, mark)
            case DestroyBookmark(mark):
                self.source.bookmarks.remove(self.find_bookmark(mark))
            case SetReadonly():
                self.side(DST).readonly = True
            case Rollback(name, lost):  # zfs rollback -r: destroys what is newer; a held one refuses
                destination = self.side(DST)
                destination.require(name)
                destroyed: list[str] = []
                while (newest := destination.newest()) is not None and newest.name != name:
                    destroyed.insert(0, newest.name)
                    destination.destroy(destroyed[0])
                if tuple(destroyed) != lost:
                    raise AssertionError(f"the rollback destroyed {destroyed}, the plan said {lost}")
            case RecordCommon(name, guid):
                here, there = self.source.require(name), self.side(DST).require(name)
                if here.guid != there.guid or guid not in (None, here.guid):
                    raise AssertionError(f"recording @{name} that is not common")
                self.recorded = here.guid

    def find_bookmark(self, name: str) -> ObservedBookmark:
        mark = next((b for b in self.source.bookmarks if b.name == name), None)
        if mark is None:
            raise ZfsError(f"could not find #{name}")
        return mark

    def bookmark(self, name: str, mark: str) -> None:
        if not self.capabilities.bookmarks:
            raise ZfsError("bookmarks are not supported")
        if any(b.name == mark for b in self.source.bookmarks):
            raise ZfsError(f"#{mark} already exists")
        snapshot = self.source.require(name)
        self.source.bookmarks.append(ObservedBookmark(mark, snapshot.guid, snapshot.createtxg))

    def send_incremental(self, base: str, from_bookmark: bool, target: str) -> None:
        start: ObservedSnapshot | ObservedBookmark = (self.find_bookmark(base) if from_bookmark
                                                      else self.source.require(base))
        end = self.source.require(target)
        if start.createtxg >= end.createtxg:
            raise ZfsError("incremental source must be earlier than the target")
        if from_bookmark:  # send -i: only the target travels
            stream = [end]
        else:  # send -I: every snapshot after the base up to the target
            stream = [s for s in self.source.snapshots if start.createtxg < s.createtxg <= end.createtxg]
        destination = self.side(DST)
        newest = destination.newest()
        if newest is None or newest.guid != start.guid:
            raise ZfsError("destination has been modified since the base, or lacks it (needs -F)")
        for snapshot in stream:
            destination.take(snapshot.name, snapshot.guid)


# -- invariants -------------------------------------------------------------------------------


def plan_for(obs: Observed, name: str) -> Plan | Refusal:
    """What ``init`` (no destination yet) or ``inc`` would plan."""
    return plan_full(obs, TASK, name) if obs.destination is None else plan_incremental(obs, TASK, name)


def plan_run(world: World) -> Plan | Refusal:
    return plan_for(world.observe(), world.tracking_name())


def run(world: World, cut: int | None = None) -> Plan | Refusal:
    """Plan, check, and apply the plan (only its first ``cut`` steps if given).

    A plan that asks to be planned again (a rollback first) is followed by the next
    one, as the job does; the result is the last plan.
    """
    before = copy.deepcopy(world)
    for _ in range(3):
        obs = world.observe()
        result = plan_run(world)
        if isinstance(result, Refusal):
            check_refusal(obs, result)
            return result
        check_steps(obs, result)
        steps = result.steps if cut is None else result.steps[:cut]
        for step in steps:
            world.apply(step)
        if not result.needs_replan:
            break
        if cut is not None:
            cut -= len(steps)
            if cut <= 0:
                return result
    else:
        raise AssertionError("still asking to plan again after three plans")
    if cut is None:
        check_settled(before, world, result)
    return result


def check_refusal(obs: Observed, refusal: Refusal) -> None:
    """A refusal must be true of the observed state."""
    source_points: list[ObservedSnapshot | ObservedBookmark] = [*obs.source, *obs.source_bookmarks]
    source_guids = {p.guid for p in source_points}
    match refusal.conflict:
        case DestinationMissing():
            assert obs.destination is None
        case DestinationExists():
            assert obs.destination is not None
        case NoCommonSnapshot():
            assert obs.destination is not None
            assert not source_guids & {s.guid for s in obs.destination}
        case DestinationDiverged(_, extra):
            assert obs.destination is not None and extra
            newest = sorted(obs.destination, key=lambda s: s.createtxg)[-len(extra) :]
            assert tuple(s.name for s in newest) == extra
            assert not source_guids & {s.guid for s in newest}
            assert source_guids & {s.guid for s in obs.destination}
        case NameClash(Side.SOURCE, names):
            assert len(names) == 1
            assert names[0] in {p.name for p in source_points}
        case NameClash(Side.DESTINATION, names):
            assert obs.destination is not None and names
            on_destination = {s.name: s.guid for s in obs.destination}
            on_source = {s.name: s.guid for s in obs.source}
            for name in names:
                assert name in on_destination and on_source.get(name) != on_destination[name]


def check_steps(obs: Observed, plan: Plan) -> None:
    """Static rules: what a plan may destroy and in which order it lets go."""
    released: set[tuple[Side, str]] = set()
    for step in plan.steps:
        match step:
            case DestroySnapshot(side, name):
                assert TASK.owns(name) and name != plan.target
                if name in obs.holds(side):
                    assert (side, name) in released, "destroy before release"
            case DestroyBookmark(name):
                assert TASK.owns(name) and name != plan.target
            case Release(side, name):
                assert name != plan.target
                released.add((side, name))
            case SendFull(name, _) | SendIncremental(_, _, name, _):
                assert obs.destination is None or name not in {s.name for s in obs.destination}
            case Hold(_, name):
                assert name == plan.target and not released, "a hold after a release"
            case Rollback(name, lost):
                assert name == plan.target and all(TASK.owns(n) for n in lost)
                assert obs.destination_written is not True
                assert obs.destination_written is False or obs.destination_readonly is not False
                held_lost = {(DST, n) for n in lost if n in obs.destination_holds}
                assert held_lost <= released, "rollback over a held snapshot"


def check_settled(before: World, after: World, plan: Plan) -> None:
    """The state after a complete run, and that the next run has nothing to do."""
    target = plan.target
    src, dst = after.source, after.side(DST)
    assert src.require(target).guid == dst.require(target).guid
    assert before.source.user_snapshots() <= src.user_snapshots()
    if before.destination is not None:
        assert before.destination.user_snapshots() <= dst.user_snapshots()
    since = plan.common.createtxg if plan.common is not None else 0
    on_destination = {s.name: s.guid for s in dst.snapshots}
    for snapshot in src.snapshots:
        if snapshot.createtxg > since:
            assert on_destination.get(snapshot.name) == snapshot.guid, f"@{snapshot.name} missing"
    assert src.holds == dst.holds == {target}
    assert src.ours() == dst.ours() == [target]
    if after.capabilities.bookmarks:
        assert [b.name for b in src.bookmarks if TASK.owns(b.name)] == [target]
    assert after.recorded == src.require(target).guid
    assert dst.readonly
    again = copy.deepcopy(after)
    again.written = False
    assert plan_run(again) == Plan((), src.require(target), target)


# -- property tests ---------------------------------------------------------------------------

NAMES = ("daily", "monday", "retadm_a", "retadm_b")

mostly = st.integers(0, 3).map(bool)  # True three times in four

# One source snapshot: name, still on the source?, received?, bookmarked?, held on each side?
entries = st.tuples(
    st.sampled_from(NAMES),
    st.integers(0, 3),
    mostly,
    mostly,
    st.booleans(),
    st.booleans(),
    st.booleans(),
)


@st.composite
def worlds(draw: st.DrawFn) -> World:
    """An arbitrary state: partial replicas, holes, local snapshots on the destination
    (same names, other guids), lost holds, destroyed snapshots with or without bookmarks."""
    capabilities = draw(st.sampled_from([BOOKMARKS, NO_BOOKMARKS]))
    world = World(capabilities=capabilities)
    history = draw(st.lists(entries, max_size=7))
    received_up_to = len(history) - draw(st.integers(0, 2))  # the source is a little ahead
    local = draw(
        st.lists(st.tuples(st.integers(0, len(history)), st.sampled_from(NAMES), st.integers(0, 3)), max_size=2)
    )
    destination = Dataset(readonly=draw(st.booleans()))
    for position in range(len(history) + 1):
        for _, name, number in (x for x in local if x[0] == position):
            if destination.get(f"{name}{number}") is None:
                destination.take(f"{name}{number}", world.guid())
        if position < len(history):
            add_history_entry(world, destination, history[position], position < received_up_to)
    world.written = draw(st.sampled_from([True, False, None]))
    if draw(st.integers(0, 9)) > 0:
        world.destination = destination
        world.recorded = draw(st.sampled_from([None, *(s.guid for s in destination.snapshots)]))
    return world


def add_history_entry(world: World, destination: Dataset, entry: tuple, receivable: bool) -> None:
    name, number, kept, received, marked, held_here, held_there = entry
    name = f"{name}{number}"
    if world.source.get(name) is not None:
        return
    world.snapshot(name)
    snapshot = world.source.require(name)
    if received and receivable and destination.get(name) is None:
        destination.take(name, snapshot.guid)
        if held_there:
            destination.holds.add(name)
    if marked and world.capabilities.bookmarks and name not in {b.name for b in world.source.bookmarks}:
        world.bookmark(name, name)
    if not kept:
        world.source.snapshots.remove(snapshot)
    elif held_here:
        world.source.holds.add(name)


FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(worlds())
def test_any_state_gives_a_sound_plan_or_a_true_refusal(world: World):
    obs = world.observe()
    reordered = replace(
        obs,
        source=obs.source[::-1],
        destination=None if obs.destination is None else obs.destination[::-1],
        source_bookmarks=obs.source_bookmarks[::-1],
    )
    name = f"retadm_run{world.runs + 1}"
    assert plan_for(obs, name) == plan_for(reordered, name)
    run(world)


@FAST
@given(worlds(), st.integers(0, 40), st.sampled_from([True, False, None]))
def test_an_interrupted_run_is_finished_by_the_next_one(world: World, cut: int, written: bool | None):
    """Whatever a whole run would finish, a run cut short leaves for the next one to finish.
    (A run that refuses only after its first plan, e.g. a name clash found once a rollback
    is done, refuses the same way however it was cut: not a case of this property.)"""
    if isinstance(run(copy.deepcopy(world)), Refusal):
        return
    first = run(world, cut=cut)
    if isinstance(first, Refusal):
        return
    if written is not None and world.written is not None:
        world.written = written
    landed = world.destination is not None and world.destination.get(first.target) is not None
    second = run(world)  # the model also refuses any second receive of a guid
    assert isinstance(second, Plan), second
    if landed:
        assert second.common is not None and second.common.name == first.target


# A history: what users, their tools and our runs do, in any order.
sides = st.sampled_from([SRC, DST])
operations = st.one_of(
    st.tuples(st.just("snapshot"), st.sampled_from(NAMES[:2]), st.integers(0, 2)),
    st.tuples(st.just("write")),
    st.tuples(st.just("run"), st.none() | st.integers(0, 12)),
    st.tuples(st.just("prune"), sides, st.integers(0, 9)),
    st.tuples(st.just("release"), sides, st.integers(0, 9)),
    st.tuples(st.just("stale hold"), sides, st.integers(0, 9)),
    st.tuples(st.just("local snapshot"), st.sampled_from(NAMES), st.integers(0, 2)),
    st.tuples(st.just("rollback"), st.integers(0, 9)),
    st.tuples(st.just("drop destination")),
    st.tuples(st.just("user bookmark"), st.integers(0, 9)),
)


def pick(snapshots: list[ObservedSnapshot], index: int) -> ObservedSnapshot | None:
    return snapshots[index % len(snapshots)] if snapshots else None


def happen(world: World, operation: tuple) -> None:
    """One thing happening to the pair; ZFS refusing it means it did not happen."""
    kind, *args = operation
    if kind == "run":  # outside the try: a plan the model refuses is a planner bug
        run(world, cut=args[0])
        return
    try:
        match kind:
            case "snapshot":
                world.snapshot(f"{args[0]}{args[1]}")
            case "write":
                world.written = None if world.written is None else True
            case "prune" | "release" | "stale hold":
                dataset = world.side(args[0])
                victim = pick(dataset.snapshots, args[1])
                if victim is not None:
                    {"prune": dataset.destroy, "release": dataset.release, "stale hold": dataset.hold}[kind](
                        victim.name
                    )
            case "local snapshot":
                world.side(DST).take(f"{args[0]}{args[1]}", world.guid())
            case "rollback":
                destination = world.side(DST)
                keep = pick(destination.snapshots, args[0])
                while keep is not None and destination.newest() != keep:
                    destination.destroy(destination.snapshots[-1].name)
            case "drop destination":
                if not world.side(DST).holds:
                    world.destination = None
            case "user bookmark":
                victim = pick(world.source.snapshots, args[0])
                if victim is not None:
                    world.bookmark(victim.name, f"mark{victim.createtxg}")
    except ZfsError:
        pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([BOOKMARKS, NO_BOOKMARKS]),
    st.sampled_from([True, None]),
    st.lists(operations, max_size=25),
)
def test_random_histories_stay_sound_and_converge(capabilities: PairCapabilities, written: bool | None, history):
    world = World(written=written, capabilities=capabilities)
    for operation in history:
        happen(world, operation)
    while isinstance(result := run(world), Refusal):  # what `retadm repair` will do, bluntly
        if world.destination is None:
            raise AssertionError(f"init refused: {result}")
        world.destination = None


# -- an interrupted resumable receive --------------------------------------------------------


_TOKEN = "1-abc-def"


def _with_token(valid: bool | None) -> Observed:
    source = (ObservedSnapshot("a", 1, 10), ObservedSnapshot("retadm_1", 2, 20))
    return Observed(source=source, destination=(ObservedSnapshot("a", 1, 5),), resume_token=_TOKEN,
                    resume_token_valid=valid)


def test_no_token_means_no_resume_plan():
    assert plan_resume(Observed(source=(), destination=None)) is None


@pytest.mark.parametrize("valid", [True, None])
def test_a_token_the_source_can_still_send_from_is_resumed(valid):
    plan = plan_resume(_with_token(valid))
    assert plan.steps == (ResumeSend(_TOKEN),)
    assert plan.sends and plan.needs_replan


def test_a_stale_token_is_discarded_and_nothing_is_sent():
    plan = plan_resume(_with_token(False))
    assert plan.steps == (AbortResume(),)
    assert not plan.sends and plan.needs_replan


def test_a_normal_plan_does_not_ask_to_plan_again():
    observed = Observed(source=(ObservedSnapshot("retadm_1", 2, 20),),
                        destination=(ObservedSnapshot("retadm_1", 2, 5),))
    plan = plan_incremental(observed, Task("data/smbvol", "dst", "repl/smbvol", False), "retadm_2")
    assert isinstance(plan, Plan) and not plan.needs_replan


# -- failover marks: a promoted replica, the replica's origin ------------------------------


def test_a_promoted_replica_is_never_replicated_onto_rolled_back_or_resumed():
    common = snaps(("retadm_1", 11))
    state = observed(common, common, destination_promoted="2026-11-26T09:00:00Z", resume_token=_TOKEN,
                     resume_token_valid=True)
    refusal = Refusal(DestinationPromoted(TASK.remote_dataset, "2026-11-26T09:00:00Z"))
    assert plan_incremental(state, TASK, "retadm_9") == refusal
    assert plan_repair(state, TASK, "repl/smbvol-old") == refusal
    assert plan_resume(state) is None
    assert "run 'retadm reverse' on the promoted node" in refusal.describe()


def test_the_replica_is_marked_with_its_origin_once():
    task = replace(TASK, origin="192.168.0.149:data/smbvol")
    full = plan_full(observed(snaps(("monday", 1)), None), task, "retadm_9")
    assert MarkOrigin("192.168.0.149:data/smbvol") in full.steps
    common = snaps(("retadm_1", 11))
    unmarked = plan_incremental(observed(common, common), task, "retadm_9")
    marked = plan_incremental(observed(common, common, destination_origin=task.origin), task, "retadm_9")
    assert MarkOrigin(task.origin) in unmarked.steps and not any(isinstance(s, MarkOrigin) for s in marked.steps)
    # a task that does not know its address (older records) marks nothing
    unknown = plan_incremental(observed(common, common), TASK, "retadm_9")
    assert not any(isinstance(s, MarkOrigin) for s in unknown.steps)

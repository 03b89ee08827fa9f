"""Every task touches only its own: tracking snapshots, holds and bookmarks carry its identity.

Tasks on the same data — a cascade (A→B→C: B's replica is the source of B's task), a task
set up before identities existed beside a new one, two tasks of one dataset to two
destinations (fan-out) — must never release, prune or roll back each other's; on its
destination a task prunes only the other tasks' tracking snapshots its sends carried there
and the source no longer has.  Pure planner tests; the cascade on real ZFS is tests/fuse_lab/test_cascade.py.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, strategies as st

from ovios_shell_retadm.replication.model import (
    HOLD_TAG,
    TRACKING_NAME,
    CreateBookmark,
    CreateSnapshot,
    DestinationDiverged,
    DestroyBookmark,
    DestroySnapshot,
    Hold,
    NothingToRelay,
    Observed,
    ObservedSnapshot,
    Plan,
    RecordCommon,
    Refusal,
    Release,
    Rollback,
    SendFull,
    SendIncremental,
    SetReadonly,
    Side,
    Task,
    chain_identity,
    hold_tag,
    tracking_prefix,
)
from ovios_shell_retadm.replication.planner import plan_full, plan_incremental, plan_repair, plan_reset
from ovios_shell_retadm.replication.task_store import TaskRecord, new_identity

SRC, DST = Side.SOURCE, Side.DESTINATION
A, B = "aaaaaaaa", "bbbbbbbb"
TASK_A = Task.identified("data/smbvol", "dst", "repl/smbvol", False, A)
LEGACY = Task("data/smbvol", "dst", "repl/smbvol", False)
#: B's task on dst: its source is the replica A's task feeds
CASCADE = Task.identified("repl/smbvol", "src", "esx/cascade", False, B, cascade=True)


def t(identity: str | None, n: int) -> str:
    """A tracking snapshot name of the task with that identity."""
    return f"{tracking_prefix(identity)}20261202T10{n:02d}00.000Z"


def snaps(*names: str, guid_base: int = 0) -> tuple[ObservedSnapshot, ...]:
    """Snapshots in creation order; the same name gets the same guid on either side."""
    return tuple(ObservedSnapshot(name, guid_base + int(hashlib.sha256(name.encode()).hexdigest()[:12], 16), txg)
                 for txg, name in enumerate(names, start=1))


def observe(source: tuple[ObservedSnapshot, ...], destination: tuple[ObservedSnapshot, ...] | None,
            **kwargs) -> Observed:
    kwargs.setdefault("written", True)
    kwargs.setdefault("destination_readonly", True if destination is not None else None)
    return Observed(source=source, destination=destination, **kwargs)


# -- names and tags ------------------------------------------------------------------------------


def test_an_identity_gives_its_own_prefix_and_tag():
    assert (TASK_A.prefix, TASK_A.tag) == ("retadm_aaaaaaaa_", "retadm_aaaaaaaa")
    assert (LEGACY.prefix, LEGACY.tag) == ("retadm_", HOLD_TAG) == (tracking_prefix(None), hold_tag(None))
    assert TASK_A.owns(t(A, 1)) and not TASK_A.owns(t(B, 1)) and not TASK_A.owns(t(None, 1))


def test_the_chain_s_identity_is_the_newest_identified_snapshot_s():
    """What ``retadm reverse`` goes on with: after the switch back, the original task owns the
    snapshots the reverse runs left, so they are pruned like its own."""
    assert chain_identity(["monday", t(A, 1), t(None, 2), t(B, 3), "tuesday"]) == B
    assert chain_identity(["monday", t(None, 1)]) is None and chain_identity([]) is None


def test_an_identity_is_eight_hex_digits_or_nothing():
    for bad in ("", "AAAAAAAA", "aaaa", "aaaaaaaa_", "../../x"):
        with pytest.raises(ValueError, match="is not a task identity"):
            Task.identified("data/smbvol", "dst", "repl/smbvol", False, bad)
    assert Task.identified("data/smbvol", "dst", "repl/smbvol", False, None) == LEGACY


def test_a_task_without_identity_owns_only_names_no_identified_task_can_have():
    assert LEGACY.owns(t(None, 1)) and LEGACY.owns("retadm_20261126T055353.807Z")
    assert not LEGACY.owns(t(A, 1)) and not LEGACY.owns(t(B, 1))
    assert not LEGACY.owns("monday")


def test_records_without_an_identity_go_on_as_they_were_and_new_ones_get_one():
    old = TaskRecord.from_dict({"dataset": "data/smbvol", "destination": "dst", "remote_dataset": "repl/smbvol",
                                "properties": False})
    assert (old.task().prefix, old.task().tag, old.task().cascade) == ("retadm_", "retadm", False)
    identity = new_identity()
    assert len(identity) == 8 and int(identity, 16) >= 0 and identity != new_identity()


def test_an_old_task_beside_a_new_one_keeps_its_chain_and_leaves_the_others():
    """The task set up before identities (legacy names, tag retadm) runs on a source where an
    identified task keeps its snapshots and holds: it neither prunes nor releases them."""
    source = snaps("monday", t(None, 1), t(A, 2))
    plan = plan_incremental(observe(source, snaps("monday", t(None, 1)), source_holds=frozenset({t(None, 1)}),
                                    destination_holds=frozenset({t(None, 1)})), LEGACY, t(None, 3))
    assert isinstance(plan, Plan)
    assert SendIncremental(t(None, 1), False, t(None, 3), False) in plan.steps  # A's snapshot travels
    assert Release(SRC, t(None, 1), HOLD_TAG) in plan.steps
    assert DestroySnapshot(SRC, t(None, 1)) in plan.steps
    assert not [s for s in plan.steps if isinstance(s, DestroySnapshot) and s.snapshot == t(A, 2)]


# -- the cascade ------------------------------------------------------------------------------------


def test_a_cascade_sends_what_arrived_in_full_and_takes_no_snapshot():
    source = snaps("monday", t(A, 1))
    plan = plan_full(observe(source, None), CASCADE, None)
    assert isinstance(plan, Plan)
    assert plan.steps == (
        SendFull("monday", False), SetReadonly(), SendIncremental("monday", False, t(A, 1), False),
        Hold(SRC, t(A, 1), CASCADE.tag), Hold(DST, t(A, 1), CASCADE.tag), RecordCommon(t(A, 1), None),
    )
    assert plan.target == t(A, 1)


def test_a_cascade_with_nothing_arrived_yet_is_refused():
    assert plan_full(observe((), None), CASCADE, None) == Refusal(NothingToRelay("repl/smbvol"))


def test_a_cascade_goes_on_to_the_newest_arrival_and_prunes_what_upstream_pruned():
    """A's task pruned @t1 on B; C still has it, older than the new common: the cascade
    destroys it there.  A user snapshot C has and B no longer has stays."""
    source = snaps("monday", t(A, 2), t(A, 3))
    destination = snaps("monday", "tuesday", t(A, 1), t(A, 2))
    plan = plan_incremental(observe(source, destination, source_holds=frozenset({t(A, 2)}),
                                    destination_holds=frozenset({t(A, 2)})), CASCADE, None)
    assert isinstance(plan, Plan)
    assert not [s for s in plan.steps if isinstance(s, CreateSnapshot | CreateBookmark)]
    assert SendIncremental(t(A, 2), False, t(A, 3), False) in plan.steps
    assert [s for s in plan.steps if isinstance(s, Release)] == [Release(SRC, t(A, 2), CASCADE.tag),
                                                                 Release(DST, t(A, 2), CASCADE.tag)]
    assert [s for s in plan.steps if isinstance(s, DestroySnapshot)] == [DestroySnapshot(DST, t(A, 1))]


def test_a_cascade_is_up_to_date_when_nothing_new_arrived():
    source = snaps("monday", t(A, 2))
    plan = plan_incremental(observe(source, snaps("monday", t(A, 2)), source_holds=frozenset({t(A, 2)}),
                                    destination_holds=frozenset({t(A, 2)}), recorded_guid=source[-1].guid),
                            CASCADE, None)
    assert plan == Plan((), source[-1], t(A, 2))


def test_the_feeding_task_leaves_the_cascade_s_holds_and_refuses_rather_than_rolls_back():
    """On B, A's task sees the cascade's hold (another tag) as nobody's business; and a
    snapshot on B that is not A's own is divergence for repair, not a silent rollback."""
    source = snaps("monday", t(A, 1), t(A, 2))
    on_b = snaps("monday", t(A, 1))
    plan = plan_incremental(observe(source, on_b, source_holds=frozenset({t(A, 1)}),
                                    destination_holds=frozenset({t(A, 1)})), TASK_A, t(A, 3))
    assert isinstance(plan, Plan)
    assert {s.tag for s in plan.steps if isinstance(s, Hold | Release)} == {TASK_A.tag}
    diverged = plan_incremental(observe(source, snaps("monday", t(A, 1), t(B, 9)),
                                        destination_written=False), TASK_A, t(A, 3))
    assert diverged == Refusal(DestinationDiverged(t(A, 1), (t(B, 9),)))


# -- fan-out: two tasks of one dataset, to two destinations ------------------------------------------

#: the dataset's second task, to another destination
TASK_B = Task.identified("data/smbvol", "dst", "repl/fanout", False, B)


def test_fan_out_prunes_the_other_task_s_snapshots_its_sends_carried_once_the_source_dropped_them():
    """A's ``-I`` sends carry B's tracking snapshots that lie in between to A's destination. B
    pruned @B2 on the source (its run at @B3): A's next run destroys @B2 on A's destination;
    @B3, which the source still has, the user's snapshots and A's new common one stay."""
    source = snaps("monday", t(A, 2), t(B, 3))
    on_a_s_destination = snaps("monday", "tuesday", t(B, 2), t(A, 2))
    plan = plan_incremental(observe(source, on_a_s_destination, source_holds=frozenset({t(A, 2)}),
                                    destination_holds=frozenset({t(A, 2)})), TASK_A, t(A, 4))
    assert isinstance(plan, Plan)
    assert SendIncremental(t(A, 2), False, t(A, 4), False) in plan.steps  # @B3 travels too
    assert [s for s in plan.steps if isinstance(s, DestroySnapshot)] == [DestroySnapshot(SRC, t(A, 2)),
                                                                         DestroySnapshot(DST, t(A, 2)),
                                                                         DestroySnapshot(DST, t(B, 2))]
    assert {s.tag for s in plan.steps if isinstance(s, Hold | Release)} == {TASK_A.tag}


def test_fan_out_leaves_the_other_task_s_snapshots_while_the_source_has_them_and_its_own_newer_ones():
    """B's current base is on the source: it stays on A's destination; so does one newer than the
    common one (a destination's snapshot after it is divergence, for repair, not pruning)."""
    source = snaps("monday", t(B, 1), t(A, 2))
    plan = plan_incremental(observe(source, snaps("monday", t(B, 1), t(A, 2)), source_holds=frozenset({t(A, 2)}),
                                    destination_holds=frozenset({t(A, 2)}), written=False,
                                    recorded_guid=source[-1].guid), TASK_A, t(A, 3))
    assert plan == Plan((), source[-1], t(A, 2))
    plan = plan_incremental(observe(source, snaps("monday", t(B, 1), t(A, 2)), source_holds=frozenset({t(A, 2)}),
                                    destination_holds=frozenset({t(A, 2)})), TASK_A, t(A, 3))
    assert isinstance(plan, Plan)
    assert not [s for s in plan.steps if isinstance(s, DestroySnapshot) and s.snapshot == t(B, 1)]


def test_reset_takes_off_only_the_task_s_own_marks():
    source = snaps("monday", t(None, 1), t(A, 2), t(B, 3))
    plan = plan_reset(observe(source, source, source_holds=frozenset({t(A, 2)}),
                              destination_holds=frozenset({t(A, 2)})), TASK_A)
    assert plan.steps == (Release(SRC, t(A, 2), TASK_A.tag), DestroySnapshot(SRC, t(A, 2)),
                          Release(DST, t(A, 2), TASK_A.tag), DestroySnapshot(DST, t(A, 2)))


# -- whatever the state: a task's plan carries only its own tag and destroys only its own ------------


NAMES = [t(None, 1), t(None, 2), t(A, 1), t(A, 2), t(B, 1), t(B, 2), "monday", "tuesday"]


@st.composite
def states(draw) -> Observed:
    source_names = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=6))
    shared = draw(st.integers(0, len(source_names)))
    extra = draw(st.lists(st.sampled_from([n for n in NAMES if n not in source_names]), unique=True, max_size=2))
    destination_names = [*source_names[:shared], *extra]
    source = snaps(*source_names)
    destination = snaps(*destination_names) if draw(st.booleans()) else None
    return observe(source, destination,
                   source_holds=frozenset(draw(st.sets(st.sampled_from(source_names or ["x"])))) & set(source_names),
                   destination_holds=frozenset(destination_names[:1]) if destination else frozenset(),
                   written=draw(st.sampled_from([True, False, None])),
                   destination_written=draw(st.sampled_from([True, False, None])))


@given(states(), st.sampled_from([TASK_A, TASK_B, LEGACY, CASCADE]))
def test_no_plan_touches_another_task_s_holds_or_snapshots(observed: Observed, task: Task):
    new = None if task.cascade else f"{task.prefix}20261202T235959.000Z"
    plans = [plan_incremental(observed, task, new), plan_reset(observed, task),
             plan_repair(observed, task, "repl/smbvol-old")]
    if observed.destination is None:
        plans.append(plan_full(observed, task, new))
    for plan in plans:
        if not isinstance(plan, Plan):
            continue
        for step in plan.steps:
            if isinstance(step, Hold | Release):
                assert step.tag == task.tag, step
            if isinstance(step, DestroySnapshot):
                assert task.may_destroy(step.snapshot, step.side), step
                # another task's only on the destination: a tracking snapshot (never the user's)
                # the source no longer has, and never the plan's new common one
                assert task.owns(step.snapshot) or (
                    step.side is DST and TRACKING_NAME.fullmatch(step.snapshot) is not None
                    and step.snapshot not in {s.name for s in observed.source}
                    and step.snapshot != plan.target), step
            if isinstance(step, DestroyBookmark):
                assert task.owns(step.bookmark), step
            if isinstance(step, Rollback):
                assert all(task.owns(name) for name in step.lost) or plan is plans[2], step

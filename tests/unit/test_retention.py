"""Restore points: the retention policy, and the planner keeping what it says on the replica."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings, strategies as st

from ovios_shell_retadm.replication.model import (
    DestroySnapshot,
    Observed,
    ObservedSnapshot,
    Plan,
    Side,
    Task,
)
from ovios_shell_retadm.replication.planner import plan_incremental
from ovios_shell_retadm.replication.retention import DEFAULT, Retention, RetentionError, snapshot_time

PREFIX = "retadm_0badcafe_"
START = datetime(2026, 11, 30, 23, 50, tzinfo=UTC)  # a Monday, ten minutes before December


def name(at: datetime) -> str:
    return f"{PREFIX}{at:%Y%m%dT%H%M%S}.{at.microsecond // 1000:03d}Z"


def at(minutes: float) -> str:
    return name(START + timedelta(minutes=minutes))


# -- the policy ------------------------------------------------------------------------------


@pytest.mark.parametrize("text, policy", [
    ("hourly=24,daily=7,weekly=4", Retention(hourly=24, daily=7, weekly=4)),
    (" daily=7 , last = 3 ", Retention(last=3, daily=7)),
    ("monthly=12", Retention(monthly=12)),
    ("none", Retention()),
    ("hourly=0", Retention()),
])
def test_a_policy_reads_and_writes_back(text, policy):
    assert Retention.parse(text) == policy
    assert Retention.parse(policy.text) == policy


def test_the_written_form_is_in_a_fixed_order():
    assert Retention.parse("weekly=4,last=2,hourly=1").text == "last=2,hourly=1,weekly=4"
    assert Retention.parse("daily=0").text == "none"


@pytest.mark.parametrize("text", ["", "hourly", "hourly=", "hourly=-1", "hourly=x", "yearly=2", "daily=7,daily=3",
                                  "hourly=24;daily=7", "all"])
def test_a_policy_that_cannot_be_read_says_so_in_one_line(text):
    with pytest.raises(RetentionError) as refused:
        Retention.parse(text)
    assert "\n" not in str(refused.value) and "retention" in str(refused.value)


def test_the_default_keeps_a_day_of_hours_a_week_of_days_a_month_of_weeks():
    assert DEFAULT.text == "hourly=24,daily=7,weekly=4"


def test_the_time_is_read_from_the_name():
    assert snapshot_time(at(0)) == START
    assert snapshot_time("retadm_20261203T101200.123Z") == datetime(2026, 12, 3, 10, 12, 0, 123000, tzinfo=UTC)
    assert snapshot_time("daily-2026") is None
    assert snapshot_time("retadm_20261399T101200.123Z") is None  # no month 13


def test_the_newest_of_each_period_is_kept():
    every_20_minutes = [at(20 * i) for i in range(10)]  # 23:50 on the 30th … 02:50 on the 1st
    assert Retention(hourly=2).keep(every_20_minutes) == {at(120), at(180)}  # 01:50 and 02:50
    assert Retention(daily=5).keep(every_20_minutes) == {at(0), at(180)}  # the 30th's only one, the 1st's newest
    assert Retention(last=3).keep(every_20_minutes) == set(every_20_minutes[-3:])
    assert Retention(hourly=1, last=2).keep(every_20_minutes) == {at(160), at(180)}


def test_periods_without_a_snapshot_do_not_count():
    """A node that could not replicate for a week keeps its daily points when it comes back."""
    before = [at(24 * 60 * day) for day in range(7)]
    after_a_week_away = [*before, at(24 * 60 * 14)]
    assert Retention(daily=7).keep(after_a_week_away) == set(after_a_week_away[-7:])


def test_weeks_are_iso_weeks_and_months_calendar_months():
    sunday, monday = datetime(2026, 12, 6, 23, tzinfo=UTC), datetime(2026, 12, 7, 1, tzinfo=UTC)
    assert Retention(weekly=1).keep([name(sunday), name(monday)]) == {name(monday)}
    assert Retention(weekly=2).keep([name(sunday), name(monday)]) == {name(sunday), name(monday)}
    assert Retention(monthly=1).keep([at(0), at(20)]) == {at(20)}  # November's, December's newest is kept
    assert Retention(monthly=2).keep([at(0), at(20)]) == {at(0), at(20)}


def test_a_name_without_a_time_is_kept_only_by_last():
    assert Retention(hourly=5).keep(["retadm_0badcafe_x", at(0)]) == {at(0)}
    assert Retention(last=2).keep(["retadm_0badcafe_x", at(0)]) == {"retadm_0badcafe_x", at(0)}


def test_nothing_kept_without_a_policy():
    assert Retention().keep([at(0), at(60)]) == frozenset()


# -- the planner keeps them on the replica ---------------------------------------------------


TASK = Task.identified("data/vm", "dst", "repl/vm", False, "0badcafe", retention=Retention(hourly=2))


def snaps(*names: str, guids: dict[str, int]) -> tuple[ObservedSnapshot, ...]:
    return tuple(ObservedSnapshot(n, guids.setdefault(n, 100 + len(guids)), txg) for txg, n in enumerate(names, 1))


def destroyed(plan: Plan | object, side: Side) -> set[str]:
    assert isinstance(plan, Plan), plan
    return {s.snapshot for s in plan.steps if isinstance(s, DestroySnapshot) and s.side is side}


def test_the_replica_keeps_the_restore_points_and_the_source_only_the_common_one():
    guids: dict[str, int] = {}
    source = snaps("daily1", at(120), guids=guids)
    destination = snaps("daily1", at(0), at(60), at(90), at(120), guids=guids)
    observed = Observed(source, destination, source_holds=frozenset({at(120)}),
                        destination_holds=frozenset({at(120)}), written=True, destination_readonly=True)
    plan = plan_incremental(observed, TASK, at(180))
    assert destroyed(plan, Side.SOURCE) == {at(120)}
    assert destroyed(plan, Side.DESTINATION) == {at(0), at(60), at(90), at(120)} - {at(120)}  # 01:xx's newest stays


def test_a_task_without_a_policy_keeps_only_the_common_snapshot_as_before():
    guids: dict[str, int] = {}
    source = snaps(at(0), guids=guids)
    observed = Observed(source, snaps(at(0), guids=guids), written=True, destination_readonly=True)
    plan = plan_incremental(observed, Task.identified("data/vm", "dst", "repl/vm", False, "0badcafe"), at(1))
    assert destroyed(plan, Side.DESTINATION) == destroyed(plan, Side.SOURCE) == {at(0)}


def test_a_source_that_was_a_replica_thins_its_restore_points_by_the_policy():
    """``retadm reverse`` sends back from a promoted replica: its restore points are older than
    the common snapshot, and are thinned, not all destroyed, by the run."""
    guids: dict[str, int] = {}
    source = snaps(at(0), at(30), at(60), at(120), guids=guids)
    observed = Observed(source, snaps(at(120), guids=guids), written=True, destination_readonly=True)
    plan = plan_incremental(observed, TASK, at(125))
    assert destroyed(plan, Side.SOURCE) == {at(0), at(30), at(120)}  # 00:xx's newest (at 60) stays


@settings(max_examples=200, deadline=None)
@given(
    st.builds(Retention, last=st.integers(0, 3), hourly=st.integers(0, 4), daily=st.integers(0, 3),
              weekly=st.integers(0, 2), monthly=st.integers(0, 2)),
    st.lists(st.integers(1, 60 * 24 * 9), min_size=1, max_size=40),
)
def test_runs_over_time_keep_exactly_what_the_policy_keeps_of_them_all(policy, gaps):
    """Run after run, the replica holds the common snapshot and the policy's restore points of every
    run's snapshot (thinning again and again is thinning once); the source holds the common one; a
    user's snapshot is never destroyed; nothing destroyed ever comes back."""
    task = Task.identified("data/vm", "dst", "repl/vm", False, "0badcafe", retention=policy)
    guids: dict[str, int] = {}
    minutes, common = 0, at(0)
    source, destination = ["user1", common], ["user1", common]
    taken = [common]
    for gap in gaps:
        minutes += gap
        new = at(minutes)
        observed = Observed(snaps(*source, guids=guids), snaps(*destination, guids=guids),
                            source_holds=frozenset({common}), destination_holds=frozenset({common}),
                            written=True, destination_readonly=True)
        plan = plan_incremental(observed, task, new)
        gone = {Side.SOURCE: destroyed(plan, Side.SOURCE), Side.DESTINATION: destroyed(plan, Side.DESTINATION)}
        assert new not in gone[Side.SOURCE] | gone[Side.DESTINATION] and "user1" not in gone[Side.DESTINATION]
        source = [s for s in [*source, new] if s not in gone[Side.SOURCE]]
        destination = [s for s in [*destination, new] if s not in gone[Side.DESTINATION]]
        taken.append(new)
        common = new
        assert source == ["user1", new]
        assert set(destination) == {"user1", new, *policy.keep(taken)}

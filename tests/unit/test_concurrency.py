"""replication/concurrency.py: runs side by side, within the total and every bound."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from hypothesis import given, settings, strategies as st

from ovios_shell_retadm.replication.concurrency import Bound, run_bounded


class Meter:
    """Work that records how many items ran at once, in all and per key of each bound."""

    def __init__(self, bounds: tuple[Bound, ...]):
        self.bounds = bounds
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0
        self.per_bound: list[Counter] = [Counter() for _ in bounds]
        self.most_per_bound = [0 for _ in bounds]
        self.ran: list[object] = []

    def __call__(self, item):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
            for b, bound in enumerate(self.bounds):
                self.per_bound[b][bound.key(item)] += 1
                self.most_per_bound[b] = max(self.most_per_bound[b], self.per_bound[b][bound.key(item)])
        time.sleep(0.002)  # long enough for the others to start, if the bounds let them
        with self.lock:
            self.now -= 1
            for b, bound in enumerate(self.bounds):
                self.per_bound[b][bound.key(item)] -= 1
            self.ran.append(item)
        return ("done", item)


@settings(max_examples=40, deadline=None)
@given(items=st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from("xy")), max_size=12),
       total=st.integers(1, 4), per_dataset=st.integers(1, 2), per_partner=st.integers(1, 3))
def test_every_item_runs_once_within_every_bound_and_results_keep_the_order(items, total, per_dataset, per_partner):
    bounds = (Bound(lambda item: item[0], per_dataset), Bound(lambda item: item[1], per_partner))
    meter = Meter(bounds)
    results = run_bounded(items, meter, total=total, bounds=bounds)
    assert results == [("done", item) for item in items]
    assert sorted(meter.ran) == sorted(items)
    assert meter.most <= total
    assert meter.most_per_bound[0] <= per_dataset and meter.most_per_bound[1] <= per_partner


def test_runs_really_go_side_by_side():
    """Three items that each wait until all three run: only side by side do they finish (the
    barrier's timeout only catches runs one after the other)."""
    barrier = threading.Barrier(3, timeout=30)

    def work(item):
        barrier.wait()
        return item

    assert run_bounded(["a", "b", "c"], work, total=3) == ["a", "b", "c"]


def test_a_bound_of_one_keeps_items_with_the_same_key_apart():
    order: list[str] = []
    lock = threading.Lock()

    def work(item):
        with lock:
            order.append(f"start {item}")
        time.sleep(0.05)
        with lock:
            order.append(f"end {item}")

    run_bounded(["data/1", "data/2"], work, total=4, bounds=(Bound(lambda item: "same dataset", 1),))
    assert order == ["start data/1", "end data/1", "start data/2", "end data/2"]


def test_an_exception_is_raised_after_the_started_runs_ended():
    ended = threading.Event()

    def work(item):
        if item == "bad":
            raise RuntimeError("surprise")
        time.sleep(0.05)
        ended.set()
        return item

    with pytest.raises(RuntimeError, match="surprise"):
        run_bounded(["good", "bad"], work, total=2)
    assert ended.is_set()


@pytest.mark.parametrize("total, limit", [(0, 1), (1, 0)])
def test_limits_below_one_are_refused(total, limit):
    with pytest.raises(ValueError):
        run_bounded(["a"], lambda item: item, total=total, bounds=(Bound(lambda item: item, limit),))

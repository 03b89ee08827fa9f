"""Many tasks' runs at once, within bounds: ``retadm inc`` without a dataset.

Each run already works alone (its own lock, progress file and log lines); what this
module adds is how many run together.  At most ``total`` at a time, and for each
:class:`Bound` at most its ``limit`` sharing the same key: runs towards one partner
(its ssh link and its pool take the load), and one run at a time per source dataset
(its tasks, fan-out, share the dataset's snapshots).  A run waits only for a bound it
would break; the others start as soon as a slot frees.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass(frozen=True)
class Bound(Generic[Item]):
    """At most ``limit`` items with the same ``key`` at a time."""

    key: Callable[[Item], Hashable]
    limit: int


def run_bounded(items: Sequence[Item], work: Callable[[Item], Result], *, total: int,
                bounds: Sequence[Bound[Item]] = ()) -> list[Result]:
    """``work`` on every item, in the items' order as far as the bounds let, each in a thread of
    its own; the results in the items' order, once every item is done.

    ``work`` is expected to report its own failures as results: an exception it raises is
    raised here after every item that started has ended (the items not started yet are not).
    """
    if total < 1 or any(bound.limit < 1 for bound in bounds):
        raise ValueError("every limit must be at least 1")
    results: dict[int, Result] = {}
    errors: list[BaseException] = []
    keys = [[bound.key(item) for bound in bounds] for item in items]
    busy: list[Counter] = [Counter() for _ in bounds]
    waiting = list(range(len(items)))
    running = 0
    changed = threading.Condition()

    def startable(index: int) -> bool:
        return all(busy[b][keys[index][b]] < bound.limit for b, bound in enumerate(bounds))

    def run(index: int) -> None:
        nonlocal running
        try:
            results[index] = work(items[index])
        except BaseException as exc:  # noqa: BLE001 - raised again by the caller's thread
            errors.append(exc)
        finally:
            with changed:
                running -= 1
                for b in range(len(bounds)):
                    busy[b][keys[index][b]] -= 1
                changed.notify_all()

    threads = []
    with changed:
        while waiting and not errors:
            index = next((i for i in waiting if startable(i)), None) if running < total else None
            if index is None:
                changed.wait()
                continue
            waiting.remove(index)
            running += 1
            for b in range(len(bounds)):
                busy[b][keys[index][b]] += 1
            thread = threading.Thread(target=run, args=(index,), name=f"run-{index}")
            thread.start()
            threads.append(thread)
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return [results[index] for index in range(len(items))]

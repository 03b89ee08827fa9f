"""Children on the zfs-fuse lab: named by init and doctor, each replicated by a task of its own."""

from __future__ import annotations

from children import children_are_named_and_each_gets_a_task


def test_children_are_named_and_each_gets_a_task(fresh_lab):
    children_are_named_and_each_gets_a_task(fresh_lab)

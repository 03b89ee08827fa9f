"""Restore points on the zfs-fuse lab (the policies' arithmetic is tests/unit/test_retention.py)."""

from __future__ import annotations

from restore_points import keeps_the_newest_and_gives_old_data_back


def test_the_replica_keeps_restore_points_by_the_policy(fresh_lab):
    keeps_the_newest_and_gives_old_data_back(fresh_lab)

"""The test tiers and what a test does when its tier cannot run here: it fails.

``lab``: the zfs-fuse tier (root, namespaces, and the Debian packages ``make test``
installs: zfs-fuse, sshd, Samba).  ``openzfs``: the QEMU VMs with OpenZFS 2.x.  Tests that
need neither run everywhere (``make test-unit``).  A tier that cannot run never skips its
tests: a suite that skipped the real-ZFS tests would pass with replication untested.
"""

from __future__ import annotations

from typing import NoReturn

import pytest

#: fixtures that need a tier (conftest marks the tests that use them), by their marker
FIXTURE_TIERS = {
    "lab": "lab", "fresh_lab": "lab", "lab_machine": "lab",  # the lab, or a zfs-fuse of test_zfs
    "private_sshd": "lab",  # test_hosts: a real sshd in a namespace
    "openzfs_lab": "openzfs", "fresh_openzfs_lab": "openzfs",
}


def cannot_run(tier: str, reason: str) -> NoReturn:
    """Fail (never skip) a test whose tier cannot run here, with the reason."""
    pytest.fail(f"{tier} cannot run here: {reason} (on a machine that cannot host the labs, "
                "run only the tests that need none: make test-unit)", pytrace=False)

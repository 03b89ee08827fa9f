"""Shared fixtures.

Lab 1 (two zfs-fuse nodes in namespaces, see ``ovios_lab``):

- ``lab`` (session): the lab named by $OVIOS_LAB_NAME (default ``ovlab``), brought up
  once per session and taken down at the end unless ``OVIOS_LAB_KEEP=1``.
- ``fresh_lab`` (function): the same lab after ``reset()``: initial pools, datasets
  and files, empty /etc/ovios, /var/log/ovios, /run/ovios and crontab, no holds.
- ``lab_machine`` (session): only checks that a lab can run here (for tests that
  start labs of their own).

Lab 2 (two QEMU VMs with OpenZFS 2.x, see ``ovios_lab.openzfs_lab``):

- ``openzfs_lab`` (session): the lab named by $OVIOS_OPENZFS_LAB_NAME (default ``ovzfs``),
  its image built first when missing (several minutes, cached in /var/cache/ovios-lab),
  brought up once per session (~1 min) and taken down at the end unless ``OVIOS_LAB_KEEP=1``.
- ``fresh_openzfs_lab`` (function): the same lab after ``reset()``.

The tests live in one folder per tier: ``unit/`` (no lab), ``fuse_lab/`` (marked ``lab``) and
``openzfs_lab/`` (marked ``openzfs``); a test whose fixtures need another tier than its
folder's is a collection error.  A lab that cannot start fails its tests with the reason,
never skips them (see ``tiers.py``); ``make test-unit`` runs the tests that need no lab.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ovios_lab import Lab, LabError, openzfs_image, preflight
from ovios_lab.openzfs_lab import OpenZfsLab, preflight as openzfs_preflight

from tiers import FIXTURE_TIERS, cannot_run

# the scenarios both labs run live beside the tests: their asserts explain themselves too
pytest.register_assert_rewrite("children", "fault_scenarios", "openzfs_helpers", "replication_helpers",
                               "restore_points")


@pytest.fixture(scope="session")
def lab_machine() -> None:
    problems = preflight()
    if problems:
        cannot_run("the zfs-fuse lab", "; ".join(problems))


@pytest.fixture(scope="session")
def lab(lab_machine: None) -> Iterator[Lab]:
    the_lab = Lab()
    try:
        the_lab.up()
    except LabError as exc:
        pytest.fail(f"lab {the_lab.name} did not come up: {exc}", pytrace=False)
    yield the_lab
    if os.environ.get("OVIOS_LAB_KEEP") != "1":
        the_lab.down()


@pytest.fixture
def fresh_lab(lab: Lab) -> Iterator[Lab]:
    lab.reset()
    yield lab


@pytest.fixture(scope="session")
def openzfs_lab() -> Iterator[OpenZfsLab]:
    problems = openzfs_preflight()
    if problems:
        cannot_run("the OpenZFS lab", "; ".join(problems))
    try:
        openzfs_image.build()
    except LabError as exc:
        cannot_run("the OpenZFS lab", f"its image cannot be built: {exc}")
    the_lab = OpenZfsLab()
    try:
        the_lab.up()
    except LabError as exc:
        pytest.fail(f"lab {the_lab.name} (openzfs) did not come up: {exc}", pytrace=False)
    yield the_lab
    if os.environ.get("OVIOS_LAB_KEEP") != "1":
        the_lab.down()


@pytest.fixture
def fresh_openzfs_lab(openzfs_lab: OpenZfsLab) -> Iterator[OpenZfsLab]:
    openzfs_lab.reset()
    yield openzfs_lab


#: the tier of the tests in each folder (tests/<folder>/), by its marker; None: no lab
FOLDER_TIERS = {"unit": None, "fuse_lab": "lab", "openzfs_lab": "openzfs"}


def _folder_tier(item: pytest.Item) -> str | None:
    folder = item.path.parent.name
    if item.path.parent.parent != Path(__file__).parent or folder not in FOLDER_TIERS:
        raise pytest.UsageError(f"{item.nodeid}: a test module belongs in one of the tier folders "
                                f"tests/{{{','.join(FOLDER_TIERS)}}}/")
    return FOLDER_TIERS[folder]


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        tier = _folder_tier(item)
        needs = {FIXTURE_TIERS[f] for f in getattr(item, "fixturenames", ()) if f in FIXTURE_TIERS}
        if needs - {tier}:
            raise pytest.UsageError(f"{item.nodeid} needs the {', '.join(sorted(needs))} tier: "
                                    f"it belongs in tests/{next(k for k, v in FOLDER_TIERS.items() if v in needs)}/")
        if tier is not None:
            item.add_marker(tier)
    # tests that take a lab down (or kill part of it) run after every other test, so the rest
    # of the session does not pay for bringing the lab up again (~2 min for the VMs);
    # the sort is stable: everything else keeps its order
    items.sort(key=lambda item: item.get_closest_marker("takes_lab_down") is not None)

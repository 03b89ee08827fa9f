"""The lab's shell scripts (ovios_lab/scripts/*.sh): shipped with the lab package, and given
their values as shell assignments that read back exactly as written."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ovios_lab import openzfs_guest
from ovios_lab.shell_scripts import assignments
from ovios_lab.spec import NODES

LAB = Path(__file__).resolve().parents[2] / "lab"
SCRIPTS = sorted(path.name for path in (LAB / "ovios_lab" / "scripts").glob("*.sh"))


def test_the_lab_wheel_holds_its_scripts(tmp_path: Path) -> None:
    # built from a copy: setuptools writes build/ and *.egg-info beside pyproject.toml
    source = tmp_path / "lab"
    shutil.copytree(LAB, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                            "--disable-pip-version-check", "-w", str(tmp_path / "dist"), str(source)],
                           check=False, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    [wheel] = (tmp_path / "dist").glob("ovios_lab-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert SCRIPTS and [f"ovios_lab/scripts/{name}" for name in SCRIPTS] == sorted(
        name for name in names if name.startswith("ovios_lab/scripts/"))


@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_assignments_read_back_as_written(shell: str) -> None:
    values: dict[str, str | int] = {"PLAIN": "src", "SPACES": "data esx", "NUMBER": 64,
                                    "HOSTILE": "it's $HOME; `id` \"quoted\"\nnext line"}
    script = assignments(values) + "".join(f'printf "%s\\0" "${name}"\n' for name in values)
    out = subprocess.run([shell, "-c", script], check=True, capture_output=True, text=True).stdout
    assert out.split("\0")[:-1] == [str(value) for value in values.values()]


def test_array_assignments_keep_each_item() -> None:
    items = ("cmd2>=4.3,<5", "two words", "")
    script = assignments({"ITEMS": items}) + 'printf "%s\\0" "${ITEMS[@]}"\n'
    out = subprocess.run(["bash", "-c", script], check=True, capture_output=True, text=True).stdout
    assert tuple(out.split("\0")[:-1]) == items


@pytest.mark.parametrize("spec", NODES, ids=lambda spec: spec.name)
def test_the_guest_scripts_parse_with_the_node_values(spec) -> None:
    for text in (openzfs_guest.setup_script(spec), openzfs_guest.reset_script(spec),
                 openzfs_guest.power_on_script(spec)):
        subprocess.run(["bash", "-n", "-c", text], check=True)
    subprocess.run(["sh", "-n", "-c", openzfs_guest.boot_files(spec)["boot.sh"]], check=True)
    env = openzfs_guest.node_env(spec)
    pools = subprocess.run(["sh", "-c", env + 'echo "$POOLS"'], check=True, capture_output=True, text=True).stdout
    assert pools.split() == [pool.name for pool in spec.pools]


def test_the_benchmark_peers_reach_the_image_and_nothing_else() -> None:
    # syncoid (Debian's sanoid) and zfs-autobackup are in the OpenZFS image for
    # benchmarks/bench_peers.py only: installed after OpenZFS (sanoid depends on it), and
    # named by no product module and no test
    from ovios_lab import openzfs_image

    env = openzfs_image._image_env()
    assert "PEER_PACKAGES=(sanoid)" in env and "PEER_REQUIREMENTS=(zfs-autobackup==" in env
    chroot = openzfs_image.script(openzfs_image.CHROOT_SCRIPT)
    assert chroot.index('"${ZFS_PACKAGES[@]}"') < chroot.index('"${PEER_PACKAGES[@]}"')
    assert '"${PEER_REQUIREMENTS[@]}"' in chroot
    root = LAB.parent
    users = [path.relative_to(root) for folder in ("ovios_shell_retadm", "tests")
             for path in (root / folder).rglob("*.py")
             if path != Path(__file__).resolve() and any(
                 word in path.read_text(errors="replace") for word in ("syncoid", "autobackup", "sanoid"))]
    assert users == []

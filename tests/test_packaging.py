"""What the product's wheel holds: the product, and nothing of the labs or the tests."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_product_wheel_holds_no_lab_code(tmp_path: Path) -> None:
    # built from a copy of the working tree's files: setuptools writes build/ and *.egg-info
    # beside setup.cfg
    files = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           check=True, capture_output=True).stdout
    source = tmp_path / "src"
    source.mkdir()
    subprocess.run(["tar", "-C", str(REPO), "--null", "--ignore-failed-read", "-T", "-",
                    "-cf", str(tmp_path / "src.tar")], input=files, check=True, capture_output=True)
    subprocess.run(["tar", "-xf", str(tmp_path / "src.tar"), "-C", str(source)], check=True)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                            "--disable-pip-version-check", "-w", str(tmp_path / "dist"), str(source)],
                           check=False, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    [wheel] = (tmp_path / "dist").glob("ovios_shell_retadm-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    packages = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert packages == {"ovios_shell_retadm"}
    assert not [name for name in names if "lab" in name.split("/")[:-1] or "ovios_lab" in name]
    assert any(name.startswith("ovios_shell_retadm/replication/") for name in names)  # the product is there
    entry_points = next(name for name in names if name.endswith(".dist-info/entry_points.txt"))
    scripts = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "ovios-shell = " in scripts and "ovios-lab" not in scripts

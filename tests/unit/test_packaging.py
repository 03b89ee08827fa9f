"""What the product's wheel holds: the product, and nothing of the labs or the tests; and
that ``ovios-shell`` works when installed from it alone (its dependencies come from the
package registry, as on a user's node)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _build_wheel(tmp_path: Path) -> Path:
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
    return wheel


def test_the_product_wheel_holds_no_lab_code(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    packages = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert packages == {"ovios_shell_retadm"}
    assert not [name for name in names if "lab" in name.split("/")[:-1] or "ovios_lab" in name]
    assert any(name.startswith("ovios_shell_retadm/replication/") for name in names)  # the product is there
    entry_points = next(name for name in names if name.endswith(".dist-info/entry_points.txt"))
    scripts = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "ovios-shell = " in scripts and "ovios-lab" not in scripts


def test_ovios_shell_works_installed_from_the_wheel_alone(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True)
    install = subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "--quiet",
                              "--disable-pip-version-check", str(wheel)], check=False, capture_output=True, text=True)
    assert install.returncode == 0, install.stderr
    assert not (venv / "bin/ovios-lab").exists()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OVIOS_ROOT": str(tmp_path / "root"), "NO_COLOR": "1"}
    shell = subprocess.run([str(venv / "bin/ovios-shell"), "help"], check=False, capture_output=True, text=True,
                           env=env, cwd=tmp_path)
    assert shell.returncode == 0, shell.stderr
    assert shell.stdout.split("OviOS")[-1].split() == ["─────", "edit-cron", "options", "restore", "retadm"]
    options = subprocess.run([str(venv / "bin/ovios-shell"), "options", "cron.enable"], check=False,
                             capture_output=True, text=True, env=env, cwd=tmp_path)
    assert options.returncode == 0, options.stderr
    assert "cron.enable" in options.stdout

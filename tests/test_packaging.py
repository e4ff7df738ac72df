"""The wheel installs one import name, `gpuops`, and works from any folder.

The repository keeps core/, gui/ and resources/ at its top level; setup.py maps them to
gpuops.core, gpuops.gui and gpuops.resources. This test builds the real wheel, installs it into a
fresh virtualenv (its dependencies come from the test virtualenv's site-packages through a path
entry, so nothing is downloaded and the editable install's finder is not active there), and runs
commands from an unrelated folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(REPO)],
        check=True, capture_output=True, text=True,
    )
    (built,) = out.glob("gpuops-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel installed; returns its bin/ folder."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip())
    # The dependencies (PySide6, numpy, ...) from the test environment, as plain path entries:
    # a path line in a .pth does not run that folder's own .pth files (the editable finder).
    (site / "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True, capture_output=True, text=True,
    )
    return env_dir / "bin"


def test_the_wheel_holds_one_top_level_package_its_license_and_provenance(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top_level == {"gpuops"}
    assert "gpuops/core/telemetry.py" in names and "gpuops/gui/__init__.py" in names
    assert "gpuops/resources/PROVENANCE.md" in names and "gpuops/resources/xid-catalog.csv" in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    metadata = next(zipfile.Path(wheel, name).read_text() for name in names if name.endswith(".dist-info/METADATA"))
    assert "License-Expression: Apache-2.0" in metadata


def _run(bin_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DISPLAY", "WAYLAND_DISPLAY")}
    env.update(HOME=str(cwd), XDG_DATA_HOME=str(cwd / "data"), XDG_CONFIG_HOME=str(cwd / "config"), QT_QPA_PLATFORM="offscreen")
    return subprocess.run([str(bin_dir / "gpuops"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_installed_commands_run_from_another_folder(installed: Path, tmp_path: Path) -> None:
    where = _run(installed, tmp_path, "status", "--source", "demo:8", "--json")
    assert where.returncode == 0, where.stderr
    assert '"simulated": true' in where.stdout

    located = subprocess.run(
        [str(installed / "python"), "-c", "import gpuops.core, gpuops.gui; print(gpuops.core.__file__, gpuops.gui.__file__)"],
        cwd=tmp_path, capture_output=True, text=True, check=True,
    ).stdout
    assert str(REPO) not in located, "the installed copy, not the repository, is imported"

    pdf = _run(installed, tmp_path, "export", "--format", "pdf", "--source", "demo:8", "-o", "fleet.pdf")
    assert pdf.returncode == 0, pdf.stderr
    assert (tmp_path / "fleet.pdf").read_bytes().startswith(b"%PDF")

    desktop = _run(installed, tmp_path, "install-desktop")
    assert desktop.returncode == 0, desktop.stderr
    entries = list((tmp_path / "data" / "applications").glob("*.desktop"))
    assert entries and f"Exec={installed / 'gpuops'}" in entries[0].read_text()

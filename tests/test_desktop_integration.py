"""`gpuops install-desktop`: a valid XDG entry with an absolute Exec, icons in hicolor, clean uninstall."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from PySide6 import QtGui

from gpuops.core.desktop_integration import ICON_SIZES
from tests.tools import require_tool


def install_desktop(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_DESKTOP_DIR": str(tmp_path / "Desktop")}
    return subprocess.run(
        [sys.executable, "-m", "gpuops", "install-desktop", *args],
        capture_output=True, text=True, env=env, timeout=60,
    )


def test_entry_passes_desktop_file_validate(tmp_path: Path) -> None:
    validate = require_tool("desktop-file-validate")
    result = install_desktop(tmp_path)
    assert result.returncode == 0, result.stderr
    entry = tmp_path / "data" / "applications" / "gpuops.desktop"
    check = subprocess.run([validate, str(entry)], capture_output=True, text=True)
    assert check.returncode == 0 and check.stdout == "", check.stdout + check.stderr


def test_exec_is_the_absolute_installed_executable(tmp_path: Path) -> None:
    assert install_desktop(tmp_path).returncode == 0
    fields = dict(
        line.split("=", 1)
        for line in (tmp_path / "data" / "applications" / "gpuops.desktop").read_text().splitlines()
        if "=" in line
    )
    executable = Path(fields["Exec"])
    assert executable.is_absolute()
    assert executable.name == "gpuops" and os.access(executable, os.X_OK)
    version = subprocess.run([str(executable), "--version"], capture_output=True, text=True, timeout=60)
    assert version.stdout.startswith("gpuops ")


def test_icons_land_in_hicolor_at_every_size(tmp_path: Path) -> None:
    assert install_desktop(tmp_path).returncode == 0
    hicolor = tmp_path / "data" / "icons" / "hicolor"
    assert (hicolor / "scalable" / "apps" / "gpuops.svg").read_text().startswith("<?xml")
    for size in ICON_SIZES:
        image = QtGui.QImage(str(hicolor / f"{size}x{size}" / "apps" / "gpuops.png"))
        assert (image.width(), image.height()) == (size, size)


def test_desktop_shortcut_and_uninstall(tmp_path: Path) -> None:
    assert install_desktop(tmp_path, "--desktop-shortcut").returncode == 0
    shortcut = tmp_path / "Desktop" / "gpuops.desktop"
    assert shortcut.exists() and os.access(shortcut, os.X_OK)
    result = install_desktop(tmp_path, "--uninstall")
    assert result.returncode == 0
    assert not shortcut.exists()
    assert not (tmp_path / "data" / "applications" / "gpuops.desktop").exists()
    assert list((tmp_path / "data" / "icons").rglob("gpuops.*")) == []

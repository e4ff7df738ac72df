"""XDG desktop entry and hicolor icons, so staff launch gpuops from a menu or a shortcut.

Follows the freedesktop Desktop Entry and Icon Theme specifications; the entry is checked
with `desktop-file-validate` in the tests.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from gpuops.resources import resource_path

APP_ID = "gpuops"
ICON_SIZES: tuple[int, ...] = (16, 24, 32, 48, 64, 128, 256, 512)


@dataclass(frozen=True)
class DesktopPaths:
    """Where the entry and icons go for one user (XDG_DATA_HOME, default ~/.local/share)."""

    data_home: Path
    desktop_dir: Path | None  # the user's Desktop folder, for an optional shortcut

    @classmethod
    def for_current_user(cls) -> DesktopPaths:
        home = Path.home()
        data_home = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
        desktop = os.environ.get("XDG_DESKTOP_DIR")
        return cls(data_home=data_home, desktop_dir=Path(desktop) if desktop else home / "Desktop")

    @property
    def entry(self) -> Path:
        return self.data_home / "applications" / f"{APP_ID}.desktop"

    def icon(self, size: int | None) -> Path:
        """The themed icon path: apps/ under NxN, or under scalable for the SVG (size None)."""
        folder = "scalable" if size is None else f"{size}x{size}"
        suffix = "svg" if size is None else "png"
        return self.data_home / "icons" / "hicolor" / folder / "apps" / f"{APP_ID}.{suffix}"


def desktop_entry_text(executable: Path) -> str:
    """The .desktop file; Exec is the absolute path so the menu works without PATH set up."""
    if not executable.is_absolute():
        raise ValueError(f"Exec must be an absolute path, got {executable}")
    exec_field = str(executable).replace("\\", "\\\\").replace(" ", "\\s")
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        "Version=1.4\n"
        "Name=gpuops\n"
        "GenericName=GPU Fleet Console\n"
        "Comment=Live health, allocations and alerts of a GPU fleet\n"
        f"Exec={exec_field}\n"
        f"Icon={APP_ID}\n"
        "Terminal=false\n"
        "Categories=System;Monitor;\n"
        "Keywords=GPU;NVIDIA;NVML;datacenter;monitor;\n"
        f"StartupWMClass={APP_ID}\n"
        "StartupNotify=true\n"
    )


def install(executable: Path, paths: DesktopPaths, *, desktop_shortcut: bool = False) -> list[Path]:
    """Write the entry and the icons; returns every file written."""
    written: list[Path] = []
    for size in (None, *ICON_SIZES):
        source = resource_path("icons/gpuops.svg" if size is None else f"icons/gpuops-{size}.png")
        target = paths.icon(size)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        written.append(target)
    text = desktop_entry_text(executable)
    targets = [paths.entry]
    if desktop_shortcut and paths.desktop_dir is not None:
        targets.append(paths.desktop_dir / f"{APP_ID}.desktop")
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(0o755)  # desktops only trust launchers that are executable
        written.append(target)
    return written


def uninstall(paths: DesktopPaths) -> list[Path]:
    """Remove what `install` wrote; returns the files that were there."""
    candidates = [paths.entry, *(paths.icon(size) for size in (None, *ICON_SIZES))]
    if paths.desktop_dir is not None:
        candidates.append(paths.desktop_dir / f"{APP_ID}.desktop")
    removed = [path for path in candidates if path.exists()]
    for path in removed:
        path.unlink()
    return removed

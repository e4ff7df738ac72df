"""`gpuops install-desktop`: a menu entry (and optionally a desktop shortcut) with icons."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from gpuops.commands._options import add_command


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "install-desktop",
        help="install the desktop menu entry and icons for this user",
        description=(
            "Write an XDG desktop entry to $XDG_DATA_HOME/applications (default "
            "~/.local/share/applications) and the app icon into the hicolor theme."
        ),
    )
    parser.add_argument("--desktop-shortcut", action="store_true", help="also put a launcher on the Desktop")
    parser.add_argument("--uninstall", action="store_true", help="remove what install-desktop wrote")
    parser.set_defaults(run=run)


def installed_executable() -> Path:
    """The absolute path of the `gpuops` script next to this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / "gpuops"
    if beside.exists():
        return beside.resolve()
    found = shutil.which("gpuops")
    if found is None:
        raise FileNotFoundError("the gpuops command is not installed: run `pip install` first")
    return Path(found).resolve()


def run(args: argparse.Namespace) -> int:
    from gpuops.core.desktop_integration import DesktopPaths, install, uninstall

    paths = DesktopPaths.for_current_user()
    if args.uninstall:
        removed = uninstall(paths)
        print(f"removed {len(removed)} files" if removed else "nothing to remove")
        return 0
    try:
        executable = installed_executable()
    except FileNotFoundError as exc:
        print(f"gpuops: {exc}", file=sys.stderr)
        return 1
    for path in install(executable, paths, desktop_shortcut=args.desktop_shortcut):
        print(path)
    return 0

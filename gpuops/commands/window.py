"""`gpuops window` (what a bare `gpuops [OPTIONS]` runs): the console window.

Before Qt is imported it checks that a window can be shown at all: without a display Qt aborts
the process (a core dump, exit 134, and a misleading message about xcb-cursor), so over ssh or
in cron the user gets one line naming the headless commands instead."""

from __future__ import annotations

import argparse
import ctypes
import os
from pathlib import Path

from gpuops.commands._options import BOOK, FLEET, Failed, UsageError, add_command, interval_s

#: Qt platforms that draw into a display server; any other (offscreen, minimal, vnc, eglfs, ...)
#: needs none.
_DISPLAY_PLATFORMS = ("xcb", "wayland")
#: Seconds each site stays on a wallboard before the next one (`--wallboard` without a value).
DEFAULT_CYCLE_S = 30.0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "window", takes=(*FLEET, *BOOK, "alertmanager"),
        help="the console window (what `gpuops` alone runs)",
        description="Open the console window. --source, --interval and --db default to what File > Settings saved, "
        "else auto, 1 s and the per-user history. Needs a display (X11 or Wayland); headless, use status, collect or export.",
    )
    parser.add_argument(
        "--interval", type=interval_s, default=None, metavar="S",
        help="poll interval in seconds, 0.05 to 86400 (default: as saved in Settings, else 1)",
    )
    parser.add_argument("--no-history", action="store_true", help="neither read nor write history: Live views only")
    parser.add_argument(
        "--new-instance", action="store_true", help="open another window even if the console is already open (default: raise it)"
    )
    parser.add_argument(
        "--wallboard", type=interval_s, nargs="?", const=DEFAULT_CYCLE_S, default=None, metavar="S",
        help=f"a read-only console for a wall screen: full screen, large numbers, the grid and the alerts only, "
        f"showing each site for S seconds in turn (default {DEFAULT_CYCLE_S:g}); F11 leaves it",
    )
    parser.set_defaults(run=run)


def _x11_opens(display: str) -> bool:
    try:
        xcb = ctypes.CDLL("libxcb.so.1")
    except OSError:
        return False  # Qt's xcb platform could not load either
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    connection = xcb.xcb_connect(display.encode(), None)
    try:
        return connection is not None and xcb.xcb_connection_has_error(connection) == 0
    finally:
        xcb.xcb_disconnect(connection)


def _wayland_opens() -> bool:
    try:
        wayland = ctypes.CDLL("libwayland-client.so.0")
    except OSError:
        return False
    wayland.wl_display_connect.restype = ctypes.c_void_p
    wayland.wl_display_connect.argtypes = [ctypes.c_char_p]
    wayland.wl_display_disconnect.argtypes = [ctypes.c_void_p]
    display = wayland.wl_display_connect(None)
    if not display:
        return False
    wayland.wl_display_disconnect(display)
    return True


def display_problem(env: os._Environ[str] | dict[str, str]) -> str | None:
    """Why Qt could not open a window here, or None when it can (or when QT_QPA_PLATFORM names a
    platform that needs no display)."""
    chosen = env.get("QT_QPA_PLATFORM", "")
    platforms = [p.split(":")[0].strip() for p in chosen.split(";") if p.strip()] or list(_DISPLAY_PLATFORMS)
    if any(p not in _DISPLAY_PLATFORMS for p in platforms):
        return None
    x11, wayland = env.get("DISPLAY"), env.get("WAYLAND_DISPLAY")
    if "wayland" in platforms and wayland and _wayland_opens():
        return None
    if "xcb" in platforms and x11 and _x11_opens(x11):
        return None
    if not (x11 or wayland):
        return "no display (neither DISPLAY nor WAYLAND_DISPLAY is set)"
    named = [f"{name}={value}" for name, value in (("DISPLAY", x11), ("WAYLAND_DISPLAY", wayland)) if value]
    return "cannot open the display " + " or ".join(named)


def run(args: argparse.Namespace) -> int:
    if args.alertmanager is not None:  # a bad URL or credentials file: said here, not in a dialog
        from gpuops.core.alerts.alertmanager_api import AlertmanagerClient

        try:
            AlertmanagerClient(args.alertmanager).close()
        except ValueError as exc:
            raise UsageError(f"--alertmanager: {exc}") from None
    problem = display_problem(os.environ)
    if problem is not None:
        raise Failed(f"{problem}: the console needs one; headless, use `gpuops status`, `gpuops collect` or `gpuops export`")
    from gpuops.gui.app.launch import run_app

    source_spec, poll_interval_s, db_path = launch_settings(args)
    return run_app(
        source_spec=source_spec,
        seed=args.seed,
        topology=args.topology,
        interval_s=poll_interval_s,
        new_instance=args.new_instance,
        history_db=None if args.no_history else db_path,
        read_only=args.read_only or args.wallboard is not None,
        alertmanager_url=args.alertmanager,
        wallboard_cycle_s=args.wallboard,
    )


def launch_settings(args: argparse.Namespace) -> tuple[str, float, Path]:
    """(source, poll interval, history file): the command line's, else as saved in Settings,
    else the defaults (so a desktop shortcut with no arguments opens the console on the fleet
    chosen there)."""
    from gpuops.core.store import default_db_path
    from gpuops.gui.app.settings_store import load_preferences

    saved = load_preferences()
    return (
        args.source or saved.source or "auto",
        saved.interval_s if args.interval is None else args.interval,
        args.db or (Path(saved.db_path) if saved.db_path else default_db_path()),
    )

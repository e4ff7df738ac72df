"""Starting the console: argument checks, application identity, and a real launch that paints
its first frame and exits (the start-up probe the benchmark uses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from gpuops.gui.app.launch import APP_NAME, EXIT_AFTER_FIRST_FRAME_ENV, application, run_app


def test_non_positive_interval_is_refused_before_any_window(capsys):
    assert run_app("demo:8", seed=0, interval_s=0) == 2
    assert "poll interval must be a positive number of seconds" in capsys.readouterr().err


def test_application_identity(qapp):
    app = application()
    assert app is qapp
    assert (app.applicationName(), app.organizationName(), app.desktopFileName()) == (APP_NAME,) * 3


def test_launch_paints_a_frame_with_data_and_exits():
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", **{EXIT_AFTER_FIRST_FRAME_ENV: "1"})
    done = subprocess.run(
        [sys.executable, "-m", "gpuops", "--source", "demo:64", "--interval", "0.5"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert 0 < report["first_paint_s"] <= report["first_data_frame_s"]

"""`gpuops doctor`, the real command in a child process, on: no NVML (this machine), the fake NVML
driver (healthy, a lost GPU, a driver that does not load), a good history, a corrupt one (never
modified: bytes compared), a missing one, a running collector, the console's saved source (written
by the console's own QSettings code), a live and a dead Alertmanager, and the desktop entry."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gpuops.core.store.schema import SCHEMA_VERSION
from tests.fake_nvml.control import subprocess_env
from tests.local_http import Answer, LocalServer, static_routes
from tests.servers import free_port, stop, wait_until
from tests.test_alertmanager_state import PASSWORD, PASSWORD_BCRYPT
from tests.test_alerts_alertmanager import (
    alertmanager,  # noqa: F401 - the real Alertmanager fixture
    running_alertmanager,
)

CAPTURE = Path(__file__).parent / "fixtures" / "dcgm-exporter" / "k8s-ai-conformance_rafay_tesla-t4.prom"


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """An environment whose config and data folders are empty temporary ones, without NVML."""
    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "LD_PRELOAD", "FAKE_NVML_SCENARIO")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    return env


def doctor(env: dict[str, str], *args: str) -> tuple[int, dict[str, dict]]:
    result = subprocess.run([sys.executable, "-m", "gpuops", "doctor", "--json", *args], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode in (0, 1), result.stderr
    document = json.loads(result.stdout)
    checks = {check["name"]: check for check in document["checks"]}
    assert list(checks) == ["nvml", "gpus", "history", "source", "alertmanager", "desktop"]
    assert document["attention"] == (result.returncode == 1) == any(c["status"] == "problem" for c in checks.values())
    return result.returncode, checks


def collect_once(env: dict[str, str], db: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "gpuops", "collect", "--once", "--source", "demo:8", "--db", str(db)],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr


def test_without_nvml_or_history_everything_is_a_note_and_exit_0(home, tmp_path) -> None:
    db = tmp_path / "data" / "gpuops" / "history.sqlite"
    code, checks = doctor(home)
    assert code == 0
    assert checks["nvml"]["status"] == "note" and "libnvidia-ml.so.1 not found" in checks["nvml"]["detail"]
    assert checks["history"] == {
        "name": "history", "status": "note", "detail": f"{db}: none yet",
        "advice": "`gpuops collect` (or the console) creates it on its first poll",
    }
    assert checks["source"]["status"] == "note" and "auto (default) answers: 64 GPUs" in checks["source"]["detail"]
    assert "simulated" in checks["source"]["advice"]
    assert checks["alertmanager"]["status"] == "note" and checks["desktop"]["status"] == "note"
    assert not (tmp_path / "data").exists() and not (tmp_path / "config").exists()  # doctor created nothing


def test_nvml_source_without_a_driver_is_a_problem(home) -> None:
    code, checks = doctor(home, "--source", "nvml")
    assert code == 1
    assert checks["nvml"]["status"] == "problem" and checks["source"]["status"] == "problem"


def test_fake_driver_healthy_with_a_good_history_menu_entry_and_text_output(home, tmp_path, fake_nvml_library) -> None:
    env = subprocess_env(fake_nvml_library, "eight", base=home)
    db = tmp_path / "h.sqlite"
    collect_once(home, db)
    installed = subprocess.run([sys.executable, "-m", "gpuops", "install-desktop"], capture_output=True, text=True, env=home,
                               timeout=60)
    assert installed.returncode == 0, installed.stderr
    status = json.loads(subprocess.run([sys.executable, "-m", "gpuops", "status", "--json", "--source", "nvml"],
                                       capture_output=True, text=True, env=env, timeout=60).stdout)["gpus"][0]
    code, checks = doctor(env, "--source", "nvml", "--db", str(db))
    assert checks["nvml"] == {
        "name": "nvml", "status": "ok", "advice": "",
        "detail": f"driver {status['driver_version']}, NVML {status['nvml_version']}, CUDA {status['cuda_version']}",
    }
    assert checks["gpus"]["status"] == "ok" and checks["gpus"]["detail"] == f"8 GPUs (8× {status['name']})"
    history = checks["history"]
    assert history["status"] == "ok" and history["detail"].startswith(f"{db}: ")
    assert f"schema {SCHEMA_VERSION} (this gpuops: {SCHEMA_VERSION})" in history["detail"]
    assert history["detail"].endswith("no collector running, integrity ok")
    assert checks["source"]["status"] == "ok" and checks["source"]["detail"] == "nvml (--source) answers: 8 GPUs"
    assert checks["desktop"]["status"] == "ok"
    assert code == 0
    text = subprocess.run([sys.executable, "-m", "gpuops", "doctor", "--source", "nvml", "--db", str(db)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert text.returncode == 0 and text.stdout.splitlines()[-1] == "all good"
    assert text.stdout.splitlines()[0].split()[:2] == ["ok", "nvml"]


def test_fake_driver_with_a_lost_gpu_and_one_that_does_not_load(home, tmp_path, fake_nvml_library) -> None:
    code, checks = doctor(subprocess_env(fake_nvml_library, "default", base=home), "--db", str(tmp_path / "none.sqlite"))
    assert code == 1
    assert checks["gpus"]["status"] == "problem" and checks["gpus"]["detail"].endswith("; GPU 2 lost")
    code, checks = doctor(subprocess_env(fake_nvml_library, "driver-not-loaded", base=home), "--source", "demo:8")
    assert code == 1
    assert checks["nvml"]["status"] == "problem" and "kernel module is not running" in checks["nvml"]["detail"]
    assert checks["source"]["status"] == "ok"  # the simulated fleet asked for by name answers


def _damage(db: Path) -> None:
    """Zero the cell count of the first table leaf page after the schema: SQLite opens the file
    but its integrity check fails."""
    data = bytearray(db.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    leaf = next(n for n in range(2, len(data) // page) if data[n * page] == 0x0D)
    data[leaf * page + 3: leaf * page + 5] = b"\x00\x00"
    db.write_bytes(bytes(data))


def test_a_corrupt_history_is_a_problem_and_left_byte_for_byte(home, tmp_path) -> None:
    db = tmp_path / "h.sqlite"
    collect_once(home, db)
    _damage(db)
    before = db.read_bytes()
    listing = sorted(p.name for p in tmp_path.iterdir())
    code, checks = doctor(home, "--source", "demo:8", "--db", str(db))
    assert code == 1
    history = checks["history"]
    assert history["status"] == "problem" and "integrity check failed" in history["detail"], history
    assert "move the file aside" in history["advice"]
    assert db.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == listing
    db.write_bytes(b"not a database at all" * 50)
    code, checks = doctor(home, "--source", "demo:8", "--db", str(db))
    assert code == 1 and "is not a gpuops history" in checks["history"]["detail"]
    assert db.read_bytes() == b"not a database at all" * 50


def test_a_running_collector_is_named(home, tmp_path) -> None:
    db = tmp_path / "h.sqlite"
    command = [sys.executable, "-m", "gpuops", "collect", "--source", "demo:8", "--db", str(db), "--interval", "0.2"]
    collector = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=home)
    try:
        wait_until("the collector's first poll", lambda: db.exists() and Path(f"{db}.collector.lock").exists(), 60)
        history = doctor(home, "--db", str(db), "--source", "demo:8")[1]["history"]
        assert history["status"] == "ok" and "a collector writes to it" in history["detail"], history
    finally:
        stop(collector)
    assert collector.returncode == 0


def test_the_saved_source_and_history_of_the_console_are_checked(home, tmp_path) -> None:
    from PySide6.QtCore import QSettings

    from gpuops.gui.app.settings_store import Preferences, save_preferences

    server = LocalServer(static_routes({"/metrics": Answer(CAPTURE.read_bytes())}))
    dead = f"http://127.0.0.1:{free_port()}/metrics"
    saved_db = tmp_path / "saved.sqlite"
    ini = Path(home["XDG_CONFIG_HOME"]) / "gpuops" / "gpuops.ini"
    ini.parent.mkdir(parents=True)
    spec = f"scrape:{server.base}/metrics,{dead}"  # a comma: QSettings quotes it in the INI file
    save_preferences(Preferences(source=spec, db_path=str(saved_db)), QSettings(str(ini), QSettings.Format.IniFormat))
    try:
        code, checks = doctor(home)
    finally:
        server.stop()
    assert code == 1
    source = checks["source"]
    assert source["status"] == "problem" and source["detail"].startswith(f"{spec} (saved in {ini}) answers: 1 GPUs;")
    assert dead in source["detail"]
    assert checks["history"]["detail"] == f"{saved_db}: none yet"


def test_alertmanager_reachability(home, request) -> None:
    url = request.getfixturevalue("alertmanager")  # a real prometheus-alertmanager on loopback
    code, checks = doctor(home, "--source", "demo:8", "--alertmanager", url)
    assert checks["alertmanager"] == {"name": "alertmanager", "status": "ok", "detail": f"{url} is ready", "advice": ""}
    dead = f"http://127.0.0.1:{free_port()}"
    code, checks = doctor(home, "--source", "demo:8", "--alertmanager", dead)
    assert code == 1 and checks["alertmanager"]["status"] == "problem" and "refused" in checks["alertmanager"]["detail"]


def test_alertmanager_check_uses_the_alertmanager_credentials(home, tmp_path: Path) -> None:
    """Behind basic auth, doctor passes with GPUOPS_ALERTMANAGER_* set (as collect would), fails without."""
    pair = base64.b64encode(f"oncall:{PASSWORD}".encode()).decode()
    web = f"basic_auth_users:\n  oncall: '{PASSWORD_BCRYPT}'\n"
    with running_alertmanager(tmp_path, web_config=web, headers={"Authorization": f"Basic {pair}"}) as url:
        code, checks = doctor(home, "--source", "demo:8", "--alertmanager", url)
        assert code == 1 and checks["alertmanager"]["status"] == "problem" and "401" in checks["alertmanager"]["detail"]
        (tmp_path / "password").write_text(PASSWORD + "\n")
        with_credentials = {**home, "GPUOPS_ALERTMANAGER_USERNAME": "oncall",
                            "GPUOPS_ALERTMANAGER_PASSWORD_FILE": str(tmp_path / "password")}
        code, checks = doctor(with_credentials, "--source", "demo:8", "--alertmanager", url)
        assert checks["alertmanager"] == {"name": "alertmanager", "status": "ok", "detail": f"{url} is ready", "advice": ""}
        broken = {**with_credentials, "GPUOPS_ALERTMANAGER_PASSWORD_FILE": str(tmp_path / "missing")}
        code, checks = doctor(broken, "--source", "demo:8", "--alertmanager", url)
        assert code == 1 and "cannot read credentials file" in checks["alertmanager"]["detail"]


def test_a_menu_entry_pointing_at_a_removed_gpuops_is_a_problem(home, tmp_path) -> None:
    entry = tmp_path / "data" / "applications" / "gpuops.desktop"
    entry.parent.mkdir(parents=True)
    entry.write_text("[Desktop Entry]\nType=Application\nName=gpuops\nExec=/opt/old\\sgpuops/bin/gpuops\n")
    code, checks = doctor(home, "--source", "demo:8")
    assert code == 1
    assert checks["desktop"]["status"] == "problem" and "/opt/old gpuops/bin/gpuops" in checks["desktop"]["detail"]


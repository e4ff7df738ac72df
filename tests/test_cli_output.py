"""Files the command line writes: never over an existing file without --force, through a
symbolic link only with --force (and then into its target, the link kept), never onto a device
or FIFO, 0600 at umask 000, `-o -` on standard output; strict JSON; bounded numbers."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gpuops.cli import main
from tests.cli_support import GPUS
from tests.local_http import Answer, LocalServer, static_routes


def gpuops(*args: str, umask: int | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpuops", *args], capture_output=True, text=True, timeout=120,
        preexec_fn=None if umask is None else (lambda: os.umask(umask)),
    )


def writers(book: Path) -> dict[str, list[str]]:
    """Every command that writes a file, without its -o."""
    return {
        "customers export": ["customers", "export", "--db", str(book)],
        "allocations export": ["allocations", "export", "--db", str(book)],
        "audit export": ["audit", "export", "--db", str(book)],
        "usage": ["usage", "--since", "2026-01-01", "--until", "2026-01-02", "--format", "json", "--db", str(book)],
        "alerts rules export": ["alerts", "rules", "export", "--db", str(book)],
        "export history": ["export", "--format", "csv", "--since", "2025-12-31", "--until", "2026-01-02", "--db", str(book)],
        "export snapshot": ["export", "--format", "csv", "--source", "demo:8", "--db", str(book)],
    }


WRITERS = [
    "customers export", "allocations export", "audit export", "usage", "alerts rules export", "export history", "export snapshot",
]


@pytest.mark.parametrize("name", WRITERS)
def test_a_new_file_is_0600_at_umask_000_and_an_existing_one_needs_force(name, book, tmp_path) -> None:
    argv = writers(book)[name]
    out = tmp_path / "out" / "file"
    out.parent.mkdir()
    result = gpuops(*argv, "-o", str(out), umask=0)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    first = out.read_bytes()
    assert first

    out.write_text("keep me\n")
    refused = gpuops(*argv, "-o", str(out))
    assert refused.returncode == 2 and "exists; pass --force" in refused.stderr
    assert out.read_text() == "keep me\n"

    os.chmod(out, 0o640)
    assert gpuops(*argv, "-o", str(out), "--force").returncode == 0
    assert out.read_bytes() != b"keep me\n"
    assert stat.S_IMODE(out.stat().st_mode) == 0o640  # a replaced file keeps its mode
    assert sorted(p.name for p in out.parent.iterdir()) == ["file"]  # no temporary file left


@pytest.mark.parametrize("name", ["customers export", "usage", "export snapshot"])
def test_a_symbolic_link_is_refused_without_force_and_written_through_with_it(name, book, tmp_path, capsys) -> None:
    argv = writers(book)[name]
    target = tmp_path / "target.txt"
    target.write_text("old\n")
    os.chmod(target, 0o644)
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    assert main([*argv, "-o", str(link)]) == 2
    assert "symbolic link" in capsys.readouterr().err
    assert target.read_text() == "old\n"

    assert main([*argv, "-o", str(link), "--force"]) == 0
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() != "old\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


@pytest.mark.parametrize("force", [[], ["--force"]], ids=["plain", "force"])
def test_a_device_or_fifo_is_never_written(book, tmp_path, force, capsys) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    devnull_link = tmp_path / "stdout-link"
    devnull_link.symlink_to("/dev/null")
    for target in (fifo, Path("/dev/null"), devnull_link):
        assert main(["customers", "export", "--db", str(book), "-o", str(target), *force]) == 2
        err = capsys.readouterr().err
        assert ("not a regular file" in err and "-o -" in err) or (not force and "symbolic link" in err)
    assert stat.S_ISFIFO(fifo.stat().st_mode) and devnull_link.is_symlink()
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_dash_is_standard_output(book, capsys) -> None:
    assert main(["customers", "export", "--db", str(book), "-o", "-"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ["name,contact,notes", "Acme,,"]
    assert "written to standard output" in captured.err


def test_a_failed_export_leaves_no_file(tmp_path) -> None:
    out = tmp_path / "out.csv"
    result = gpuops("export", "--format", "csv", "--since", "1d", "--db", str(tmp_path / "missing.sqlite"), "-o", str(out))
    assert result.returncode == 1 and "no history" in result.stderr
    assert list(tmp_path.iterdir()) == []


def _strict(text: str):
    def refuse(constant: str):
        raise AssertionError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_status_json_is_strict_with_an_exporters_infinities() -> None:
    labels = 'gpu="0",UUID="GPU-aaaa",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="alpha"'
    body = (
        f"DCGM_FI_DEV_GPU_TEMP{{{labels}}} 40\nDCGM_FI_DEV_POWER_USAGE{{{labels}}} -Inf\nDCGM_FI_DEV_SM_CLOCK{{{labels}}} NaN\n"
    )
    server = LocalServer(static_routes({"/metrics": Answer(body.encode())}))
    try:
        result = gpuops("status", "--source", f"scrape:{server.base}/metrics", "--format", "json")
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    [gpu] = _strict(result.stdout)["gpus"]
    assert gpu["power_w"] is None and gpu["sm_clock_mhz"] is None and gpu["temp_c"] == 40


def test_snapshot_json_is_strict(tmp_path) -> None:
    result = gpuops("export", "--format", "json", "--source", "demo:16", "--db", str(tmp_path / "h.sqlite"), "-o", "-")
    assert result.returncode == 0, result.stderr
    assert len(_strict(result.stdout)["gpus"]) == 16


@pytest.mark.parametrize("value", ["inf", "nan", "1e-9", "0", "-1", "0.01", "86401", "soon"])
@pytest.mark.parametrize("command", [["collect"], ["agent"], ["window"]], ids=["collect", "agent", "window"])
def test_intervals_outside_the_sane_range_are_usage_errors(command, value, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--interval", value])
    assert exit_info.value.code == 2
    assert "--interval" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["export", "--format", "csv", "--since", "99999999d", "-o", "-"],
        ["usage", "--since", "99999999d", "--format", "csv"],
        ["audit", "export", "--since", "99999999d"],
        ["export", "--format", "csv", "--since", "1d", "--until", "2000-01-01T00:00:00Z", "-o", "-"],
    ],
)
def test_absurd_times_are_refused_at_once(argv, book, capsys) -> None:
    started = time.monotonic()
    assert main([*argv, "--db", str(book)]) == 2
    assert time.monotonic() - started < 5
    assert "gpuops:" in capsys.readouterr().err


def test_a_history_export_since_long_ago_is_clipped_to_the_history(book, capsys) -> None:
    started = time.monotonic()
    assert main(["export", "--format", "json", "--since", "2001-01-01T00:00:00Z", "-o", "-", "--db", str(book)]) == 0
    assert time.monotonic() - started < 10
    document = _strict(capsys.readouterr().out)
    assert document["start"].startswith("2025-12-31T23:59") and len(document["rows"]) == len(GPUS)


@pytest.mark.parametrize("value", ["2h", "0s", "400d"])
def test_silence_durations_are_bounded(value, book, capsys) -> None:
    code = main(["alerts", "silence", "--match", "node=n1", "--for", value, "--comment", "x", "--db", str(book)])
    assert code == (0 if value == "2h" else 2)
    if code:
        assert "at most 366 days" in capsys.readouterr().err


def test_the_one_json_helper_writes_non_finite_numbers_as_null() -> None:
    from gpuops.core.jsontext import dumps

    text = dumps({"a": float("-inf"), "b": [1.5, float("nan"), {"c": float("inf")}], "d": (2, "é")})
    assert _strict(text) == {"a": None, "b": [1.5, None, {"c": None}], "d": [2, "é"]}

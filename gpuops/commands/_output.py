"""Where command output goes: `-o FILE` (or `-o -`, standard output) with `--force`, `--format`
(with `--json` as its alias), and strict JSON on standard output. Every file goes through
`core.files.atomic_write`, standard output too (through a private temporary file, so a failed
export prints nothing half-done)."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

STDOUT = "-"


def add_output(parser: argparse.ArgumentParser, *, what: str = "the output", default: str = "standard output") -> None:
    parser.add_argument(
        "-o", "--output", default=None, metavar="FILE",
        help=f"write {what} to FILE (- for standard output; default {default})",
    )
    parser.add_argument("--force", action="store_true", help="replace FILE if it exists, or write through a symbolic link")


def add_format(
    parser: argparse.ArgumentParser, choices: tuple[str, ...], *, default: str | None, json_alias: bool = False
) -> None:
    """`--format A|B` (required when `default` is None); `--json` = `--format json`."""
    help_text = "output format" + (f" (default {default})" if default else "")
    parser.add_argument("--format", choices=choices, default=default, required=default is None and not json_alias, help=help_text)
    if json_alias:
        parser.add_argument("--json", dest="format", action="store_const", const="json", help="the same as --format json")


@contextmanager
def output_file(output: str | None, *, force: bool) -> Iterator[Path]:
    """A path to write the whole output to; it reaches `output` (standard output when None or
    '-') only when the block ends without an exception."""
    from gpuops.core.files import atomic_write

    if output not in (None, STDOUT):
        with atomic_write(Path(output), force=force) as tmp:
            yield tmp
        return
    with tempfile.TemporaryDirectory(prefix="gpuops-") as folder:
        tmp = Path(folder) / "output"
        tmp.touch(mode=0o600)
        yield tmp
        sys.stdout.flush()
        with open(tmp, "rb") as handle:
            shutil.copyfileobj(handle, sys.stdout.buffer)
        sys.stdout.buffer.flush()


def destination(output: str | None) -> str:
    return "standard output" if output in (None, STDOUT) else output


def print_json(value: Any) -> None:
    """`value` as strict JSON on standard output (non-finite numbers as null)."""
    from gpuops.core.jsontext import dumps

    sys.stdout.write(dumps(value, indent=2) + "\n")

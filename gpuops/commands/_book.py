"""What the customers, allocations, usage and audit commands share: the `import|export FILE --db`
arguments, opening the book in the history database and turning refusals into plain lines on
stderr with an exit code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gpuops.core.allocations.repository import AllocationRepository


def add_db_arguments(parser: argparse.ArgumentParser, *, edits: bool) -> None:
    parser.add_argument("--db", type=Path, default=None, metavar="PATH", help="history database (default: in the user data directory)")
    if edits:
        parser.add_argument("--read-only", action="store_true", help="refuse every change (for checking a file without importing it)")


def add_file_arguments(parser: argparse.ArgumentParser, *, imports: bool) -> None:
    """`import|export FILE.csv [--force] --db [--read-only]`, or `export FILE.csv` for a read-only log."""
    parser.add_argument("action", choices=("import", "export") if imports else ("export",))
    parser.add_argument("file", type=Path, metavar="FILE.csv")
    parser.add_argument("--force", action="store_true", help="export: replace FILE if it exists" if imports else "replace FILE if it exists")
    add_db_arguments(parser, edits=imports)


def run_on_book(args: argparse.Namespace, action: Callable, *, writes: bool) -> int:
    """Open the repository and run `action(repo)`; returns the exit code. Problems found in input
    are listed one per line (exit 1); an unusable database is one line (exit 1)."""
    from gpuops.core.allocations.errors import AllocationError, NeedsConfirmation, ValidationError
    from gpuops.core.allocations.repository import AllocationRepository
    from gpuops.core.store.errors import StoreError
    from gpuops.core.store.paths import default_db_path

    read_only = not writes or getattr(args, "read_only", False)
    try:
        repo = AllocationRepository.open(args.db or default_db_path(), read_only=read_only)
    except StoreError as exc:
        print(f"gpuops: {exc}", file=sys.stderr)
        return 1
    try:
        return action(repo)
    except ValidationError as exc:
        print(f"gpuops: nothing was changed; {len(exc.problems)} problem(s):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    except NeedsConfirmation as exc:
        print(f"gpuops: nothing was changed: {exc} (pass --allow-unhealthy)", file=sys.stderr)
        return 1
    except (AllocationError, StoreError) as exc:
        print(f"gpuops: {exc}", file=sys.stderr)
        return 1
    finally:
        repo.close()


def export_from_book(args: argparse.Namespace, what: str, write: Callable[[AllocationRepository, Path], int]) -> int:
    """Refuse to replace an existing `args.file` without --force (exit 2), else `write(repo, path)`
    it from a read-only book and say how many `what` it holds."""
    if args.file.exists() and not args.force:
        print(f"gpuops: {args.file} exists; pass --force to replace it", file=sys.stderr)
        return 2

    def export(repo: AllocationRepository) -> int:
        print(f"{write(repo, args.file)} {what} written to {args.file}")
        return 0

    return run_on_book(args, export, writes=False)

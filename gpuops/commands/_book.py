"""What the customers, allocations, contracts, usage and audit commands share: the
`import FILE` / `export [-o FILE]` actions, opening the book in the history database (read-only
unless the action writes and --read-only is not given) and turning refusals into plain lines on
stderr with exit status 1."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpuops.commands._options import BOOK, add_action, add_command
from gpuops.commands._output import add_output, destination, output_file

if TYPE_CHECKING:
    from gpuops.core.allocations.repository import AllocationRepository


def add_book_command(subparsers: argparse._SubParsersAction, name: str, **kwargs: Any) -> argparse.ArgumentParser:
    """A subcommand on the book: it takes --db and --read-only, before or after its action."""
    return add_command(subparsers, name, takes=BOOK, **kwargs)


def add_file_actions(parser: argparse.ArgumentParser, what: str, *, imports: bool) -> argparse._SubParsersAction:
    """`import FILE.csv` (when `imports`) and `export [-o FILE] [--force]` as actions of `parser`."""
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    if imports:
        importing = add_action(actions, parser, "import", help=f"add {what} from a CSV file (all or nothing)")
        importing.add_argument("file", type=Path, metavar="FILE.csv")
    add_output(add_action(actions, parser, "export", help=f"write every stored {what} as CSV"), what=f"the {what} CSV")
    return actions


def run_on_book(args: argparse.Namespace, action: Callable[[AllocationRepository], int], *, writes: bool) -> int:
    """Open the repository and run `action(repo)`; returns the exit code. Problems found in input
    are listed one per line (exit 1); an unusable database is one line (exit 1)."""
    from gpuops.core.allocations.errors import AllocationError, NeedsConfirmation, NotInProduction, ValidationError
    from gpuops.core.allocations.repository import AllocationRepository
    from gpuops.core.store.errors import StoreError
    from gpuops.core.store.paths import default_db_path

    try:
        repo = AllocationRepository.open(args.db or default_db_path(), read_only=args.read_only or not writes)
    except StoreError as exc:
        print(f"gpuops: {exc}", file=sys.stderr)
        return 1
    try:
        code = action(repo)
        if code == 0 and writes and args.read_only:  # the input was valid and changed nothing
            print("gpuops: --read-only: nothing was changed; refused", file=sys.stderr)
            return 1
        return code
    except ValidationError as exc:
        print(f"gpuops: nothing was changed; {len(exc.problems)} problem(s):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    except NeedsConfirmation as exc:
        print(f"gpuops: nothing was changed: {exc} (pass --allow-unhealthy)", file=sys.stderr)
        return 1
    except NotInProduction as exc:
        print(f"gpuops: nothing was changed: {exc} (pass --lifecycle-override REASON)", file=sys.stderr)
        return 1
    except (AllocationError, StoreError) as exc:
        print(f"gpuops: {exc}", file=sys.stderr)
        return 1
    finally:
        repo.close()


def export_from_book(args: argparse.Namespace, what: str, write: Callable[[AllocationRepository, Path], int]) -> int:
    """`write(repo, path)` from a read-only book into `-o` (standard output by default), and say on
    stderr how many `what` it holds. An existing file is refused (exit 2) unless --force."""

    def export(repo: AllocationRepository) -> int:
        with output_file(args.output, force=args.force) as tmp:
            count = write(repo, tmp)
        print(f"{count} {what} written to {destination(args.output)}", file=sys.stderr)
        return 0

    return run_on_book(args, export, writes=False)

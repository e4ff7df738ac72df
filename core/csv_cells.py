"""CSV cells that are safe to open in a spreadsheet, and read back exactly.

A text cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is a formula to Excel,
LibreOffice and Google Sheets ("CSV injection", OWASP). Every CSV gpuops writes goes through
`write_rows`, which prefixes such text with `'` (what the spreadsheets themselves use to mark a
cell as text). Numbers stay numbers: only `str` values are escaped, so a negative figure gpuops
computed (an int or float) is written as it is, while user text such as `-2+3` is escaped.

The escape is reversible: text that already starts with apostrophes followed by one of those
characters gets one more apostrophe too, and `unescape` removes exactly one, so importing our own
export gives back the original text, apostrophes included. Text starting with an apostrophe
followed by anything else is left alone both ways.
"""

from __future__ import annotations

import csv
import io
import numbers
import re
from collections.abc import Iterable, Sequence
from typing import IO, Any

#: The first characters that make a spreadsheet evaluate a cell.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_ESCAPED = re.compile(r"'*[=+\-@\t\r]")


def escape(text: str) -> str:
    """`text` as a cell no spreadsheet evaluates (see the module docstring)."""
    return "'" + text if _ESCAPED.match(text) else text


def unescape(cell: str) -> str:
    """The text `escape` was given for this cell (cells it did not change come back as they are)."""
    return cell[1:] if cell.startswith("'") and _ESCAPED.match(cell, 1) else cell


def cell(value: Any) -> str | numbers.Real:
    """One value as a CSV cell: None empty, booleans `true`/`false`, numbers as numbers, text escaped."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, numbers.Real):
        return value
    return escape(str(value))


def write_rows(out: IO[str], header: Sequence[str], rows: Iterable[Iterable[Any]]) -> int:
    """Write the header and `rows` (values as `cell` makes them) to `out`, one `\n` per row;
    return the row count.

    The csv module quotes a cell holding a character of its line terminator, so with `\n` alone
    a carriage return inside a cell would go out bare and split the row when read back: rows are
    made with `\r\n` (both quoted) and written with `\n`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def put(cells: list[Any]) -> None:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(cells)
        out.write(buffer.getvalue()[:-2] + "\n")

    put([escape(name) for name in header])
    count = 0
    for row in rows:
        put([cell(value) for value in row])
        count += 1
    return count

"""CSV files handed to members (unmatched import rows, ``/export``): safe to open in a spreadsheet.

A cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return, which some
spreadsheets skip before looking) is read as a formula by Excel, LibreOffice and Google Sheets;
a member's own file, or a movie title, could carry one. :func:`safe_csv_cell` prefixes such a
cell with an apostrophe, which spreadsheets show as text and do not display.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

__all__ = ["FORMULA_PREFIXES", "csv_bytes", "safe_csv_cell"]

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_csv_cell(value: object) -> str:
    """``value`` as text, neutralised against spreadsheet formula injection."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def csv_bytes(header: Sequence[object], rows: Iterable[Sequence[object]]) -> bytes:
    """UTF-8 CSV (CRLF, minimal quoting) with every cell passed through :func:`safe_csv_cell`."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([safe_csv_cell(c) for c in header])
    for row in rows:
        writer.writerow([safe_csv_cell(c) for c in row])
    return out.getvalue().encode("utf-8")

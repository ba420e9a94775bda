"""CSV files that people open in a spreadsheet or edit by hand: one reader, one writer.

The writer escapes cells a spreadsheet would run as a formula (a file name such as
``=HYPERLINK(...).jpg``): a text cell that starts with ``= + - @``, a tab, a carriage return
or a quote gets one leading ``'`` (the usual spreadsheet text marker), and the reader takes
exactly one leading ``'`` off again, so every value round-trips. The reader accepts the
byte-order mark a spreadsheet writes (``utf-8-sig``), ``;`` as the separator when the header
has no ``,``, and file names that are not UTF-8 (``surrogateescape``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from seglib.core.errors import SeglibError
from seglib.core.files import write_bytes_atomic

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")


def escape_cell(value: object) -> str:
    """``value`` as CSV text that no spreadsheet runs as a formula (see the module doc)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def unescape_cell(text: str) -> str:
    """Undo :func:`escape_cell`."""
    return text[1:] if text.startswith("'") else text


def csv_bytes(rows: Iterable[Mapping[str, object]], columns: Sequence[str]) -> bytes:
    """UTF-8 CSV bytes with the header ``columns``; missing fields are empty, cells escaped."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    quoted = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL)
    w.writerow(columns)
    for r in rows:
        cells = [escape_cell(r.get(c, "")) for c in columns]
        # a lone carriage return ends a line for readers: such a row is quoted whole
        (quoted if any("\r" in c for c in cells) else w).writerow(cells)
    return buf.getvalue().encode("utf-8", errors="surrogateescape")


def write_csv(path: str | Path, rows: Iterable[Mapping[str, object]],
              columns: Sequence[str]) -> Path:
    """Write ``rows`` as CSV atomically (temporary file, then a rename)."""
    return write_bytes_atomic(path, csv_bytes(rows, columns))


def read_csv(path: str | Path, required: Sequence[str] = ()) -> list[dict[str, str]]:
    """Rows of a CSV file as dicts of text (``[]`` when the file does not exist).

    Raises :class:`SeglibError` with one line when the file cannot be read or its header lacks
    a ``required`` column.
    """
    path = Path(path)
    if not path.is_file():
        return []
    try:
        text = path.read_bytes().decode("utf-8-sig", errors="surrogateescape")
    except OSError as exc:
        raise SeglibError(f"{path}: cannot read ({exc.strerror or exc})") from None
    text = text.replace("\x00", "")
    first = text.split("\n", 1)[0]
    delimiter = ";" if ";" in first and "," not in first else ","
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        header = [h.strip() for h in next(reader, [])]
        rows = [dict(zip(header, (unescape_cell(c) for c in cells), strict=False))
                for cells in reader if any(c.strip() for c in cells)]
    except csv.Error as exc:
        raise SeglibError(f"{path}: not a readable CSV file ({exc}); fix or delete it") from None
    missing = [c for c in required if c not in header]
    if missing:
        shown = ",".join(required)
        raise SeglibError(f"{path}: the first line must be the header '{shown}' (missing: "
                          f"{', '.join(missing)}); fix or delete the file")
    return rows

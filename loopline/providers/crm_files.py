"""Embedded CRM files as tables: a CSV export or an SQLite database.

Both give one row per customer with a phone-number column (`number`, `phone`, `phone_number`,
`e164`, `caller` or `mobile`, any case); the other columns are the record. Numbers are
normalised to E.164 (they must carry their country code, `+1 415 555 2671`). CSV values are
text, an empty cell is no value; SQLite values keep their column types. Either way
`crm_fields.normalise_crm_record` types the known fields later.

Blocking (file reads, sqlite3): `FileCrm` calls these in a worker thread. Errors are
`CrmError` with a position but never a number or a value.
"""

from __future__ import annotations

import csv
import io
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

NUMBER_COLUMNS = ("number", "phone", "phone_number", "e164", "caller", "mobile")
SQLITE_TABLES = ("customers", "crm", "contacts")
SQLITE_SUFFIXES = (".sqlite", ".sqlite3", ".db")


def _number_column(columns: Sequence[str]) -> int | None:
    lowered = [c.strip().lower() for c in columns]
    for name in NUMBER_COLUMNS:
        if name in lowered:
            return lowered.index(name)
    return None


def _rows_to_records(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    to_e164: Callable[[object], str | None],
    error: Callable[[str], Exception],
    *,
    first_row: int,
) -> dict[str, dict[str, Any]]:
    key = _number_column(columns)
    if key is None:
        raise error(f"no phone-number column (one of {', '.join(NUMBER_COLUMNS)})")
    records: dict[str, dict[str, Any]] = {}
    for position, row in enumerate(rows, start=first_row):
        if not any(cell not in (None, "") for cell in row):
            continue  # a blank line
        if len(row) != len(columns):
            raise error(f"row {position}: {len(row)} cells for {len(columns)} columns")
        number = to_e164(row[key])
        if number is None:
            raise error(f"row {position}: the number is not a phone number with its country code")
        records[number] = {
            str(column).strip(): value
            for i, (column, value) in enumerate(zip(columns, row, strict=True))
            if i != key and value not in (None, "")
        }
    return records


def parse_crm_csv(
    text: str, to_e164: Callable[[object], str | None], error: Callable[[str], Exception]
) -> dict[str, dict[str, Any]]:
    """A CSV export (header row first; the delimiter is sniffed among `,;\\t|`)."""
    text = text.removeprefix("\ufeff")  # spreadsheet exports often start with a BOM
    if not text.strip():
        return {}
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(
            text[:4096], delimiters=",;\t|"
        )
    except csv.Error:
        dialect = csv.excel
    try:
        reader = csv.reader(io.StringIO(text), dialect)
        header = next(reader, None)
        if header is None:
            return {}
        return _rows_to_records(header, reader, to_e164, error, first_row=2)
    except csv.Error as exc:
        raise error(f"not valid CSV ({type(exc).__name__})") from exc


def read_crm_sqlite(
    path: Path, to_e164: Callable[[object], str | None], error: Callable[[str], Exception]
) -> dict[str, dict[str, Any]]:
    """A table of an SQLite file, opened read-only: `customers`, `crm` or `contacts`, or the
    file's only table."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise error(f"cannot open {path.name}: {type(exc).__name__}") from exc
    try:
        tables = [
            str(r[0])
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        table = next((t for t in SQLITE_TABLES if t in tables), None)
        if table is None and len(tables) == 1:
            table = tables[0]
        if table is None:
            raise error(f"{path.name}: no table named {', '.join(SQLITE_TABLES)}")
        quoted = '"' + table.replace('"', '""') + '"'
        cursor = conn.execute(f"SELECT * FROM {quoted}")  # noqa: S608 - a name from the file's own schema, quoted
        columns = [str(d[0]) for d in cursor.description]
        return _rows_to_records(columns, cursor, to_e164, error, first_row=1)
    except sqlite3.Error as exc:
        raise error(f"{path.name}: not a readable SQLite CRM ({type(exc).__name__})") from exc
    finally:
        conn.close()

"""Factor tables as CSV text: read a user's file or the shipped one, rows with their lines, names checked.

The COPERT (:mod:`.copert`) and China guideline (:mod:`.pollutants`) tables are
read the same way: a user's file as UTF-8 (a byte-order mark allowed), every row
with the file line it ends on, a header missing a column or a row with more or
fewer fields than the header refused with the file and line; the shipped table
from the package, where a problem is a defect of truckcarbon
(:class:`~truckcarbon.core.errors.ReferenceDataError`), not of the input.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from enum import StrEnum
from importlib.resources import files
from pathlib import Path
from typing import TypeVar

from truckcarbon.core.errors import InputError, ReferenceDataError

T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)
Rows = list[tuple[int, dict[str, str]]]


def csv_rows(text: str, name: str, columns: Sequence[str]) -> Rows:
    """The rows of CSV ``text`` (file ``name``) with the line each ends on; :class:`InputError` when the header
    lacks one of ``columns`` or a row has not as many fields as the header."""
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in columns if c not in (reader.fieldnames or [])]
    if missing:
        raise InputError(f"{name}, line 1: missing column(s) {', '.join(missing)}")
    rows = []
    for row in reader:
        if None in row.values() or None in row:
            raise InputError(f"{name}, line {reader.line_num}: not as many fields as the header")
        rows.append((reader.line_num, row))
    return rows


def read_user_table(path: str | Path, what: str, parse: Callable[[str, str], T]) -> T:
    """A user's table at ``path`` (``what`` names it in errors) parsed by ``parse(text, name)``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{what} {p}: cannot be read ({e})") from None
    return parse(text, str(p))


def read_shipped_table(name: str, parse: Callable[[str, str], T]) -> T:
    """The shipped ``data/factors/<name>`` parsed by ``parse(text, name)``; a problem is a ReferenceDataError."""
    text = files("truckcarbon.data").joinpath("factors", name).read_text(encoding="utf-8")
    try:
        return parse(text, name)
    except InputError as e:
        raise ReferenceDataError(f"shipped {e}") from None


def enum_value(kind: type[E], value: E | str, what: str) -> E:
    """``value`` as a member of ``kind``; :class:`InputError` listing the members when it is none of them."""
    try:
        return kind(value)
    except ValueError:
        raise InputError(f"unknown {what} {value!r}; choose one of {', '.join(kind)}") from None


__all__ = ["Rows", "csv_rows", "enum_value", "read_shipped_table", "read_user_table"]

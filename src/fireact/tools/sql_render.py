"""The text of the ``sql`` tool: a result as one line, a cell as text, and ``tables[]``.

Owns `render`, `format_value` and `describe` (see `fireact.tools.sql` for the rules they follow:
``NULL``, ``true``/``false``, at most 15 significant digits, `` ; `` between the parts).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fireact.tools.sql_db import shown_name

if TYPE_CHECKING:
    from fireact.tools.sql_tables import LoadedTable

MAX_CELL_CHARS = 100
MAX_CHARS = 3000
NO_TABLES = "No tables for this question."
SEPARATOR = " ; "  # between the header, the rows and the count, as the table-QA prompt shows

_BREAKS = re.compile(r"[\r\n\t\v\f]+")


def _text(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(float(f"{value:.15g}")) if math.isfinite(value) else str(value)
    return _BREAKS.sub(" ", str(value))  # one line: line breaks and tabs become spaces


def format_value(value: Any, max_chars: int = MAX_CELL_CHARS) -> str:
    """One cell as text (module doc), cut at ``max_chars`` with ``…``."""
    text = _text(value)
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def render(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    total: int | None,
    max_cell_chars: int = MAX_CELL_CHARS,
    max_chars: int = MAX_CHARS,
) -> str:
    """A result as the one-line table of the module doc (``total`` None: more, not counted)."""
    parts = [" | ".join(format_value(c, max_cell_chars) for c in columns)]
    size = len(parts[0])
    for row in rows:
        part = " | ".join(format_value(v, max_cell_chars) for v in row)
        if len(parts) > 1 and size + len(SEPARATOR) + len(part) > max_chars:
            break
        parts.append(part)
        size += len(SEPARATOR) + len(part)
    shown = len(parts) - 1
    if total is None:
        parts.append(f"(showing {shown} of more than {len(rows)} rows)")
    elif shown < total:
        parts.append(f"(showing {shown} of {total} rows)")
    else:
        parts.append(f"({total} row{'' if total == 1 else 's'})")
    return SEPARATOR.join(parts)


def describe(tables: Sequence[LoadedTable], which: str = "", types: bool = True) -> str:
    """``tables[]``: each table with its columns (and their types) and its number of rows."""
    if not tables:
        return NO_TABLES
    wanted = which.strip().strip('"').lower()
    chosen = [t for t in tables if not wanted or t.name.lower() == wanted]
    if not chosen:
        names = ", ".join(shown_name(t.name) for t in tables)
        return f"No table named {which.strip()}. Tables: {names}."
    parts = []
    for t in chosen:
        columns = ", ".join(
            f"{shown_name(c)} {kind}" if types else shown_name(c)
            for c, kind in zip(t.columns, t.types, strict=True)
        )
        count = len(t.rows)
        parts.append(f"{shown_name(t.name)}: {columns} ({count} row{'' if count == 1 else 's'})")
    return SEPARATOR.join(parts)

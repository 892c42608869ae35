"""Reading table-QA files: the shipped splits and a user's own ``{question, answer, tables}`` JSONL.

Owns `TableQAExample` (an `Example` that carries its tables), `TableData`, `read_tableqa` (the
task's reader: ``(path, split) -> examples``) and the checks of the format. Every problem is one
`FireactError` line naming the JSONL file and line (and the CSV file and line when a table
comes from one).

The format, one JSON object a line (blank lines are skipped)::

    {"id": "q1", "question": "Which team scored the most goals?", "answer": "Iron Wolves",
     "tables": [{"name": "standings", "header": ["team", "goals_for"],
                 "rows": [["Iron Wolves", 31], ["Blue Owls", 24]]},
                {"name": "teams", "csv": "tables/teams.csv"}]}

* ``question``: a non-empty string.
* ``answer``: a string, a number (written as its digits: ``1234.5`` -> ``"1234.5"``) or a bool
  (``"yes"`` / ``"no"``); absent or null: no gold (an unlabelled file, scored 0).
* ``tables``: at least one table, each either inline (``name``, ``header``, ``rows``) or a CSV
  file (``csv``: a path relative to the JSONL file; its first row is the header; ``name``
  defaults to the file's stem). A table name is an SQL identifier (``[A-Za-z_][A-Za-z0-9_]*``)
  and unique within its question, ignoring case as SQL does. A header is a non-empty list of
  distinct, non-empty column names; every row has exactly one cell per column; a cell is a
  string, a number, a bool or null (a missing value).
* CSV cells are text; an empty cell is a missing value, ``-?digits`` without a leading zero is an
  integer and ``-?digits.digits`` a decimal number; anything else (``"1,234"``, ``"007"``) stays
  text. Quoting follows RFC 4180 strictly (a stray quote is an error, not a guess).
* ``id``: optional, unique in the file; default ``tableqa/{split}/{index}``. Other fields
  (the shipped splits' ``kind`` and ``check``) are allowed; ``kind`` is kept.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from fireact.errors import FireactError
from fireact.files import iter_jsonl, read_text
from fireact.tasks.base import Example

Cell = str | int | float | bool | None

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INT = re.compile(r"-?(?:0|[1-9]\d*)")
_FLOAT = re.compile(r"-?(?:0|[1-9]\d*)\.\d+")


def table_json(name: str, header: Sequence[Any], rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """A table as the JSONL records ship it: ``{"name", "header": [...], "rows": [[...], ...]}``."""
    return {"name": name, "header": list(header), "rows": [list(r) for r in rows]}


@dataclass(frozen=True)
class TableData:
    """One table of a question: its SQL name, column names and rows (``None`` = missing)."""

    name: str
    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    source: str = ""  # the CSV file it was read from; "" when inline

    def to_json(self) -> dict[str, Any]:
        return table_json(self.name, self.header, self.rows)


@dataclass(frozen=True)
class TableQAExample(Example):
    """A table-QA question: an `Example` (id, question, gold answer) plus its tables."""

    tables: tuple[TableData, ...] = ()
    kind: str = ""  # the generator's question kind; "" for a user's file


def csv_cell(text: str) -> Cell:
    """A CSV cell's value: empty -> missing, integer / decimal text -> number, else the text."""
    stripped = text.strip()
    if not stripped:
        return None
    if _INT.fullmatch(stripped):
        return int(stripped)
    if _FLOAT.fullmatch(stripped):
        return float(stripped)
    return text


def read_csv_table(path: Path) -> tuple[tuple[str, ...], tuple[tuple[Cell, ...], ...]]:
    """Header and rows of a CSV table; every problem names the CSV file and line."""
    reader = csv.reader(io.StringIO(read_text(path), newline=""), strict=True)
    rows: list[tuple[int, list[str]]] = []  # (first line of the row, cells)
    end = 0
    try:
        for row in reader:
            if row:
                rows.append((end + 1, row))
            end = reader.line_num
    except csv.Error as err:
        raise FireactError(f"{path}:{reader.line_num}: malformed CSV ({err})") from None
    if not rows:
        raise FireactError(f"{path}: empty CSV, expected a header row")
    header_line, first = rows[0]
    header = tuple(first)
    problem = header_problem(header)
    if problem:
        raise FireactError(f"{path}:{header_line}: {problem}")
    body = []
    for lineno, row in rows[1:]:
        if len(row) != len(header):
            raise FireactError(
                f"{path}:{lineno}: row has {len(row)} cells, the header has {len(header)}"
            )
        body.append(tuple(csv_cell(cell) for cell in row))
    return header, tuple(body)


def header_problem(header: Sequence[Any]) -> str:
    """What is wrong with a header, or ""."""
    if not header:
        return "the header has no columns"
    for i, col in enumerate(header):
        if not isinstance(col, str) or not col.strip():
            return f"column {i + 1} of the header has no name ({col!r})"
    seen: set[str] = set()
    for col in header:
        if col.lower() in seen:
            return f"column '{col}' appears twice in the header"
        seen.add(col.lower())
    return ""


def answer_text(value: Any, where: str) -> str | None:
    """The gold answer as text: numbers by their digits, bools as yes / no, null as no gold."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value == value and abs(value) != float("inf"):
        return format(Decimal(repr(value)), "f")
    raise FireactError(f"{where}: field 'answer' should be a string, number or bool, got {value!r}")


def _table(spec: Any, i: int, where: str, base: Path, cache: dict[Path, Any]) -> TableData:
    """One table of a question, inline or from a CSV file."""
    if not isinstance(spec, dict):
        raise FireactError(f"{where}: table {i + 1} should be an object, got {type(spec).__name__}")
    csv_path = spec.get("csv")
    if csv_path is not None:
        if "header" in spec or "rows" in spec:
            raise FireactError(f"{where}: table {i + 1} gives both 'csv' and 'header'/'rows'")
        if not isinstance(csv_path, str) or not csv_path.strip():
            raise FireactError(f"{where}: table {i + 1}: 'csv' should be a file path")
        path = base / csv_path
        name = spec.get("name", Path(csv_path).stem)
    else:
        path, name = None, spec.get("name")
    if not isinstance(name, str) or not IDENTIFIER.fullmatch(name):
        raise FireactError(
            f"{where}: table {i + 1} name {name!r} is not an SQL identifier "
            "(letters, digits and _, not starting with a digit)"
        )
    label = f"{where}: table '{name}'"
    if path is not None:
        if path not in cache:
            try:
                cache[path] = read_csv_table(path)
            except FireactError as err:
                raise FireactError(f"{label}: {err}") from None
        header, rows = cache[path]
        return TableData(name, header, rows, str(path))
    header, rows = spec.get("header"), spec.get("rows")
    if not isinstance(header, list):
        raise FireactError(f"{label}: needs 'header' (a list of column names) and 'rows', or 'csv'")
    problem = header_problem(header)
    if problem:
        raise FireactError(f"{label}: {problem}")
    if not isinstance(rows, list):
        raise FireactError(f"{label}: 'rows' should be a list of rows, got {type(rows).__name__}")
    body = []
    for r, row in enumerate(rows, start=1):
        if not isinstance(row, list):
            raise FireactError(f"{label}: row {r} should be a list, got {type(row).__name__}")
        if len(row) != len(header):
            raise FireactError(
                f"{label}: row {r} has {len(row)} cells, the header has {len(header)} (a ragged row)"
            )
        for c, cell in enumerate(row):
            if cell is not None and not isinstance(cell, str | int | float | bool):
                raise FireactError(
                    f"{label}: row {r}, column '{header[c]}' holds a {type(cell).__name__}; "
                    "a cell is a string, number, bool or null"
                )
        body.append(tuple(row))
    return TableData(name, tuple(header), tuple(body))


def read_tableqa(path: Path, split: str) -> list[TableQAExample]:
    """The examples of a table-QA JSONL file (a shipped split or the user's ``--data``)."""
    path = Path(path)
    base = path.parent
    cache: dict[Path, Any] = {}
    examples: list[TableQAExample] = []
    ids: dict[str, int] = {}
    for lineno, rec in iter_jsonl(path):
        where = f"{path}:{lineno}"
        if not isinstance(rec, dict):
            raise FireactError(f"{where}: expected a JSON object, got {type(rec).__name__}")
        question = rec.get("question")
        if not isinstance(question, str) or not question.strip():
            raise FireactError(f"{where}: field 'question' should be a non-empty string")
        specs = rec.get("tables")
        if not isinstance(specs, list) or not specs:
            raise FireactError(
                f"{where}: the question has no tables; 'tables' should list at least one table"
            )
        tables = tuple(_table(spec, i, where, base, cache) for i, spec in enumerate(specs))
        seen: dict[str, str] = {}
        for table in tables:
            if table.name.lower() in seen:
                raise FireactError(f"{where}: two tables are named '{table.name}'")
            seen[table.name.lower()] = table.name
        raw_id = rec.get("id")
        if raw_id is not None and (isinstance(raw_id, bool) or not isinstance(raw_id, str | int)):
            raise FireactError(f"{where}: field 'id' should be a string, got {raw_id!r}")
        ex_id = str(raw_id) if raw_id is not None else f"tableqa/{split}/{len(examples)}"
        if ex_id in ids:
            raise FireactError(f"{where}: id '{ex_id}' is already used on line {ids[ex_id]}")
        ids[ex_id] = lineno
        kind = rec.get("kind", "")
        examples.append(
            TableQAExample(
                ex_id,
                question,
                answer_text(rec.get("answer"), where),
                tables,
                kind if isinstance(kind, str) else "",
            )
        )
    if not examples:
        raise FireactError(f"{path}: no questions (expected one JSON object a line)")
    return examples


__all__ = ["TableData", "TableQAExample", "csv_cell", "read_csv_table", "read_tableqa"]

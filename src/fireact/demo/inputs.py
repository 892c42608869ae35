"""What the demo's "Ask" form holds, checked: the question, the table box and the settings.

Owns `AskRequest` (the form's values), `request_options` (the form as `RunOptions` over the
demo's defaults: every value validated by `RunOptions`, so a bad one is the same one-line
message ``fireact run`` prints), `parse_tables` (the table box) and `check_scripted` (which
question a ``scripted:`` model can answer). Every problem is a `FireactError` of one line naming
the field.

The table box (table tasks) takes either JSON, the ``tables`` of a table-QA line
(``[{"name": "t", "header": [...], "rows": [[...], ...]}, ...]``, or one such object), or CSV
text whose first row is the header (one table named ``data``; cells read as the task's CSV files
are: `fireact.tableqa.data.csv_cell`). Tables are checked by the sql tool's own rules
(`fireact.tools.sql_tables.table_data`).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

from fireact.agent.methods import METHOD_REGISTRY, method_spec
from fireact.agent.options import RunOptions
from fireact.errors import FireactError
from fireact.llm.base import LLM
from fireact.llm.scripted import ScriptedLLM
from fireact.tableqa.data import csv_cell, header_problem
from fireact.tools.sql_tables import Table, table_data

CSV_TABLE = "data"  # the name of a table given as CSV


@dataclass(frozen=True)
class AskRequest:
    """The values of the Ask form (numbers as the page sends them)."""

    question: str
    model: str
    method: str = "react"
    format: str = "fewshot"
    tool: str = "local"
    temperature: float | None = None
    max_tokens: float | None = None
    max_steps: float | None = None
    table: str = ""


def demo_methods() -> list[str]:
    """The methods the demo offers: those that need no gold answer (the user's question has
    none; Reflexion decides its retries by the gold)."""
    return [m.name for m in METHOD_REGISTRY.specs() if not m.needs_gold]


def _whole(name: str, value: float | None) -> int | None:
    if value is None:
        return None
    if value != int(value):
        raise FireactError(f"{name}: expected a whole number, got {value:g}")
    return int(value)


def request_options(request: AskRequest, defaults: RunOptions) -> RunOptions:
    """The run options of one question: the demo's defaults with the form's values."""
    if not request.question.strip():
        raise FireactError("question: type a question")
    values: dict[str, Any] = defaults.model_dump()
    given = {
        "model": request.model.strip(),
        "method": request.method,
        "format": request.format,
        "tool": request.tool.strip(),
        "temperature": request.temperature,
        "max_tokens": _whole("max tokens", request.max_tokens),
        "max_steps": _whole("max steps", request.max_steps),
    }
    values |= {name: value for name, value in given.items() if value is not None}  # None: default
    options = RunOptions(**values)
    if method_spec(options.method).needs_gold:
        raise FireactError(
            f"method {options.method} needs gold answers (it retries until the answer is "
            f"right); a typed question has none: use one of {', '.join(demo_methods())}"
        )
    return options


def parse_tables(text: str) -> list[Table]:
    """The tables in the table box (module doc); a problem is one line starting ``table:``."""
    stripped = text.strip()
    if not stripped:
        raise FireactError("table: this task answers over a table; paste one (CSV or JSON)")
    try:
        if stripped[0] in "[{":
            data = json.loads(stripped)
            tables = [data] if isinstance(data, dict) else data
        else:
            tables = [_csv_table(stripped)]
        table_data(tables)  # the sql tool's checks, now rather than at the first query
    except json.JSONDecodeError as err:
        raise FireactError(f"table: not valid JSON ({err.msg}, line {err.lineno})") from None
    except FireactError as err:
        raise FireactError(f"table: {err}") from None
    return tables


def _csv_table(text: str) -> Table:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        rows = [row for row in reader if row]
    except csv.Error as err:
        raise FireactError(f"line {reader.line_num}: malformed CSV ({err})") from None
    header = rows[0]
    problem = header_problem(header)
    if problem:
        raise FireactError(f"line 1: {problem}")
    return {
        "name": CSV_TABLE,
        "header": header,
        "rows": [[csv_cell(c) for c in r] for r in rows[1:]],
    }


def check_scripted(llm: LLM, question: str) -> str | None:
    """For a ``scripted:`` model, the script key that answers `question` (its exact text);
    None for other models. A question without a script is a `FireactError`."""
    if not isinstance(llm, ScriptedLLM):
        return None
    key = question.strip()
    if key in llm.outputs:
        return key
    known = ", ".join(repr(k) for k in list(llm.outputs)[:3])
    raise FireactError(
        f"model {llm.name}: no script for this question; a scripted model answers the questions "
        f"its file has scripts for ({known}{', ...' if len(llm.outputs) > 3 else ''})"
    )

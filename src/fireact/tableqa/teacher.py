"""A replayable scripted teacher for the table-QA task: what a good teacher would write.

`teacher_script` turns shipped examples (records with their ``check``) into a scripted model's
outputs, one list per example id, in FireAct's style (each output is what follows
``Thought:``: ``" <thought>\\nAction: <action>"``): ``tables[]``, then the ``sql[...]`` compiled
from the check (`fireact.tableqa.checks`, the SQL the shipped splits are re-checked with), one
per value the check compares or combines, then ``calculate[...]`` where the answer needs
arithmetic, then ``finish[<gold answer>]``. Run through the real runner with
``--tool sql,calculate`` (``--model scripted:<file>``) the episodes call the real tools, so their
trajectories show real observations; `fireact quickstart --task tableqa` uses it as the teacher,
offline, in place of GPT-4.

The numbers written into ``calculate[...]`` are the values the check's queries return, computed
here with SQLite (stdlib) on the example's tables.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from fireact.tableqa.checks import compile_query, literal_sql

TABLES_TURN = " I need to find out which tables there are.\nAction: tables[]"
RANKED_LIMIT = 2  # a ranked query shows the top two rows: enough to see the order is strict


def _turn(thought: str, action: str) -> str:
    return f" {thought}\nAction: {action}"


def _where(q: Mapping[str, Any]) -> str:
    tables = q["from"] if "join" not in q else f"{q['from']} and {q['join']}"
    joined = f", joined on {q['using']}" if "join" in q else ""
    return f"The figures are in {tables}{joined}."


def _sql_turn(q: Mapping[str, Any], thought: str) -> str:
    limit = RANKED_LIMIT if q.get("order") else None
    return _turn(thought, f"sql[{literal_sql(q, limit)}]")


def _num(value: Any) -> str:
    """A number as typed into ``calculate[...]``: negative ones in parentheses."""
    text = str(value) if isinstance(value, int) else f"{value:.6f}".rstrip("0").rstrip(".")
    return f"({text})" if text.startswith("-") else text


def _rounding(check: Mapping[str, Any]) -> str:
    decimals = check.get("round")
    if decimals is None:
        return ""
    if decimals == 0:
        return "Rounded to a whole number, "
    return f"Rounded to {decimals} decimal place{'s' if decimals != 1 else ''}, "


class _Values:
    """The example's tables in an in-memory SQLite database; `value` runs one check query."""

    def __init__(self, tables: Iterable[Mapping[str, Any]]) -> None:
        self.db = sqlite3.connect(":memory:")
        for t in tables:
            cols = ", ".join(f'"{c}"' for c in t["header"])
            self.db.execute(f'CREATE TABLE "{t["name"]}" ({cols})')
            marks = ", ".join("?" for _ in t["header"])
            self.db.executemany(f'INSERT INTO "{t["name"]}" VALUES ({marks})', t["rows"])

    def value(self, q: Mapping[str, Any]) -> Any:
        sql, params, _ = compile_query(dict(q))
        row = self.db.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def close(self) -> None:
        self.db.close()


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _check_values(record: Mapping[str, Any], *keys: str) -> list[Any]:
    values = _Values(record["tables"])
    try:
        return [values.value(record["check"][k]) for k in keys]
    finally:
        values.close()


def teacher_outputs(record: Mapping[str, Any]) -> list[str]:
    """The scripted teacher's outputs for one shipped example (its ``check`` and ``answer``)."""
    check, answer = record["check"], record["answer"]
    outputs = [TABLES_TURN]
    op = check["op"]
    final = _sentence(f"{_rounding(check)}the answer is {answer}.")
    if op == "query":
        q = check["query"]
        how = "I rank the rows and look at the top." if q.get("order") else "One query gives it."
        outputs.append(_sql_turn(q, f"{_where(q)} {how}"))
    elif op == "compare":
        a, b = _check_values(record, "left", "right")
        outputs.append(_sql_turn(check["left"], f"{_where(check['left'])} I need the first value."))
        outputs.append(_sql_turn(check["right"], "Now the second value."))
        final = f"The values are {a} and {b}, so the answer is {answer}."
    elif op == "arith":
        a, b = _check_values(record, "a", "b")
        outputs.append(_sql_turn(check["a"], f"{_where(check['a'])} I need the first number."))
        outputs.append(_sql_turn(check["b"], "Now the second number."))
        x, y = _num(a), _num(b)
        formula = check["formula"]
        expression = {
            "difference": f"{x} - {y}",
            "ratio": f"{x} / {y} * {check.get('factor', 1)}",
            "pct_change": f"({x} - {y}) / {y} * 100",
        }[formula]
        name = {"difference": "difference", "ratio": "ratio", "pct_change": "percentage change"}
        outputs.append(_turn(f"I compute the {name[formula]}.", f"calculate[{expression}]"))
    else:
        raise ValueError(f"{record.get('id')}: unknown check op {op!r}")
    outputs.append(_turn(final, f"finish[{answer}]"))
    return outputs


def teacher_script(examples: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Example id → the scripted teacher's outputs, for records of a shipped split."""
    return {str(r["id"]): teacher_outputs(r) for r in examples}


def write_teacher_script(examples: Iterable[Mapping[str, Any]], path: Path) -> Path:
    """`teacher_script` of `examples` as a ``scripted:`` model file at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(teacher_script(examples), ensure_ascii=False), encoding="utf-8")
    return path

"""A shipped example's ``check`` compiled into SQL (see `fireact.tableqa.generate` for the form).

Owns `compile_query` (one check query → parameterised SQL that selects the answer, then the
ORDER BY keys) and `literal_sql` (the same SQL with its parameters written in, as an agent would
type it into the ``sql[...]`` tool). The shipped splits' re-check (`tests/test_tableqa.py`) and
the scripted teacher (`fireact.tableqa.teacher`) both build their SQL here: a code path
independent of the generator's Python.
"""

from __future__ import annotations

from typing import Any

OPS = ("=", ">", "<", "is null")


def _key_sql(key: Any) -> str:
    """An ORDER BY key: a column, or ``["-", a, b]`` (the difference of two columns)."""
    return f'("{key[1]}" - "{key[2]}")' if isinstance(key, list) else f'"{key}"'


def compile_query(q: dict[str, Any]) -> tuple[str, list[Any], int]:
    """SQL of one check query; selects the answer, then the ORDER BY keys (their count).

    Returns (sql with ``?`` placeholders, their values, the number of ORDER BY keys). Rows with
    a missing ranking key are left out, as the questions say.
    """
    select = q["select"]
    if isinstance(select, str):
        head = f'"{select}"'
    elif select[0] == "count":
        head = "COUNT(*)"
    else:
        head = f'{select[0].upper()}("{select[1]}")'
    sql = f'SELECT {{cols}} FROM "{q["from"]}"'
    if "join" in q:
        sql += f' JOIN "{q["join"]}" USING ("{q["using"]}")'
    conds, params = [], []
    for col, op, value in q.get("where", []):
        if op not in OPS:
            raise ValueError(f"check operator {op!r}: expected one of {', '.join(OPS)}")
        if op == "is null":
            conds.append(f'"{col}" IS NULL')
        else:
            conds.append(f'"{col}" {op} ?')
            params.append(value)
    keys = [_key_sql(key) for key, _ in q.get("order", [])]
    conds += [f"{k} IS NOT NULL" for k in keys]
    if conds:
        sql += " WHERE " + " AND ".join(conds)
    if keys:
        sql += " ORDER BY " + ", ".join(
            f"{k} {d.upper()}" for k, (_, d) in zip(keys, q["order"], strict=True)
        )
    return sql.replace("{cols}", ", ".join([head, *keys])), params, len(keys)


def sql_literal(value: Any) -> str:
    """`value` as an SQL literal: a quoted string (quotes doubled), a number, NULL."""
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return repr(value)


def literal_sql(q: dict[str, Any], limit: int | None = None) -> str:
    """`compile_query`'s SQL with its parameters written in (and ``LIMIT limit`` if given)."""
    sql, params, _ = compile_query(q)
    parts = sql.split("?")
    if len(parts) != len(params) + 1:  # a '?' inside a name: never in the shipped data
        raise ValueError(f"cannot inline {len(params)} parameters into {sql}")
    text = parts[0] + "".join(
        sql_literal(p) + rest for p, rest in zip(params, parts[1:], strict=True)
    )
    return text if limit is None else f"{text} LIMIT {limit}"

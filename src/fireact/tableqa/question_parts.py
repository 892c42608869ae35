"""What the question kinds share: the rows a question ranges over, thresholds, conditions,
missing-value notes and ranking with stated tie-breaks (see `fireact.tableqa.generate`)."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from fireact.tableqa.model import (
    Cell,
    Measure,
    Query,
    Retry,
    Row,
    Scene,
    Source,
    fmt_threshold,
    nice_between,
    query,
)


def years_of(src: Source) -> list[int]:
    assert src.time is not None
    return sorted({r[src.time] for r in src.table.records()})


def scope(src: Source, year: int | None) -> list[Row]:
    """The rows a question about `year` ranges over (all rows of a table without years)."""
    rows = src.table.records()
    return rows if src.time is None else [r for r in rows if r[src.time] == year]


def year_where(src: Source, year: int | None) -> list[list[Any]]:
    return [] if src.time is None else [[src.time, "=", year]]


def pick_measure(
    rng: random.Random, sc: Scene, ok: Callable[[Measure], bool] = lambda m: True
) -> tuple[Source, Measure, int | None]:
    """A measure (of either table) that `ok` accepts, and a year when its table has years."""
    options = [(src, m) for src in (sc.fact, sc.attr) for m in src.measures if ok(m)]
    src, m = rng.choice(options)
    return src, m, (rng.choice(years_of(src)) if src.time else None)


def missing_note(rows: Sequence[Row], cols: Sequence[str], entities: str) -> str:
    """The sentence a question adds when the rows it ranges over miss a value it uses."""
    if any(r[c] is None for r in rows for c in cols):
        return f"Leave out {entities} whose figure is missing."
    return ""


def values(rows: Sequence[Row], col: str) -> list[float]:
    return [r[col] for r in rows if r[col] is not None]


def threshold(
    rng: random.Random, rows: Sequence[Row], col: str, target: float, op: str, decimals: int
) -> float | int | None:
    """A round threshold that `target` meets with `op`, just past one of the nearest values
    that does not."""
    others = sorted({v for v in values(rows, col) if (v < target if op == ">" else v > target)})
    if not others:
        return None
    nearest_first = others[::-1] if op == ">" else others
    other = nearest_first[rng.randint(0, min(2, len(nearest_first) - 1))]
    return nice_between(min(other, target), max(other, target), decimals)


def condition_text(m: Measure, op: str, v: float | int, plural: bool) -> str:
    verbs = {"has": "have", "was": "were"} if plural else {"has": "has", "was": "was"}
    return (m.above if op == ">" else m.below).format(v=fmt_threshold(v, m.grouping), **verbs)


def _signed(row: Row, expr: Any, direction: str) -> float:
    """An ORDER BY key of a row (a column, or ``["-", a, b]``), negated for ``desc``."""
    value = row[expr[1]] - row[expr[2]] if isinstance(expr, list) else row[expr]
    return -value if direction == "desc" else value


def best(
    rows: Sequence[Row], m: Measure, direction: str, key: str, tiebreak: bool
) -> tuple[list[Row], list[list[Any]], str]:
    """Rows ranked best first (missing values left out), the ORDER BY of the check, and the
    sentence about ties the question adds.

    With `tiebreak`, a measure's own tie-break (points: goal difference, mirrored for the bottom
    of the table) is always stated, and a tie that remains at the top is broken by the name in
    alphabetical order, stated too. Without it, a tie at the top raises `Retry`."""
    flip = {"asc": "desc", "desc": "asc"}
    order: list[list[Any]] = [[m.col, direction]]
    texts = []
    if tiebreak and m.tiebreak:
        order += [[e, d if direction == "desc" else flip[d]] for e, d in m.tiebreak]
        texts.append(m.tiebreak_text)
    keys = [list(o) for o in order]

    def rank(r: Row) -> tuple[float, ...]:
        return tuple(_signed(r, e, d) for e, d in keys)

    ranked = sorted((r for r in rows if r[m.col] is not None), key=rank)
    if len(ranked) >= 2 and rank(ranked[0]) == rank(ranked[1]):
        if not tiebreak:
            raise Retry
        ranked.sort(key=lambda r: (rank(r), r[key]))
        order.append([key, "asc"])
        texts.append("If several are tied, give the name that comes first alphabetically.")
    return ranked, order, " ".join(texts)


def _q(q: Query, decimals: int | None = None) -> dict[str, Any]:
    check: dict[str, Any] = {"op": "query", "query": q}
    if decimals is not None:
        check["round"] = decimals
    return check


def _two(rng: random.Random, rows: Sequence[Row], col: str) -> tuple[Row, Row]:
    a, b = rng.sample([r for r in rows if r[col] is not None], 2)
    if a[col] == b[col]:
        raise Retry
    return a, b


def _cell(src: Source, e: Cell, col: str, year: int | None) -> tuple[Cell, Query]:
    """One entity's value of `col` (in `year` when the table has years) and its query."""
    where = [[src.key, "=", e], *year_where(src, year)]
    row = next(r for r in src.table.records() if all(r[c] == v for c, _, v in where))
    return row[col], query(src.table.name, col, where)

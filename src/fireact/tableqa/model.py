"""What the table-QA generator is made of: tables, the question vocabulary of their columns,
and the number and query helpers every question kind uses.

Owns the kinds' names (`KINDS`), the record and check types, `Retry`, the dataclasses a domain
describes its tables with (`Table`, `Measure`, `Source`, `TextAttr`, `Category`, `Ratio`,
`Scene`), their ``field: text`` forms (`measures`, `text_attrs`), and `fmt_answer`,
`fmt_threshold`, `nice_between`, `sentence`, `yp`, `query`, `holds` (see
`fireact.tableqa.generate` for the rules).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fireact.tableqa.data import table_json

KINDS = (
    "lookup",
    "filter",
    "count",
    "sum",
    "average",
    "comparison",
    "argmax",
    "join",
    "arithmetic",
)

Cell = str | int | float | None
Row = dict[str, Cell]
Record = dict[str, Any]
Query = dict[str, Any]
Built = tuple[str, str, dict[str, Any], set[str]]  # question, answer, check, tables read


class Retry(Exception):
    """This draw gives no unambiguous question; the caller draws again."""


# ---------------------------------------------------------------------------------------------


@dataclass
class Table:
    """A named table: a header and rows of cells, in the order they are shipped."""

    name: str
    header: list[str]
    rows: list[list[Cell]]

    def records(self) -> list[Row]:
        return [dict(zip(self.header, row, strict=True)) for row in self.rows]

    def to_json(self) -> dict[str, Any]:
        return table_json(self.name, self.header, self.rows)


@dataclass(frozen=True)
class Measure:
    """A numeric column and the phrases that ask about it.

    Templates use ``{e}`` (an entity, or a description of one), ``{y}`` (" in 2021" or ""),
    ``{a}`` / ``{b}`` (two entities), ``{v}`` (a threshold) and ``{has}`` / ``{was}`` (the verb
    in the singular or plural). ``cmp_*`` are true when value(a) ``rel`` value(b); ``diff`` asks
    for value(a) - value(b) where that is positive.
    """

    col: str
    decimals: int
    lookup: tuple[str, ...]
    above: str
    below: str
    most: str
    least: str
    cmp_yn: str
    cmp_which: str
    diff: str
    the: str
    unit: str = ""  # a sentence, e.g. "Answer in millions of US dollars."
    total: str = ""  # "" : never summed
    average: str = ""  # "" : never averaged
    rel: str = ">"
    positive: bool = False  # always > 0, so a percentage change is defined
    tiebreak: tuple[tuple[Any, str], ...] = ()  # extra ORDER BY keys stated by `tiebreak_text`
    tiebreak_text: str = ""
    prep: str = "of"  # "the total revenue of ...", "the total number of goals scored by ..."
    grouping: bool = True  # thresholds with thousands separators (not for years)


@dataclass(frozen=True)
class Source:
    """A table whose rows are about one entity each (per year when it has a ``time`` column)."""

    table: Table
    key: str
    time: str | None
    measures: tuple[Measure, ...]


@dataclass(frozen=True)
class TextAttr:
    """A text column of the entity table; ``unique`` names an entity by it (values are unique)."""

    col: str
    lookup: tuple[str, ...]
    unique: str = ""


@dataclass(frozen=True)
class Category:
    """A column of repeated labels that defines subsets ("the companies in the Energy sector")."""

    col: str
    singular: str  # "in the {v} sector"
    plural: str  # "the companies in the {v} sector"


@dataclass(frozen=True)
class Ratio:
    """A derived figure: numerator / denominator * factor, both from one entity's rows."""

    question: str
    num: tuple[str, str]  # (source: "fact" / "attr", column)
    den: tuple[str, str]
    factor: float
    decimals: int
    rounding: str


@dataclass
class Scene:
    """One example's tables and what questions can be asked about them."""

    entity: str
    entities: str
    fact: Source
    attr: Source
    order: tuple[str, ...]  # shipped order of the tables
    texts: tuple[TextAttr, ...]
    categories: tuple[Category, ...]
    ratios: tuple[Ratio, ...]

    def source(self, role: str) -> Source:
        return self.fact if role == "fact" else self.attr


def _blocks(spec: str) -> list[dict[str, Any]]:
    """Blocks of ``field: text`` lines, each starting with ``col``; ``lookup`` templates are
    separated by `` | ``."""
    blocks: list[dict[str, Any]] = []
    for line in spec.strip().splitlines():
        key, _, text = line.strip().partition(": ")
        if not key:
            continue
        if key == "col":
            blocks.append({})
        blocks[-1][key] = tuple(text.split(" | ")) if key == "lookup" else text
    return blocks


def measures(spec: str, **extra: dict[str, Any]) -> dict[str, Measure]:
    """Measures by column from `_blocks` of ``field: text`` lines: ``decimals`` is an integer,
    ``positive`` / ``grouping`` are ``true`` / ``false``; `extra` maps a field that is not text
    (``tiebreak``) to its value by column."""
    out = {}
    for fields in _blocks(spec):
        fields["decimals"] = int(fields["decimals"])
        for flag in ("positive", "grouping"):
            if flag in fields:
                fields[flag] = fields[flag] == "true"
        for name, by_col in extra.items():
            if fields["col"] in by_col:
                fields[name] = by_col[fields["col"]]
        out[fields["col"]] = Measure(**fields)
    return out


def text_attrs(spec: str) -> tuple[TextAttr, ...]:
    """Text columns from `_blocks` of ``col`` / ``lookup`` / optional ``unique`` lines."""
    return tuple(TextAttr(**fields) for fields in _blocks(spec))


TWO_DECIMALS = "Round to two decimal places."


# ---------------------------------------------------------------------------------------------
# numbers


def fmt_answer(value: float | int, decimals: int) -> str:
    """The gold text of a number: an integer, or exactly `decimals` decimals."""
    if decimals == 0:
        return str(int(round(value)))
    return f"{value:.{decimals}f}"


def fmt_threshold(value: float | int, grouping: bool = True) -> str:
    """A threshold as a question writes it: thousands separators (unless a year), no trailing
    zeros."""
    comma = "," if grouping else ""
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):{comma}}"
    return f"{value:{comma}}"


def nice_between(lo: float, hi: float, decimals: int) -> float | int | None:
    """The roundest number strictly between `lo` and `hi` with at most `decimals` decimals."""
    if not lo < hi:
        return None
    top = max(abs(lo), abs(hi))
    exponent = int(math.floor(math.log10(top))) if top > 0 else 0
    for e in range(exponent, -decimals - 1, -1):
        step = 10.0**e
        candidate = round((math.floor(lo / step) + 1) * step, max(0, -e))
        if lo < candidate < hi:
            return int(candidate) if e >= 0 else candidate
    return None


def sentence(*parts: str) -> str:
    """Question parts joined by single spaces, empty parts left out."""
    return " ".join(p for p in parts if p)


def yp(year: int | None) -> str:
    return f" in {year}" if year is not None else ""


def query(
    table: str,
    select: str | list[str],
    where: Sequence[Sequence[Any]] = (),
    order: Sequence[Sequence[Any]] = (),
    join: tuple[str, str] | None = None,
) -> Query:
    """The check form of one SQL query (see the module docstring)."""
    q: Query = {"from": table, "select": select}
    if join is not None:
        q["join"], q["using"] = join
    if where:
        q["where"] = [list(w) for w in where]
    if order:
        q["order"] = [list(o) for o in order]
    return q


def holds(value: Cell, op: str, target: Cell) -> bool:
    """SQL's comparison: a missing value meets no condition."""
    if op == "is null":
        return value is None
    if value is None:
        return False
    if op == "=":
        return value == target
    if op == ">":
        return value > target
    if op == "<":
        return value < target
    raise ValueError(op)

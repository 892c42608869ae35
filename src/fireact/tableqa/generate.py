"""The seeded generator of the table-QA task: realistic tables and questions with verified answers.

Owns `generate` (``n`` examples from a seed, byte-for-byte the same on every run), the record
format, which kind each example asks and the CLI that wrote the shipped splits::

    python -m fireact.tableqa.generate --split dev --n 200 --seed 1 --out src/fireact/tableqa/data/dev.jsonl
    python -m fireact.tableqa.generate --split test --n 500 --seed 2 --out src/fireact/tableqa/data/test.jsonl

The parts, re-exported here: the tables, column vocabulary and number helpers
(`fireact.tableqa.model`), the three table domains (`fireact.tableqa.domains`), the question
kinds with their templates (`fireact.tableqa.questions`, `fireact.tableqa.arithmetic`,
sharing `fireact.tableqa.question_parts`). This docstring states the rules they all keep.

A record (one JSONL line)::

    {"id": "tableqa/dev/0", "question": "...", "answer": "1234.5",
     "tables": [{"name": "financials", "header": ["company", "year", ...], "rows": [[...], ...]}],
     "kind": "lookup", "check": {...}}

``answer`` is always a string: a cell's text, ``yes`` / ``no``, or a number written without
thousands separators (an integer, or exactly as many decimals as the question's rounding; see
`fireact.tableqa.score` for how a prediction is compared with it). ``check`` is the operation
behind the answer in a small structured form (table, selected column or aggregate, filters,
ordering, the arithmetic that combines two values), so a test can recompute every answer with
SQL without parsing the English question. The answer itself is computed here, in Python.

Domains (each example gets its own freshly drawn tables; names are SQL identifiers, columns are
snake_case with the unit in the name, a missing value is JSON ``null``):

* companies: ``companies(company, sector, headquarters, founded_year, employees)`` and
  ``financials(company, year, revenue_musd, net_income_musd)``, 3-4 consecutive years;
* football: ``standings(team, played, wins, draws, losses, goals_for, goals_against, points)``
  from a simulated double round robin (3 points a win, 1 a draw), simulated again until two
  teams are level on points (in half of the tables, level at the top or bottom), and ``teams(team, city, founded_year, stadium, stadium_capacity,
  avg_attendance)``;
* countries: ``countries(country, continent, capital, population_millions, area_km2)`` with
  real names, capitals and areas and populations perturbed by up to 4 %, and
  ``indicators(country, year, gdp_busd, unemployment_pct, life_expectancy_years)``, 2-3 years of
  synthetic figures around real magnitudes. The figures are not a source of facts.

Kinds: ``lookup`` (one cell), ``filter`` (the one entity meeting two conditions), ``count``,
``sum``, ``average``, ``comparison`` (yes/no, or which of two), ``argmax`` (highest / lowest,
or the year of an entity's peak), ``join`` (needs both tables: a subset defined in one, the
figure in the other), ``arithmetic`` (difference, change, percentage change or a ratio of
retrieved numbers). Each kind has several templates; kinds take turns, so a split of ``n``
examples has ``n // 9`` or one more of each.

Rules that keep answers unambiguous (each also holds in the recomputation of the tests):

* thresholds are round numbers strictly between two values of the table, so ``>`` and ``>=``
  agree; a filter question is only asked when exactly one entity meets both conditions;
* a missing value never meets a condition and is skipped by sums and averages (SQL's rules);
  whenever the rows a question ranges over hold a missing value in a column it uses, the
  question says so ("Leave out ... whose figure is missing." / "Skip missing values.");
  a lookup or comparison never asks for a missing cell;
* ranking (``argmax``, and ``join``'s best of a subset): a question on points always states the
  league's tie-break (goal difference, mirrored for the bottom); a tie that remains at the top,
  on any column, is broken by the name in alphabetical order, and the question says so. A year
  question with a tied peak, a two-way comparison of equal values and a ``join`` asking for an
  attribute of a tied best are drawn again instead;
* counts are at least 1 (threshold and category counts also leave someone out); subsets have at least two members and are not the whole
  table; rounding is stated in the question (two decimals for averages, ratios and percentage
  changes, the nearest dollar for GDP per person); sums and differences keep the column's
  decimals, which is exact.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from fireact.tableqa.arithmetic import k_arithmetic
from fireact.tableqa.domains import DOMAINS
from fireact.tableqa.model import (
    KINDS,
    TWO_DECIMALS,
    Built,
    Category,
    Cell,
    Measure,
    Query,
    Ratio,
    Record,
    Retry,
    Row,
    Scene,
    Source,
    Table,
    TextAttr,
    fmt_answer,
    fmt_threshold,
    holds,
    measures,
    nice_between,
    query,
    sentence,
    yp,
)
from fireact.tableqa.questions import (
    k_argmax,
    k_average,
    k_comparison,
    k_count,
    k_filter,
    k_join,
    k_lookup,
    k_sum,
)

__all__ = [
    "BUILDERS",
    "DOMAINS",
    "KINDS",
    "THE_NAMES",
    "TWO_DECIMALS",
    "Built",
    "Category",
    "Cell",
    "Measure",
    "Query",
    "Ratio",
    "Record",
    "Retry",
    "Row",
    "Scene",
    "Source",
    "Table",
    "TextAttr",
    "example",
    "fmt_answer",
    "fmt_threshold",
    "generate",
    "holds",
    "main",
    "measures",
    "nice_between",
    "query",
    "sentence",
    "to_jsonl",
    "yp",
]

# country names that take "the" in running text (the cell keeps the bare name)
THE_NAMES = re.compile(r"(?<![Tt]he )\b(United States|United Kingdom|Netherlands|Philippines)\b")

BUILDERS: dict[str, Callable[[random.Random, Scene], Built]] = {
    "lookup": k_lookup,
    "filter": k_filter,
    "count": k_count,
    "sum": k_sum,
    "average": k_average,
    "comparison": k_comparison,
    "argmax": k_argmax,
    "join": k_join,
    "arithmetic": k_arithmetic,
}

# ---------------------------------------------------------------------------------------------
# the generator


def example(seed: int, split: str, index: int) -> Record:
    """Example `index` of a split: its own random stream, so a prefix of a split does not
    depend on how many examples follow it."""
    rng = random.Random(f"fireact.tableqa:{seed}:{index}")
    kind = KINDS[index % len(KINDS)]
    for _ in range(200):
        sc = rng.choice(DOMAINS)(rng)
        try:
            question, answer, check, needed = BUILDERS[kind](rng, sc)
        except Retry:
            continue
        question = THE_NAMES.sub(r"the \1", question)
        names = [t for t in sc.order if t in needed or rng.random() < 0.3]
        tables = {sc.fact.table.name: sc.fact.table, sc.attr.table.name: sc.attr.table}
        return {
            "id": f"tableqa/{split}/{index}",
            "question": question,
            "answer": answer,
            "tables": [tables[name].to_json() for name in names],
            "kind": kind,
            "check": check,
        }
    raise RuntimeError(f"no unambiguous {kind} question in 200 draws (seed {seed}, {index})")


def generate(n: int, seed: int, split: str = "dev") -> list[Record]:
    """`n` examples of a split, the same for the same seed; ids are ``tableqa/{split}/{i}``."""
    return [example(seed, split, i) for i in range(n)]


def to_jsonl(records: Sequence[Record]) -> str:
    """The shipped bytes: one compact JSON object a line, UTF-8 text kept as is."""
    return "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fireact.tableqa.generate", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--split", default="dev", help="split name used in the ids")
    parser.add_argument("--n", type=int, required=True, help="number of examples")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", type=Path, help="JSONL file to write (default: stdout)")
    args = parser.parse_args(argv)
    text = to_jsonl(generate(args.n, args.seed, args.split))
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_name(args.out.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

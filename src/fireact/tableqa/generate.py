"""The seeded generator of the table-QA task: realistic tables and questions with verified answers.

Owns `generate` (``n`` examples from a seed, byte-for-byte the same on every run), the record
format, the three table domains, the question kinds (`KINDS`) with their templates, the rules
that keep every answer unambiguous, and the CLI that wrote the shipped splits::

    python -m fireact.tableqa.generate --split dev --n 200 --seed 1 --out src/fireact/tableqa/data/dev.jsonl
    python -m fireact.tableqa.generate --split test --n 500 --seed 2 --out src/fireact/tableqa/data/test.jsonl

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
import math
import random
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
# tables and what the templates know about their columns


@dataclass
class Table:
    """A named table: a header and rows of cells, in the order they are shipped."""

    name: str
    header: list[str]
    rows: list[list[Cell]]

    def records(self) -> list[Row]:
        return [dict(zip(self.header, row, strict=True)) for row in self.rows]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "header": list(self.header),
            "rows": [list(r) for r in self.rows],
        }


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


# ---------------------------------------------------------------------------------------------
# domain data

COMPANY_WORDS = (
    "Northwind", "Halvorsen", "Bluefin", "Cedarline", "Orion", "Kestrel", "Meridian", "Tamarack",
    "Solace", "Vantage", "Ironbridge", "Lumen", "Parkside", "Redwood", "Silverleaf", "Alder",
    "Brightwater", "Copperfield", "Driftwood", "Everstone", "Foxglove", "Granite Peak",
    "Harborview", "Juniper", "Larkspur", "Maplecrest", "Nimbus", "Oakhaven", "Pinnacle",
    "Quillon", "Riverbend", "Stonegate", "Thornbury", "Upland", "Westmark", "Yellowfield",
    "Zenith", "Ashcombe", "Blackwater", "Crestline",
)  # fmt: skip
SECTORS = {
    "Technology": ("Systems", "Software", "Networks", "Digital"),
    "Energy": ("Energy", "Power", "Renewables", "Petroleum"),
    "Retail": ("Stores", "Markets", "Outfitters", "Retail"),
    "Healthcare": ("Health", "Pharma", "Biotech", "Medical"),
    "Financials": ("Bank", "Capital", "Insurance", "Financial"),
    "Industrials": ("Industries", "Logistics", "Engineering", "Machinery"),
    "Consumer Goods": ("Foods", "Brands", "Beverages", "Apparel"),
}
HEADQUARTERS = (
    "United States", "Germany", "Japan", "United Kingdom", "Canada", "France", "South Korea",
    "Brazil", "India", "Sweden", "Netherlands", "Australia",
)  # fmt: skip
TEAM_ADJECTIVES = (
    "Crimson", "Northern", "Iron", "Golden", "Silver", "Royal", "Blue", "Harbor", "Highland",
    "Emerald", "Scarlet", "Thunder", "Coastal", "Black", "White", "Valley",
)  # fmt: skip
TEAM_ANIMALS = (
    "Falcons", "Wolves", "Stags", "Lions", "Hawks", "Bears", "Foxes", "Eagles", "Owls", "Ravens",
    "Tigers", "Otters", "Herons", "Bulls", "Rams", "Sharks",
)  # fmt: skip
CITIES = (
    "Riverton", "Eastbrook", "Kingsport", "Ashford", "Millbrook", "Westhaven", "Northgate",
    "Fairview", "Oakridge", "Lakeside", "Port Ellis", "Stonebridge", "Granville", "Redhill",
    "Bellmont", "Clearwater", "Harwick", "Dunmore", "Marston", "Elmstead", "Brackley", "Halston",
)  # fmt: skip
SURNAMES = (
    "Hadley", "Morrow", "Carver", "Ellison", "Prescott", "Whitlock", "Danvers", "Holloway",
    "Kendrick", "Lowry", "Ashby", "Fenwick", "Garland", "Merritt", "Radley", "Sutton",
)  # fmt: skip
# country, continent, capital, population (millions), area (km²), GDP (USD bn),
# unemployment (%), life expectancy (years): magnitudes around 2022, rounded
COUNTRIES = (
    ("Germany", "Europe", "Berlin", 83.8, 357588, 4070, 3.1, 80.6),
    ("France", "Europe", "Paris", 68.0, 551695, 2780, 7.3, 82.3),
    ("Italy", "Europe", "Rome", 58.9, 301340, 2010, 8.1, 83.0),
    ("Spain", "Europe", "Madrid", 47.6, 505990, 1400, 12.9, 83.1),
    ("Poland", "Europe", "Warsaw", 36.8, 312696, 690, 2.9, 77.4),
    ("Netherlands", "Europe", "Amsterdam", 17.7, 41850, 1010, 3.5, 81.7),
    ("Sweden", "Europe", "Stockholm", 10.5, 450295, 585, 7.5, 83.0),
    ("Portugal", "Europe", "Lisbon", 10.4, 92212, 255, 6.0, 81.8),
    ("Greece", "Europe", "Athens", 10.4, 131957, 219, 12.4, 80.7),
    ("Austria", "Europe", "Vienna", 9.1, 83879, 471, 4.8, 81.3),
    ("Norway", "Europe", "Oslo", 5.5, 385207, 579, 3.2, 83.2),
    ("Ireland", "Europe", "Dublin", 5.1, 70273, 533, 4.5, 82.4),
    ("Hungary", "Europe", "Budapest", 9.6, 93028, 177, 3.6, 76.4),
    ("Finland", "Europe", "Helsinki", 5.6, 338455, 281, 6.8, 81.9),
    ("Japan", "Asia", "Tokyo", 124.5, 377975, 4230, 2.6, 84.5),
    ("India", "Asia", "New Delhi", 1417.2, 3287263, 3390, 7.3, 72.0),
    ("Indonesia", "Asia", "Jakarta", 275.5, 1904569, 1320, 5.9, 71.8),
    ("Vietnam", "Asia", "Hanoi", 98.2, 331212, 409, 2.3, 75.4),
    ("Thailand", "Asia", "Bangkok", 71.7, 513120, 495, 1.0, 79.3),
    ("South Korea", "Asia", "Seoul", 51.6, 100210, 1670, 2.9, 83.7),
    ("Philippines", "Asia", "Manila", 115.6, 300000, 404, 5.4, 72.0),
    ("Malaysia", "Asia", "Kuala Lumpur", 33.9, 330803, 407, 3.9, 76.2),
    ("Bangladesh", "Asia", "Dhaka", 171.2, 148460, 460, 5.2, 73.7),
    ("Pakistan", "Asia", "Islamabad", 235.8, 881913, 375, 6.3, 66.1),
    ("Nigeria", "Africa", "Abuja", 218.5, 923768, 477, 5.0, 53.6),
    ("Egypt", "Africa", "Cairo", 111.0, 1002450, 477, 7.3, 70.2),
    ("Kenya", "Africa", "Nairobi", 54.0, 580367, 113, 5.7, 62.7),
    ("Ghana", "Africa", "Accra", 33.5, 238533, 73, 3.9, 63.9),
    ("Morocco", "Africa", "Rabat", 37.5, 446550, 130, 11.8, 74.0),
    ("Ethiopia", "Africa", "Addis Ababa", 123.4, 1104300, 126, 3.7, 65.0),
    ("Tanzania", "Africa", "Dodoma", 65.5, 945087, 76, 2.6, 66.2),
    ("Senegal", "Africa", "Dakar", 17.3, 196722, 28, 3.7, 68.0),
    ("Brazil", "South America", "Brasília", 215.3, 8515767, 1920, 9.2, 73.4),
    ("Argentina", "South America", "Buenos Aires", 46.2, 2780400, 632, 6.8, 75.4),
    ("Colombia", "South America", "Bogotá", 51.9, 1141748, 344, 11.2, 72.8),
    ("Peru", "South America", "Lima", 34.0, 1285216, 243, 7.6, 72.4),
    ("Chile", "South America", "Santiago", 19.6, 756102, 301, 7.9, 78.9),
    ("Uruguay", "South America", "Montevideo", 3.4, 176215, 71, 7.9, 75.8),
    ("Ecuador", "South America", "Quito", 18.0, 256369, 115, 3.8, 73.7),
    ("United States", "North America", "Washington, D.C.", 333.3, 9833520, 25460, 3.6, 76.4),
    ("Canada", "North America", "Ottawa", 38.9, 9984670, 2140, 5.3, 81.7),
    ("Mexico", "North America", "Mexico City", 127.5, 1964375, 1415, 3.3, 70.2),
    ("Australia", "Oceania", "Canberra", 26.0, 7692024, 1690, 3.7, 83.3),
    ("New Zealand", "Oceania", "Wellington", 5.1, 268021, 247, 3.3, 82.1),
)

# country names that take "the" in running text (the cell keeps the bare name)
THE_NAMES = re.compile(r"(?<![Tt]he )\b(United States|United Kingdom|Netherlands|Philippines)\b")
USD_M = "Answer in millions of US dollars."

REVENUE = Measure(
    "revenue_musd", 1,
    lookup=("What was the revenue of {e}{y}?", "How much revenue did {e} report{y}?",
            "According to the table, what revenue did {e} have{y}?"),
    above="had revenue above {v} million US dollars",
    below="had revenue below {v} million US dollars",
    most="had the highest revenue", least="had the lowest revenue",
    cmp_yn="Did {a} have more revenue than {b}{y}?",
    cmp_which="Which company had more revenue{y}: {a} or {b}?",
    diff="How much more revenue did {a} report than {b}{y}?",
    the="the revenue", unit=USD_M, total="total revenue", average="average revenue",
    positive=True,
)  # fmt: skip
NET_INCOME = Measure(
    "net_income_musd", 1,
    lookup=("What was the net income of {e}{y}?", "How much net income did {e} earn{y}?"),
    above="had net income above {v} million US dollars",
    below="had net income below {v} million US dollars",
    most="had the highest net income", least="had the lowest net income",
    cmp_yn="Did {a} earn more net income than {b}{y}?",
    cmp_which="Which company earned more net income{y}: {a} or {b}?",
    diff="How much more net income did {a} earn than {b}{y}?",
    the="the net income", unit=USD_M, total="total net income",
    average="average net income",
)  # fmt: skip
EMPLOYEES = Measure(
    "employees", 0,
    lookup=("How many employees does {e} have?", "What is the headcount of {e}?"),
    above="{has} more than {v} employees", below="{has} fewer than {v} employees",
    most="has the most employees", least="has the fewest employees",
    cmp_yn="Does {a} have more employees than {b}?",
    cmp_which="Which company has more employees: {a} or {b}?",
    diff="How many more employees does {a} have than {b}?",
    the="the number of employees", total="total number of employees",
    average="average number of employees", positive=True,
)  # fmt: skip


def founded(noun: str) -> Measure:
    return Measure(
        "founded_year", 0,
        lookup=("In which year was {e} founded?", "When was {e} founded? Give the year."),
        above="{was} founded after {v}", below="{was} founded before {v}",
        most="was founded most recently", least="was founded first",
        cmp_yn="Was {a} founded before {b}?",
        cmp_which=f"Which {noun} was founded earlier: {{a}} or {{b}}?",
        diff="How many years after {b} was {a} founded?",
        the="the founding year", rel="<", grouping=False,
    )  # fmt: skip


def tally(
    col: str, verb: str, verbed: str, done: str, noun: str, lookup: tuple[str, ...]
) -> Measure:
    """A standings column counted in matches or goals: to `verb`, `verbed` (past), `done`
    (participle)."""
    return Measure(
        col, 0, lookup=lookup,
        above=f"{verbed} more than {{v}} {noun}", below=f"{verbed} fewer than {{v}} {noun}",
        most=f"{verbed} the most {noun}", least=f"{verbed} the fewest {noun}",
        cmp_yn=f"Did {{a}} {verb} more {noun} than {{b}}?",
        cmp_which=f"Which team {verbed} more {noun}: {{a}} or {{b}}?",
        diff=f"How many more {noun} did {{a}} {verb} than {{b}}?",
        the=f"the number of {noun} {done}", total=f"total number of {noun} {done}",
        average=f"average number of {noun} {done}", prep="by",
    )  # fmt: skip


WINS = tally("wins", "win", "won", "won", "matches",
             ("How many wins did {e} record?", "How many matches did {e} win?"))  # fmt: skip
DRAWS = tally("draws", "draw", "drew", "drawn", "matches",
              ("How many draws did {e} have?", "How many of their matches did {e} draw?"))  # fmt: skip
LOSSES = tally("losses", "lose", "lost", "lost", "matches",
               ("How many matches did {e} lose?", "How many defeats did {e} suffer?"))  # fmt: skip
GOALS_FOR = tally("goals_for", "score", "scored", "scored", "goals",
                  ("How many goals did {e} score?", "How many goals did {e} score over the season?"))  # fmt: skip
GOALS_AGAINST = tally("goals_against", "concede", "conceded", "conceded", "goals",
                      ("How many goals did {e} concede?", "How many goals were scored against {e}?"))  # fmt: skip
POINTS = Measure(
    "points", 0,
    lookup=("How many points did {e} finish with?", "How many points did {e} collect?"),
    above="finished with more than {v} points", below="finished with fewer than {v} points",
    most="finished with the most points", least="finished with the fewest points",
    cmp_yn="Did {a} finish with more points than {b}?",
    cmp_which="Which team finished with more points: {a} or {b}?",
    diff="How many more points did {a} collect than {b}?",
    the="the points total", total="total number of points", average="average number of points",
    prep="collected by",
    tiebreak=((["-", "goals_for", "goals_against"], "desc"),),
    tiebreak_text="Teams level on points are ranked by goal difference (goals scored minus goals conceded).",
)  # fmt: skip
CAPACITY = Measure(
    "stadium_capacity", 0,
    lookup=("How many spectators does the stadium of {e} hold?",
            "What is the capacity of the home stadium of {e}?"),
    above="{has} a stadium holding more than {v} spectators",
    below="{has} a stadium holding fewer than {v} spectators",
    most="has the largest stadium", least="has the smallest stadium",
    cmp_yn="Does the stadium of {a} hold more spectators than that of {b}?",
    cmp_which="Which team has the bigger stadium: {a} or {b}?",
    diff="How many more spectators does the stadium of {a} hold than that of {b}?",
    the="the stadium capacity", total="combined stadium capacity",
    average="average stadium capacity", positive=True,
)  # fmt: skip
ATTENDANCE = Measure(
    "avg_attendance", 0,
    lookup=("What was the average home attendance of {e}?",
            "How many spectators did {e} draw to a home match on average?"),
    above="had an average attendance above {v}", below="had an average attendance below {v}",
    most="had the highest average attendance", least="had the lowest average attendance",
    cmp_yn="Did {a} draw bigger home crowds on average than {b}?",
    cmp_which="Which team had the higher average attendance: {a} or {b}?",
    diff="How many more spectators did {a} draw on average than {b}?",
    the="the average attendance", positive=True,
)  # fmt: skip
POPULATION = Measure(
    "population_millions", 1,
    lookup=("What is the population of {e}?", "How many people live in {e}?"),
    above="{has} a population above {v} million", below="{has} a population below {v} million",
    most="has the largest population", least="has the smallest population",
    cmp_yn="Does {a} have a larger population than {b}?",
    cmp_which="Which country has more inhabitants: {a} or {b}?",
    diff="How many more people live in {a} than in {b}?",
    the="the population", unit="Answer in millions.", total="total population",
    average="average population", positive=True,
)  # fmt: skip
AREA = Measure(
    "area_km2", 0,
    lookup=("What is the area of {e}?", "How large is {e} in area?"),
    above="{has} an area above {v} km²", below="{has} an area below {v} km²",
    most="has the largest area", least="has the smallest area",
    cmp_yn="Is {a} larger in area than {b}?",
    cmp_which="Which country is larger in area: {a} or {b}?",
    diff="How much larger in area is {a} than {b}?",
    the="the area", unit="Answer in square kilometres.", total="total area",
    average="average area", positive=True,
)  # fmt: skip
GDP = Measure(
    "gdp_busd", 1,
    lookup=("What was the GDP of {e}{y}?", "How large was the economy (GDP) of {e}{y}?"),
    above="had a GDP above {v} billion US dollars", below="had a GDP below {v} billion US dollars",
    most="had the largest GDP", least="had the smallest GDP",
    cmp_yn="Did {a} have a larger GDP than {b}{y}?",
    cmp_which="Which country had the larger GDP{y}: {a} or {b}?",
    diff="How much larger was the GDP of {a} than that of {b}{y}?",
    the="the GDP", unit="Answer in billions of US dollars.", total="combined GDP",
    average="average GDP", positive=True,
)  # fmt: skip
UNEMPLOYMENT = Measure(
    "unemployment_pct", 1,
    lookup=("What was the unemployment rate of {e}{y}?", "How high was unemployment in {e}{y}?"),
    above="had an unemployment rate above {v}%", below="had an unemployment rate below {v}%",
    most="had the highest unemployment rate", least="had the lowest unemployment rate",
    cmp_yn="Did {a} have a higher unemployment rate than {b}{y}?",
    cmp_which="Which country had the higher unemployment rate{y}: {a} or {b}?",
    diff="By how many percentage points was the unemployment rate of {a} higher than that of {b}{y}?",
    the="the unemployment rate", unit="Answer in percent.",
    average="average unemployment rate", positive=True,
)  # fmt: skip
LIFE = Measure(
    "life_expectancy_years", 1,
    lookup=("What was the life expectancy in {e}{y}?", "How long could people in {e} expect to live{y}?"),
    above="had a life expectancy above {v} years", below="had a life expectancy below {v} years",
    most="had the highest life expectancy", least="had the lowest life expectancy",
    cmp_yn="Was life expectancy in {a} higher than in {b}{y}?",
    cmp_which="Where was life expectancy higher{y}: {a} or {b}?",
    diff="How many years longer was life expectancy in {a} than in {b}{y}?",
    the="the life expectancy", unit="Answer in years.", average="average life expectancy",
    positive=True,
)  # fmt: skip

TWO_DECIMALS = "Round to two decimal places."


def _null(rng: random.Random, p: float, value: Cell) -> Cell:
    return None if rng.random() < p else value


def _years(rng: random.Random, lo: int, hi: int, counts: Sequence[int]) -> list[int]:
    end, k = rng.randint(lo, hi), rng.choice(counts)
    return list(range(end - k + 1, end + 1))


def companies_scene(rng: random.Random) -> Scene:
    """Companies (sector, headquarters, founding year, headcount) and their yearly financials."""
    n = rng.randint(6, 9)
    sectors = rng.sample(sorted(SECTORS), 3)
    hqs = rng.sample(HEADQUARTERS, 3)
    words = rng.sample(COMPANY_WORDS, n)
    years = _years(rng, 2020, 2024, (3, 4))
    companies, financials = [], []
    for word in sorted(words):
        sector = rng.choice(sectors)
        name = f"{word} {rng.choice(SECTORS[sector])}"
        revenue = math.exp(rng.uniform(math.log(80), math.log(40000)))
        employees = max(20, int(round(revenue * rng.uniform(2, 9), -1)))
        founded_year = rng.randint(1895, 2016)
        companies.append([name, sector, rng.choice(hqs), founded_year, _null(rng, 0.12, employees)])
        margin = rng.uniform(-0.05, 0.2)
        for year in years:
            revenue *= 1 + rng.uniform(-0.12, 0.25)
            margin = min(0.3, max(-0.15, margin + rng.uniform(-0.04, 0.04)))
            financials.append(
                [
                    name,
                    year,
                    _null(rng, 0.05, round(revenue, 1)),
                    _null(rng, 0.06, round(revenue * margin, 1)),
                ]
            )
    attr = Table(
        "companies", ["company", "sector", "headquarters", "founded_year", "employees"], companies
    )
    fact = Table("financials", ["company", "year", "revenue_musd", "net_income_musd"], financials)
    return Scene(
        "company",
        "companies",
        Source(fact, "company", "year", (REVENUE, NET_INCOME)),
        Source(attr, "company", None, (EMPLOYEES, founded("company"))),
        ("companies", "financials"),
        texts=(
            TextAttr("sector", ("In which sector does {e} operate?", "What sector is {e} in?")),
            TextAttr(
                "headquarters",
                ("In which country is {e} headquartered?", "Where is {e} headquartered?"),
            ),
        ),
        categories=(
            Category("sector", "in the {v} sector", "the companies in the {v} sector"),
            Category("headquarters", "headquartered in {v}", "the companies headquartered in {v}"),
        ),
        ratios=(
            Ratio(
                "What was the net profit margin of {e}{y} (net income as a percentage of revenue)?",
                ("fact", "net_income_musd"),
                ("fact", "revenue_musd"),
                100,
                2,
                TWO_DECIMALS,
            ),
        ),
    )


def _poisson(rng: random.Random, lam: float) -> int:
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _season(rng: random.Random, names: list[str]) -> list[list[Cell]]:
    """Standings of a double round robin between `names`, best first."""
    strength = {name: rng.uniform(0.7, 1.45) for name in names}
    stats = {name: [0, 0, 0, 0, 0] for name in names}  # wins, draws, losses, for, against
    for home in names:
        for away in names:
            if home == away:
                continue
            ratio = strength[home] / strength[away]
            h = _poisson(rng, 1.5 * ratio**0.8)
            a = _poisson(rng, 1.15 / ratio**0.8)
            for team, gf, ga in ((home, h, a), (away, a, h)):
                s = stats[team]
                s[0 if gf > ga else 1 if gf == ga else 2] += 1
                s[3] += gf
                s[4] += ga
    played = 2 * (len(names) - 1)
    rows: list[list[Cell]] = [
        [name, played, w, d, lo, gf, ga, 3 * w + d] for name, (w, d, lo, gf, ga) in stats.items()
    ]
    rows.sort(key=lambda r: (-r[7], -(r[5] - r[6]), -r[5], r[0]))
    return rows


def football_scene(rng: random.Random) -> Scene:
    """A league season (standings) and the clubs (city, founding year, stadium, crowds)."""
    n = rng.randint(8, 10)
    names = [
        f"{a} {b}"
        for a, b in zip(rng.sample(TEAM_ADJECTIVES, n), rng.sample(TEAM_ANIMALS, n), strict=True)
    ]
    at_an_end = rng.random() < 0.5
    for _ in range(50):  # teams level on points on purpose, often at the top or bottom
        standings = _season(rng, names)
        points = [r[7] for r in standings]
        if points[0] == points[1] or points[-1] == points[-2]:
            break
        if not at_an_end and len(set(points)) < len(points):
            break
    cities = rng.sample(CITIES, n)
    surnames = rng.sample(SURNAMES, n)
    teams = []
    for name, city, surname in zip(sorted(names), cities, surnames, strict=True):
        capacity = int(round(rng.uniform(8000, 62000), -1))
        attendance = int(capacity * rng.uniform(0.55, 0.98))
        stadium = f"{surname} {rng.choice(('Park', 'Stadium', 'Arena', 'Ground'))}"
        teams.append(
            [name, city, rng.randint(1872, 1995), stadium, capacity, _null(rng, 0.15, attendance)]
        )
    fact = Table(
        "standings",
        ["team", "played", "wins", "draws", "losses", "goals_for", "goals_against", "points"],
        standings,
    )
    attr = Table(
        "teams",
        ["team", "city", "founded_year", "stadium", "stadium_capacity", "avg_attendance"],
        teams,
    )
    return Scene(
        "team",
        "teams",
        Source(fact, "team", None, (WINS, DRAWS, LOSSES, GOALS_FOR, GOALS_AGAINST, POINTS)),
        Source(attr, "team", None, (founded("club"), CAPACITY, ATTENDANCE)),
        ("standings", "teams"),
        texts=(
            TextAttr(
                "city",
                ("Which city is the home of {e}?", "Which city do {e} play in?"),
                unique="the team based in {v}",
            ),
            TextAttr(
                "stadium",
                (
                    "What is the name of the home stadium of {e}?",
                    "Where do {e} play their home matches?",
                ),
                unique="the team that plays at {v}",
            ),
        ),
        categories=(),
        ratios=(
            Ratio(
                "How many points per match did {e} collect on average?",
                ("fact", "points"),
                ("fact", "played"),
                1,
                2,
                TWO_DECIMALS,
            ),
            Ratio(
                "What percentage of their matches did {e} win?",
                ("fact", "wins"),
                ("fact", "played"),
                100,
                2,
                TWO_DECIMALS,
            ),
            Ratio(
                "On average, what percentage of their stadium's capacity did {e} fill at home matches?",
                ("attr", "avg_attendance"),
                ("attr", "stadium_capacity"),
                100,
                2,
                TWO_DECIMALS,
            ),
        ),
    )


def countries_scene(rng: random.Random) -> Scene:
    """Countries (continent, capital, population, area) and yearly economic indicators."""
    by_continent: dict[str, list[tuple[Any, ...]]] = {}
    for row in COUNTRIES:
        by_continent.setdefault(row[1], []).append(row)
    continents = rng.sample(sorted(c for c, rows in by_continent.items() if len(rows) >= 3), 3)
    chosen = []
    for continent in continents:
        chosen += rng.sample(
            by_continent[continent], min(len(by_continent[continent]), rng.randint(2, 4))
        )
    rng.shuffle(chosen)
    years = _years(rng, 2019, 2023, (2, 3))
    countries, indicators = [], []
    for name, continent, capital, pop, area, gdp, unemployment, life in chosen:
        countries.append([name, continent, capital, round(pop * rng.uniform(0.96, 1.04), 1), area])
        gdp *= rng.uniform(0.85, 1.1)
        for year in years:
            gdp *= 1 + rng.uniform(-0.04, 0.09)
            indicators.append(
                [
                    name,
                    year,
                    _null(rng, 0.06, round(gdp, 1)),
                    _null(rng, 0.06, round(max(0.5, unemployment + rng.uniform(-1.2, 1.2)), 1)),
                    _null(rng, 0.06, round(life + rng.uniform(-0.8, 0.8), 1)),
                ]
            )
    indicators.sort(key=lambda r: (r[0], r[1]))
    attr = Table(
        "countries",
        ["country", "continent", "capital", "population_millions", "area_km2"],
        countries,
    )
    fact = Table(
        "indicators",
        ["country", "year", "gdp_busd", "unemployment_pct", "life_expectancy_years"],
        indicators,
    )
    return Scene(
        "country",
        "countries",
        Source(fact, "country", "year", (GDP, UNEMPLOYMENT, LIFE)),
        Source(attr, "country", None, (POPULATION, AREA)),
        ("countries", "indicators"),
        texts=(
            TextAttr(
                "capital",
                ("What is the capital of {e}?", "Which city is the capital of {e}?"),
                unique="the country whose capital is {v}",
            ),
            TextAttr(
                "continent", ("On which continent is {e}?", "Which continent is {e} part of?")
            ),
        ),
        categories=(Category("continent", "in {v}", "the countries in {v}"),),
        ratios=(
            Ratio(
                "What is the population density of {e} in people per square kilometre?",
                ("attr", "population_millions"),
                ("attr", "area_km2"),
                1_000_000,
                2,
                TWO_DECIMALS,
            ),
            Ratio(
                "Using the population in the countries table, what was the GDP per person of {e}{y}, in US dollars?",
                ("fact", "gdp_busd"),
                ("attr", "population_millions"),
                1000,
                0,
                "Round to the nearest dollar.",
            ),
        ),
    )


DOMAINS: tuple[Callable[[random.Random], Scene], ...] = (
    companies_scene,
    football_scene,
    countries_scene,
)

# ---------------------------------------------------------------------------------------------
# helpers shared by the kinds


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


# ---------------------------------------------------------------------------------------------
# the kinds: each returns (question, answer, check, tables read) or raises Retry


def k_lookup(rng: random.Random, sc: Scene) -> Built:
    if rng.random() < 0.3:
        ta = rng.choice(sc.texts)
        row = rng.choice(sc.attr.table.records())
        e = row[sc.attr.key]
        q = query(sc.attr.table.name, ta.col, [[sc.attr.key, "=", e]])
        return rng.choice(ta.lookup).format(e=e), str(row[ta.col]), _q(q), {sc.attr.table.name}
    src, m, year = pick_measure(rng, sc)
    rows = [r for r in scope(src, year) if r[m.col] is not None]
    row = rng.choice(rows)
    e = row[src.key]
    question = sentence(rng.choice(m.lookup).format(e=e, y=yp(year)), m.unit)
    q = query(src.table.name, m.col, [[src.key, "=", e], *year_where(src, year)])
    return question, fmt_answer(row[m.col], m.decimals), _q(q), {src.table.name}


def _q(q: Query, decimals: int | None = None) -> dict[str, Any]:
    check: dict[str, Any] = {"op": "query", "query": q}
    if decimals is not None:
        check["round"] = decimals
    return check


FILTER_TEMPLATES = ("Which {ent} {c1} and {c2}{y}?", "Name the {ent} that {c1} and {c2}{y}.")
FILTER_CAT_TEMPLATES = ("Which {ent} {cat} {c}?", "Name the {ent} {cat} that {c}.")


def k_filter(rng: random.Random, sc: Scene) -> Built:
    use_category = bool(sc.categories) and rng.random() < 0.4
    if use_category:
        src, year = sc.attr, None
        cat = rng.choice(sc.categories)
        m = rng.choice(src.measures)
        rows = scope(src, None)
        target = rng.choice([r for r in rows if r[m.col] is not None])
        op = rng.choice((">", "<"))
        t = threshold(
            rng,
            [r for r in rows if r[cat.col] == target[cat.col]],
            m.col,
            target[m.col],
            op,
            m.decimals,
        )
        if t is None:
            raise Retry
        conds = [[cat.col, "=", target[cat.col]], [m.col, op, t]]
        texts = {
            "cat": cat.singular.format(v=target[cat.col]),
            "c": condition_text(m, op, t, plural=False),
        }
        question = rng.choice(FILTER_CAT_TEMPLATES).format(ent=sc.entity, **texts)
        cols = [m.col]
    else:
        src = rng.choice([s for s in (sc.fact, sc.attr) if len(s.measures) >= 2])
        year = rng.choice(years_of(src)) if src.time else None
        rows = scope(src, year)
        m1, m2 = rng.sample(src.measures, 2)
        target = rng.choice([r for r in rows if r[m1.col] is not None and r[m2.col] is not None])
        conds, texts = [], {}
        for m, name in ((m1, "c1"), (m2, "c2")):
            op = rng.choice((">", "<"))
            t = threshold(rng, rows, m.col, target[m.col], op, m.decimals)
            if t is None:
                raise Retry
            conds.append([m.col, op, t])
            texts[name] = condition_text(m, op, t, plural=False)
        question = rng.choice(FILTER_TEMPLATES).format(ent=sc.entity, y=yp(year), **texts)
        cols = [m1.col, m2.col]
    matches = [r for r in rows if all(holds(r[c], op, v) for c, op, v in conds)]
    if len(matches) != 1:
        raise Retry
    question = sentence(question, missing_note(rows, cols, sc.entities))
    q = query(src.table.name, src.key, conds + year_where(src, year))
    return question, str(matches[0][src.key]), _q(q), {src.table.name}


def k_count(rng: random.Random, sc: Scene) -> Built:
    roll = rng.random()
    if roll < 0.25 and sc.categories:
        cat = rng.choice(sc.categories)
        rows = scope(sc.attr, None)
        v = rng.choice(rows)[cat.col]
        n = sum(1 for r in rows if r[cat.col] == v)
        if n == len(rows):
            raise Retry
        question = f"How many {sc.entities} in the table are {cat.singular.format(v=v)}?"
        q = query(sc.attr.table.name, ["count"], [[cat.col, "=", v]])
        return question, str(n), _q(q), {sc.attr.table.name}
    src, m, year = pick_measure(rng, sc)
    rows = scope(src, year)
    if roll < 0.4:  # missing figures
        n = sum(1 for r in rows if r[m.col] is None)
        if n == 0:
            raise Retry
        question = f"For how many {sc.entities} is {m.the}{yp(year)} missing from the table?"
        q = query(src.table.name, ["count"], [[m.col, "is null", None], *year_where(src, year)])
        return question, str(n), _q(q), {src.table.name}
    distinct = sorted(set(values(rows, m.col)))
    if len(distinct) < 2:
        raise Retry
    i = rng.randrange(len(distinct) - 1)
    t = nice_between(distinct[i], distinct[i + 1], m.decimals)
    if t is None:
        raise Retry
    op = rng.choice((">", "<"))
    n = sum(1 for r in rows if holds(r[m.col], op, t))
    cond = condition_text(m, op, t, plural=True)
    template = rng.choice(
        ("How many {ents} {c}{y}?", "How many of the {ents} in the table {c}{y}?")
    )
    question = sentence(
        template.format(ents=sc.entities, c=cond, y=yp(year)),
        missing_note(rows, [m.col], sc.entities),
    )
    q = query(src.table.name, ["count"], [[m.col, op, t], *year_where(src, year)])
    return question, str(n), _q(q), {src.table.name}


def _aggregate(rng: random.Random, sc: Scene, agg: str) -> Built:
    """`sum` and `average`: over all entities (in a year), one entity over the years, or the
    entities of one category."""
    phrase = "total" if agg == "sum" else "average"
    src, m, year = pick_measure(rng, sc, lambda m: bool(getattr(m, phrase)))
    noun = getattr(m, phrase)
    decimals = m.decimals if agg == "sum" else 2
    rounding = "" if agg == "sum" else TWO_DECIMALS
    roll = rng.random()
    where: list[list[Any]]
    if src.time and roll < 0.35:
        e = rng.choice(scope(src, year))[src.key]
        rows = [r for r in src.table.records() if r[src.key] == e]
        ys = years_of(src)
        who = f"{e} over the years {ys[0]} to {ys[-1]}"
        where = [[src.key, "=", e]]
        year = None
    elif src is sc.attr and sc.categories and roll < 0.7:
        cat = rng.choice(sc.categories)
        v = rng.choice(scope(src, None))[cat.col]
        rows = [r for r in scope(src, None) if r[cat.col] == v]
        if len(rows) < 2 or len(rows) == len(src.table.rows):
            raise Retry
        who = cat.plural.format(v=v)
        where = [[cat.col, "=", v]]
    else:
        rows = scope(src, year)
        who = f"all {sc.entities} in the table"
        where = year_where(src, year)
    present = values(rows, m.col)
    if len(present) < 2:
        raise Retry
    value = sum(present) if agg == "sum" else sum(present) / len(present)
    note = "Skip missing values." if len(present) < len(rows) else ""
    template = rng.choice(("What was the {n} {p} {w}{y}?", "Give the {n} {p} {w}{y}."))
    question = sentence(
        template.format(n=noun, p=m.prep, w=who, y=yp(year)), note, m.unit, rounding
    )
    q = query(src.table.name, [agg if agg == "sum" else "avg", m.col], where)
    return question, fmt_answer(value, decimals), _q(q, decimals), {src.table.name}


def k_sum(rng: random.Random, sc: Scene) -> Built:
    return _aggregate(rng, sc, "sum")


def k_average(rng: random.Random, sc: Scene) -> Built:
    return _aggregate(rng, sc, "average")


def _two(rng: random.Random, rows: Sequence[Row], col: str) -> tuple[Row, Row]:
    a, b = rng.sample([r for r in rows if r[col] is not None], 2)
    if a[col] == b[col]:
        raise Retry
    return a, b


def k_comparison(rng: random.Random, sc: Scene) -> Built:
    src, m, year = pick_measure(rng, sc)
    if src.time and rng.random() < 0.3:  # one entity, two years
        e = rng.choice(scope(src, year))[src.key]
        rows = {r[src.time]: r for r in src.table.records() if r[src.key] == e}
        y1, y2 = rng.sample(sorted(rows), 2)
        v1, v2 = rows[y1][m.col], rows[y2][m.col]
        if v1 is None or v2 is None or v1 == v2:
            raise Retry
        question = f"Was {m.the} of {e} higher in {y2} than in {y1}?"
        left = query(src.table.name, m.col, [[src.key, "=", e], [src.time, "=", y2]])
        right = query(src.table.name, m.col, [[src.key, "=", e], [src.time, "=", y1]])
        answer = "yes" if v2 > v1 else "no"
        check = {"op": "compare", "left": left, "right": right, "relation": ">", "answer": "yes_no"}
        return question, answer, check, {src.table.name}
    a, b = _two(rng, scope(src, year), m.col)
    ea, eb = a[src.key], b[src.key]
    left = query(src.table.name, m.col, [[src.key, "=", ea], *year_where(src, year)])
    right = query(src.table.name, m.col, [[src.key, "=", eb], *year_where(src, year)])
    a_wins = a[m.col] > b[m.col] if m.rel == ">" else a[m.col] < b[m.col]
    check: dict[str, Any] = {"op": "compare", "left": left, "right": right, "relation": m.rel}
    if rng.random() < 0.5:
        check["answer"] = "yes_no"
        question = m.cmp_yn.format(a=ea, b=eb, y=yp(year))
        answer = "yes" if a_wins else "no"
    else:
        check["answer"], check["names"] = "which", [ea, eb]
        question = m.cmp_which.format(a=ea, b=eb, y=yp(year))
        answer = str(ea if a_wins else eb)
    return question, answer, check, {src.table.name}


ARGMAX_TEMPLATES = (
    "Which {ent} {most}{y}?",
    "According to the table, which {ent} {most}{y}?",
    "Among all {ents} in the table, which one {most}{y}?",
)


def k_argmax(rng: random.Random, sc: Scene) -> Built:
    src, m, year = pick_measure(rng, sc)
    direction = rng.choice(("desc", "asc"))
    high = direction == "desc"
    if src.time and rng.random() < 0.3:  # the year of one entity's peak
        e = rng.choice(scope(src, year))[src.key]
        rows = [r for r in src.table.records() if r[src.key] == e]
        ranked, order, _ = best(rows, m, direction, src.time, tiebreak=False)
        word = "highest" if high else "lowest"
        question = sentence(
            f"In which year was {m.the} of {e} at its {word}?",
            "Leave out years whose figure is missing." if len(ranked) < len(rows) else "",
        )
        q = query(src.table.name, src.time, [[src.key, "=", e]], order)
        return question, str(ranked[0][src.time]), _q(q), {src.table.name}
    rows = scope(src, year)
    ranked, order, tie = best(rows, m, direction, src.key, tiebreak=True)
    question = sentence(
        rng.choice(ARGMAX_TEMPLATES).format(
            ent=sc.entity, ents=sc.entities, most=m.most if high else m.least, y=yp(year)
        ),
        tie,
        missing_note(rows, [m.col], sc.entities),
    )
    q = query(src.table.name, src.key, year_where(src, year), order)
    return question, str(ranked[0][src.key]), _q(q), {src.table.name}


def _subset(rng: random.Random, sc: Scene) -> tuple[list[list[Any]], str, set[str]]:
    """Conditions on the entity table that pick a proper subset of at least two entities,
    the phrase naming them ("the companies in the Energy sector") and their names."""
    rows = scope(sc.attr, None)
    if sc.categories and rng.random() < 0.7:
        cat = rng.choice(sc.categories)
        v = rng.choice(rows)[cat.col]
        where: list[list[Any]] = [[cat.col, "=", v]]
        phrase = cat.plural.format(v=v)
    else:
        m = rng.choice(sc.attr.measures)
        distinct = sorted(set(values(rows, m.col)))
        if len(distinct) < 3:
            raise Retry
        i = rng.randrange(1, len(distinct) - 1)
        t = nice_between(distinct[i - 1], distinct[i], m.decimals)
        if t is None:
            raise Retry
        op = rng.choice((">", "<"))
        where = [[m.col, op, t]]
        phrase = f"the {sc.entities} that {condition_text(m, op, t, plural=True)}"
        if any(r[m.col] is None for r in rows):
            phrase += " (leaving out those whose figure is missing)"
    names = {r[sc.attr.key] for r in rows if all(holds(r[c], op, v) for c, op, v in where)}
    if not 2 <= len(names) < len(rows):
        raise Retry
    return where, phrase, names


def k_join(rng: random.Random, sc: Scene) -> Built:
    fact, attr = sc.fact, sc.attr
    join = (attr.table.name, fact.key)
    tables = {fact.table.name, attr.table.name}
    roll = rng.random()
    m = rng.choice(fact.measures)
    year = rng.choice(years_of(fact)) if fact.time else None
    rows = scope(fact, year)
    uniques = [ta for ta in sc.texts if ta.unique]
    if roll < 0.25 and uniques:  # a figure of the entity named by a unique attribute
        ta = rng.choice(uniques)
        row = rng.choice([r for r in rows if r[m.col] is not None])
        e = row[fact.key]
        v = next(r[ta.col] for r in attr.table.records() if r[attr.key] == e)
        who = ta.unique.format(v=v)
        question = sentence(rng.choice(m.lookup).format(e=who, y=yp(year)), m.unit)
        q = query(fact.table.name, m.col, [[ta.col, "=", v], *year_where(fact, year)], join=join)
        return question, fmt_answer(row[m.col], m.decimals), _q(q), tables
    direction = rng.choice(("desc", "asc"))
    most = m.most if direction == "desc" else m.least
    if roll < 0.5:  # a text attribute of the best entity
        ta = rng.choice(sc.texts)
        ranked, order, _ = best(rows, m, direction, fact.key, tiebreak=False)
        e = ranked[0][fact.key]
        v = next(r[ta.col] for r in attr.table.records() if r[attr.key] == e)
        question = sentence(
            ta.lookup[0].format(e=f"the {sc.entity} that {most}{yp(year)}"),
            missing_note(rows, [m.col], sc.entities),
        )
        q = query(fact.table.name, ta.col, year_where(fact, year), order, join=join)
        return question, str(v), _q(q), tables
    where, phrase, names = _subset(rng, sc)
    members = [r for r in rows if r[fact.key] in names]
    if roll < 0.75:  # the best of a subset
        ranked, order, tie = best(members, m, direction, fact.key, tiebreak=True)
        if not ranked:
            raise Retry
        question = sentence(
            f"Among {phrase}, which one {most}{yp(year)}?",
            tie,
            missing_note(members, [m.col], sc.entities),
        )
        q = query(fact.table.name, fact.key, where + year_where(fact, year), order, join=join)
        return question, str(ranked[0][fact.key]), _q(q), tables
    agg = "sum" if m.total and rng.random() < 0.5 else "avg"
    if agg == "avg" and not m.average:
        raise Retry
    present = values(members, m.col)
    if len(present) < 2:
        raise Retry
    value = sum(present) if agg == "sum" else sum(present) / len(present)
    decimals = m.decimals if agg == "sum" else 2
    question = sentence(
        f"What was the {m.total if agg == 'sum' else m.average} {m.prep} {phrase}{yp(year)}?",
        "Skip missing values." if len(present) < len(members) else "",
        m.unit,
        "" if agg == "sum" else TWO_DECIMALS,
    )
    q = query(fact.table.name, [agg, m.col], where + year_where(fact, year), join=join)
    return question, fmt_answer(value, decimals), _q(q, decimals), tables


def _cell(src: Source, e: Cell, col: str, year: int | None) -> tuple[Cell, Query]:
    """One entity's value of `col` (in `year` when the table has years) and its query."""
    where = [[src.key, "=", e], *year_where(src, year)]
    row = next(r for r in src.table.records() if all(r[c] == v for c, _, v in where))
    return row[col], query(src.table.name, col, where)


def k_arithmetic(rng: random.Random, sc: Scene) -> Built:
    roll = rng.random()
    if roll < 0.35:  # a ratio of two figures of one entity
        ratio = rng.choice(sc.ratios)
        num_src, den_src = sc.source(ratio.num[0]), sc.source(ratio.den[0])
        timed = num_src.time or den_src.time
        year = rng.choice(years_of(sc.fact)) if timed else None
        e = rng.choice(scope(sc.attr, None))[sc.attr.key]
        a, qa = _cell(num_src, e, ratio.num[1], year if num_src.time else None)
        b, qb = _cell(den_src, e, ratio.den[1], year if den_src.time else None)
        if a is None or b is None or b == 0:
            raise Retry
        value = a / b * ratio.factor
        question = sentence(ratio.question.format(e=e, y=yp(year)), ratio.rounding)
        check = {
            "op": "arith",
            "formula": "ratio",
            "a": qa,
            "b": qb,
            "factor": ratio.factor,
            "round": ratio.decimals,
        }
        return question, fmt_answer(value, ratio.decimals), check, {qa["from"], qb["from"]}
    src, m, year = pick_measure(rng, sc)
    if src.time and roll < 0.7:  # change of one entity's figure between two years
        e = rng.choice(scope(src, year))[src.key]
        y1, y2 = sorted(rng.sample(years_of(src), 2))
        v1, q1 = _cell(src, e, m.col, y1)
        v2, q2 = _cell(src, e, m.col, y2)
        if v1 is None or v2 is None:
            raise Retry
        if m.positive and rng.random() < 0.5:
            value, decimals, formula = (v2 - v1) / v1 * 100, 2, "pct_change"
            question = sentence(
                f"By what percentage did {m.the} of {e} change from {y1} to {y2}?",
                "Give a negative number for a fall.",
                TWO_DECIMALS,
            )
        else:
            value, decimals, formula = v2 - v1, m.decimals, "difference"
            question = sentence(
                f"By how much did {m.the} of {e} change from {y1} to {y2}?",
                "Give a negative number for a fall.",
                m.unit,
            )
        check = {"op": "arith", "formula": formula, "a": q2, "b": q1, "round": decimals}
        return question, fmt_answer(value, decimals), check, {src.table.name}
    a, b = _two(rng, scope(src, year), m.col)
    if a[m.col] < b[m.col]:
        a, b = b, a
    qa = query(src.table.name, m.col, [[src.key, "=", a[src.key]], *year_where(src, year)])
    qb = query(src.table.name, m.col, [[src.key, "=", b[src.key]], *year_where(src, year)])
    question = sentence(m.diff.format(a=a[src.key], b=b[src.key], y=yp(year)), m.unit)
    value = a[m.col] - b[m.col]
    check = {"op": "arith", "formula": "difference", "a": qa, "b": qb, "round": m.decimals}
    return question, fmt_answer(value, m.decimals), check, {src.table.name}


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

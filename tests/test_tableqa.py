"""The table-QA task: the seeded generator, its shipped splits re-checked by SQL, the scorer on
hand-checked cases, the reader of a user's JSONL (one-line errors) and the few-shot prompt.

The re-check compiles each example's ``check`` into SQL and runs it on the example's own tables
in SQLite (stdlib), a code path independent of the generator's Python; with DuckDB installed
(the engine of the ``sql[...]`` tool) the same queries run there too.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fireact.errors import FireactError
from fireact.tableqa import PROMPT_FILE, SPLITS
from fireact.tableqa.checks import compile_query
from fireact.tableqa.data import TableData, TableQAExample, read_tableqa
from fireact.tableqa.generate import (
    KINDS,
    fmt_answer,
    fmt_threshold,
    generate,
    main,
    nice_between,
    to_jsonl,
)
from fireact.tableqa.score import parse_number, score_tableqa
from fireact.tasks.base import Example, Score

SHIPPED = {"dev": (200, 1), "test": (500, 2)}  # split -> (n, seed) it was generated with


def shipped(split: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in SPLITS[split].read_text(encoding="utf-8").splitlines()]


# --- the generator ----------------------------------------------------------------------------


@pytest.mark.parametrize("split", sorted(SHIPPED))
def test_shipped_split_is_the_generator_output_byte_for_byte(split):
    n, seed = SHIPPED[split]
    assert SPLITS[split].read_bytes() == to_jsonl(generate(n, seed, split)).encode("utf-8")


def test_generator_is_deterministic_prefix_stable_and_seeded():
    assert to_jsonl(generate(30, 7, "dev")) == to_jsonl(generate(30, 7, "dev"))
    assert generate(10, 7, "dev") == generate(30, 7, "dev")[:10]
    assert [r["question"] for r in generate(10, 8)] != [r["question"] for r in generate(10, 7)]


def test_cli_writes_the_same_bytes(tmp_path, capsys):
    out = tmp_path / "sub" / "dev.jsonl"
    assert main(["--split", "dev", "--n", "12", "--seed", "5", "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == to_jsonl(generate(12, 5, "dev"))
    assert main(["--n", "3", "--seed", "5"]) == 0
    assert capsys.readouterr().out == to_jsonl(generate(3, 5, "dev"))


@pytest.mark.parametrize(
    ("split", "counts"),
    [
        ("dev", dict.fromkeys(KINDS, 22) | {"lookup": 23, "filter": 23}),
        ("test", dict.fromkeys(KINDS, 55) | dict.fromkeys(KINDS[:5], 56)),
    ],
)
def test_every_kind_in_both_splits(split, counts):
    assert Counter(r["kind"] for r in shipped(split)) == counts


@pytest.mark.parametrize("split", sorted(SHIPPED))
def test_shipped_sizes_and_record_format(split):
    records = shipped(split)
    assert SPLITS[split].stat().st_size < 1_000_000
    assert [r["id"] for r in records] == [f"tableqa/{split}/{i}" for i in range(len(records))]
    for r in records:
        assert list(r) == ["id", "question", "answer", "tables", "kind", "check"]
        assert isinstance(r["answer"], str) and r["answer"]
        assert 1 <= len(r["tables"]) <= 2
        for t in r["tables"]:
            assert re.fullmatch(r"[a-z_]+", t["name"])
            assert all(re.fullmatch(r"[a-z][a-z0-9_]*", c) for c in t["header"])
            assert all(len(row) == len(t["header"]) for row in t["rows"])
        assert len({t["name"] for t in r["tables"]}) == len(r["tables"])


@pytest.mark.parametrize("split", sorted(SHIPPED))
def test_ties_and_missing_values_occur_on_purpose(split):
    questions = [r["question"] for r in shipped(split)]
    cells = [c for r in shipped(split) for t in r["tables"] for row in t["rows"] for c in row]
    assert any("ranked by goal difference" in q for q in questions)
    assert any("comes first alphabetically" in q for q in questions)
    assert any("whose figure is missing" in q or "Skip missing" in q for q in questions)
    assert None in cells


def test_number_helpers():
    assert nice_between(1234.5, 1240.2, 1) == 1240
    assert nice_between(1950, 1962, 0) == 1960
    assert nice_between(7.41, 7.45, 1) is None
    assert nice_between(7.41, 7.48, 2) == 7.42
    assert nice_between(-230.4, -180.0, 1) == -200
    assert fmt_answer(6.2222222, 2) == "6.22"
    assert fmt_answer(1295.4, 0) == "1295"
    assert fmt_answer(49968.0, 2) == "49968.00"
    assert fmt_threshold(20000) == "20,000"
    assert fmt_threshold(1995, grouping=False) == "1995"
    assert fmt_threshold(7.5) == "7.5"


# --- every shipped answer re-checked by SQL ---------------------------------------------------


class Engine:
    """The example's tables in an in-memory database; `value` runs one check query."""

    def __init__(self, tables: list[dict[str, Any]], duck: Any = None) -> None:
        """SQLite, or the DuckDB connection `duck` (shared: `close` drops the tables)."""
        self.db = duck if duck is not None else sqlite3.connect(":memory:")
        self.names = [t["name"] for t in tables]
        for t in tables:
            cols = ", ".join(f'"{c}"' for c in t["header"])
            if duck is not None:  # typed columns, as the sql tool's tables would have
                types = [_duck_type([r[i] for r in t["rows"]]) for i in range(len(t["header"]))]
                cols = ", ".join(f'"{c}" {ty}' for c, ty in zip(t["header"], types, strict=True))
            self.db.execute(f'CREATE TABLE "{t["name"]}" ({cols})')
            row = "(" + ", ".join("?" for _ in t["header"]) + ")"
            values = ", ".join(row for _ in t["rows"])  # one statement: fast in both engines
            self.db.execute(
                f'INSERT INTO "{t["name"]}" VALUES {values}', [v for r in t["rows"] for v in r]
            )

    def value(self, q: dict[str, Any]) -> Any:
        sql, params, n_keys = compile_query(q)
        rows = self.db.execute(sql, params).fetchall()
        if n_keys:  # ranked: the top row must be strictly ahead of the next on the stated keys
            assert len(rows) >= 1
            if len(rows) >= 2:
                assert rows[0][1:] != rows[1][1:], (sql, rows[:2])
        else:  # a cell or an aggregate: exactly one row
            assert len(rows) == 1, (sql, params, rows)
        return rows[0][0]

    def close(self) -> None:
        for name in self.names:
            self.db.execute(f'DROP TABLE "{name}"')


def _duck_type(column: list[Any]) -> str:
    present = [v for v in column if v is not None]
    if all(isinstance(v, int) for v in present):
        return "BIGINT"
    if all(isinstance(v, int | float) for v in present):
        return "DOUBLE"
    return "VARCHAR"


def recheck(record: dict[str, Any], duck: Any = None) -> None:
    """Recompute `record`'s answer from its check with SQL (SQLite, or the DuckDB connection
    `duck`) and compare."""
    engine = Engine(record["tables"], duck)
    try:
        compare(record, engine)
    finally:
        engine.close()


def compare(record: dict[str, Any], engine: Engine) -> None:
    names = {t["name"] for t in record["tables"]}
    check, answer = record["check"], record["answer"]
    for q in (check.get(k) for k in ("query", "left", "right", "a", "b")):
        if q is not None:
            assert q["from"] in names and q.get("join", q["from"]) in names
    if check["op"] == "query":
        value = engine.value(check["query"])
        if "round" in check:
            assert_rounded(answer, value, check["round"])
        elif isinstance(value, str):
            assert answer == value
        else:
            assert float(answer) == value
    elif check["op"] == "compare":
        left, right = engine.value(check["left"]), engine.value(check["right"])
        assert left is not None and right is not None and left != right
        holds = left > right if check["relation"] == ">" else left < right
        if check["answer"] == "yes_no":
            assert answer == ("yes" if holds else "no")
        else:
            assert answer == check["names"][0 if holds else 1]
    else:
        assert check["op"] == "arith"
        a, b = engine.value(check["a"]), engine.value(check["b"])
        value = {
            "difference": lambda: a - b,
            "ratio": lambda: a / b * check["factor"],
            "pct_change": lambda: (a - b) / b * 100,
        }[check["formula"]]()
        assert_rounded(answer, value, check["round"])


def assert_rounded(answer: str, value: float, decimals: int) -> None:
    """`answer` is `value` rounded to `decimals` places, written with exactly that many."""
    pattern = r"-?\d+" if decimals == 0 else rf"-?\d+\.\d{{{decimals}}}"
    assert re.fullmatch(pattern, answer), answer
    assert abs(float(answer) - value) <= 0.5 * 10**-decimals + 1e-9, (answer, value)


@pytest.mark.parametrize("split", sorted(SHIPPED))
def test_every_shipped_answer_rechecked_by_sqlite(split):
    records = shipped(split)
    for r in records:
        recheck(r)
    assert len(records) == SHIPPED[split][0]


@pytest.mark.parametrize("split", sorted(SHIPPED))
def test_every_shipped_answer_rechecked_by_duckdb(split):
    duckdb = pytest.importorskip("duckdb")
    with duckdb.connect() as duck:
        for r in shipped(split):
            recheck(r, duck)


def test_recheck_catches_a_wrong_answer():
    record = next(r for r in shipped("dev") if r["kind"] == "sum")
    with pytest.raises(AssertionError):
        recheck(record | {"answer": str(Decimal(record["answer"]) + 1)})


# --- the scorer on hand-checked cases ---------------------------------------------------------

NUMERIC_CASES = [
    # prediction, gold, correct
    ("1234", "1,234", True),
    ("1,234", "1234", True),
    ("$1,234.5 million", "1234.5", True),  # currency and unit words dropped
    ("USD 1234.5", "1234.5", True),
    ("12.5%", "12.5", True),
    ("12.5 percent", "12.5", True),
    ("0.125", "12.5", False),  # a percentage is the number of percent
    ("12.346", "12.35", True),  # gold rounded to 2 decimals: prediction rounded the same way
    ("12.3456", "12.35", True),
    ("12.355", "12.35", False),  # half-up gives 12.36
    ("12.3", "12.35", False),  # less precise than asked
    ("12.4", "12", False),  # an integer gold is exact ...
    ("1233.9999999", "1234", True),  # ... up to the relative tolerance of 1e-4
    ("123460", "123456", True),  # the documented leniency: 3.2e-5 relative
    ("2022", "2021", False),  # adjacent years differ by 4.9e-4 relative
    ("1,200 million", "1200", True),  # the number as written, in the unit the question names
    ("1.2 billion", "1200", False),
    ("1.2 billion", "1,200 million", True),  # both sides scaled: the values agree
    ("1.2bn", "1.2 billion", True),
    ("−16", "-16.0", True),  # Unicode minus; 16 rounds to 16.0
    ("16", "-16.0", False),
    ("about 1,234 people", "1234", True),  # exactly one number in the prediction
    ("2019: 1234.5", "1234.5", False),  # two numbers
    ("between 10 and 12", "11", False),
    ("1,2345", "12345", False),  # not a thousands separator: two numbers
    ("12,5", "12.5", False),  # no decimal comma
    ("three", "3", False),  # numbers in words are not read
    ("", "3", False),
    ("0", "0", True),
    ("0.001", "0", False),
    ("5240.700000000001", "5240.7", True),
    ("42.0", 42, True),  # a JSON number as gold
    ("12.04", 12.0, True),  # a float gold written 12.0 has one decimal
    ("3 teams", "3", True),
]


@pytest.mark.parametrize(("prediction", "gold", "correct"), NUMERIC_CASES)
def test_scorer_numbers(prediction, gold, correct):
    assert score_tableqa(prediction, gold) == Score(correct, 1.0 if correct else 0.0)


TEXT_CASES = [
    # prediction, gold, em, f1
    ("Iron Wolves", "Iron Wolves", True, 1.0),
    ("the Iron Wolves.", "Iron Wolves", True, 1.0),
    ("Wolves", "Iron Wolves", False, 0.6666666666666666),
    ("Yes", "yes", True, 1.0),
    ("yes.", "no", False, 0.0),
    ("Yes", True, True, 1.0),  # a bool gold is the text yes / no
    ("no", True, False, 0.0),
    ("no", False, True, 1.0),
    ("Washington DC", "Washington, D.C.", True, 1.0),
    ("Brasilia", "Brasília", False, 0.0),  # the official rule keeps accents
    ("United States", "the United States", True, 1.0),
    ("Apollo 11", "Apollo 11", True, 1.0),  # a number not first: text
    ("Apollo 12", "Apollo 11", False, 0.5),
    ("1,800 to 7,000 ft", "1,800 to 7,000 ft", True, 1.0),  # two numbers: text
    ("anything", None, False, 0.0),  # no gold
]


@pytest.mark.parametrize(("prediction", "gold", "em", "f1"), TEXT_CASES)
def test_scorer_text(prediction, gold, em, f1):
    assert score_tableqa(prediction, gold) == Score(em, f1)


@pytest.mark.parametrize("split", sorted(SHIPPED))
def test_every_shipped_gold_scores_itself(split):
    for r in shipped(split):
        assert score_tableqa(r["answer"], r["answer"]) == Score(True, 1.0), r["answer"]
        # a gold is scored as a number exactly when it is written as one
        written_as_number = bool(re.fullmatch(r"-?\d+(\.\d+)?", r["answer"]))
        assert (parse_number(r["answer"]) is not None) == written_as_number, r["answer"]


# --- reading a user's file --------------------------------------------------------------------

GOOD = {
    "question": "Which team scored the most goals?",
    "answer": "Iron Wolves",
    "tables": [
        {"name": "standings", "header": ["team", "goals_for"], "rows": [["Iron Wolves", 31]]}
    ],
}


def write_jsonl(path: Path, *records: Any) -> Path:
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records),
        encoding="utf-8",
    )
    return path


def test_reads_inline_and_csv_tables(tmp_path):
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "teams.csv").write_text(
        'team,city,founded_year,capacity_k,code\nIron Wolves,"Port Ellis, North",1901,12.5,007\n'
        "Blue Owls,Kingsport,,-3.0,x\n",
        encoding="utf-8",
    )
    data = write_jsonl(
        tmp_path / "mine.jsonl",
        GOOD | {"tables": [*GOOD["tables"], {"csv": "tables/teams.csv"}]},
        {
            "id": "q2",
            "question": "Is it?",
            "answer": True,
            "tables": [{"csv": "tables/teams.csv", "name": "t"}],
        },
        {"question": "How many?", "answer": 1234.5, "tables": GOOD["tables"]},
        {"question": "Unlabelled?", "tables": GOOD["tables"]},
    )
    examples = read_tableqa(data, "mine")
    teams = TableData(
        "teams",
        ("team", "city", "founded_year", "capacity_k", "code"),
        (
            ("Iron Wolves", "Port Ellis, North", 1901, 12.5, "007"),
            ("Blue Owls", "Kingsport", None, -3.0, "x"),
        ),
        str(tmp_path / "tables" / "teams.csv"),
    )
    standings = TableData("standings", ("team", "goals_for"), (("Iron Wolves", 31),))
    assert examples[0] == TableQAExample(
        "tableqa/mine/0", GOOD["question"], "Iron Wolves", (standings, teams)
    )
    assert isinstance(examples[0], Example)
    assert (examples[1].id, examples[1].answer, examples[1].tables[0].name) == ("q2", "yes", "t")
    assert examples[2].answer == "1234.5"
    assert (examples[3].id, examples[3].answer) == ("tableqa/mine/3", None)


@pytest.mark.parametrize("split", sorted(SHIPPED))
def test_shipped_splits_read_back(split):
    examples = read_tableqa(SPLITS[split], split)
    records = shipped(split)
    assert [(e.id, e.question, e.answer, e.kind) for e in examples] == [
        (r["id"], r["question"], r["answer"], r["kind"]) for r in records
    ]
    assert [[t.to_json() for t in e.tables] for e in examples] == [r["tables"] for r in records]


def bad_case(tmp_path: Path, name: str) -> tuple[Path, str]:
    """A file whose second line has problem `name`, and the one-line error expected."""
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    (csv_dir / "quote.csv").write_text('team,city\nIron Wolves,Ashford\n"Blue Owls"x,Kingsport\n')
    (csv_dir / "ragged.csv").write_text("team,city\nIron Wolves,Ashford\nBlue Owls,Kingsport,x\n")
    (csv_dir / "empty.csv").write_text("")
    (csv_dir / "dupe.csv").write_text("team,Team\na,b\n")
    data = tmp_path / "data.jsonl"
    q = {"question": "Which team?", "answer": "x"}
    inline = {"name": "standings", "header": ["team", "goals_for"], "rows": [["a", 1]]}
    cases: dict[str, tuple[Any, str]] = {
        "csv does not parse": (
            q | {"tables": [{"name": "teams", "csv": "csv/quote.csv"}]},
            f"table 'teams': {csv_dir / 'quote.csv'}:3: malformed CSV (',' expected after '\"')",
        ),
        "csv ragged row": (
            q | {"tables": [{"csv": "csv/ragged.csv"}]},
            f"table 'ragged': {csv_dir / 'ragged.csv'}:3: row has 3 cells, the header has 2",
        ),
        "csv missing": (
            q | {"tables": [{"csv": "csv/nope.csv"}]},
            f"table 'nope': {csv_dir / 'nope.csv'}: file not found",
        ),
        "csv empty": (
            q | {"tables": [{"csv": "csv/empty.csv"}]},
            f"table 'empty': {csv_dir / 'empty.csv'}: empty CSV, expected a header row",
        ),
        "csv duplicate column": (
            q | {"tables": [{"csv": "csv/dupe.csv"}]},
            f"table 'dupe': {csv_dir / 'dupe.csv'}:1: column 'Team' appears twice in the header",
        ),
        "no tables": (
            q | {"tables": []},
            "the question has no tables; 'tables' should list at least one table",
        ),
        "tables missing": (
            q,
            "the question has no tables; 'tables' should list at least one table",
        ),
        "ragged row": (
            q | {"tables": [inline | {"rows": [["a", 1], ["b"]]}]},
            "table 'standings': row 2 has 1 cells, the header has 2 (a ragged row)",
        ),
        "duplicate table": (
            q | {"tables": [inline, inline | {"name": "Standings"}]},
            "two tables are named 'Standings'",
        ),
        "bad table name": (
            q | {"tables": [inline | {"name": "2023 standings"}]},
            "table 1 name '2023 standings' is not an SQL identifier (letters, digits and _, not starting with a digit)",
        ),
        "csv and rows": (
            q | {"tables": [inline | {"csv": "csv/ragged.csv"}]},
            "table 1 gives both 'csv' and 'header'/'rows'",
        ),
        "no header": (
            q | {"tables": [{"name": "t", "rows": []}]},
            "table 't': needs 'header' (a list of column names) and 'rows', or 'csv'",
        ),
        "nested cell": (
            q | {"tables": [inline | {"rows": [["a", {"n": 1}]]}]},
            "table 'standings': row 1, column 'goals_for' holds a dict; a cell is a string, number, bool or null",
        ),
        "empty question": (
            {"question": " ", "tables": [inline]},
            "field 'question' should be a non-empty string",
        ),
        "bad answer": (
            q | {"answer": ["x"], "tables": [inline]},
            "field 'answer' should be a string, number or bool, got ['x']",
        ),
        "duplicate id": (
            q | {"id": "a", "tables": [inline]},
            "id 'a' is already used on line 1",
        ),
        "not an object": ([1, 2], "expected a JSON object, got list"),
        "malformed json": ('{"question": ', "malformed JSON line (Expecting value)"),
    }
    record, message = cases[name]
    write_jsonl(data, GOOD | {"id": "a"}, record)
    return data, f"{data}:2: {message}"


BAD = [
    "csv does not parse",
    "csv ragged row",
    "csv missing",
    "csv empty",
    "csv duplicate column",
    "no tables",
    "tables missing",
    "ragged row",
    "duplicate table",
    "bad table name",
    "csv and rows",
    "no header",
    "nested cell",
    "empty question",
    "bad answer",
    "duplicate id",
    "not an object",
    "malformed json",
]


@pytest.mark.parametrize("name", BAD)
def test_every_bad_input_is_one_line_naming_file_and_line(tmp_path, name):
    data, expected = bad_case(tmp_path, name)
    with pytest.raises(FireactError) as err:
        read_tableqa(data, "mine")
    assert str(err.value) == expected
    assert "\n" not in str(err.value)


def test_an_empty_file_is_one_line(tmp_path):
    data = tmp_path / "empty.jsonl"
    data.write_text("\n")
    with pytest.raises(FireactError) as err:
        read_tableqa(data, "mine")
    assert str(err.value) == f"{data}: no questions (expected one JSON object a line)"


# --- the prompt -------------------------------------------------------------------------------
# The tables behind the four worked examples of prompt.txt, one list per example: the prompt's
# observations are the real tools' output on them, and its answers are re-checked by SQL.


def _t(name: str, header: list[str], rows: list[list[Any]]) -> dict[str, Any]:
    return {"name": name, "header": header, "rows": rows}


COMPANIES = ["company", "sector", "headquarters", "founded_year", "employees"]
FINANCIALS = ["company", "year", "revenue_musd", "net_income_musd"]


def _financials(data: list[tuple[str, list[Any]]], years: tuple[int, ...]) -> list[list[Any]]:
    return [[c, y, r, n] for c, figures in data for y, (r, n) in zip(years, figures, strict=True)]


PROMPT_TABLES = [
    [
        _t(
            "companies",
            COMPANIES,
            [
                ["Alder Foods", "Consumer Goods", "Canada", 1954, 3120],
                ["Kestrel Logistics", "Industrials", "Germany", 1988, 5480],
                ["Lumen Health", "Healthcare", "United States", 2003, None],
                ["Orion Systems", "Technology", "United States", 1997, 2360],
                ["Stonegate Bank", "Financials", "Canada", 1921, 8900],
            ],
        ),
        _t(
            "financials",
            FINANCIALS,
            _financials(
                [
                    ("Alder Foods", [(612.4, 38.9), (655.0, 41.2), (701.8, 44.0)]),
                    ("Kestrel Logistics", [(1480.2, 96.3), (1533.7, 88.1), (1602.5, 102.4)]),
                    ("Lumen Health", [(290.3, -12.5), (344.9, 3.8), (None, 15.2)]),
                    ("Orion Systems", [(842.6, 71.0), (930.1, 85.6), (1015.3, 97.2)]),
                    ("Stonegate Bank", [(2210.5, 402.7), (2298.0, 415.3), (2376.4, None)]),
                ],
                (2021, 2022, 2023),
            ),
        ),
    ],
    [
        _t(
            "standings",
            ["team", "played", "wins", "draws", "losses", "goals_for", "goals_against", "points"],
            [
                ["Iron Wolves", 14, 9, 4, 1, 27, 15, 31],
                ["Blue Owls", 14, 10, 1, 3, 24, 17, 31],
                ["Golden Stags", 14, 8, 3, 3, 22, 17, 27],
                ["Crimson Hawks", 14, 5, 4, 5, 20, 19, 19],
                ["Silver Rams", 14, 4, 4, 6, 18, 20, 16],
                ["Harbor Foxes", 14, 4, 3, 7, 16, 22, 15],
                ["Valley Bears", 14, 2, 3, 9, 13, 21, 9],
                ["Royal Herons", 14, 1, 4, 9, 11, 20, 7],
            ],
        ),
        _t(
            "teams",
            ["team", "city", "founded_year", "stadium", "stadium_capacity", "avg_attendance"],
            [
                ["Blue Owls", "Kingsport", 1899, "Hadley Park", 24500, 19870],
                ["Crimson Hawks", "Riverton", 1921, "Morrow Stadium", 18200, None],
                ["Golden Stags", "Marston", 1887, "Carver Arena", 31000, 25410],
                ["Harbor Foxes", "Port Ellis", 1934, "Ellison Ground", 12750, 9020],
                ["Iron Wolves", "Ashford", 1902, "Prescott Park", 27800, 24960],
                ["Royal Herons", "Granville", 1956, "Whitlock Stadium", 9600, 6130],
                ["Silver Rams", "Redhill", 1911, "Danvers Park", 15400, 11880],
                ["Valley Bears", "Fairview", 1948, "Holloway Arena", 11000, 7450],
            ],
        ),
    ],
    [
        _t(
            "countries",
            ["country", "continent", "capital", "population_millions", "area_km2"],
            [
                ["Spain", "Europe", "Madrid", 47.4, 505990],
                ["Colombia", "South America", "Bogotá", 51.3, 1141748],
                ["Kenya", "Africa", "Nairobi", 53.8, 580367],
                ["Japan", "Asia", "Tokyo", 125.7, 377975],
                ["Vietnam", "Asia", "Hanoi", 97.5, 331212],
                ["Egypt", "Africa", "Cairo", 109.3, 1002450],
            ],
        ),
        _t(
            "indicators",
            ["country", "year", "gdp_busd", "unemployment_pct", "life_expectancy_years"],
            [
                ["Colombia", 2020, 270.3, 15.9, 74.8],
                ["Colombia", 2021, 318.5, 10.8, 72.8],
                ["Egypt", 2020, 365.3, 8.3, 70.2],
                ["Egypt", 2021, 424.7, None, 70.9],
                ["Japan", 2020, 5040.1, 2.8, 84.6],
                ["Japan", 2021, 5005.5, 2.7, 84.5],
                ["Kenya", 2020, 100.7, 5.6, 61.4],
                ["Kenya", 2021, 110.3, 6.3, 61.4],
                ["Spain", 2020, 1276.9, 15.5, 82.4],
                ["Spain", 2021, 1427.4, 13.4, 83.0],
                ["Vietnam", 2020, 346.6, 2.1, 75.4],
                ["Vietnam", 2021, 366.1, 2.2, 73.6],
            ],
        ),
    ],
    [
        _t(
            "companies",
            COMPANIES,
            [
                ["Brightwater Retail", "Retail", "United Kingdom", 1963, 14200],
                ["Copperfield Brands", "Consumer Goods", "France", 1931, 6350],
                ["Juniper Digital", "Technology", "United Kingdom", 2009, 1840],
                ["Kestrel Power", "Energy", "France", 1972, 4120],
                ["Meridian Renewables", "Energy", "Germany", 2006, 3390],
                ["Nimbus Software", "Technology", "Germany", 1998, 2710],
                ["Pinnacle Insurance", "Financials", "United Kingdom", 1890, None],
                ["Tamarack Energy", "Energy", "Germany", 1958, 2480],
            ],
        ),
        _t(
            "financials",
            FINANCIALS,
            _financials(
                [
                    ("Brightwater Retail", [(3980.2, 121.4), (4105.7, 98.6), (4240.3, 133.9)]),
                    ("Copperfield Brands", [(1544.8, 130.2), (1610.0, 141.7), (1702.6, 150.3)]),
                    ("Juniper Digital", [(402.5, -18.3), (488.1, 12.9), (561.7, 40.4)]),
                    ("Kestrel Power", [(1502.9, 140.1), (1677.4, 171.5), (1890.4, 233.6)]),
                    ("Meridian Renewables", [(1630.0, 88.2), (1902.3, 120.7), (2210.8, 176.9)]),
                    ("Nimbus Software", [(905.4, 97.6), (1010.2, 121.0), (1118.9, 142.2)]),
                    ("Pinnacle Insurance", [(2750.6, 301.2), (None, 288.4), (2933.1, 322.9)]),
                    ("Tamarack Energy", [(1011.7, 60.3), (1087.2, 75.1), (1139.5, 82.4)]),
                ],
                (2020, 2021, 2022),
            ),
        ),
    ],
]


def _query(
    table: str, select: Any, where: Any = (), order: Any = (), join: tuple[str, str] | None = None
) -> dict[str, Any]:
    q = {"from": table, "select": select, "where": [list(w) for w in where]}
    if order:
        q["order"] = [list(o) for o in order]
    if join:
        q["join"], q["using"] = join
    return q


ORION = [["company", "=", "Orion Systems"]]
PROMPT_CHECKS = [  # (the example's final answer, the check it is recomputed by)
    (
        "20.50",
        {
            "op": "arith",
            "formula": "pct_change",
            "a": _query("financials", "revenue_musd", [*ORION, ["year", "=", 2023]]),
            "b": _query("financials", "revenue_musd", [*ORION, ["year", "=", 2021]]),
            "round": 2,
        },
    ),
    (
        "Ashford",
        {
            "op": "query",
            "query": _query(
                "standings",
                "city",
                order=[["points", "desc"], [["-", "goals_for", "goals_against"], "desc"]],
                join=("teams", "team"),
            ),
        },
    ),
    (
        "3",
        {
            "op": "query",
            "query": _query(
                "indicators", ["count"], [["year", "=", 2021], ["unemployment_pct", ">", 6]]
            ),
        },
    ),
    (
        "5240.7",
        {
            "op": "query",
            "query": _query(
                "financials",
                ["sum", "revenue_musd"],
                [["sector", "=", "Energy"], ["year", "=", 2022]],
                join=("companies", "company"),
            ),
            "round": 1,
        },
    ),
]


def prompt_examples() -> list[list[str]]:
    """The lines of each worked example (the question first)."""
    blocks = PROMPT_FILE.read_text(encoding="utf-8").strip().split("\n\n\n")
    assert blocks[0].startswith("Solve a question answering task over tables")
    return [block.split("\n") for block in blocks[1:]]


def test_prompt_examples_are_well_formed():
    examples = prompt_examples()
    assert len(examples) == 4 == len(PROMPT_TABLES) == len(PROMPT_CHECKS)
    kinds = ("Thought: ", "Action: ", "Observation: ")
    for lines, (answer, _) in zip(examples, PROMPT_CHECKS, strict=True):
        assert not lines[0].startswith(kinds)
        for i, line in enumerate(lines[1:]):
            assert line.startswith(kinds[i % 3]), line
        assert lines[-2:] == [
            f"Action: finish[{answer}]",
            "Observation: Episode finished, reward = 1",
        ]
        actions = [line.removeprefix("Action: ") for line in lines if line.startswith("Action: ")]
        assert actions[0] == "tables[]"
        assert all(re.fullmatch(r"(tables|sql|calculate|finish)\[.*\]", a) for a in actions)
    # the one-line rendering of a result: "col | col ; v | v ; (n rows)"
    text = PROMPT_FILE.read_text(encoding="utf-8")
    results = re.findall(r"Action: sql\[.*\]\nObservation: (.*)", text)
    assert len(results) == 4
    for obs in results:
        parts = obs.split(" ; ")
        assert re.fullmatch(rf"\({len(parts) - 2} rows?\)", parts[-1])
        assert {len(p.split(" | ")) for p in parts[:-1]} == {len(parts[0].split(" | "))}


@pytest.mark.parametrize("i", range(4))
def test_prompt_answers_rechecked_by_sql(i):
    answer, check = PROMPT_CHECKS[i]
    recheck({"tables": PROMPT_TABLES[i], "check": check, "answer": answer})


def test_prompt_observations_are_what_the_tools_return():
    """Every tables[] / sql[...] / calculate[...] of the prompt, run through the real tools on
    the example's tables, gives the observation the prompt shows (on one line, as an episode
    writes it)."""
    sql = pytest.importorskip("fireact.tools.sql")
    calculate = pytest.importorskip("fireact.tools.calculate")
    from fireact.agent.parse import one_line
    from fireact.tools.base import ToolState

    async def run() -> list[tuple[str, str, str]]:
        tools = {"sql": sql.SQLTool(), "calculate": calculate.CalculatorTool()}
        seen = []
        try:
            for tables, lines in zip(PROMPT_TABLES, prompt_examples(), strict=True):
                state = ToolState(episode_id=lines[0])
                sql.load_tables(state, tables)
                for action, shown in zip(lines, lines[1:], strict=False):
                    m = re.fullmatch(r"Action: (tables|sql|calculate)\[(.*)\]", action)
                    if m:
                        tool = tools["calculate" if m[1] == "calculate" else "sql"]
                        got = one_line(await tool(m[1], m[2], state))
                        seen.append((action, shown, f"Observation: {got}"))
        finally:
            for tool in tools.values():
                await tool.aclose()
        return seen

    seen = asyncio.run(run())
    assert len(seen) == 10
    for action, shown, returned in seen:
        assert shown == returned, action

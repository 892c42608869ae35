"""The table-QA loop offline: the scripted teacher solves the shipped dev split through the real
sql and calculate tools, and ``fireact quickstart --task tableqa`` runs generate → convert →
train the tiny model → run → score."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fireact.tableqa import SPLITS
from fireact.tableqa.teacher import teacher_script, write_teacher_script
from tests.helpers.clirun import run_cli

DEV = 200


def dev_records() -> list[dict]:
    return [json.loads(line) for line in SPLITS["dev"].read_text(encoding="utf-8").splitlines()]


def first_cell(observation: str) -> str:
    """The first value of an sql observation ("col | col ; v | v ; (n rows)")."""
    return observation.split(" ; ")[1].split(" | ")[0]


def agrees(got: str, record: dict) -> bool:
    """`got` (a tool's output) is the gold answer, up to the rounding the check states."""
    try:
        value = float(got)
    except ValueError:
        return got == record["answer"]
    decimals = record["check"].get("round", 6)
    return abs(value - float(record["answer"])) <= 0.5 * 10**-decimals + 1e-9


def test_the_script_follows_fireact_style():
    records = dev_records()
    script = teacher_script(records)
    assert list(script) == [r["id"] for r in records]
    for r in records:
        outputs = script[r["id"]]
        actions = [o.split("\nAction: ")[1] for o in outputs]
        assert all(o.startswith(" ") and o.count("\nAction: ") == 1 for o in outputs)
        assert actions[0] == "tables[]" and actions[-1] == f"finish[{r['answer']}]"
        middle = [a.split("[")[0] for a in actions[1:-1]]
        expected = {
            "query": ["sql"],
            "compare": ["sql", "sql"],
            "arith": ["sql", "sql", "calculate"],
        }
        assert middle == expected[r["check"]["op"]], r["id"]


def test_the_teacher_solves_the_dev_split_through_the_real_tools(tmp_path):
    pytest.importorskip("duckdb")
    records = dev_records()
    script = write_teacher_script(records, tmp_path / "teacher.json")
    out = tmp_path / "run"
    result = run_cli(
        "generate", "--task", "tableqa", "--split", "dev", "--tool", "sql,calculate",
        "--model", f"scripted:{script}", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["n"], summary["correct"]) == (DEV, DEV)  # EM 200/200
    by_id = {r["id"]: r for r in records}
    episodes = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    confirmed = 0
    for episode in episodes:
        record, calls = by_id[episode["id"]], episode["tool_calls"]
        assert all(
            c["observation"].endswith(("(1 row)", "rows)"))
            for c in calls[1:]
            if c["action"] == "sql"
        )
        op = record["check"]["op"]
        if op == "query":  # the one query's first cell is the answer
            confirmed += agrees(first_cell(calls[1]["observation"]), record)
        elif op == "arith":  # the calculation rounds to the answer
            confirmed += agrees(calls[-1]["observation"], record)
    compares = sum(r["check"]["op"] == "compare" for r in records)
    assert confirmed == DEV - compares == 178  # the tools' own outputs give every answer


def test_quickstart_on_tableqa_runs_the_whole_loop_offline(tmp_path):
    pytest.importorskip("duckdb")
    out = tmp_path / "qs"
    result = run_cli("quickstart", "--task", "tableqa", "--out", str(out), "--train-examples", "48")
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["task"] == "tableqa"
    assert summary["generate"] == {"episodes": 48, "kept": 48, "em": 1.0}
    assert (out / "teacher" / "trajectories.jsonl").is_file()
    assert Path(summary["convert"]["file"]).is_file() and summary["convert"]["examples"] == 48
    assert summary["train"]["steps"] > 0 and (out / "model" / "config.json").is_file()
    assert summary["run"]["episodes"] == 10
    episodes = [
        json.loads(line) for line in (out / "agent" / "episodes.jsonl").read_text().splitlines()
    ]
    assert len(episodes) == 10 and all(e["id"].startswith("tableqa/test/") for e in episodes)
    assert any(e["tool_calls"] for e in episodes)  # the tiny model calls the table tools
    assert 0.0 <= summary["score"]["em"] <= 1.0 and summary["score"]["finished"] >= 0

"""`compare_runs`: exact numbers for hand-made runs, agreement with a real run, plots, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fireact.errors import FireactError
from fireact.report.compare import compare_runs, unique_labels
from tests.helpers.runs import real_run


def record(i: str, gold: str, pred: str | None, steps: int, tokens: tuple[int, int], cost: float,
           wall: float, error: str | None = None) -> dict[str, Any]:  # fmt: skip
    return {
        "id": i, "task": "hotpotqa", "split": "dev", "method": "react", "format": "fewshot",
        "model": "openai:gpt-3.5-turbo", "question": f"question {i}?", "gold": gold,
        "prediction": pred, "finished": pred is not None, "steps": steps,
        "trajectory": "", "tool_calls": [], "prompt_tokens": tokens[0],
        "completion_tokens": tokens[1], "cost_usd": cost, "wall_s": wall, "error": error,
    }  # fmt: skip


def write_run(folder: Path, records: list[dict], summary: dict | None = None) -> Path:
    folder.mkdir(parents=True)
    lines = "".join(json.dumps(r) + "\n" for r in records)
    (folder / "episodes.jsonl").write_text(lines, encoding="utf-8")
    if summary is not None:
        (folder / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return folder


def two_runs(tmp_path: Path) -> list[Path]:
    prompting = write_run(
        tmp_path / "prompting",
        [
            record("a1", "Paris", "Paris", 2, (100, 20), 0.01, 1.0),
            record("a2", "New York City", "New York", 3, (200, 30), 0.02, 2.0),  # F1 0.8
            record("a3", "yes", "yes", 1, (50, 10), 0.005, 0.5),
            record("a4", "no", None, 4, (300, 40), 0.03, 3.0),  # hit the step cap
        ],
        {"n": 5, "wall_s": 4.0, "model": "openai:gpt-3.5-turbo"},  # one episode never ran
    )
    finetuned = write_run(  # no summary.json: a run cut short
        tmp_path / "finetuned",
        [
            record("b1", "Paris", "paris.", 2, (10, 5), 0.0, 0.2),
            record("b2", "Rome", None, 0, (0, 0), 0.0, 0.1, error="LLMError: boom"),
        ],
    )
    return [prompting, finetuned]


def test_exact_numbers(tmp_path):
    result = compare_runs(two_runs(tmp_path), tmp_path / "report")
    a, b = result["runs"]
    assert a["run"] == "prompting" and b["run"] == "finetuned"
    assert (a["n"], a["episodes"], a["correct"], a["finished"], a["unfinished"]) == (5, 4, 2, 3, 2)
    assert a["em"] == 0.4 and a["f1"] == pytest.approx(0.56)
    assert a["unfinished_rate"] == 0.4 and a["errors"] == 0
    assert a["mean_steps"] == 2.5
    assert (a["tokens"], a["tokens_per_episode"]) == (750, 187.5)
    assert a["cost_usd"] == pytest.approx(0.065) and a["cost_per_episode"] == pytest.approx(0.01625)
    assert a["time_per_episode_s"] == 1.625 and a["wall_s"] == 4.0
    assert (b["n"], b["correct"], b["em"], b["f1"], b["unfinished_rate"]) == (2, 1, 0.5, 0.5, 0.5)
    assert (b["errors"], b["mean_steps"], b["tokens_per_episode"]) == (1, 1.0, 7.5)
    assert (b["cost_per_episode"], b["wall_s"]) == (0.0, None)
    assert b["time_per_episode_s"] == pytest.approx(0.15)
    on_disk = json.loads((tmp_path / "report" / "compare.json").read_text())
    assert on_disk == json.loads(json.dumps(result))
    table = (tmp_path / "report" / "compare.md").read_text()
    assert "| prompting | openai:gpt-3.5-turbo | react | 5 | 0.400 | 0.560 | 2.50 |" in table
    assert "| finetuned |" in table and "| 50.0% |" in table


def test_plots_are_written(tmp_path):
    result = compare_runs(two_runs(tmp_path), tmp_path / "report")
    for key in ("em_png", "steps_png", "cost_em_png"):
        data = Path(result["files"][key]).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000, key


def test_agrees_with_a_real_run(tmp_path):
    out = real_run(tmp_path)
    row = compare_runs([out], tmp_path / "report", plots=False)["runs"][0]
    summary = json.loads((out / "summary.json").read_text())
    for key in ("n", "correct", "em", "f1", "unfinished", "errors", "mean_steps", "cost_usd"):
        assert row[key] == pytest.approx(summary[key]), key
    assert row["tokens"] == summary["prompt_tokens"] + summary["completion_tokens"]
    assert row["time_per_episode_s"] == pytest.approx(summary["mean_episode_s"])
    assert not (tmp_path / "report" / "em.png").exists()


def test_labels_of_folders_with_the_same_name():
    dirs = [Path("x/run"), Path("y/run"), Path("z/other"), Path("x/run")]
    assert unique_labels(dirs) == ["x/run", "y/run", "other", "x/run #2"]


def test_missing_or_empty_runs_are_named(tmp_path):
    good = two_runs(tmp_path)[0]
    report = tmp_path / "report"
    with pytest.raises(FireactError, match="nowhere"):
        compare_runs([good, tmp_path / "nowhere"], report)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FireactError, match="empty.*episodes.jsonl"):
        compare_runs([good, tmp_path / "empty"], report)
    write_run(tmp_path / "blank", [])
    with pytest.raises(FireactError, match="blank.*no episodes"):
        compare_runs([tmp_path / "blank"], report)
    with pytest.raises(FireactError, match="at least one"):
        compare_runs([], report)
    assert not report.exists()  # nothing written for a bad call

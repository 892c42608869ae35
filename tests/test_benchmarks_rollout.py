"""Smoke test of the rollout benchmark: a tiny run end to end, results file with every figure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import rollout_bench


def test_workload_is_deterministic_and_follows_fireact_steps() -> None:
    counts = rollout_bench.step_counts()
    assert len(counts) == 500 and min(counts) >= 1 and 2.5 < sum(counts) / len(counts) < 3.5
    wl = rollout_bench.Workload(0, 0.5, 0.0, tuple(counts))
    q = "Were Scott Derrickson and Ed Wood of the same nationality?"
    assert wl.llm_s(q, 0, 0) == wl.llm_s(q, 0, 0) != wl.llm_s(q, 0, 1)
    assert wl.steps(q) in set(counts)
    prompt = (
        rollout_bench.ALPACA_TEMPLATE.format(question=q) + "Thought: x\nAction: y\nObservation: z\n"
    )
    assert rollout_bench.parse_prompt(prompt) == (q, 1)
    last = wl.output(q, wl.steps(q) - 1, 0)
    assert last.endswith("finish[yes]")
    ideal = wl.ideal_s(q)
    assert ideal == pytest.approx(
        sum(wl.llm_s(q, s, 0) for s in range(wl.steps(q))) + (wl.steps(q) - 1) * wl.tool_s
    )


def test_quick_run_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "rollout.json"
    rollout_bench.main(["--quick", "--out", str(out)])
    doc = json.loads(out.read_text())
    for key in ("command", "git", "machine", "workload", "rows", "targets", "target_check"):
        assert key in doc
    assert doc["workload"]["scale"] == 0.01
    systems = {(r["system"], r["concurrency"]) for r in doc["rows"]}
    assert {("ours", 1), ("ours", 8), ("ours+hedge", 64), ("baseline-b", 64)} <= systems
    for row in doc["rows"]:
        assert row["episodes"] == 20
        assert row["finished"] == row["episodes"] and row["errors"] == 0
        for key in (
            "episodes_per_s", "bound_episodes_per_s", "pct_of_bound", "x_vs_a", "x_vs_b",
            "episode_p50_s", "episode_p99_s", "client_cpu_ms_per_llm_call", "wall_s",
        ):  # fmt: skip
            assert isinstance(row[key], float) and row[key] > 0, key
        # every model call the runner made reached the separate server process
        assert row["server_requests"] >= row["llm_calls"]

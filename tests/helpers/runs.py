"""Run-level helpers: N scripted HotpotQA-style episodes with a dict tool (`options`, `tool`),
reading a run folder's records, a real scripted run for the viewer, and a snapshot of a folder."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from fireact.agent import RunOptions, run
from fireact.agent.runner import TIMING_FIELDS
from tests.helpers.agents import DictTool

N = 40
PAGES = {f"topic {i}": [f"Topic {i} is about answer {i}.", "More text."] for i in range(N)}


def script_for(i: int) -> list[str]:
    """Episode i's model outputs: a mix of right, wrong, invalid, re-asked and capped."""
    search = f" Search it.\nAction: search[topic {i}]"
    kind = i % 5
    if kind == 0:
        return [search, f" Found.\nAction: finish[answer {i}]"]
    if kind == 1:
        return [search, " Guess.\nAction: finish[something else]"]
    if kind == 2:
        return [" Hmm.", f" a\nAction: look[topic {i}]", f" b\nAction: finish[answer {i}]"]
    if kind == 3:
        return [search] * 3  # hits the step cap of 3
    return [" a\nAction: search[boom]", f" b\nAction: finish[Answer {i}!]"]


def write_inputs(tmp_path: Path, n: int = N) -> tuple[Path, Path]:
    data = tmp_path / "questions.json"
    rows = [
        {"_id": f"e{i}", "question": f"Question {i}?", "answer": f"answer {i}"} for i in range(n)
    ]
    data.write_text(json.dumps(rows))
    script = tmp_path / "script.json"
    script.write_text(json.dumps({f"e{i}": script_for(i) for i in range(n)}))
    return data, script


def options(tmp_path: Path, out: str = "out", **overrides) -> RunOptions:
    data, script = write_inputs(tmp_path, overrides.pop("n", N))
    values = {
        "task": "hotpotqa",
        "data": data,
        "model": f"scripted:{script}",
        "out": tmp_path / out,
        "max_steps": 3,
        "concurrency": 8,
        "progress": False,
    }
    return RunOptions(**(values | overrides))


def tool() -> DictTool:
    return DictTool(PAGES, fail=["boom"])


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]


def without_timings(rows: list[dict]) -> list[dict]:
    clean = []
    for row in rows:
        row = {k: v for k, v in row.items() if k not in TIMING_FIELDS}
        row["tool_calls"] = [
            {k: v for k, v in c.items() if k != "latency_s"} for c in row["tool_calls"]
        ]
        row["step_stats"] = [
            {k: v for k, v in s.items() if k not in TIMING_FIELDS} for s in row["step_stats"]
        ]
        clean.append(row)
    return sorted(clean, key=lambda r: r["id"])


def real_run(tmp_path: Path) -> Path:
    """4 HotpotQA dev episodes with the local search tool: correct, wrong, unfinished, errored."""
    script = {
        "hotpotqa/dev/0": [
            " I need Scott Derrickson's nationality.\nAction: search[Scott Derrickson nationality]",
            " Now Ed Wood.\nAction: search[Ed Wood nationality]",
            " Both are American.\nAction: finish[yes]",
        ],
        "hotpotqa/dev/1": [" I guess.\nAction: finish[Ambassador to Ghana]"],
        "hotpotqa/dev/2": [" Search.\nAction: search[science fantasy series]"] * 3,
        "hotpotqa/dev/3": [" Where is it?\nAction: search[Laleli Mosque]"],  # script runs out
    }
    path = tmp_path / "script.json"
    path.write_text(json.dumps(script))
    out = tmp_path / "hotpotqa-dev"
    options = RunOptions(
        task="hotpotqa", split="dev", end=4, model=f"scripted:{path}", out=out, max_steps=3,
        concurrency=2, progress=False,
    )  # fmt: skip
    run(options)
    return out


def snapshot(root: Path) -> dict[str, str]:
    """Every file under root with a hash of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }

"""`fireact quickstart`: the loop on embedded defaults, on a CPU, in a few minutes.

Stages run in order and each writes its output under the quickstart folder:
1. index  — build (once) and open the default local BM25 index of the shipped HotpotQA
            distractor paragraphs;
2. search — ask the Google-style local search each of the first N dev questions, as the agent's
            first step would, and record whether the passage comes from a supporting page;
3. score  — score the searches' passages as answers with the official metrics, the way a
            run file is scored.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from rich.console import Console

from fireact.files import read_json
from fireact.report.score import score_file
from fireact.resources import resource
from fireact.tools.base import ToolState
from fireact.tools.local import LocalSearch
from fireact.tools.local_index import default_index_dir


def quickstart(out: Path, n: int = 10, console: Console | None = None) -> dict:
    """Run the quickstart stages into `out`; returns the summary it writes."""
    console = console or Console(stderr=True)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    index_dir = default_index_dir()
    tool = LocalSearch(index_dir, style="google")
    console.print(f"[1/3] index: {index_dir} ({time.perf_counter() - t0:.2f} s)")

    records = read_json(resource("hotpotqa", "dev_distractor_first100.json"))[:n]
    run_path = out / "search.jsonl"
    from_support = 0
    with run_path.open("w", encoding="utf-8") as fh:
        for i, rec in enumerate(records):
            found = tool.best_passage(rec["question"])
            title, passage = found if found else ("", "")
            observation = asyncio.run(tool("search", rec["question"], ToolState(f"q{i}")))
            supporting = title in {t for t, _ in rec["supporting_facts"]}
            from_support += supporting
            line = {
                "id": f"hotpotqa/dev/{i}",
                "task": "hotpotqa",
                "question": rec["question"],
                "gold": rec["answer"],
                "prediction": observation,
                "finished": True,
                "source_title": title,
                "from_supporting_page": supporting,
            }
            fh.write(json.dumps(line) + "\n")
    console.print(f"[2/3] search: {from_support}/{n} passages from a supporting page -> {run_path}")

    result = score_file(run_path)
    summary = {
        "questions": n,
        "passages_from_supporting_page": from_support,
        "passage_as_answer_em": result.em,
        "passage_as_answer_f1": result.f1,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    console.print(f"[3/3] score: EM {100 * result.em:.1f}, F1 {100 * result.f1:.1f} -> {out}")
    return summary

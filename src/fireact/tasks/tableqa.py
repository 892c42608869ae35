"""TableQA: questions over the question's own tables (the `fireact.tableqa` package), answered
with the ``sql`` and ``calculate`` tools; numeric answers within a relative tolerance, text by
the official normalisation (`fireact.tableqa.score`). Its own ReAct prompt (table actions)."""

from __future__ import annotations

from pathlib import Path

from fireact.tableqa.data import read_tableqa
from fireact.tableqa.score import score_tableqa
from fireact.tasks.base import TaskSpec, reward_int

HERE = Path(__file__).resolve().parent.parent / "tableqa"

SPEC = TaskSpec(
    name="tableqa",
    read=read_tableqa,
    splits={"dev": HERE / "data" / "dev.jsonl", "test": HERE / "data" / "test.jsonl"},
    scorer=score_tableqa,
    prompt_task="tableqa",
    reward_text=reward_int,
    prompts={"react": HERE / "prompt.txt"},
    summary="generated questions over tables (sql / calculate tools; JSONL question,answer,tables)",
)

"""Tasks of the paper (HotpotQA, Bamboogle, StrategyQA, MMLU): examples, scoring, selection."""

from __future__ import annotations

from pathlib import Path

from fireact.errors import FireactError
from fireact.tasks.base import Example, Score, Task, select_indices
from fireact.tasks.loaders import (
    BAMBOOGLE_SPLITS,
    HOTPOTQA_SPLITS,
    MMLU_SPLITS,
    STRATEGYQA_SPLITS,
    load_bamboogle,
    load_hotpotqa,
    load_mmlu,
    load_strategyqa,
)

TASKS = ("hotpotqa", "bamboogle", "strategyqa", "mmlu")
SPLITS = {
    "hotpotqa": HOTPOTQA_SPLITS,
    "bamboogle": BAMBOOGLE_SPLITS,
    "strategyqa": STRATEGYQA_SPLITS,
    "mmlu": MMLU_SPLITS,
}
DEFAULT_SPLIT = {"hotpotqa": "dev", "bamboogle": "test", "strategyqa": "dev", "mmlu": "test"}


def load_task(
    name: str, split: str | None = None, *, path: Path | None = None, subject: str | None = None
) -> Task:
    """Load a task's split (or a user file in that task's format) by name."""
    if name not in TASKS:
        raise FireactError(f"unknown task '{name}': choose one of {', '.join(TASKS)}")
    split = split or DEFAULT_SPLIT[name]
    if subject is not None and name != "mmlu":
        raise FireactError(f"--subject applies to mmlu only, not to {name}")
    if name == "hotpotqa":
        return load_hotpotqa(split, path)
    if name == "bamboogle":
        return load_bamboogle(split, path)
    if name == "strategyqa":
        return load_strategyqa(split, path)
    return load_mmlu(split, subject, path)


__all__ = ["TASKS", "SPLITS", "Example", "Score", "Task", "load_task", "select_indices"]

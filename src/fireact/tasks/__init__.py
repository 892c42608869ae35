"""The task registry: every task fireact can run and score, built in or from a plug-in.

Owns `TASK_REGISTRY` (a `Registry` of `TaskSpec`) and what reads it: `load_task`, `task_spec`,
and the live views `TASKS` (the names), `SPLITS` (name -> its splits) and `DEFAULT_SPLIT`.
The paper's four tasks (HotpotQA, Bamboogle, StrategyQA, MMLU) are built in, one module each;
adding one is a new module defining ``SPEC = TaskSpec(...)`` plus its line in `BUILT_IN`. A
plug-in package declares its spec under the entry-point group ``fireact.tasks`` instead
(docs/extending.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from fireact.errors import FireactError
from fireact.registry import GROUPS, Registry
from fireact.tasks.base import (
    Answer,
    Example,
    Reader,
    Score,
    Scorer,
    Task,
    TaskSpec,
    reward_bool,
    reward_int,
    select_indices,
)
from fireact.tasks.loaders import json_questions

BUILT_IN = (
    "fireact.tasks.hotpotqa:SPEC",
    "fireact.tasks.bamboogle:SPEC",
    "fireact.tasks.strategyqa:SPEC",
    "fireact.tasks.mmlu:SPEC",
    "fireact.tasks.tableqa:SPEC",
    "fireact.tasks.arith:SPEC",
)
TASK_REGISTRY: Registry[TaskSpec] = Registry(
    "task", GROUPS["task"], spec_type=TaskSpec, required=TaskSpec.REQUIRED, built_in=BUILT_IN
)
TASKS: Sequence[str] = TASK_REGISTRY.names_view()
SPLITS: Mapping[str, tuple[str, ...]] = TASK_REGISTRY.view(lambda spec: tuple(spec.splits))
DEFAULT_SPLIT: Mapping[str, str] = TASK_REGISTRY.view(lambda spec: spec.default)


def task_spec(name: str) -> TaskSpec:
    """The spec of task `name`; an unknown name is a `FireactError` listing the tasks."""
    return TASK_REGISTRY.get(name)


def register_task(spec: TaskSpec) -> TaskSpec:
    """Register a task at run time (plug-in packages use the entry point instead)."""
    return TASK_REGISTRY.register(spec, origin="register_task()")


def load_task(
    name: str, split: str | None = None, *, path: Path | None = None, subject: str | None = None
) -> Task:
    """Load a task's split (or a user file in that task's format) by name."""
    spec = task_spec(name)
    if subject is not None and spec.subject_files is None:
        with_subjects = [s.name for s in TASK_REGISTRY.specs() if s.subject_files is not None]
        raise FireactError(f"--subject applies to {' / '.join(with_subjects)} only, not to {name}")
    return spec.load(split, path=path, subject=subject)


__all__ = [
    "DEFAULT_SPLIT",
    "SPLITS",
    "TASKS",
    "TASK_REGISTRY",
    "Answer",
    "Example",
    "Reader",
    "Score",
    "Scorer",
    "Task",
    "TaskSpec",
    "json_questions",
    "load_task",
    "register_task",
    "reward_bool",
    "reward_int",
    "select_indices",
    "task_spec",
]

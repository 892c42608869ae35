"""FireAct's trajectory files: what their names, ids and golds tell about a run.

FireAct's ``generation.py`` saves one JSON object mapping an index into the task's split to
``{reward, em, f1, gt, pred, prompt, traj, traj_by_line}``, in a file named
``{task}_{split}_{start}_{end}_{model}_{temp}_{time}.json``. It drops the episodes that never
finished, so a file can hold fewer records than the questions asked.

Owns reading those conventions, for `fireact.report.score`:
- whether an episode finished (`episode_finished`): its trajectory reached "Episode finished" (or,
  without a trajectory, it has a prediction);
- the task its golds look like (`task_from_golds`) and the one in its name (`name_task`);
- the episodes requested (`requested`): the range in the name (`name_range`: ``min(end, split size) - start``,
  ids checked against it), else the paper's evaluation range the ids fall in (`paper_range`: the
  500 ``Random(233)``-shuffled HotpotQA dev questions, checked against the golds).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fireact.errors import FireactError
from fireact.tasks.base import Answer
from fireact.tasks.metrics import normalize_answer

# FireAct's generation.py names its output {task}_{split}_{start}_{end}_{model}_{temp}_{time}.json
# (an MMLU split can be a subject file such as abstract_algebra_test).
FIREACT_NAME = re.compile(
    r"^(?P<task>hotpotqa|strategyqa|mmlu|bamboogle)_(?P<split>.+?)_(?P<start>\d+)_(?P<end>\d+)_"
)
# The paper's evaluation ranges that ids alone identify: (split, start, end) after the
# Random(233) shuffle. HotpotQA: the 500 shuffled dev questions of the released trajectories.
PAPER_RANGES = {"hotpotqa": ("dev", 0, 500)}

Records = dict[str, dict[str, Any]]  # a FireAct file: index into the split → episode


def episode_finished(rec: dict[str, Any]) -> bool:
    """Whether a FireAct episode finished: its trajectory (text or chat) reached the end."""
    traj = rec.get("traj")
    if isinstance(traj, str) and traj:
        return "Episode finished" in traj
    if isinstance(traj, list) and traj and isinstance(traj[-1], dict):  # chat-format messages
        return "Episode finished" in str(traj[-1].get("content", ""))
    return rec.get("pred") is not None


def task_from_golds(golds: Iterable[Answer]) -> str | None:
    """The task FireAct's golds belong to, or None when they do not tell.

    Booleans (FireAct's StrategyQA) or all yes/no: strategyqa; all single letters A-D: mmlu
    (FireAct stores them lower-cased); any other strings: hotpotqa (Bamboogle scores alike).
    """
    values = [g for g in golds if g is not None]
    if not values:
        return None
    if all(isinstance(g, bool) for g in values):
        return "strategyqa"
    if not all(isinstance(g, str) for g in values):
        return None  # booleans mixed with strings, or numbers
    texts = {g.strip().lower() for g in values}
    if texts <= {"a", "b", "c", "d"}:
        return "mmlu"
    if texts <= {"yes", "no"}:
        return "strategyqa"
    return "hotpotqa"


def _name_parts(path: Path) -> re.Match[str] | None:
    name = path.name.removesuffix(".gz")
    return FIREACT_NAME.match(name) if name.endswith(".json") else None


def name_task(path: Path) -> str | None:
    """The task in a FireAct file name, or None when the name is not FireAct's."""
    parts = _name_parts(path)
    return parts["task"] if parts else None


@functools.lru_cache(maxsize=16)
def _split(task: str, split: str) -> tuple[Answer, ...] | None:
    """Gold answers of our copy of a FireAct split, or None when we do not ship it."""
    from fireact.tasks import load_task

    subject = None
    if task == "mmlu" and (m := re.fullmatch(r"(.+)_(dev|val|test)", split)):
        subject, split = m[1], m[2]  # FireAct's per-subject split, e.g. abstract_algebra_test
    try:
        return tuple(ex.answer for ex in load_task(task, split, subject=subject).examples)
    except FireactError:
        return None


@functools.lru_cache(maxsize=16)
def _shuffled(size: int) -> tuple[int, ...]:
    from fireact.tasks.base import select_indices

    return tuple(select_indices(size, 0, None, shuffle=True))


def _int_ids(records: Records) -> list[int] | None:
    try:
        return [int(key) for key in records]
    except ValueError:
        return None


def name_range(path: Path, records: Records) -> tuple[int, str] | None:
    """The size of the range in a FireAct file name, checked against the ids where we can."""
    parts = _name_parts(path)
    if parts is None:
        return None
    task, split, start, end = parts["task"], parts["split"], int(parts["start"]), int(parts["end"])
    golds = _split(task, split)
    ids = _int_ids(records)
    if golds is not None:
        end = min(end, len(golds))  # generation.py slices past the end of a short split
    size = max(end - start, 0)
    where = f"range {start}-{end} of {task} {split} in the file name"
    if golds is not None and ids is not None:
        shuffled = set(ids) - set(_shuffled(len(golds))[start:end])
        plain = set(ids) - set(range(start, end))
        if shuffled and plain:
            outside = sorted(min(shuffled, plain, key=len))[:3]
            raise FireactError(
                f"{path}: ids outside the {where} (shuffled or not): "
                f"{', '.join(map(str, outside))}; pass --denominator N"
            )
    return size, where


def paper_range(task: str, records: Records) -> tuple[int, str] | None:
    """The paper's evaluation range the ids fall in, when their golds match our split."""
    if task not in PAPER_RANGES:
        return None
    split, start, end = PAPER_RANGES[task]
    golds, ids = _split(task, split), _int_ids(records)
    if golds is None or ids is None or any(not 0 <= i < len(golds) for i in ids):
        return None
    same = all(
        golds[i] is not None and normalize_answer(str(golds[i])) == normalize_answer(str(rec["gt"]))
        for i, rec in zip(ids, records.values(), strict=True)
    )
    if not same or not set(ids) <= set(_shuffled(len(golds))[start:end]):
        return None
    return end - start, f"ids: the paper's {end - start} shuffled {task} {split} questions"


def requested(path: Path, records: Records, task: str) -> tuple[int, str] | None:
    """The episodes a FireAct file was asked for, and where that came from; None: unknown."""
    return name_range(path, records) or paper_range(task, records)


__all__ = [
    "FIREACT_NAME",
    "PAPER_RANGES",
    "Records",
    "episode_finished",
    "name_range",
    "name_task",
    "paper_range",
    "requested",
    "task_from_golds",
]

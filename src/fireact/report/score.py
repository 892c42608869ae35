"""`fireact score`: EM / F1 of a finished run, from our JSONL or FireAct's trajectory JSON.

Two formats are read:
- ours: JSONL, one episode per line with at least ``prediction`` (null if unfinished), ``gold``,
  ``finished`` and optionally ``task`` (default hotpotqa);
- FireAct's: one JSON object mapping an index to ``{reward, em, f1, gt, pred, prompt, traj,
  traj_by_line}``; an episode counts as finished when its trajectory reached
  "Episode finished" (or, without a trajectory, when it has a prediction).

Scores are always recomputed from prediction and gold with the task's official rule, and a
run's EM divides by the episodes requested: the number of records, or ``--denominator`` when
unfinished episodes were dropped from the file (they then count as unfinished).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fireact.errors import FireactError
from fireact.files import iter_jsonl, read_json, read_text
from fireact.tasks import TASKS
from fireact.tasks.base import Answer, Score, score_mmlu, score_qa, score_strategyqa

SCORERS = {
    "hotpotqa": score_qa,
    "bamboogle": score_qa,
    "strategyqa": score_strategyqa,
    "mmlu": score_mmlu,
}


@dataclass(frozen=True)
class Episode:
    """The part of an episode that scoring needs."""

    task: str
    prediction: str | None
    gold: Answer
    finished: bool


@dataclass(frozen=True)
class RunScore:
    """Scores of one file: EM and F1 are means over ``denominator`` episodes."""

    file: str
    format: str
    task: str
    n: int
    denominator: int
    finished: int
    unfinished: int
    correct: int
    em: float
    f1: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def detect_format(path: Path) -> str:
    """``fireact`` for FireAct's JSON object of episodes, ``jsonl`` for our runs."""
    text = read_text(path)
    if not text.strip():
        raise FireactError(f"{path}: file is empty, expected a run (JSONL) or FireAct JSON")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return "jsonl"  # several lines of JSON (or malformed: the JSONL reader names the line)
    if (
        isinstance(data, dict)
        and data
        and all(isinstance(v, dict) and ("pred" in v or "gt" in v) for v in data.values())
    ):
        return "fireact"
    return "jsonl"


def _check_task(task: str, where: str) -> str:
    if task not in TASKS:
        raise FireactError(f"{where}: unknown task '{task}': choose one of {', '.join(TASKS)}")
    return task


def read_run_episodes(path: Path, task: str | None = None) -> list[Episode]:
    """Episodes of one of our run files (JSONL)."""
    episodes = []
    for lineno, rec in iter_jsonl(path):
        where = f"{path}:{lineno}"
        if not isinstance(rec, dict):
            raise FireactError(f"{where}: expected a JSON object per line")
        for field in ("prediction", "gold"):
            if field not in rec:
                raise FireactError(f"{where}: missing field '{field}'")
        pred = rec["prediction"]
        if pred is not None and not isinstance(pred, str):
            raise FireactError(f"{where}: field 'prediction' should be a string or null")
        finished = rec.get("finished", pred is not None)
        name = _check_task(task or rec.get("task", "hotpotqa"), where)
        episodes.append(Episode(name, pred, rec["gold"], bool(finished)))
    return episodes


def _fireact_finished(rec: dict[str, Any]) -> bool:
    traj = rec.get("traj")
    if isinstance(traj, str) and traj:
        return "Episode finished" in traj
    return rec.get("pred") is not None


def read_fireact_episodes(path: Path, task: str | None = None) -> list[Episode]:
    """Episodes of a FireAct trajectory file (index → record)."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise FireactError(f"{path}: expected a JSON object mapping index to episode")
    episodes = []
    for key, rec in data.items():
        where = f"{path}: episode {key}"
        if not isinstance(rec, dict):
            raise FireactError(f"{where}: expected an object with gt and pred")
        for field in ("gt", "pred"):
            if field not in rec:
                raise FireactError(f"{where}: missing field '{field}'")
        gold, pred = rec["gt"], rec["pred"]
        name = task or ("strategyqa" if isinstance(gold, bool) else "hotpotqa")
        _check_task(name, where)
        pred_text = None if pred is None else str(pred)
        episodes.append(Episode(name, pred_text, gold, _fireact_finished(rec)))
    return episodes


def score_episode(ep: Episode) -> Score:
    """The official score of one episode; unfinished or unlabelled episodes score 0."""
    if not ep.finished or ep.prediction is None or ep.gold is None:
        return Score(False, 0.0)
    return SCORERS[ep.task](ep.prediction, ep.gold)


def score_file(path: Path, *, task: str | None = None, denominator: int | None = None) -> RunScore:
    """Score one run file (either format)."""
    path = Path(path)
    fmt = detect_format(path)
    reader = read_run_episodes if fmt == "jsonl" else read_fireact_episodes
    episodes = reader(path, task)
    if not episodes:
        raise FireactError(f"{path}: no episodes to score")
    n = len(episodes)
    denom = n if denominator is None else denominator
    if denom < n:
        raise FireactError(f"--denominator {denom} is smaller than the {n} episodes in {path}")
    scores = [score_episode(ep) for ep in episodes]
    finished = sum(ep.finished for ep in episodes)
    correct = sum(s.em for s in scores)
    names = sorted({ep.task for ep in episodes})
    return RunScore(
        file=str(path),
        format=fmt,
        task=",".join(names),
        n=n,
        denominator=denom,
        finished=finished,
        unfinished=denom - finished,  # episodes dropped from the file count as unfinished
        correct=correct,
        em=correct / denom,
        f1=sum(s.f1 for s in scores) / denom,
    )


__all__ = ["RunScore", "Episode", "score_file", "score_episode", "detect_format"]

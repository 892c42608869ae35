"""`fireact score`: EM / F1 of a finished run, from our JSONL or FireAct's trajectory JSON.

Owns reading both formats (plain or gzipped: ``.jsonl``, ``.json``, ``.json.gz``), telling the
task of a FireAct file, choosing the denominator, and the one-line count a run is reported as
(`RunScore.count_line`, e.g. ``EM 34.40 = 172/500; 499 records, 1 missing counted wrong``).

Two formats are read:
- ours: JSONL, one episode per line with at least ``prediction`` (null if unfinished), ``gold``,
  ``finished`` and optionally ``task`` (default hotpotqa); a run folder means its
  ``episodes.jsonl``;
- FireAct's: one JSON object mapping an index into the task's split to ``{reward, em, f1, gt,
  pred, prompt, traj, traj_by_line}``; what its name, ids, golds and trajectories tell (task,
  finished, episodes requested) is read by `fireact.report.fireact_files`. FireAct drops the
  episodes that never finished, so a file can hold fewer records than the questions asked.

Scores are always recomputed from prediction and gold with the task's official rule. EM and F1
divide by the episodes requested, so dropped or unfinished episodes count as wrong:
- ``--denominator N`` when given;
- our run: ``n`` of the run's ``summary.json`` (or ``config.json``) beside ``episodes.jsonl``;
- FireAct's file: the range in its name (``generation.py`` writes
  ``{task}_{split}_{start}_{end}_...json``; the size is ``min(end, split size) - start``), else
  the paper's evaluation range its ids fall in (the 500 ``Random(233)``-shuffled HotpotQA dev
  questions, checked against the golds);
- otherwise the records in the file.

The task of a FireAct file is read from its golds (booleans or all yes/no: strategyqa; all
letters A-D: mmlu; other strings: hotpotqa) and checked against the task in its name; where
neither tells, a one-line error asks for ``--task``.
"""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from fireact.errors import FireactError
from fireact.files import jsonl_records, read_json, read_text
from fireact.report.fireact_files import (
    Records,
    episode_finished,
    name_task,
    requested,
    task_from_golds,
)
from fireact.runs import CONFIG, EPISODES, SUMMARY, Record, Tally, run_stats
from fireact.tasks import TASKS, task_spec
from fireact.tasks.base import Answer, Score

REQUESTED_IN = (SUMMARY, CONFIG)  # where a run records `n`, the episodes requested


@dataclass(frozen=True)
class Episode:
    """The part of an episode that scoring needs."""

    task: str
    prediction: str | None
    gold: Answer
    finished: bool


@dataclass(frozen=True)
class RunScore:
    """Scores of one file: EM and F1 are means over ``denominator`` episodes.

    ``n`` is the records in the file, ``missing`` the requested episodes it lacks (counted as
    unfinished and wrong), ``denominator_from`` where the denominator came from. The numbers come
    from `fireact.runs.run_stats`; ``fireact score`` keeps its own names for two of them: ``n``
    here is run_stats' ``done``, ``denominator`` its ``n`` (the episodes requested).
    """

    file: str
    format: str
    task: str
    n: int
    denominator: int
    denominator_from: str
    missing: int
    finished: int
    unfinished: int
    correct: int
    em: float
    f1: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def count_line(self) -> str:
        """``EM 34.40 = 172/500; 499 records, 1 missing counted wrong; F1 ...``."""
        records = f"{self.n} record" + ("" if self.n == 1 else "s")
        unfinished = self.n - self.finished
        if unfinished:
            records += f" ({unfinished} unfinished)"
        if self.missing:
            records += f", {self.missing} missing counted wrong"
        return (
            f"EM {100 * self.em:.2f} = {self.correct}/{self.denominator}; {records}; "
            f"F1 {100 * self.f1:.2f}"
        )


def load_text(path: Path) -> str:
    """The file's text; ``.gz`` files are decompressed first. One-line errors name the file."""
    path = Path(path)
    if path.suffix != ".gz":
        return read_text(path)
    if not path.is_file():
        read_text(path)  # the same 'file not found' / 'is a folder' errors
    try:
        data = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as err:
        raise FireactError(f"{path}: not a readable gzip file ({err})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise FireactError(f"{path}: not UTF-8 text (byte {err.start})") from None


def _parse(path: Path) -> tuple[str, Any]:
    """``("fireact", object)`` for FireAct's JSON object of episodes, else ``("jsonl", text)``."""
    text = load_text(path)
    if not text.strip():
        raise FireactError(f"{path}: file is empty, expected a run (JSONL) or FireAct JSON")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return "jsonl", text  # several lines of JSON (or malformed: the JSONL reader names it)
    if (
        isinstance(data, dict)
        and data
        and all(isinstance(v, dict) and ("pred" in v or "gt" in v) for v in data.values())
    ):
        return "fireact", data
    return "jsonl", text


def detect_format(path: Path) -> str:
    """``fireact`` for FireAct's JSON object of episodes, ``jsonl`` for our runs."""
    return _parse(Path(path))[0]


def _check_task(task: str, where: str) -> str:
    if task not in TASKS:
        raise FireactError(f"{where}: unknown task '{task}': choose one of {', '.join(TASKS)}")
    return task


def _check_fields(rec: Any, where: str, fields: tuple[str, ...], shape: str) -> dict[str, Any]:
    """`rec` itself when it is a JSON object with `fields`; else a one-line error at `where`."""
    if not isinstance(rec, dict):
        raise FireactError(f"{where}: expected {shape}")
    for field in fields:
        if field not in rec:
            raise FireactError(f"{where}: missing field '{field}'")
    return rec


def _run_episodes(path: Path, text: str, task: str | None) -> list[Episode]:
    episodes = []
    for lineno, line in jsonl_records(path, text):
        where = f"{path}:{lineno}"
        rec = _check_fields(line, where, ("prediction", "gold"), "a JSON object per line")
        pred = rec["prediction"]
        if pred is not None and not isinstance(pred, str):
            raise FireactError(f"{where}: field 'prediction' should be a string or null")
        finished = rec.get("finished", pred is not None)
        name = _check_task(task or rec.get("task", "hotpotqa"), where)
        episodes.append(Episode(name, pred, rec["gold"], bool(finished)))
    return episodes


def read_run_episodes(path: Path, task: str | None = None) -> list[Episode]:
    """Episodes of one of our run files (JSONL, plain or gzipped)."""
    return _run_episodes(Path(path), load_text(path), task)


def _fireact_records(path: Path, data: Any) -> Records:
    if not isinstance(data, dict):
        raise FireactError(f"{path}: expected a JSON object mapping index to episode")
    for key, rec in data.items():
        _check_fields(rec, f"{path}: episode {key}", ("gt", "pred"), "an object with gt and pred")
    return data


def fireact_task(path: Path, records: Records) -> str:
    """The task of a FireAct file: from its golds, checked against the task in its name."""
    from_golds = task_from_golds(rec["gt"] for rec in records.values())
    from_name = name_task(path)
    if from_name and from_golds and task_spec(from_name).scorer is not task_spec(from_golds).scorer:
        raise FireactError(
            f"{path}: the file name says {from_name} but the golds look like {from_golds}: "
            f"pass --task {from_name} or --task {from_golds}"
        )
    task = from_name or from_golds
    if task is None:
        raise FireactError(
            f"{path}: cannot tell the task from the golds (field 'gt'): pass --task "
            f"{' | '.join(TASKS)}"
        )
    return task


def run_requested(path: Path) -> tuple[int, str] | None:
    """``n`` (episodes requested) from the run files beside an ``episodes.jsonl``."""
    if path.name != EPISODES:
        return None
    for name in REQUESTED_IN:
        info = path.parent / name
        if not info.is_file():
            continue
        data = read_json(info)
        n = data.get("n") if isinstance(data, dict) else None
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise FireactError(f"{info}: field 'n' should be a positive integer, got {n!r}")
        return n, f"n in {name}"
    return None


def _denominator(
    path: Path, n: int, denominator: int | None, found: tuple[int, str] | None
) -> tuple[int, str]:
    if denominator is not None:
        if denominator < n:
            raise FireactError(
                f"--denominator {denominator} is smaller than the {n} episodes in {path}"
            )
        return denominator, "--denominator"
    if found is None:
        return n, "records in the file"
    size, where = found
    if size < n:
        raise FireactError(
            f"{path}: {n} records but the {where} gives {size}: pass --denominator N"
        )
    return size, where


def score_episode(ep: Episode) -> Score:
    """The official score of one episode; unfinished or unlabelled episodes score 0."""
    if not ep.finished or ep.prediction is None or ep.gold is None:
        return Score(False, 0.0)
    gold = ep.gold
    if ep.task == "strategyqa" and isinstance(gold, str):  # a "yes"/"no" gold, not a boolean
        gold = gold.strip().lower() in ("yes", "true")
    return task_spec(ep.task).scorer(ep.prediction, gold)


def scored_tally(ep: Episode, record: Record | None = None) -> Tally:
    """What `fireact.runs.run_stats` needs from one episode, scored as ``fireact score`` does:
    finished, EM and F1 from `ep` (the task's official rule), the rest (steps, tokens, cost,
    time, error) from its run record when given."""
    score = score_episode(ep)
    tally = Tally.of(record if record is not None else {})
    return replace(tally, finished=ep.finished, em=bool(score.em), f1=score.f1)


def read_fireact_episodes(path: Path, task: str | None = None) -> list[Episode]:
    """Episodes of a FireAct trajectory file (index → record), plain or gzipped."""
    path = Path(path)
    text = load_text(path)
    if not text.strip():
        raise FireactError(f"{path}: file is empty, expected FireAct JSON")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise FireactError(
            f"{path}:{err.lineno}: malformed JSON ({err.msg}, column {err.colno})"
        ) from None
    return _fireact_episodes(path, _fireact_records(path, data), task)


def _fireact_episodes(path: Path, records: Records, task: str | None) -> list[Episode]:
    name = _check_task(task, str(path)) if task else fireact_task(path, records)
    return [
        Episode(
            name,
            None if rec["pred"] is None else str(rec["pred"]),
            rec["gt"],
            episode_finished(rec),
        )
        for rec in records.values()
    ]


def score_file(path: Path, *, task: str | None = None, denominator: int | None = None) -> RunScore:
    """Score one run file (either format) or run folder; see the module doc for the denominator."""
    path = Path(path)
    if path.is_dir() and (path / EPISODES).is_file():
        path = path / EPISODES
    fmt, content = _parse(path)
    if fmt == "fireact":
        records = _fireact_records(path, content)
        episodes = _fireact_episodes(path, records, task)
    else:
        records = {}
        episodes = _run_episodes(path, content, task)
    if not episodes:
        raise FireactError(f"{path}: no episodes to score")
    n = len(episodes)
    found = None
    if denominator is None and fmt == "fireact":
        found = requested(path, records, episodes[0].task)
    elif denominator is None:
        found = run_requested(path)
    denom, denom_from = _denominator(path, n, denominator, found)
    stats = run_stats([scored_tally(ep) for ep in episodes], denom)
    return RunScore(
        file=str(path),
        format=fmt,
        task=",".join(sorted({ep.task for ep in episodes})),
        n=stats["done"],
        denominator=stats["n"],
        denominator_from=denom_from,
        missing=stats["n"] - stats["done"],
        finished=stats["finished"],
        unfinished=stats["unfinished"],  # episodes missing from the file count as unfinished
        correct=stats["correct"],
        em=stats["em"],
        f1=stats["f1"],
    )


__all__ = [
    "Episode",
    "RunScore",
    "detect_format",
    "fireact_task",
    "load_text",
    "read_fireact_episodes",
    "read_run_episodes",
    "score_episode",
    "score_file",
    "scored_tally",
    "task_from_golds",
]

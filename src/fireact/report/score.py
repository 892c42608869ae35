"""`fireact score`: EM / F1 of a finished run, from our JSONL or FireAct's trajectory JSON.

Owns reading both formats (plain or gzipped: ``.jsonl``, ``.json``, ``.json.gz``), telling the
task of a FireAct file, choosing the denominator, and the one-line count a run is reported as
(`RunScore.count_line`, e.g. ``EM 34.40 = 172/500; 499 records, 1 missing counted wrong``).

Two formats are read:
- ours: JSONL, one episode per line with at least ``prediction`` (null if unfinished), ``gold``,
  ``finished`` and optionally ``task`` (default hotpotqa); a run folder means its
  ``episodes.jsonl``;
- FireAct's: one JSON object mapping an index into the task's split to ``{reward, em, f1, gt,
  pred, prompt, traj, traj_by_line}``; an episode counts as finished when its trajectory reached
  "Episode finished" (or, without a trajectory, when it has a prediction). FireAct drops the
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

import functools
import gzip
import json
import re
import zlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fireact.errors import FireactError
from fireact.files import jsonl_records, read_json, read_text
from fireact.tasks import TASKS
from fireact.tasks.base import Answer, Score, score_mmlu, score_qa, score_strategyqa
from fireact.tasks.metrics import normalize_answer

SCORERS = {
    "hotpotqa": score_qa,
    "bamboogle": score_qa,
    "strategyqa": score_strategyqa,
    "mmlu": score_mmlu,
}
EPISODES = "episodes.jsonl"
RUN_FILES = ("summary.json", "config.json")  # where a run records `n`, the episodes requested

# FireAct's generation.py names its output {task}_{split}_{start}_{end}_{model}_{temp}_{time}.json
# (an MMLU split can be a subject file such as abstract_algebra_test).
FIREACT_NAME = re.compile(
    r"^(?P<task>hotpotqa|strategyqa|mmlu|bamboogle)_(?P<split>.+?)_(?P<start>\d+)_(?P<end>\d+)_"
)
# The paper's evaluation ranges that ids alone identify: (split, start, end) after the
# Random(233) shuffle. HotpotQA: the 500 shuffled dev questions of the released trajectories.
PAPER_RANGES = {"hotpotqa": ("dev", 0, 500)}


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
    unfinished and wrong), ``denominator_from`` where the denominator came from.
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


def _run_episodes(path: Path, text: str, task: str | None) -> list[Episode]:
    episodes = []
    for lineno, rec in jsonl_records(path, text):
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


def read_run_episodes(path: Path, task: str | None = None) -> list[Episode]:
    """Episodes of one of our run files (JSONL, plain or gzipped)."""
    return _run_episodes(Path(path), load_text(path), task)


def _fireact_finished(rec: dict[str, Any]) -> bool:
    traj = rec.get("traj")
    if isinstance(traj, str) and traj:
        return "Episode finished" in traj
    if isinstance(traj, list) and traj and isinstance(traj[-1], dict):  # chat-format messages
        return "Episode finished" in str(traj[-1].get("content", ""))
    return rec.get("pred") is not None


def _fireact_records(path: Path, data: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(data, dict):
        raise FireactError(f"{path}: expected a JSON object mapping index to episode")
    for key, rec in data.items():
        where = f"{path}: episode {key}"
        if not isinstance(rec, dict):
            raise FireactError(f"{where}: expected an object with gt and pred")
        for field in ("gt", "pred"):
            if field not in rec:
                raise FireactError(f"{where}: missing field '{field}'")
    return data


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


def fireact_task(path: Path, records: dict[str, dict[str, Any]]) -> str:
    """The task of a FireAct file: from its golds, checked against the task in its name."""
    from_golds = task_from_golds(rec["gt"] for rec in records.values())
    parts = _name_parts(path)
    from_name = parts["task"] if parts else None
    if from_name and from_golds and SCORERS[from_name] is not SCORERS[from_golds]:
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


def _int_ids(records: dict[str, dict[str, Any]]) -> list[int] | None:
    try:
        return [int(key) for key in records]
    except ValueError:
        return None


def _name_range(path: Path, records: dict[str, dict[str, Any]]) -> tuple[int, str] | None:
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


def _paper_range(task: str, records: dict[str, dict[str, Any]]) -> tuple[int, str] | None:
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


def run_requested(path: Path) -> tuple[int, str] | None:
    """``n`` (episodes requested) from the run files beside an ``episodes.jsonl``."""
    if path.name != EPISODES:
        return None
    for name in RUN_FILES:
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
    return SCORERS[ep.task](ep.prediction, gold)


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


def _fireact_episodes(
    path: Path, records: dict[str, dict[str, Any]], task: str | None
) -> list[Episode]:
    name = _check_task(task, str(path)) if task else fireact_task(path, records)
    return [
        Episode(
            name,
            None if rec["pred"] is None else str(rec["pred"]),
            rec["gt"],
            _fireact_finished(rec),
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
        found = _name_range(path, records) or _paper_range(episodes[0].task, records)
    elif denominator is None:
        found = run_requested(path)
    denom, denom_from = _denominator(path, n, denominator, found)
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
        denominator_from=denom_from,
        missing=denom - n,
        finished=finished,
        unfinished=denom - finished,  # episodes missing from the file count as unfinished
        correct=correct,
        em=correct / denom,
        f1=sum(s.f1 for s in scores) / denom,
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
    "task_from_golds",
]

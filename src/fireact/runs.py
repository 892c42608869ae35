"""The run folder: its file names, the episode record, append / read / resume, statistics.

A run folder (``fireact run --out DIR``) holds ``config.json`` (at the start: the options, the
number of episodes), ``episodes.jsonl`` (one line per finished episode, appended and flushed),
``summary.json`` (at the end) and, for `generate`, ``trajectories.jsonl`` (the kept records);
`view` adds ``view.html``. Every module that reads or writes these names imports them from here.

The API (what `runner`, `view`, `report`, `score` and `convert` share):

* `EpisodeRecord` — one line of ``episodes.jsonl``, typed. ``record.to_json()`` is the line
  (without its newline), byte for byte what fireact has always written;
  ``EpisodeRecord.from_json(line, where="")`` / ``from_dict(data)`` read one back (old lines
  too: a missing field takes its default, unknown fields are kept in ``extra`` and written back
  after the known ones). Versioned: `RECORD_VERSION` (1) writes no ``version`` key; a line with
  a ``version`` newer than this fireact reads is a `FireactError`. Its counters (model calls,
  re-asks, tokens, dollars, model / tool time) are `EpisodeCosts`, shared with whatever counts
  them; `RECORD_FIELDS` is the key order of a line, `STEP_COST_FIELDS` that of a step_stats.
* `read_records(path) -> list[EpisodeRecord]` — every record of an ``episodes.jsonl`` (one-line
  errors naming file and line); `append_record(sink, record)` — one line, flushed.
* `read_done(path) -> dict[str, Tally]` — resume: the finished records, a torn last line dropped
  and errored episodes removed (atomically) so that they run again.
* `Tally` — the few numbers statistics need from one record (`Tally.of(record_or_dict)`).
* `run_stats(records, n=None) -> dict` — THE statistics of a run, over records, dicts or tallies;
  `n` = the episodes requested (default: as many as given; missing ones count as unfinished and
  wrong). Keys, in this order: ``n``, ``done`` (records given), ``finished``, ``unfinished``
  (= n - finished), ``errors`` (records with an error), ``first_error``, ``correct`` (EM true),
  ``em`` (correct / n), ``f1`` (sum / n), ``mean_steps``, ``llm_calls``, ``tool_calls``,
  ``prompt_tokens``, ``completion_tokens``, ``cost_usd`` (totals), ``mean_episode_s`` (mean
  wall time of an episode; means are over ``done``).
* `summarise(tallies, n, task, options, wall_s, ran)` — ``summary.json``: task, split, method,
  format, model, then `run_stats`, then wall_s, episodes_run, episodes_per_s, options.
* `refuse_run_overlap(out, inputs)`, `make_out(out)`, `prepare_out(out, resume=, overwrite=,
  check_resume=)` — the folder before a run.
* `write_json(path, data)` — atomic; `had_tool_error(record)`; `write_trajectories(out, keep,
  keep_tool_errors)` — `generate`'s ``trajectories.jsonl``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from fireact.errors import FireactError
from fireact.outputs import LOCK_NAME, atomic_write_bytes, atomic_write_text, refuse_overlap

if TYPE_CHECKING:
    from fireact.agent.options import RunOptions
    from fireact.tasks.base import Task

EPISODES = "episodes.jsonl"
SUMMARY = "summary.json"
CONFIG = "config.json"
TRAJECTORIES = "trajectories.jsonl"
VIEW = "view.html"
VLLM_LOG = "vllm.log"  # the managed vLLM server's log (written before the run starts)
RUN_FILES = (EPISODES, SUMMARY, CONFIG, TRAJECTORIES)  # what a run writes (--overwrite removes)
RECORD_VERSION = 1  # the record schema this fireact writes (version 1 writes no "version" key)
TOOL_ERROR = "Tool error:"  # how a failed tool call reads as an observation (as episode.py)
TIMING_FIELDS = ("wall_s", "llm_latency_s", "tool_latency_s")  # record fields that vary by run


def run_inputs(path: Path | str) -> list[Path]:
    """What a reader of `path` reads: a run folder's own files (never to be overwritten by
    another command's output), or the file itself."""
    path = Path(path)
    if path.is_dir():
        return [path / name for name in RUN_FILES]
    return [path]


# ------------------------------------------------------------------ the record


@dataclass(kw_only=True)
class EpisodeCosts:
    """What an episode spent: model calls, re-asks, tokens, dollars, model and tool time (the
    record's counters; a class that keeps these counters can share them by inheriting this)."""

    llm_calls: int = 0
    reasks: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    llm_latency_s: float = 0.0
    tool_latency_s: float = 0.0


@dataclass(kw_only=True)
class EpisodeRecord(EpisodeCosts):
    """One finished episode, as one line of ``episodes.jsonl`` (keys in `RECORD_FIELDS` order)."""

    id: str = ""
    task: str = ""
    split: str | None = None
    method: str = ""
    format: str = ""
    model: str = ""
    question: str = ""
    gold: Any = None  # the task's answer (str, bool) or None for unlabelled splits
    prediction: str | None = None  # null unless finished
    finished: bool = False
    reward: bool = False  # = em
    em: bool = False
    f1: float = 0.0
    steps: int = 0  # steps of the last try
    trajectory: str = ""
    messages: list[dict[str, str]] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # action, argument, ...
    step_stats: list[dict[str, Any]] = field(default_factory=list)  # EpisodeCosts per step
    wall_s: float = 0.0
    tries: int = 1
    reflections: list[str] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)  # reflexion's earlier tries
    error: str | None = None  # why the episode stopped early (None: it ran to its end)
    extra: dict[str, Any] = field(default_factory=dict)  # unknown keys, kept for writing back

    def to_dict(self) -> dict[str, Any]:
        """The record as the JSON object of its line (known fields in order, then ``extra``)."""
        data = {name: getattr(self, name) for name in RECORD_FIELDS}
        data.update(self.extra)
        return data

    def to_json(self) -> str:
        """The line of ``episodes.jsonl`` (without the newline)."""
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "") -> EpisodeRecord:
        """A record from its JSON object; missing fields take their defaults."""
        version = data.get("version", RECORD_VERSION)
        if isinstance(version, int) and version > RECORD_VERSION:
            raise FireactError(
                f"{where or 'record'}: record version {version} is newer than this fireact reads "
                f"({RECORD_VERSION}); upgrade fireact"
            )
        known = {k: v for k, v in data.items() if k in RECORD_FIELDS}
        extra = {k: v for k, v in data.items() if k not in RECORD_FIELDS}
        return cls(**known, extra=extra)

    @classmethod
    def from_json(cls, line: str | bytes, where: str = "") -> EpisodeRecord:
        """A record from one line; `where` (``file:line``) names it in a `FireactError`."""
        try:
            data = json.loads(line)
        except ValueError:
            raise FireactError(f"{where or 'record'}: not a JSON record") from None
        if not isinstance(data, dict):
            raise FireactError(f"{where or 'record'}: expected a JSON object per line")
        return cls.from_dict(data, where)


COST_FIELDS = tuple(f.name for f in fields(EpisodeCosts))
RECORD_FIELDS = (  # the keys of a line, in order (version 1)
    "id", "task", "split", "method", "format", "model", "question", "gold", "prediction",
    "finished", "reward", "em", "f1", "steps", "trajectory", "messages", "tool_calls",
    "step_stats", *COST_FIELDS, "wall_s", "tries", "reflections", "attempts", "error",
)  # fmt: skip
STEP_COST_FIELDS = tuple(n for n in COST_FIELDS if n != "reasks")  # the keys of a step_stats
Record = EpisodeRecord | Mapping[str, Any]  # what the helpers below accept


def _get(record: Record, name: str) -> Any:
    if isinstance(record, EpisodeRecord):
        return getattr(record, name, None) if name in RECORD_FIELDS else record.extra.get(name)
    return record.get(name)


def read_records(path: Path) -> list[EpisodeRecord]:
    """Every record of an ``episodes.jsonl``; a bad line is a `FireactError` naming it."""
    from fireact.files import iter_jsonl

    records = []
    for lineno, data in iter_jsonl(path):
        if not isinstance(data, dict):
            raise FireactError(f"{path}:{lineno}: expected a JSON object per line")
        records.append(EpisodeRecord.from_dict(data, f"{path}:{lineno}"))
    return records


def append_record(sink: TextIO, record: EpisodeRecord) -> None:
    """Append one record to the open ``episodes.jsonl`` and flush it (one line per episode)."""
    try:
        sink.write(record.to_json() + "\n")
        sink.flush()
    except OSError as err:
        raise FireactError(
            f"{sink.name}: cannot write ({err.strerror or err}); the episodes before this one "
            "are saved: fix that (e.g. free disk space), then rerun with --resume"
        ) from None


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write a JSON file atomically (temp file + rename)."""
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


# ------------------------------------------------------------------ statistics


@dataclass
class Tally:
    """What the statistics need from one record."""

    finished: bool
    em: bool
    f1: float
    steps: int
    llm_calls: int
    tool_calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    wall_s: float
    error: str | None  # why the episode stopped early (None: it ran to its end)

    @classmethod
    def of(cls, r: Record) -> Tally:
        """The tally of a record (an `EpisodeRecord` or its JSON object)."""
        error = _get(r, "error")
        return cls(
            bool(_get(r, "finished")),
            bool(_get(r, "em")),
            float(_get(r, "f1") or 0.0),
            int(_get(r, "steps") or 0),
            int(_get(r, "llm_calls") or 0),
            len(_get(r, "tool_calls") or ()),
            int(_get(r, "prompt_tokens") or 0),
            int(_get(r, "completion_tokens") or 0),
            float(_get(r, "cost_usd") or 0.0),
            float(_get(r, "wall_s") or 0.0),
            None if error is None else str(error),
        )


def run_stats(records: Iterable[Record | Tally], n: int | None = None) -> dict[str, Any]:
    """A run's statistics (keys in the module doc) over `n` episodes requested."""
    tallies = [r if isinstance(r, Tally) else Tally.of(r) for r in records]
    done = len(tallies)
    n = done if n is None else n
    finished = sum(t.finished for t in tallies)
    correct = sum(t.em for t in tallies)
    return {
        "n": n,
        "done": done,
        "finished": finished,
        "unfinished": n - finished,
        "errors": sum(t.error is not None for t in tallies),
        "first_error": next((t.error for t in tallies if t.error is not None), None),
        "correct": correct,
        "em": correct / max(n, 1),
        "f1": sum(t.f1 for t in tallies) / max(n, 1),
        "mean_steps": sum(t.steps for t in tallies) / max(done, 1),
        "llm_calls": sum(t.llm_calls for t in tallies),
        "tool_calls": sum(t.tool_calls for t in tallies),
        "prompt_tokens": sum(t.prompt_tokens for t in tallies),
        "completion_tokens": sum(t.completion_tokens for t in tallies),
        "cost_usd": sum(t.cost_usd for t in tallies),
        "mean_episode_s": sum(t.wall_s for t in tallies) / max(done, 1),
    }


def summarise(
    tallies: list[Tally], n: int, task: Task, options: RunOptions, wall_s: float, ran: int
) -> dict[str, Any]:
    """The run's summary (``summary.json``): `run_stats` over the episodes requested, the
    setting, and the speed of this invocation (`ran` episodes in `wall_s`)."""
    head = {"task": task.name, "split": task.split, "method": options.method}
    head |= {"format": options.format, "model": options.model}
    return (
        head
        | run_stats(tallies, n)
        | {
            "wall_s": wall_s,
            "episodes_run": ran,
            "episodes_per_s": ran / wall_s if wall_s > 0 else 0.0,
            "options": options.model_dump(mode="json"),
        }
    )


# ------------------------------------------------------------------ the folder, resume, generate


def refuse_run_overlap(out: Path, inputs: Sequence[Path | str | None]) -> None:
    """The run's files may not be one of its inputs (the questions, the prompt, the index)."""
    given = [Path(p) for p in inputs if p is not None]
    refuse_overlap([Path(out)], [p for p in given if p.is_dir()], what="--out")
    refuse_overlap([Path(out) / name for name in RUN_FILES], given, what="--out")


def _unwritable(out: Path, err: OSError) -> FireactError:
    return FireactError(f"out: cannot write to {out} ({err.strerror}); pick another folder")


def _not_a_file(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise FireactError(f"out: {out} is a file; give a folder for the run")


def make_out(out: Path) -> None:
    """Create the run folder (the lock file lives in it); one line when it cannot be."""
    _not_a_file(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _unwritable(out, err) from None


def prepare_out(
    out: Path, *, resume: bool, overwrite: bool, check_resume: Callable[[Path], None]
) -> Path:
    """Create OUT, or check it may be written: empty, resumed (`check_resume(out)` refuses a
    different run) or overwritten (fireact's run files removed)."""
    out = Path(out)
    _not_a_file(out)
    if out.is_dir() and any(p.name not in (LOCK_NAME, VLLM_LOG) for p in out.iterdir()):
        if overwrite:
            for name in RUN_FILES:
                (out / name).unlink(missing_ok=True)
        elif not resume:
            raise FireactError(
                f"out: {out} is not empty; pass --resume to continue that run or --overwrite "
                "to replace it"
            )
        else:
            check_resume(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.touch()
        probe.unlink()
    except OSError as err:
        raise _unwritable(out, err) from None
    return out


def read_done(path: Path) -> dict[str, Tally]:
    """Tallies of the records already in ``episodes.jsonl``, dropping a torn last line.

    Episodes that ended with an error (an API outage, a crashed tool) are not done: their lines
    are removed from the file (rewritten atomically) so that the resumed run retries them.
    """
    if not path.is_file():
        return {}
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1  # a last line without its newline was cut by a kill
    lines = data[:keep].split(b"\n")[:-1]
    if lines:
        try:
            json.loads(lines[-1])
        except ValueError:  # a torn write that happened to end on a newline
            keep -= len(lines.pop()) + 1
    if keep < len(data):
        os.truncate(path, keep)
    done: dict[str, Tally] = {}
    kept: list[bytes] = []
    for lineno, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except ValueError:
            raise FireactError(
                f"{path}:{lineno}: not a JSON record; fix or remove that line, or use --overwrite"
            ) from None
        if record.get("error") is not None:
            continue
        kept.append(line)
        done.setdefault(str(record.get("id")), Tally.of(record))
    if len(kept) < len(lines):
        atomic_write_bytes(path, b"".join(line + b"\n" for line in kept))
    return done


def had_tool_error(record: Record) -> bool:
    """True when a tool call of the episode failed (its observation is a "Tool error: ...")."""
    return any(
        str(call.get("observation", "")).startswith(TOOL_ERROR)
        for call in _get(record, "tool_calls") or ()
    )


def write_trajectories(out: Path, keep: str, keep_tool_errors: bool = False) -> tuple[int, int]:
    """`generate`: copy the kept records of ``episodes.jsonl`` to ``trajectories.jsonl``.

    An episode whose tool calls failed is never training data unless `keep_tool_errors`: the
    model would learn to answer "Tool error" observations. Returns (kept, dropped for that).
    """
    kept, dropped = [], 0
    for line in (out / EPISODES).read_bytes().splitlines():
        record = json.loads(line)
        if keep == "all" or (record.get("finished") and record.get("reward")):
            if not keep_tool_errors and had_tool_error(record):
                dropped += 1
                continue
            kept.append(line)
    atomic_write_bytes(out / TRAJECTORIES, b"".join(line + b"\n" for line in kept))
    return len(kept), dropped

"""The demo's keep / flag store: finished episodes a user kept or flagged, as a run folder.

Owns `DemoStore` and `regrade`. The store is the demo's ``--out`` folder, in the format of a
``fireact run`` folder (`fireact.runs`), so ``fireact score``, ``convert``, ``view`` and
``report`` read it as they read any run:

* ``episodes.jsonl`` — one `EpisodeRecord` per kept episode, appended and flushed
  (`append_record`);
* ``summary.json`` and ``config.json`` — rewritten (atomically) after each keep: `run_stats`
  over the kept episodes (``n`` = the episodes kept), the task, the demo's default options;
* ``flagged.jsonl`` — one record per episode flagged as bad, the same format, so
  ``fireact score DIR/flagged.jsonl`` and ``convert --keep all`` read it too.

Every record carries ``demo`` (kept in the record's ``extra``): ``started_at`` / ``ended_at``
(Unix times of the episode), and ``note`` and ``corrected_answer`` (keep) or ``reason`` (flag).

Keeping grades the episode (`regrade`): its gold becomes the corrected answer, or, when none is
given, its own prediction (the user vouches for it); EM / F1 / reward are recomputed by the
task's rule and the finish observation is rewritten to match (``Episode finished, reward =
True``), so that ``convert`` takes a kept episode as a success exactly when it is one.

One writer per folder: the store holds the folder's lock (`FolderLock`, kind ``demo``) while the
demo serves; a restarted demo appends to the same files (a torn last line is dropped first, as
``--resume`` does). Episodes that ended with an error can be neither kept nor flagged; an
episode is kept at most once and flagged at most once.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from fireact import trajectory
from fireact.agent.episode import Agent, Episode, finish
from fireact.agent.options import RunOptions
from fireact.agent.runner import to_record
from fireact.errors import FireactError
from fireact.outputs import FolderLock, clean_leftovers, os_errors
from fireact.runs import (
    CONFIG,
    EPISODES,
    SUMMARY,
    EpisodeRecord,
    Tally,
    append_record,
    make_out,
    read_done,
    run_stats,
    write_json,
)
from fireact.tools.base import ToolState

FLAGGED = "flagged.jsonl"  # the episodes flagged as bad (records of the same format)


@dataclasses.dataclass
class Finished:
    """An episode the demo ran to its end: the live objects and when it ran."""

    ep: Episode
    agent: Agent
    options: RunOptions
    started_at: float
    ended_at: float

    @property
    def wall_s(self) -> float:
        return self.ended_at - self.started_at

    def record(self, **demo: Any) -> EpisodeRecord:
        """The episode's record as ``fireact run`` writes it, with the ``demo`` facts."""
        record = to_record(self.ep, self.agent.task, self.options, self.wall_s)
        times = {"started_at": self.started_at, "ended_at": self.ended_at}
        record.extra["demo"] = times | {k: v for k, v in demo.items() if v is not None}
        return record


def regrade(done: Finished, gold: str | None) -> Finished:
    """A copy of the episode graded against `gold` (module doc); the original is unchanged."""
    ep = dataclasses.replace(
        done.ep,
        gold=gold,
        steps=[dataclasses.replace(s) for s in done.ep.steps],
        messages=[dict(m) for m in done.ep.messages],
        tool_state=ToolState(episode_id=done.ep.id),
    )
    if ep.finished and ep.prediction is not None and ep.steps:
        last = ep.steps[-1]
        old = trajectory.render_observation(last.observation)
        last.observation = finish(ep, done.agent, ep.prediction)
        new = trajectory.render_observation(last.observation)
        if ep.trajectory.endswith(old + "\n"):
            ep.trajectory = ep.trajectory[: -len(old) - 1] + new + "\n"
        if ep.messages and ep.messages[-1]["content"] == old:
            ep.messages[-1]["content"] = new
    return dataclasses.replace(done, ep=ep)


class DemoStore:
    """The ``--out`` run folder of the demo (module doc). Use `open` / `close`."""

    def __init__(self, out: Path, task: str, options: RunOptions) -> None:
        self.out = Path(out)
        self.task = task
        self.options = options
        self.lock = FolderLock(self.out, "demo")
        self.kept: dict[str, Tally] = {}
        self.flagged: set[str] = set()

    def open(self) -> DemoStore:
        """Take the folder's lock and read what earlier sessions kept and flagged."""
        make_out(self.out)
        self.lock.acquire()
        clean_leftovers(self.out)
        self.kept = read_done(self.out / EPISODES)
        self.flagged = set(read_done(self.out / FLAGGED))
        return self

    def close(self) -> None:
        """Release the folder's lock."""
        self.lock.release()

    def keep(self, done: Finished, corrected: str = "", note: str = "") -> EpisodeRecord:
        """Append the episode, graded (`regrade`), to ``episodes.jsonl``; update the summary."""
        _check_ended(done)
        if done.ep.id in self.kept:
            raise FireactError(f"episode {done.ep.id} is already kept in {self.out / EPISODES}")
        corrected = corrected.strip()
        gold = corrected or done.ep.prediction
        graded = regrade(done, gold) if gold is not None else done
        record = graded.record(note=note.strip() or None, corrected_answer=corrected or None)
        self._append(EPISODES, record)
        self.kept[record.id] = Tally.of(record)
        self._write_summary()
        return record

    def flag(self, done: Finished, reason: str) -> EpisodeRecord:
        """Append the episode with the reason it is bad to ``flagged.jsonl``."""
        _check_ended(done)
        reason = reason.strip()
        if not reason:
            raise FireactError("flag: give a reason (what is wrong with this answer)")
        if done.ep.id in self.flagged:
            raise FireactError(f"episode {done.ep.id} is already flagged in {self.out / FLAGGED}")
        record = done.record(reason=reason)
        self._append(FLAGGED, record)
        self.flagged.add(record.id)
        return record

    def _append(self, name: str, record: EpisodeRecord) -> None:
        path = self.out / name
        with os_errors(path), path.open("a", encoding="utf-8") as sink:
            append_record(sink, record)

    def _write_summary(self) -> None:
        stats = run_stats(self.kept.values())
        options = self.options.model_dump(mode="json")
        head = {"task": self.task, "demo": True, "updated_at": time.time()}
        write_json(self.out / SUMMARY, head | stats | {"options": options})
        write_json(self.out / CONFIG, {"options": options, "n": stats["n"], "demo": True})


def _check_ended(done: Finished) -> None:
    if done.ep.error is not None:
        raise FireactError(f"episode {done.ep.id} ended with an error ({done.ep.error})")

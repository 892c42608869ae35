"""Where the loop stands: the loop folder, its ``ROUND_k/`` folders and each stage's done-marker.

Owns the layout of a loop folder ``OUT``::

    OUT/recipe.json              the recipe the loop was started with (resume compares it)
    OUT/ROUND_k/STAGE/           what stage STAGE of round k wrote
    OUT/ROUND_k/done/STAGE.json  the stage's result, written (atomically) after its outputs
    OUT/summary.json, summary.md, em_per_round.png

Every path the loop's files hold (done-markers, ``summary.json``) that lies inside ``OUT`` is
stored relative to it (`stored`: ``ROUND_1/train``) and found again at use time (`located`), so
a loop folder can be moved or copied and resumed elsewhere; absolute paths, as older loop folders
stored them, are used as they are.

`LoopState.stage`: a finished stage (its marker is there) is skipped and its saved result
returned; an unfinished one is run again (each stage says how it resumes: agent runs restart or
use the runner's resume, training restarts from scratch), then marked done. Stage names and their
order per round are `ROUND0_STAGES` and `ROUND_STAGES`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fireact.outputs import atomic_write_text, clean_leftovers

ROUND0_STAGES = ("teacher", "report", "train", "eval")  # with start_model: only "eval"
ROUND_STAGES = ("sample", "keep", "report", "train", "eval")
DONE = "done"
ROUND_PREFIX = "ROUND_"


def round_dir(out: Path, k: int) -> Path:
    """The folder of round `k`."""
    return out / f"{ROUND_PREFIX}{k}"


def loop_folder(stage_folder: Path) -> Path:
    """The loop folder ``OUT`` of a stage's folder ``OUT/ROUND_k/STAGE``."""
    return stage_folder.parents[1]


def stored(out: Path, path: str | Path) -> str:
    """`path` as the loop's files store it: relative to `out` (``ROUND_k/...``) when it lies
    inside it; another local path absolute; anything else (a hub id) as it is."""
    local = Path(path).expanduser()
    if not (local.is_absolute() or local.exists()):
        return str(path)
    local = local.resolve()
    if local.is_relative_to(out.resolve()):
        return local.relative_to(out.resolve()).as_posix()
    return str(local)


def located(out: Path, value: str) -> str:
    """A stored path at use time: ``ROUND_k/...`` is found in `out`, wherever the loop folder is
    now; an absolute path or a hub id is as it was stored."""
    if value.startswith(ROUND_PREFIX):
        return str(out / value)
    return value


def marker(out: Path, k: int, stage: str) -> Path:
    """The done-marker of stage `stage` of round `k`."""
    return round_dir(out, k) / DONE / f"{stage}.json"


def read_done(out: Path, k: int, stage: str) -> dict[str, Any] | None:
    """The saved result of a finished stage, or None when it has not finished."""
    path = marker(out, k, stage)
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass
class LoopState:
    """The stages of one loop folder: runs the unfinished ones, reports what it did."""

    out: Path
    say: Callable[[str], None]
    ran: list[str] = field(default_factory=list)  # "k/stage" of each stage run by this process
    skipped: list[str] = field(default_factory=list)  # finished earlier, not run again

    def stage(self, k: int, name: str, work: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
        """Stage `name` of round `k`: its saved result, or run `work(folder)` and save it."""
        done = read_done(self.out, k, name)
        if done is not None:
            self.skipped.append(f"{k}/{name}")
            return done
        folder = round_dir(self.out, k) / name
        started = "resuming" if folder.exists() else "starting"
        if not self.ran and self.skipped:
            self.say(f"resuming round {k} at stage {name} ({len(self.skipped)} stages done)")
        self.say(f"round {k} {name}: {started}")
        folder.mkdir(parents=True, exist_ok=True)
        clean_leftovers(folder)
        result = work(folder)
        path = marker(self.out, k, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(result, indent=2, sort_keys=True) + "\n")
        self.ran.append(f"{k}/{name}")
        return result

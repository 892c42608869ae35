"""Where the loop stands: the loop folder, its ``ROUND_k/`` folders and each stage's done-marker.

Owns the layout of a loop folder ``OUT``::

    OUT/recipe.json              the recipe the loop was started with (resume compares it)
    OUT/ROUND_k/STAGE/           what stage STAGE of round k wrote
    OUT/ROUND_k/done/STAGE.json  the stage's result, written (atomically) after its outputs
    OUT/summary.json, summary.md, em_per_round.png

and `LoopState.stage`: a finished stage (its marker is there) is skipped and its saved result
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


def round_dir(out: Path, k: int) -> Path:
    """The folder of round `k`."""
    return out / f"ROUND_{k}"


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

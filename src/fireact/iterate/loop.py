"""`iterate(recipe, out)`: rounds of sample → keep → report → train → eval, resumable.

Owns the order of the rounds and stages and the loop folder's guard: one loop per folder
(`fireact.outputs.FolderLock`), a folder that holds something else is refused, and a rerun in a
loop's folder continues it (`fireact.iterate.recipe.check_unchanged`: the same recipe, except
more ``rounds``), skipping every finished stage (`fireact.iterate.state.LoopState`).

Round 0 gives the first model: ``start_model`` evaluated as it is, or the training config's
model trained on the teacher records. Round k ≥ 1 samples with round k-1's model.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fireact.errors import FireactError
from fireact.iterate import stages
from fireact.iterate.model import Model
from fireact.iterate.recipe import RECIPE_FILE, IterateRecipe, check_unchanged, load_recipe
from fireact.iterate.recipe import train_data as training_values
from fireact.iterate.state import LoopState
from fireact.iterate.summary import round_row, write_summary
from fireact.outputs import (
    LOCK_NAME,
    MARKER_PREFIX,
    FolderLock,
    atomic_write_text,
    clear_owned,
    mark_owned,
    os_errors,
)

OWNER = "iterate"


def _stderr(message: str) -> None:
    print(f"fireact.iterate: {message}", file=sys.stderr, flush=True)


def iterate(
    recipe_file: str | Path,
    out: str | Path,
    *,
    overwrite: bool = False,
    say: Callable[[str], None] = _stderr,
) -> dict[str, Any]:
    """Run (or continue) the loop of `recipe_file` in `out`; returns (and writes) the summary."""
    recipe = load_recipe(recipe_file)
    out = Path(out).expanduser().resolve()
    with os_errors(out, "creating"):
        out.mkdir(parents=True, exist_ok=True)
    with FolderLock(out, OWNER):
        if overwrite:
            clear_owned(out, OWNER)
        claim(out, recipe)
        match_threads(recipe)
        state = LoopState(out, say)
        started = time.perf_counter()
        rows = []
        model: Model | None = None
        for k in range(recipe.rounds + 1):
            done, model = run_round(recipe, state, k, model)
            rows.append(round_row(k, done))
            say(f"round {k}: EM {100 * rows[-1]['em']:.1f} ({rows[-1]['model']})")
        header = {  # no absolute path: the folder may be moved and resumed elsewhere
            "task": recipe.task,
            "recipe": Path(recipe_file).name,
            "stages_run": state.ran,
            "stages_skipped": state.skipped,
            "seconds": round(time.perf_counter() - started, 1),
        }
        write_summary(out, rows, header)
        return {**header, "rounds": rows}


def claim(out: Path, recipe: IterateRecipe) -> None:
    """A new loop folder gets the recipe; a loop's folder must have the same one."""
    saved = out / RECIPE_FILE
    if saved.is_file():
        check_unchanged(out, recipe)
        return
    foreign = sorted(
        e.name
        for e in out.iterdir()
        if e.name != LOCK_NAME and not e.name.startswith(MARKER_PREFIX)
    )
    if foreign:
        raise FireactError(
            f"{out} is not empty and holds no {RECIPE_FILE} (found {foreign[0]}): "
            "give a new --out, or --overwrite a loop folder"
        )
    mark_owned(out, OWNER)
    atomic_write_text(saved, json.dumps(recipe.model_dump(mode="json"), indent=2) + "\n")


def match_threads(recipe: IterateRecipe) -> None:
    """Every stage uses the training config's CPU threads (on the CPU), so that a loop resumed
    at any stage computes exactly what an uninterrupted one does."""
    threads = training_values(recipe).get("cpu_threads")
    if not threads:
        return
    import torch

    if not torch.cuda.is_available():
        torch.set_num_threads(int(threads))


def run_round(
    recipe: IterateRecipe, state: LoopState, k: int, model: Model | None
) -> tuple[dict[str, dict[str, Any]], Model]:
    """The stages of round `k`; their results and the round's model."""
    done: dict[str, dict[str, Any]] = {}
    if k == 0 and recipe.start_model is not None:
        model = Model(recipe.start_model, state.out)
    else:
        if k == 0:
            done["teacher"] = state.stage(0, "teacher", lambda f: stages.teacher_stage(recipe, f))
        else:
            assert model is not None
            current = model
            done["sample"] = state.stage(
                k, "sample", lambda f: stages.sample_stage(recipe, k, current, f)
            )
            done["keep"] = state.stage(
                k, "keep", lambda f: stages.keep_stage(recipe, done["sample"], f)
            )
        data = done.get("keep") or done["teacher"]
        previous = model
        done["report"] = state.stage(
            k, "report", lambda f: stages.report_stage(recipe, data, previous, f)
        )
        if f"{k}/report" in state.ran:
            state.say(f"round {k} {done['report']['line']}")
        done["train"] = state.stage(
            k, "train", lambda f: stages.train_stage(recipe, data, previous, f)
        )
        model = Model(done["train"]["agent"], state.out)
    evaluated = model
    done["eval"] = state.stage(k, "eval", lambda f: stages.eval_stage(recipe, evaluated, f))
    return done, model

"""The SFT warm start of an rl recipe (the paper's order: SFT, then RL), through fireact's own
stages: a scripted teacher solves questions with the real tool (`fireact.agent.generate`), the
solved episodes become alpaca data (`fireact.data.convert`), and `fireact.train.train` fine-tunes
the SFT recipe's model on them. The trained model is then the policy of the GRPO run, asked in
the alpaca format it was fine-tuned on.

Everything goes under ``OUTPUT_DIR/warm/`` (``teacher/``, ``train.json``, ``model/``); a run
that finds a finished ``model/`` (its ``train_summary.json``) reuses it. With several
processes the main one writes the teacher's data first; all of them then train together, with
the SFT recipe's batch size (the optimiser steps of one process): the per-process
``micro_batch_size`` is lowered to fit when the recipe's does not (`per_process_micro_batch`),
unless ``sft_overrides`` sets it (then the SFT's own error stands).
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

from fireact.errors import FireactError
from fireact.rl.config import RLConfig, WarmStart
from fireact.train.output_dir import SUMMARY_FILE


def teacher_file(task: str, warm: WarmStart, folder: Path) -> Path:
    """The scripted teacher's file: the recipe's, or the task module's ``teacher_script``."""
    if warm.teacher is not None:
        return warm.teacher
    module = importlib.import_module(f"fireact.tasks.{task}")
    script = getattr(module, "teacher_script", None)
    if script is None:
        raise FireactError(f"warm_start.teacher: task {task} has no scripted teacher; give a file")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "teacher.json"
    path.write_text(json.dumps(script(warm.split)), encoding="utf-8")
    return path


def teach(config: RLConfig, warm: WarmStart, folder: Path, data: Path) -> None:
    """The scripted teacher's episodes with the real tool (``folder/teacher``), the solved ones
    converted into alpaca records (`data`)."""
    from fireact.agent import generate
    from fireact.data import convert
    from fireact.quickstart import stage_options  # alpaca, a fresh folder, no progress bar

    script = teacher_file(config.task, warm, folder / "teacher-inputs")
    options = stage_options(
        config.task, warm.split, warm.end, f"scripted:{script}", folder / "teacher",
        start=warm.start, tool=config.tool,
    )  # fmt: skip
    taught = generate(options)
    if not taught["kept"]:
        raise FireactError(f"warm_start: the teacher solved none of {taught['n']} questions")
    convert([folder / "teacher"], "alpaca", data, overwrite=True)


def warm_start(config: RLConfig) -> dict[str, Any]:
    """Teacher episodes → alpaca data → SFT (every rank takes part); the SFT summary
    (``outputs.model``: the policy)."""
    import torch
    from accelerate import PartialState

    from fireact.train import load_config, train

    warm = config.warm_start
    assert warm is not None
    folder = Path(config.output_dir) / "warm"
    done = folder / "model" / SUMMARY_FILE
    if done.is_file():
        return json.loads(done.read_text(encoding="utf-8"))
    data = folder / "train.json"
    state = PartialState(cpu=not torch.cuda.is_available())
    with state.main_process_first():  # the teacher's data once; every rank then trains
        if not data.is_file():
            teach(config, warm, folder, data)
    overrides = ["--dataset", str(data), "--output_dir", str(folder / "model")]
    overrides += ["--overwrite", "true", "--seed", str(config.seed)]
    overrides += [f"--{key}={value}" for key, value in warm.sft_overrides.items()]
    sft = load_config(warm.sft, overrides)
    if sft.method != "full":
        raise FireactError(f"{warm.sft}: method: the warm start trains the whole model (full)")
    chosen = {key.replace("-", "_") for key in warm.sft_overrides}
    micro = per_process_micro_batch(sft.batch_size, sft.micro_batch_size, state.num_processes)
    if micro != sft.micro_batch_size and "micro_batch_size" not in chosen:
        if state.is_main_process:
            sys.stderr.write(  # one write: the other rank's output cannot split the line
                f"fireact rl: warm start on {state.num_processes} processes: micro_batch_size "
                f"{sft.micro_batch_size} -> {micro} per process (batch_size {sft.batch_size} kept)\n"
            )
        sft = load_config(warm.sft, [*overrides, f"--micro_batch_size={micro}"])
    return train(sft)


def per_process_micro_batch(batch: int, micro: int, processes: int) -> int:
    """The micro-batch each of `processes` takes so that one optimiser step still covers `batch`
    examples: `micro` when ``micro × processes`` fits in `batch`, else the largest divisor of
    `batch` up to ``batch // processes`` (at least 1)."""
    if micro * processes <= batch:
        return micro
    fit = max(1, batch // processes)
    while batch % fit:
        fit -= 1
    return fit

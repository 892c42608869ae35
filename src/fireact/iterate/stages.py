"""The stages of one expert-iteration round, each an existing fireact product function.

Owns what each stage does inside its folder ``ROUND_k/STAGE/`` and the result it saves:

* ``teacher`` (round 0) — the first ``teacher.examples`` records of the teacher file;
* ``sample`` — the current model answers the sample questions ``k`` times
  (`fireact.agent.run`, temperature ``sample.temperature``, try ``i`` seeded with
  `try_seed`), one run folder ``try_i`` each; a finished try (its ``summary.json``) is kept, an
  interrupted one is run again from scratch so a resumed loop samples exactly what an
  uninterrupted one does;
* ``keep`` — the successful episodes, one per question (`fireact.data.convert`, dedupe), plus
  the teacher records when ``teacher.mix``: ``train.json`` (alpaca) / ``train.jsonl`` (chat);
* ``report`` — `fireact.data.report` on that file (the previous model's tokenizer, the training
  cutoff);
* ``train`` — `fireact.train.train` from the base model or the previous round's model
  (``train.init``): its weights (full fine-tuning), or its adapter continued on the same base
  (LoRA: ``init_adapter``); an interrupted training starts again from scratch (bit-identical,
  seeded); with no data at all the previous model is carried over;
* ``eval`` — greedy run on the held-out questions with the runner's resume (started again when
  the loop folder has moved since: its model spec names the new place), scored by
  `fireact.report.score`.

Paths in the saved results are relative to the loop folder (`fireact.iterate.state.stored`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fireact.agent import run
from fireact.data import convert
from fireact.data.convert import read_episodes
from fireact.data.records import is_success
from fireact.data.report import report, summary_line
from fireact.errors import FireactError
from fireact.files import iter_jsonl, read_json
from fireact.iterate.model import Model
from fireact.iterate.recipe import IterateRecipe, stage_options, train_data
from fireact.iterate.state import located, loop_folder, stored
from fireact.outputs import atomic_write_text
from fireact.report.score import score_file
from fireact.runs import CONFIG, EPISODES, SUMMARY
from fireact.train.config import validate


def try_seed(recipe: IterateRecipe, k: int, i: int) -> int:
    """The sampling seed of try `i` of round `k` (distinct per round and try)."""
    return recipe.seed + 1000 * k + i


def data_name(recipe: IterateRecipe) -> str:
    return "train.json" if recipe.format == "alpaca" else "train.jsonl"


def read_data(path: Path, fmt: str) -> list[Any]:
    """The records of a fine-tuning file as they are (alpaca JSON list / chat JSONL)."""
    if fmt == "alpaca":
        records = read_json(path)
        if not isinstance(records, list):
            raise FireactError(f"{path}: expected a JSON list of alpaca records (format alpaca)")
        return records
    return [record for _, record in iter_jsonl(path)]


def write_data(path: Path, records: list[Any], fmt: str) -> None:
    """Alpaca as convert writes it (``indent=4``), chat one JSON line per record."""
    if fmt == "alpaca":
        atomic_write_text(path, json.dumps(records, indent=4))
    else:
        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in records))


def teacher_records(recipe: IterateRecipe) -> list[Any]:
    assert recipe.teacher is not None
    return read_data(recipe.teacher.path(), recipe.format)[: recipe.teacher.examples]


def teacher_stage(recipe: IterateRecipe, folder: Path) -> dict[str, Any]:
    """Round 0's data: the teacher's first records."""
    records = teacher_records(recipe)
    if not records:
        raise FireactError(
            f"teacher.data: {recipe.teacher.data if recipe.teacher else ''} is empty"
        )
    path = folder / data_name(recipe)
    write_data(path, records, recipe.format)
    return {
        "file": stored(loop_folder(folder), path),
        "examples": len(records),
        "kept": len(records),
    }


def sample_stage(recipe: IterateRecipe, k: int, model: Model, folder: Path) -> dict[str, Any]:
    """`sample.k` sampled runs of the current model over the sample questions."""
    tries = []
    for i in range(recipe.sample.k):
        out = folder / f"try_{i}"
        summary_path = out / SUMMARY
        if not summary_path.is_file():  # not finished: run it (again) from its start
            options = stage_options(
                recipe, recipe.sample, model.spec(), out, overwrite=True,
                temperature=recipe.sample.temperature, seed=try_seed(recipe, k, i),
            )  # fmt: skip
            run(options)
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        stored_out = stored(loop_folder(folder), out)
        tries.append({"folder": stored_out, "seed": try_seed(recipe, k, i), "em": summary["em"]})
    return {"tries": tries, "episodes": recipe.sample.k * (recipe.sample.end - recipe.sample.start)}


def keep_stage(recipe: IterateRecipe, sampled: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The successful trajectories (one per question), mixed with the teacher's records."""
    loop = loop_folder(folder)
    runs = [Path(located(loop, t["folder"])) for t in sampled["tries"]]
    successes = sum(is_success(s, r) for path in runs for s, r in read_episodes(path))
    kept_records: list[Any] = []
    if successes:
        kept_file = folder / ("kept.json" if recipe.format == "alpaca" else "kept.jsonl")
        convert(runs, recipe.format, kept_file, dedupe=True, overwrite=True)
        kept_records = read_data(kept_file, recipe.format)
    mixed = teacher_records(recipe) if recipe.teacher is not None and recipe.teacher.mix else []
    result = {"successes": successes, "kept": len(kept_records), "teacher": len(mixed)}
    records = kept_records + mixed
    result["examples"] = len(records)
    result["file"] = None
    if records:
        path = folder / data_name(recipe)
        write_data(path, records, recipe.format)
        result["file"] = stored(loop, path)
    return result


def report_stage(
    recipe: IterateRecipe, data: dict[str, Any], model: Model | None, folder: Path
) -> dict[str, Any]:
    """`fireact data report` on the round's training file; its summary line names the
    tokenizer's folder relative to the loop folder."""
    if data["file"] is None:
        return {"examples": 0, "line": "data: no examples this round"}
    cutoff = int(train_data(recipe).get("cutoff_len", 512))
    tokenizer = model.tokenizer() if model is not None else None
    loop = loop_folder(folder)
    path = Path(located(loop, data["file"]))
    result = report([path], tokenizer=tokenizer, cutoff=cutoff, out_dir=folder)
    line = summary_line(result).replace(f"{loop}{os.sep}", "")
    return {"examples": result["overall"]["examples"], "line": line}


def train_stage(
    recipe: IterateRecipe, data: dict[str, Any], previous: Model | None, folder: Path
) -> dict[str, Any]:
    """Fine-tune on the round's file into `folder`; the model the next stages use, and what the
    training started from (``init_model``, ``init_adapter``)."""
    if data["file"] is None:
        if previous is None:
            raise FireactError("train: no training data and no model to carry over")
        return {"skipped": True, "agent": previous.agent}
    loop = loop_folder(folder)
    values = train_data(recipe)
    values.update(dataset=located(loop, data["file"]), output_dir=str(folder), overwrite=True)
    values.pop("resume", None)  # an interrupted round trains again from scratch
    if recipe.train.init == "previous" and previous is not None:
        start_from(values, previous)
    config = validate(values, source=f"round training config ({recipe.train.config})")
    from fireact.train import train

    trained = train(config)
    outputs = trained["outputs"]
    if "model" in outputs:  # full fine-tuning: the whole model
        model = Model.trained(loop, outputs["model"], None)
    else:  # an adapter on its base (a tiny one is built into output_dir/base)
        base = config.model if isinstance(config.model, str) else config.output_dir / "base"
        model = Model.trained(loop, str(base), outputs["adapter"])
    adapter = config.init_adapter
    return {
        "skipped": False,
        "agent": model.agent,
        "init_model": stored(loop, config.model) if isinstance(config.model, str) else None,
        "init_adapter": stored(loop, adapter) if adapter is not None else None,
        "steps": trained["steps"],
        "final_loss": trained["final_loss"],
        "examples": trained["examples"],
    }


def start_from(values: dict[str, Any], previous: Model) -> None:
    """Training values that continue `previous`: full fine-tuning from its weights (a model that
    is an adapter cannot: the config's model then), LoRA with its adapter on its base."""
    base, adapter = previous.parts()
    if base is None:
        return
    if values.get("method", "lora") == "full":
        if adapter is None:
            values["model"] = base
        return
    values["model"] = base
    if adapter is not None:
        values["init_adapter"] = adapter


def eval_stage(recipe: IterateRecipe, model: Model, folder: Path) -> dict[str, Any]:
    """Greedy episodes on the held-out questions (resumable), scored."""
    spec = model.spec()
    again = started_elsewhere(folder, spec)  # greedy: the same episodes again
    options = stage_options(
        recipe, recipe.eval, spec, folder, resume=not again, overwrite=again,
        temperature=0.0, seed=recipe.seed,
    )  # fmt: skip
    summary = run(options)
    scored = score_file(folder / EPISODES)
    return {
        "em": scored.em,
        "f1": scored.f1,
        "finished": scored.finished,
        "episodes": summary["n"],
        "model": model.agent,
    }


def started_elsewhere(folder: Path, spec: str) -> bool:
    """Whether the run in `folder` was started with another model spec: the loop folder has
    moved since (its model's path is another), so the runner would refuse to resume it."""
    try:
        saved = json.loads((folder / CONFIG).read_text(encoding="utf-8"))["options"]["model"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return saved != spec

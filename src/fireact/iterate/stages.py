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
* ``train`` — `fireact.train.train` from the base model or the previous round's weights
  (``train.init``); LoRA runs are merged so that the next round can start from them; an
  interrupted training starts again from scratch (bit-identical, seeded); with no data at all
  the previous model is carried over;
* ``eval`` — greedy run on the held-out questions with the runner's resume, scored by
  `fireact.report.score`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fireact.agent import run
from fireact.data import convert
from fireact.data.convert import read_episodes
from fireact.data.records import is_success
from fireact.data.report import report, summary_line
from fireact.errors import FireactError
from fireact.files import iter_jsonl, read_json
from fireact.iterate.recipe import IterateRecipe, stage_options, train_data
from fireact.outputs import atomic_write_text
from fireact.report.score import score_file
from fireact.runs import EPISODES, SUMMARY
from fireact.train.config import TinySource, validate


@dataclass
class Model:
    """The model a round hands on: its agent spec and the weights folder a next round starts
    from (None: start from the training config's own model)."""

    agent: str
    weights: str | None

    @classmethod
    def start(cls, spec: str) -> Model:
        """`start_model` (``hf:PATH[:ADAPTER]``): weights PATH unless it carries an adapter."""
        kind, _, rest = spec.partition(":")
        path, _, adapter = rest.partition(":")
        return cls(spec, path if kind == "hf" and not adapter else None)


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
    return {"file": str(path), "examples": len(records), "kept": len(records)}


def sample_stage(recipe: IterateRecipe, k: int, model: Model, folder: Path) -> dict[str, Any]:
    """`sample.k` sampled runs of the current model over the sample questions."""
    tries = []
    for i in range(recipe.sample.k):
        out = folder / f"try_{i}"
        summary_path = out / SUMMARY
        if not summary_path.is_file():  # not finished: run it (again) from its start
            options = stage_options(
                recipe, recipe.sample, model.agent, out, overwrite=True,
                temperature=recipe.sample.temperature, seed=try_seed(recipe, k, i),
            )  # fmt: skip
            run(options)
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        tries.append({"folder": str(out), "seed": try_seed(recipe, k, i), "em": summary["em"]})
    return {"tries": tries, "episodes": recipe.sample.k * (recipe.sample.end - recipe.sample.start)}


def keep_stage(recipe: IterateRecipe, sampled: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The successful trajectories (one per question), mixed with the teacher's records."""
    runs = [Path(t["folder"]) for t in sampled["tries"]]
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
        result["file"] = str(path)
    return result


def report_stage(
    recipe: IterateRecipe, data: dict[str, Any], model: Model | None, folder: Path
) -> dict[str, Any]:
    """`fireact data report` on the round's training file."""
    if data["file"] is None:
        return {"examples": 0, "line": "data: no examples this round"}
    cutoff = int(train_data(recipe).get("cutoff_len", 512))
    tokenizer = model.weights if model is not None else None
    result = report([Path(data["file"])], tokenizer=tokenizer, cutoff=cutoff, out_dir=folder)
    return {"examples": result["overall"]["examples"], "line": summary_line(result)}


def train_stage(
    recipe: IterateRecipe, data: dict[str, Any], previous: Model | None, folder: Path
) -> dict[str, Any]:
    """Fine-tune on the round's file into `folder`; the model the next stages use."""
    if data["file"] is None:
        if previous is None:
            raise FireactError("train: no training data and no model to carry over")
        return {"skipped": True, "agent": previous.agent, "weights": previous.weights}
    values = train_data(recipe)
    values.update(dataset=data["file"], output_dir=str(folder), overwrite=True)
    values.pop("resume", None)  # an interrupted round trains again from scratch
    if recipe.train.init == "previous" and previous is not None and previous.weights:
        values["model"] = previous.weights
    if values.get("method", "lora") != "full" and recipe.train.init == "previous":
        values["merge"] = True  # the next round starts from base + this adapter
    config = validate(values, source=f"round training config ({recipe.train.config})")
    from fireact.train import train

    trained = train(config)
    outputs = trained["outputs"]
    weights = outputs.get("merged") or outputs.get("model")
    if weights is not None:
        agent = f"hf:{weights}"
    else:  # an adapter on its base
        base = config.model
        if isinstance(base, TinySource):
            base = str(config.output_dir / "base")
        agent = f"hf:{base}:{outputs['adapter']}"
    return {
        "skipped": False,
        "agent": agent,
        "weights": weights,
        "steps": trained["steps"],
        "final_loss": trained["final_loss"],
        "examples": trained["examples"],
    }


def eval_stage(recipe: IterateRecipe, model: Model, folder: Path) -> dict[str, Any]:
    """Greedy episodes on the held-out questions (resumable), scored."""
    options = stage_options(
        recipe, recipe.eval, model.agent, folder, resume=True, temperature=0.0, seed=recipe.seed
    )
    summary = run(options)
    scored = score_file(folder / EPISODES)
    return {
        "em": scored.em,
        "f1": scored.f1,
        "finished": scored.finished,
        "episodes": summary["n"],
        "model": model.agent,
    }

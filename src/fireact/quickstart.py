"""`fireact quickstart`: the whole loop on embedded defaults, on a CPU, in a few minutes.

1. generate — a teacher solves training questions with a search tool; here the teacher is
   FireAct's own GPT-4 trajectories replayed through the real runner (`agent.replay`), so no
   API key is needed; the successful episodes are kept;
2. convert  — the kept trajectories become FireAct's alpaca training format;
3. train    — a tiny Llama (built from `configs/tiny.yaml`, tokenizer trained locally) is fully
   fine-tuned on them;
4. run      — the fine-tuned model is loaded back into the agent (`hf` backend) and answers
   HotpotQA dev questions with the local BM25 search index;
5. score    — the run is scored with the official metrics.

``--task tableqa`` runs the same five stages on the table-QA task, offline too: the teacher is
the scripted teacher of `fireact.tableqa.teacher` (``tables[]``, the SQL compiled from each
example's check, ``calculate[...]`` where needed, the gold answer) over the first dev examples,
run through the real ``sql`` and ``calculate`` tools; the tiny model then answers test questions
with the same tools, scored by the task's scorer.

Every stage writes into the quickstart folder, and the summary names each output. Each finished
stage is recorded with the settings it ran with in ``progress.json``: the same command, run again
after a failure (a model that cannot be loaded, a kill), reuses the finished stages and goes on
from the first unfinished one; a finished stage made with other settings is refused in one line
(rerun the first command, pass ``--overwrite`` or pick another ``--out``). The tiny model
learns the format, not the task: its answers are mostly wrong. `--model <HF id or path>` on a GPU
fine-tunes that model instead, with the paper's LoRA recipe (`configs/llama2-7b-lora.yaml`), and
runs it as base + adapter.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from fireact.agent import RunOptions, generate, run
from fireact.agent.replay import write_replay_inputs
from fireact.data import convert
from fireact.errors import FireactError
from fireact.files import read_json
from fireact.outputs import atomic_write_text
from fireact.report.score import score_file
from fireact.resources import resource
from fireact.tableqa import SPLITS as TABLEQA_SPLITS
from fireact.tableqa.teacher import write_teacher_script
from fireact.train import load_config, train

TEACHER_SET = ("finetune", "alpaca_format", "hotpotqa.json")


DEV_QUESTIONS = 7405  # HotpotQA dev
TEACHER_EPISODES = 500  # FireAct's HotpotQA trajectories, the replayed teacher
TABLEQA_TEST, TABLEQA_DEV = 500, 200  # the shipped table-QA splits: run on test, teach on dev
TABLEQA_TOOLS = "sql,calculate"
TASKS = ("hotpotqa", "tableqa")


def check_sizes(questions: int, train_examples: int, task: str = "hotpotqa") -> None:
    """The task and both sizes are checked before anything is written or trained."""
    if task not in TASKS:
        raise FireactError(f"--task {task}: the quickstart runs on {' or '.join(TASKS)}")
    if task == "tableqa":
        if not 1 <= questions <= TABLEQA_TEST:
            raise FireactError(
                f"--questions {questions}: give 1 to {TABLEQA_TEST} table-QA test questions"
            )
        if not 1 <= train_examples <= TABLEQA_DEV:
            raise FireactError(
                f"--train-examples {train_examples}: give 1 to {TABLEQA_DEV} (the scripted "
                "teacher solves the table-QA dev split)"
            )
        return
    if not 1 <= questions <= DEV_QUESTIONS:
        raise FireactError(f"--questions {questions}: give 1 to {DEV_QUESTIONS} dev questions")
    if not 1 <= train_examples <= TEACHER_EPISODES:
        raise FireactError(
            f"--train-examples {train_examples}: give 1 to {TEACHER_EPISODES} (the teacher "
            "replays FireAct's 500 HotpotQA trajectories)"
        )


def teach(out: Path, train_examples: int) -> dict[str, Any]:
    """Stage 1: replay FireAct's GPT-4 trajectories as the teacher; keep the successes."""
    records = read_json(resource(*TEACHER_SET))[:train_examples]
    q_path, script, replay_tool = write_replay_inputs(records, out / "teacher-inputs")
    options = RunOptions(
        task="hotpotqa",
        data=q_path,
        model=f"scripted:{script}",
        format="alpaca",
        out=out / "teacher",
        overwrite=True,
        progress=False,
    )
    return generate(options, tool=replay_tool)


def teach_tableqa(out: Path, train_examples: int) -> dict[str, Any]:
    """Stage 1 on table-QA: the scripted teacher over the first dev examples, real tools."""
    lines = TABLEQA_SPLITS["dev"].read_text(encoding="utf-8").splitlines()[:train_examples]
    script = write_teacher_script(
        [json.loads(line) for line in lines], out / "teacher-inputs" / "teacher.json"
    )
    options = stage_options(
        "tableqa", "dev", train_examples, f"scripted:{script}", out / "teacher",
        tool=TABLEQA_TOOLS,
    )  # fmt: skip
    return generate(options)


def stage_options(
    task: str, split: str, end: int, model: str, out: Path, **more: Any
) -> RunOptions:
    """The run options of a quickstart stage: alpaca format, a fresh folder, no progress bar."""
    return RunOptions(
        task=task, split=split, end=end, model=model, format="alpaca", out=out,
        overwrite=True, progress=False, **more,
    )  # fmt: skip


def fine_tune(
    train_file: Path, out: Path, train_examples: int, model: str | None
) -> tuple[dict[str, Any], str]:
    """Stage 3: the tiny recipe, or the paper's LoRA recipe on `model`; (summary, agent spec)."""
    overrides = ["--dataset", str(train_file), "--output_dir", str(out / "model")]
    overrides += ["--overwrite", "true", "--max_examples", str(train_examples)]
    recipe = "tiny.yaml"
    if model is not None:  # a real model: the paper's LoRA recipe on it
        recipe = "llama2-7b-lora.yaml"
        overrides += ["--model", model]
    trained = train(load_config(resource("configs", recipe), overrides))
    outputs = trained["outputs"]
    if "adapter" in outputs:
        return trained, f"hf:{model}:{outputs['adapter']}"
    return trained, f"hf:{outputs['model']}"


def run_agent(
    agent_model: str, out: Path, questions: int, task: str = "hotpotqa"
) -> dict[str, Any]:
    """Stage 4: the fine-tuned model answers dev questions with the local search index (on
    table-QA: test questions with the sql and calculate tools)."""
    tools: dict[str, Any] = {"tool": "local", "tool_style": "google", "max_tokens": 64}
    if task == "tableqa":  # an SQL action is longer than a search
        tools = {"tool": TABLEQA_TOOLS, "max_tokens": 128}
    split = "test" if task == "tableqa" else "dev"
    options = stage_options(
        task, split, questions, agent_model, out / "agent", concurrency=questions, **tools
    )
    return run(options)


PROGRESS_FILE = "progress.json"
# the settings each stage's output depends on (a later stage depends on the earlier ones too)
STAGE_SETTINGS = {
    "generate": ("task", "train_examples"),
    "convert": ("task", "train_examples"),
    "train": ("task", "train_examples", "model"),
}
FLAGS = {"task": "--task", "train_examples": "--train-examples", "model": "--model"}


def check_model(model: str | None) -> str | None:
    """A ``--model`` that cannot be used is refused before any stage runs: a local folder
    without weights, or a hub id missing from the cache while the hub is off or unreachable.
    Returns how `progress.json` records it (a local folder as its absolute path)."""
    if model is None:
        return None
    from fireact.llm.hf import check_source, check_weights
    from fireact.train.hub_source import check_hub_source

    source = check_source(model, "--model")
    if not Path(source).exists():
        check_hub_source(source, "model")
        return source
    check_weights(source)
    return str(Path(source).resolve())


def stage_outputs(out: Path) -> dict[str, Path]:
    """The file whose presence shows each finished stage's output is still there."""
    return {
        "generate": out / "teacher" / "episodes.jsonl",
        "convert": out / "train.json",
        "train": out / "model" / "train_summary.json",
    }


def finished_stages(out: Path, settings: dict[str, Any], overwrite: bool) -> dict[str, Any]:
    """The results of the stages an earlier start of this quickstart finished in `out`.

    Refused in one line: a folder with files that no quickstart started (or a finished
    quickstart), without ``overwrite``; a finished stage made with other settings. ``overwrite``
    starts over."""
    progress = out / PROGRESS_FILE
    if overwrite or not out.exists() or not any(out.iterdir()):
        return {}
    if not progress.is_file() or (out / "summary.json").exists():
        raise FireactError(f"{out} is not empty: pass --overwrite or pick another --out")
    recorded = read_json(progress)
    done: dict[str, Any] = recorded.get("stages", {}) if isinstance(recorded, dict) else {}
    kept: dict[str, Any] = {}
    for name, path in stage_outputs(out).items():
        if name not in done or not path.is_file():
            break  # stages run in order: the ones after an unfinished one are redone
        for key in STAGE_SETTINGS[name]:
            was, now = done[name]["settings"].get(key), settings[key]
            if was != now:
                raise FireactError(
                    f"{out} holds a quickstart started with {_flag(key, was)}, not "
                    f"{_flag(key, now)}: rerun that command to finish it, pass --overwrite to "
                    "start over, or pick another --out"
                )
        kept[name] = done[name]["result"]
    return kept


def _flag(key: str, value: Any) -> str:
    return f"no {FLAGS[key]}" if value is None else f"{FLAGS[key]} {value}"


def record_stages(out: Path, done: dict[str, Any], settings: dict[str, Any]) -> None:
    """Write the finished stages `done` (name → result), each with the settings it depends on,
    to ``progress.json`` (atomically: a kill leaves the old file or the new one)."""
    stages = {
        stage: {"settings": {k: settings[k] for k in STAGE_SETTINGS[stage]}, "result": result}
        for stage, result in done.items()
        if stage in STAGE_SETTINGS
    }
    atomic_write_text(out / PROGRESS_FILE, json.dumps({"stages": stages}, indent=2) + "\n")


def quickstart(
    out: Path,
    *,
    questions: int = 10,
    train_examples: int = 32,
    model: str | None = None,
    overwrite: bool = False,
    console: Console | None = None,
    task: str = "hotpotqa",
) -> dict[str, Any]:
    """Run the five stages into `out` on `task` (hotpotqa or tableqa), reusing the stages an
    earlier start with the same settings finished; returns (and writes) the summary."""
    console = console or Console(stderr=True)
    check_sizes(questions, train_examples, task)
    out = Path(out)
    settings = {"task": task, "train_examples": train_examples, "model": check_model(model)}
    done = finished_stages(out, settings, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    record_stages(out, done, settings)  # drops the stages that are redone
    started, reused = time.perf_counter(), set(done)

    def stage(n: int, name: str, text: str) -> None:
        again = " (finished by an earlier start)" if name in reused else ""
        console.print(f"[{n}/5] {name}: {text}{again} ({time.perf_counter() - started:.0f} s)")

    def finish(name: str, result: dict[str, Any]) -> None:
        if name not in done:
            done[name] = result
            record_stages(out, done, settings)

    if "generate" in done:
        teacher = done["generate"]
    else:
        teacher = (teach_tableqa if task == "tableqa" else teach)(out, train_examples)
        teacher = {k: teacher[k] for k in ("n", "kept", "em")}
    finish("generate", teacher)
    stage(1, "generate", f"{teacher['kept']}/{teacher['n']} teacher episodes kept")
    train_file = out / "train.json"
    converted = done.get("convert") or {
        "kept": convert([out / "teacher"], "alpaca", train_file, overwrite=True)["kept"]
    }
    finish("convert", converted)
    stage(2, "convert", f"{converted['kept']} examples -> {train_file}")
    if "train" in done:
        trained, agent_model = done["train"]["summary"], done["train"]["agent"]
    else:
        trained, agent_model = fine_tune(train_file, out, train_examples, model)
    finish("train", {"summary": trained, "agent": agent_model})
    stage(3, "train", f"{trained['steps']} steps, final loss {trained['final_loss']:.3f}")
    agent = run_agent(agent_model, out, questions, task)
    calls = "tool calls" if task == "tableqa" else "search calls"
    split = "test" if task == "tableqa" else "dev"
    stage(4, "run", f"{agent['n']} {split} questions, {agent['tool_calls']} {calls}")
    scored = score_file(out / "agent" / "episodes.jsonl")

    outputs = trained["outputs"]
    summary = {
        "out": str(out),
        "task": task,
        "generate": {"episodes": teacher["n"], "kept": teacher["kept"], "em": teacher["em"]},
        "convert": {"file": str(train_file), "examples": converted["kept"]},
        "train": {
            "model": outputs.get("model") or outputs["adapter"],
            "steps": trained["steps"],
            "final_loss": trained["final_loss"],
            "seconds": trained["runtime_s"],
        },
        "run": {
            "folder": str(out / "agent"),
            "episodes": agent["n"],
            "finished": agent["finished"],
            "tool_calls": agent["tool_calls"],
            "mean_steps": agent["mean_steps"],
        },
        "score": {"em": scored.em, "f1": scored.f1, "finished": scored.finished},
        "seconds": round(time.perf_counter() - started, 1),
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    stage(5, "score", f"EM {100 * scored.em:.1f}, F1 {100 * scored.f1:.1f} -> {out}/summary.json")
    return summary

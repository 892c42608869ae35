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

Every stage writes into the quickstart folder, and the summary names each output. The tiny model
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
    """Run the five stages into `out` on `task` (hotpotqa or tableqa); returns (and writes)
    the summary."""
    console = console or Console(stderr=True)
    check_sizes(questions, train_examples, task)
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FireactError(f"{out} is not empty: pass --overwrite or pick another --out")
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    def stage(n: int, name: str, text: str) -> None:
        console.print(f"[{n}/5] {name}: {text} ({time.perf_counter() - started:.0f} s)")

    teacher = (teach_tableqa if task == "tableqa" else teach)(out, train_examples)
    stage(1, "generate", f"{teacher['kept']}/{teacher['n']} teacher episodes kept")
    train_file = out / "train.json"
    converted = convert([out / "teacher"], "alpaca", train_file, overwrite=True)
    stage(2, "convert", f"{converted['kept']} examples -> {train_file}")
    trained, agent_model = fine_tune(train_file, out, train_examples, model)
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

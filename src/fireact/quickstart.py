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
from fireact.report.score import score_file
from fireact.resources import resource
from fireact.train import load_config, train

TEACHER_SET = ("finetune", "alpaca_format", "hotpotqa.json")


def quickstart(
    out: Path,
    *,
    questions: int = 10,
    train_examples: int = 32,
    model: str | None = None,
    overwrite: bool = False,
    console: Console | None = None,
) -> dict[str, Any]:
    """Run the five stages into `out`; returns (and writes) the summary."""
    console = console or Console(stderr=True)
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FireactError(f"{out} is not empty: pass --overwrite or pick another --out")
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    summary: dict[str, Any] = {"out": str(out)}

    def stage(n: int, name: str, text: str) -> None:
        console.print(f"[{n}/5] {name}: {text} ({time.perf_counter() - started:.0f} s)")

    records = read_json(resource(*TEACHER_SET))[:train_examples]
    q_path, script, replay_tool = write_replay_inputs(records, out / "teacher-inputs")
    teacher = generate(
        RunOptions(
            task="hotpotqa",
            data=q_path,
            model=f"scripted:{script}",
            format="alpaca",
            out=out / "teacher",
            overwrite=True,
            progress=False,
        ),
        tool=replay_tool,
    )
    summary["generate"] = {"episodes": teacher["n"], "kept": teacher["kept"], "em": teacher["em"]}
    stage(1, "generate", f"{teacher['kept']}/{teacher['n']} teacher episodes kept")

    train_file = out / "train.json"
    converted = convert([out / "teacher"], "alpaca", train_file, overwrite=True)
    summary["convert"] = {"file": str(train_file), "examples": converted["kept"]}
    stage(2, "convert", f"{converted['kept']} examples -> {train_file}")

    overrides = ["--dataset", str(train_file), "--output_dir", str(out / "model")]
    overrides += ["--overwrite", "true", "--max_examples", str(train_examples)]
    recipe = "tiny.yaml"
    if model is not None:  # a real model: the paper's LoRA recipe on it
        recipe = "llama2-7b-lora.yaml"
        overrides += ["--model", model]
    trained = train(load_config(resource("configs", recipe), overrides))
    outputs = trained["outputs"]
    model_dir = outputs.get("model") or outputs["adapter"]
    agent_model = f"hf:{model}:{outputs['adapter']}" if "adapter" in outputs else f"hf:{model_dir}"
    summary["train"] = {
        "model": model_dir,
        "steps": trained["steps"],
        "final_loss": trained["final_loss"],
        "seconds": trained["runtime_s"],
    }
    stage(3, "train", f"{trained['steps']} steps, final loss {trained['final_loss']:.3f}")

    agent = run(
        RunOptions(
            task="hotpotqa",
            split="dev",
            end=questions,
            model=agent_model,
            format="alpaca",
            tool="local",
            tool_style="google",
            max_tokens=64,
            concurrency=questions,
            out=out / "agent",
            overwrite=True,
            progress=False,
        )
    )
    summary["run"] = {
        "folder": str(out / "agent"),
        "episodes": agent["n"],
        "finished": agent["finished"],
        "tool_calls": agent["tool_calls"],
        "mean_steps": agent["mean_steps"],
    }
    stage(4, "run", f"{agent['n']} dev questions, {agent['tool_calls']} search calls")

    scored = score_file(out / "agent" / "episodes.jsonl")
    summary["score"] = {"em": scored.em, "f1": scored.f1, "finished": scored.finished}
    summary["seconds"] = round(time.perf_counter() - started, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    stage(5, "score", f"EM {100 * scored.em:.1f}, F1 {100 * scored.f1:.1f} -> {out}/summary.json")
    return summary

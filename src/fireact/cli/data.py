"""Commands that make and use training data: `convert` (and ``--check``), `train`, `quickstart`.

Owns their arguments and printing; the work is `fireact.data` (convert, check), `fireact.train`
(SFT) and `fireact.quickstart`.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from fireact.errors import FireactError


def convert(
    inputs: Annotated[
        list[Path], typer.Argument(help="Run folders, run JSONL files or FireAct trajectory JSON.")
    ],
    to: Annotated[str, typer.Option(help="alpaca (JSON) or chat (OpenAI JSONL).")] = "alpaca",
    out_file: Annotated[Path | None, typer.Option("--out", help="Output file.")] = None,
    keep: Annotated[str, typer.Option(help="success (reward 1) or all.")] = "success",
    method: Annotated[
        list[str] | None, typer.Option(help="Keep only these methods (repeatable).")
    ] = None,
    dedupe: Annotated[
        bool, typer.Option(help="Keep the first episode per (method, question).")
    ] = True,
    shuffle_seed: Annotated[int | None, typer.Option(help="Shuffle with this seed.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace --out.")] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Validate the given fine-tuning files instead.")
    ] = False,
    model: Annotated[str, typer.Option(help="--check: model whose limits apply.")] = (
        "gpt-3.5-turbo"
    ),
) -> None:
    """Turn runs into fine-tuning data (alpaca JSON / OpenAI chat JSONL), or --check such files."""
    if check:
        check_files(inputs, model)
        return
    from fireact.data import convert as convert_runs

    if out_file is None:
        raise FireactError("convert: --out FILE is required (or pass --check to validate files)")
    stats = convert_runs(
        inputs,
        to,
        out_file,
        keep=keep,
        methods=set(method) if method else None,
        dedupe=dedupe,
        shuffle_seed=shuffle_seed,
        overwrite=overwrite,
    )
    print(json.dumps(stats, indent=2, default=str))


def check_files(paths: list[Path], model: str) -> None:
    """`convert --check`: each file's report; a file that breaks the format is an error."""
    from fireact.data import check_alpaca_file, check_chat_file

    failed = []
    for path in paths:
        is_chat = path.suffix == ".jsonl"
        report = check_chat_file(path, model=model) if is_chat else check_alpaca_file(path)
        for line in report.lines():
            print(line)
        print(report.summary())
        if not report.ok:
            failed.append(f"{path} ({len(report.errors)} errors)")
    if failed:
        raise FireactError(f"fine-tuning files break the format: {', '.join(failed)}; see above")


def train(
    ctx: typer.Context,
    config: Annotated[
        Path, typer.Argument(help="A YAML recipe, e.g. configs/llama2-7b-lora.yaml.")
    ],
) -> None:
    """Fine-tune a causal LM (LoRA / QLoRA / full); extra ``--key value`` pairs override the YAML.

    Multi-GPU: ``accelerate launch --config_file configs/accelerate/fsdp.yaml -m fireact.train.sft
    CONFIG.yaml [--key value ...]``.
    """
    from fireact.train import load_config
    from fireact.train import train as run_training

    config_ = load_config(config, list(ctx.args))
    with contextlib.redirect_stdout(sys.stderr):  # the trainer's own log lines; stdout = summary
        summary = run_training(config_)
    keys = ("steps", "final_loss", "eval_loss", "supervised_tokens_per_epoch", "tokens_per_s")
    shown = {k: summary[k] for k in keys if summary.get(k) is not None}
    print(json.dumps(shown | {"outputs": summary["outputs"]}, indent=2))


def quickstart(
    out_dir: Annotated[Path, typer.Option("--out", help="Where to write every stage.")] = Path(
        "runs/quickstart"
    ),
    questions: Annotated[int, typer.Option(help="HotpotQA dev questions to run.")] = 10,
    train_examples: Annotated[int, typer.Option(help="Teacher trajectories to train on.")] = 32,
    model: Annotated[
        str | None, typer.Option(help="Fine-tune this HF model instead of the tiny one.")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace --out.")] = False,
    task: Annotated[
        str, typer.Option(help="hotpotqa, or tableqa (scripted teacher, sql + calculate tools).")
    ] = "hotpotqa",
) -> None:
    """The whole loop on shipped data: generate, convert, train a tiny Llama, run it, score."""
    from fireact.quickstart import quickstart as run_quickstart

    summary = run_quickstart(
        out_dir,
        questions=questions,
        train_examples=train_examples,
        model=model,
        overwrite=overwrite,
        task=task,
    )
    print(json.dumps(summary, indent=2))

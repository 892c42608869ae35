"""Commands that make and use training data: `convert` (and ``--check``), `train`, `quickstart`.

Owns their arguments and printing; the work is `fireact.data` (convert, check), `fireact.train`
(SFT) and `fireact.quickstart`.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated, Any

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
    from transformers import TrainerCallback

    from fireact.train import load_config
    from fireact.train import train as run_training

    config_ = load_config(config, list(ctx.args))

    class DataSummary(TrainerCallback):  # once the run is set up: a refused run prints one line
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero:
                print(_data_summary(config_), file=sys.stderr, flush=True)

    with contextlib.redirect_stdout(sys.stderr):  # the trainer's own log lines; stdout = summary
        summary = run_training(config_, callbacks=[DataSummary()])
    keys = ("steps", "final_loss", "eval_loss", "supervised_tokens_per_epoch", "tokens_per_s")
    shown = {k: summary[k] for k in keys if summary.get(k) is not None}
    print(json.dumps(shown | {"outputs": summary["outputs"]}, indent=2))


def _data_summary(config: Any) -> str:
    """`fireact data report`'s one line on the training set (the model's tokenizer when it is a
    local folder, else whitespace words); never stops training."""
    from fireact.data.report import report, summary_line

    name = config.tokenizer or (config.model if isinstance(config.model, str) else None)
    local = name if name and Path(name).is_dir() else None
    try:
        return summary_line(report([config.dataset], tokenizer=local, cutoff=config.cutoff_len))
    except Exception as err:  # noqa: BLE001 - the summary is advisory; training reports errors
        return f"data: no summary ({str(err)[:120]})"


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


data_app = typer.Typer(help="Look at fine-tuning data before training.", no_args_is_help=True)


@data_app.command("report")
def data_report(
    files: Annotated[list[Path], typer.Argument(help="Alpaca JSON / chat JSONL training files.")],
    model: Annotated[
        str | None,
        typer.Option(help="Tokenizer (a local folder) to count with; default: whitespace words."),
    ] = None,
    cutoff: Annotated[int, typer.Option(help="The training cutoff_len, in tokens.")] = 512,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Where report.json, report.md, tokens.png go.")
    ] = Path("data_report"),
    openai_model: Annotated[str, typer.Option(help="OpenAI model the cost is for.")] = (
        "gpt-3.5-turbo"
    ),
    price_per_million: Annotated[
        float | None, typer.Option(help="USD per 1M training tokens (default: the model's list).")
    ] = None,
) -> None:
    """Examples per task and method, parse failures, tokens, cutoff losses, duplicates, cost."""
    from fireact.data.report import report, summary_line

    result = report(
        files,
        tokenizer=model,
        cutoff=cutoff,
        out_dir=out_dir,
        openai_model=openai_model,
        price_per_million=price_per_million,
    )
    print(summary_line(result))
    for name, part in result["files"].items():
        failures = len(part["parse_failures"])
        print(
            f"{name}: {part['examples']} examples; methods {part['by_method']}; tasks "
            f"{part['by_task']}; {failures} parse failures; "
            f"{part['duplicates']['extra_copies']} duplicate copies; OpenAI "
            f"${part['openai']['cost_per_epoch_usd']}/epoch"
        )
    print(f"wrote {out_dir / 'report.json'}, {out_dir / 'report.md'}, {out_dir / 'tokens.png'}")

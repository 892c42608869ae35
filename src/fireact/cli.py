"""The `fireact` command line: parse arguments and call one library function per command.

User errors (`FireactError`) print one line on stderr and exit with code 2; `--debug` shows the
traceback as well. Ctrl-C exits with 130.
"""

from __future__ import annotations

import contextlib
import json
import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from fireact.errors import FireactError

app = typer.Typer(
    name="fireact",
    help="Fine-tune language agents: generate ReAct trajectories, convert, fine-tune, run, score.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
ft_app = typer.Typer(
    help="OpenAI fine-tuning jobs (key from OPENAI_API_KEY).", no_args_is_help=True
)
index_app = typer.Typer(help="Build and inspect local BM25 search indexes.", no_args_is_help=True)
app.add_typer(index_app, name="index")
app.add_typer(ft_app, name="openai-ft")

out = Console()
EXIT_USER_ERROR = 2  # a user-fixable problem (FireactError) or a usage error
EXIT_EPISODES_FAILED = 3  # run/generate finished, but some episodes ended in errors
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT)
EXIT_TERMINATED = 143  # SIGTERM


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
) -> None:
    """fireact: the FireAct loop as one toolkit."""


@app.command()
def tasks() -> None:
    """List the tasks, their splits and sizes."""
    from fireact.tasks import SPLITS, load_task
    from fireact.tasks.loaders import mmlu_subjects

    table = Table("task", "split", "examples")
    for name, splits in SPLITS.items():
        for split in splits:
            table.add_row(name, split, str(len(load_task(name, split).examples)))
    out.print(table)
    out.print(f"mmlu subjects: {', '.join(mmlu_subjects('test'))}")


@app.command()
def models() -> None:
    """List FireAct's published models; run one with --model hf:fireact/NAME."""
    from fireact.llm.zoo import zoo_lines

    for line in zoo_lines():
        print(line)


@app.command()
def score(
    files: Annotated[
        list[Path],
        typer.Argument(help="Run folders, run JSONL or FireAct trajectory JSON (.gz too)."),
    ],
    task: Annotated[
        str | None, typer.Option(help="Task whose scoring rule to use (default: from the file).")
    ] = None,
    denominator: Annotated[
        int | None,
        typer.Option(help="Episodes requested (default: the run's n, or FireAct's range)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of lines.")] = False,
) -> None:
    """Score runs: EM = correct / episodes requested (missing ones count wrong), F1."""
    from fireact.report.score import score_file

    results = [score_file(f, task=task, denominator=denominator) for f in files]
    if as_json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
        return
    for r in results:
        print(f"{r.file}  [{r.task}, {r.format}; out of {r.denominator}: {r.denominator_from}]")
        print(f"  {r.count_line()}")


@index_app.command("build")
def index_build(
    sources: Annotated[
        list[Path], typer.Argument(help="HotpotQA distractor/fullwiki JSON or {title,text} JSONL.")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the index to.")],
    overwrite: Annotated[bool, typer.Option(help="Replace an existing index in --out.")] = False,
) -> None:
    """Build an on-disk BM25 index (tantivy) for the local search tool."""
    from fireact.tools.local_index import build_index

    stats = build_index(sources, out_dir, overwrite=overwrite, progress=True)
    out.print(json.dumps(stats, indent=2, default=str))


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to search for.")],
    style: Annotated[str, typer.Option(help="wiki (search[entity]) or google.")] = "wiki",
    index: Annotated[
        Path | None, typer.Option(help="Index folder (default: the shipped HotpotQA one).")
    ] = None,
) -> None:
    """Run one search against the local index, as an agent would see it."""
    import asyncio

    from fireact.tools.base import ToolState
    from fireact.tools.local import LocalSearch

    tool = LocalSearch(index, style=style)
    print(asyncio.run(tool("search", query, ToolState())))


def agent_command(generate: bool):  # noqa: ANN201 - a typer command
    """The `run` / `generate` command: the same options, `generate` keeps trajectories."""

    def command(
        recipe: Annotated[
            Path | None,
            typer.Argument(
                help="A run recipe (YAML of these options, e.g. configs/run/gpt4-react-hotpotqa"
                ".yaml); options given here override it."
            ),
        ] = None,
        task: Annotated[
            str | None, typer.Option(help="hotpotqa | bamboogle | strategyqa | mmlu.")
        ] = None,
        model: Annotated[
            str | None, typer.Option(help="openai:MODEL | hf:PATH[:ADAPTER] | scripted:FILE.")
        ] = None,
        out_dir: Annotated[
            Path | None, typer.Option("--out", help="Run folder (episodes.jsonl etc.).")
        ] = None,
        split: Annotated[str | None, typer.Option(help="Split (default: the task's).")] = None,
        data: Annotated[
            Path | None, typer.Option(help="Your own file in the task's format.")
        ] = None,
        subject: Annotated[str | None, typer.Option(help="MMLU subject.")] = None,
        start: Annotated[int | None, typer.Option(help="First episode (after shuffling).")] = None,
        end: Annotated[int | None, typer.Option(help="End episode, exclusive.")] = None,
        random: Annotated[
            bool, typer.Option("--random", help="Shuffle with Random(233) first (the paper).")
        ] = False,
        method: Annotated[str | None, typer.Option(help="react | cot | io | reflexion.")] = None,
        format: Annotated[str | None, typer.Option(help="fewshot | alpaca | chat.")] = None,
        prompt: Annotated[Path | None, typer.Option(help="Your own few-shot prompt file.")] = None,
        base_url: Annotated[
            str | None, typer.Option(help="OpenAI-compatible server, e.g. a vLLM server.")
        ] = None,
        api: Annotated[
            str | None,
            typer.Option(
                help="auto | chat | completions: where a text prompt goes (auto: chat, one user "
                "message, unless format alpaca or a completion model)."
            ),
        ] = None,
        llm_cache: Annotated[
            str | None,
            typer.Option(help="Model-call cache: auto (on at temperature 0) | none | FILE."),
        ] = None,
        tool: Annotated[str | None, typer.Option(help="local | serpapi | wikipedia.")] = None,
        index: Annotated[Path | None, typer.Option(help="Local index folder.")] = None,
        tool_style: Annotated[str | None, typer.Option(help="google | wiki.")] = None,
        noise: Annotated[
            str | None,
            typer.Option(help='Noisy search: off | none (observation "None") | random.'),
        ] = None,
        noise_p: Annotated[
            float | None, typer.Option(help="Probability of a noisy search.")
        ] = None,
        cache: Annotated[str | None, typer.Option(help="Tool cache: auto | none | FILE.")] = None,
        concurrency: Annotated[int | None, typer.Option(help="Episodes in flight.")] = None,
        max_steps: Annotated[int | None, typer.Option(help="Step cap per episode.")] = None,
        max_tokens: Annotated[
            int | None, typer.Option(help="Tokens per model call (default 1000, as FireAct).")
        ] = None,
        llm_timeout: Annotated[
            float | None, typer.Option(help="Seconds per API request (default 120).")
        ] = None,
        llm_retries: Annotated[
            int | None, typer.Option(help="Retries on 429/5xx/timeouts/resets (default 6).")
        ] = None,
        retry_delay: Annotated[
            float | None, typer.Option(help="First retry backoff in seconds (default 1).")
        ] = None,
        hedge_after: Annotated[
            float | None, typer.Option(help="Hedge requests slower than this (s; default off).")
        ] = None,
        temperature: Annotated[
            float | None,
            typer.Option(
                help="Sampling temperature (default: 0.7 for prompted API models, as FireAct; "
                "0 otherwise)."
            ),
        ] = None,
        reflexion_tries: Annotated[int | None, typer.Option(help="Reflexion tries.")] = None,
        seed: Annotated[int | None, typer.Option(help="Seed (noise).")] = None,
        resume: Annotated[
            bool, typer.Option("--resume", help="Skip episodes already done.")
        ] = False,
        overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the run.")] = False,
        keep: Annotated[
            str | None, typer.Option(help="generate: keep success (default) | all.")
        ] = None,
        keep_tool_errors: Annotated[
            bool,
            typer.Option(
                "--keep-tool-errors",
                help="generate: also keep episodes whose tool calls failed (dropped by default).",
            ),
        ] = False,
        dry_run: Annotated[
            bool,
            typer.Option("--dry-run", help="Print the resolved settings and stop; runs nothing."),
        ] = False,
    ) -> None:
        values = {k: v for k, v in locals().items() if k != "generate"}
        _agent_command(values, generate=generate)

    command.__doc__ = (
        "Run the agent and keep its successful trajectories as training data."
        if generate
        else "Run the agent over a task's episodes: one JSON line per episode, then a summary."
    )
    return command


def _agent_command(values: dict, *, generate: bool) -> None:
    from fireact.agent import generate as generate_run
    from fireact.agent import options_from_dict
    from fireact.agent import run as run_run

    values = dict(values)
    recipe, dry_run = values.pop("recipe"), values.pop("dry_run")
    values["out"] = values.pop("out_dir")
    for flag in ("random", "resume", "overwrite", "keep_tool_errors"):
        values[flag] = values[flag] or None
    if recipe is not None:
        from fireact.recipes import load_run_recipe

        given = {k: v for k, v in values.items() if v is not None}
        values = load_run_recipe(recipe, []) | given
    if dry_run and values.get("out") is None:
        values["out"] = "(not set)"
    for name, flag in (("task", "--task"), ("model", "--model"), ("out", "--out")):
        if values.get(name) is None:
            raise FireactError(f"Missing option '{flag}': give it, or a run recipe that sets it")
    if dry_run:
        from fireact.recipes import describe

        print(describe({k: v for k, v in values.items() if v is not None}), end="")
        return
    options = options_from_dict(values)
    summary = (generate_run if generate else run_run)(options)
    keys = ("n", "finished", "errors", "em", "f1", "mean_steps", "cost_usd", "wall_s", "kept")
    keys += ("dropped_tool_errors", "llm_cache")
    print(json.dumps({k: summary[k] for k in keys if k in summary}, indent=2))
    if summary.get("errors"):
        print(
            f"error: {summary['errors']} of {summary['n']} episodes failed: "
            f"{summary['first_error']}; rerun with --resume to retry them",
            file=sys.stderr,
        )
        raise typer.Exit(EXIT_EPISODES_FAILED)


app.command("run")(agent_command(generate=False))
app.command("generate")(agent_command(generate=True))


@app.command()
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
        _check_files(inputs, model)
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


def _check_files(paths: list[Path], model: str) -> None:
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


@ft_app.command("upload")
def ft_upload(
    file: Annotated[Path, typer.Argument(help="Chat JSONL training file (checked first).")],
    base_url: Annotated[str | None, typer.Option(help="API base URL.")] = None,
) -> None:
    """Upload a training file; prints its file id."""
    from fireact.train import openai_ft

    print(openai_ft.upload(file, base_url=base_url))


@ft_app.command("create")
def ft_create(
    training_file: Annotated[str, typer.Option(help="File id from `upload`.")],
    model: Annotated[str, typer.Option(help="Base model.")] = "gpt-3.5-turbo",
    validation_file: Annotated[str | None, typer.Option(help="Validation file id.")] = None,
    suffix: Annotated[str | None, typer.Option(help="Suffix of the model name.")] = None,
    n_epochs: Annotated[int | None, typer.Option(help="Epochs (default: OpenAI's).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed.")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Poll until the job ends.")] = False,
    poll_s: Annotated[float, typer.Option(help="--wait: seconds between polls.")] = 30.0,
    base_url: Annotated[str | None, typer.Option(help="API base URL.")] = None,
) -> None:
    """Start a fine-tuning job (and optionally wait for it)."""
    from fireact.train import openai_ft

    openai_ft.check_options(
        {"model": model, "suffix": suffix, "n_epochs": n_epochs, "seed": seed, "poll_s": poll_s},
        flags=True,
    )
    job = openai_ft.create(
        training_file,
        model,
        validation_file=validation_file,
        suffix=suffix,
        n_epochs=n_epochs,
        seed=seed,
        base_url=base_url,
    )
    if wait:
        job = openai_ft.wait(job["id"], poll_s, base_url=base_url)
    print(json.dumps(job, indent=2, default=str))


@ft_app.command("run")
def ft_run(
    recipe: Annotated[Path, typer.Argument(help="A recipe, e.g. configs/gpt35-hotpotqa.yaml.")],
    base_url: Annotated[str | None, typer.Option(help="API base URL.")] = None,
) -> None:
    """Check and upload the recipe's data, start the job and wait until it ends."""
    from fireact.train import openai_ft

    job = openai_ft.run_recipe(recipe, base_url=base_url, echo=lambda m: print(m, file=sys.stderr))
    print(json.dumps(job, indent=2, default=str))


@ft_app.command("status")
def ft_status(
    job_id: Annotated[str, typer.Argument(help="Job id.")],
    base_url: Annotated[str | None, typer.Option(help="API base URL.")] = None,
) -> None:
    """A job's state, model name and recent events."""
    from fireact.train import openai_ft

    print(json.dumps(openai_ft.status(job_id, base_url=base_url), indent=2, default=str))


@ft_app.command("cancel")
def ft_cancel(
    job_id: Annotated[str, typer.Argument(help="Job id.")],
    base_url: Annotated[str | None, typer.Option(help="API base URL.")] = None,
) -> None:
    """Cancel a job."""
    from fireact.train import openai_ft

    print(json.dumps(openai_ft.cancel(job_id, base_url=base_url), indent=2, default=str))


@ft_app.command("list")
def ft_list(
    limit: Annotated[int, typer.Option(help="How many jobs.")] = 10,
    base_url: Annotated[str | None, typer.Option(help="API base URL.")] = None,
) -> None:
    """Recent fine-tuning jobs."""
    from fireact.train import openai_ft

    print(json.dumps(openai_ft.list_jobs(limit, base_url=base_url), indent=2, default=str))


@app.command()
def view(
    run_dir: Annotated[Path, typer.Argument(help="A run folder (with episodes.jsonl).")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="HTML file (default: RUN/view.html).")
    ] = None,
) -> None:
    """Write one self-contained HTML page to browse a run's episodes."""
    from fireact.report.view import write_view

    print(write_view(run_dir, out_file))


@app.command()
def report(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run folders to compare.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the table and plots.")],
) -> None:
    """Compare runs side by side: a table (JSON + Markdown) and PNG plots."""
    from fireact.report.compare import compare_runs

    result = compare_runs(run_dirs, out_dir)
    table = Table("run", "n", "EM", "F1", "steps", "unfinished", "tokens/ep", "$/ep", "s/ep")
    for row in result["runs"]:
        table.add_row(
            str(row["run"]),
            str(row["n"]),
            f"{100 * row['em']:.1f}",
            f"{100 * row['f1']:.1f}",
            f"{row['mean_steps']:.2f}",
            f"{100 * row['unfinished_rate']:.1f}%",
            f"{row['tokens_per_episode']:.0f}",
            f"{row['cost_per_episode']:.5f}",
            f"{row['time_per_episode_s']:.2f}",
        )
    out.print(table)
    out.print(f"written: {', '.join(str(p) for p in result['files'].values())}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
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


@app.command()
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
) -> None:
    """The whole loop on shipped data: generate, convert, train a tiny Llama, run it, score."""
    from fireact.quickstart import quickstart as run_quickstart

    summary = run_quickstart(
        out_dir,
        questions=questions,
        train_examples=train_examples,
        model=model,
        overwrite=overwrite,
    )
    print(json.dumps(summary, indent=2))


_terminated = False  # set when SIGTERM arrived


def _on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM stops the command exactly as Ctrl-C does (asyncio cancels the run cleanly, the
    trainer stops between steps); only the exit code and the message differ."""
    import signal

    global _terminated
    _terminated = True
    signal.raise_signal(signal.SIGINT)


INTERRUPTED = "finished work is saved; rerun with --resume to continue"


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: every error is one line on stderr.

    Exit codes: 0 done; 2 a user error (`FireactError`, a file that cannot be read or written)
    or a usage error (unknown command, missing or bad option); 3 `run`/`generate` finished but
    some episodes ended in errors (rerun with --resume); 130 Ctrl-C; 143 SIGTERM (both save what
    is finished and say how to continue). ``--debug`` adds the traceback of a user error.
    """
    import signal

    from typer._click.exceptions import ClickException, NoArgsIsHelpError

    args = sys.argv[1:] if argv is None else argv
    if threading_main():
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code = app(args=args, prog_name="fireact", standalone_mode=False)
    except FireactError as err:
        if "--debug" in args:
            traceback.print_exc()
        print(f"error: {err}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except OSError as err:  # a path the user gave that cannot be read or written
        if "--debug" in args:
            traceback.print_exc()
        where = f"{err.filename}: " if err.filename else ""
        print(f"error: {where}{err.strerror or err}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except NoArgsIsHelpError as err:
        print(err.ctx.get_help() if err.ctx else err.format_message(), file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except ClickException as err:
        hint = f" (see: {err.ctx.command_path} --help)" if getattr(err, "ctx", None) else ""
        print(f"error: {err.format_message()}{hint}", file=sys.stderr)
        sys.exit(err.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        code = EXIT_INTERRUPTED
    if code == EXIT_INTERRUPTED:  # typer turns Ctrl-C into exit code 130
        if _terminated:
            print(f"terminated: {INTERRUPTED}", file=sys.stderr)
            sys.exit(EXIT_TERMINATED)
        print(f"interrupted: {INTERRUPTED}", file=sys.stderr)
    sys.exit(code if isinstance(code, int) else 0)


def threading_main() -> bool:
    """True in the main thread (the only one that may install signal handlers)."""
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    main()

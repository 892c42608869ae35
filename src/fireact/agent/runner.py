"""The run's scheduler: many concurrent episodes, one JSONL line each, resume, summary.

Owns `run` / `generate` (sync) and `arun` (async): building a run from its `RunOptions`
(`fireact.agent.options`: the task's examples, the model, the tool stack of
`fireact.agent.tools_setup`, the method's rules from `fireact.agent.methods`), then running it in
the run folder ``OUT``, whose files, record and statistics `fireact.runs` owns:

* ``config.json`` — written at the start: the options, the number of episodes, the version;
* ``episodes.jsonl`` — one `EpisodeRecord` per finished episode (`to_record`), appended and
  flushed as each one ends (order depends on timing; the set of records does not);
* ``summary.json`` — written at the end (`fireact.runs.summarise`);
* ``trajectories.jsonl`` — `generate` only: the kept records (reward 1, or all with keep=all).

Scheduling: ``concurrency`` workers pull examples from one shared iterator, so at most that many
episodes are in flight and each advances as soon as its own model or tool call returns — no
barrier across episodes. Per episode, the hot path is the step functions of
`fireact.agent.episode` plus one ``json.dumps`` and one write; nothing re-reads files.

Resume: ``resume=True`` skips the ids already in ``episodes.jsonl``. A last line cut short by a
kill (no trailing newline, or not JSON) is dropped from the file first; a bad line elsewhere is
an error. A non-empty ``OUT`` needs ``resume`` or ``overwrite``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import shlex
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from fireact.agent.episode import Agent, Episode, Step, run_episode
from fireact.agent.methods import method_spec
from fireact.agent.options import (
    FIREACT_MAX_TOKENS,
    FIREACT_TEACHER_TEMPERATURE,
    RESUME_FIELDS,
    RunOptions,
    check_resume_config,
    describe_error,
    generation_defaults,
    option_conflicts,
    options_from_dict,
)
from fireact.agent.prompts import fewshot_prompt, user_prompt
from fireact.agent.tools_setup import build_tool, tool_style
from fireact.errors import FireactError
from fireact.llm.base import LLM
from fireact.outputs import FolderLock, clean_leftovers
from fireact.runs import (
    CONFIG,
    EPISODES,
    RECORD_FIELDS,
    STEP_COST_FIELDS,
    SUMMARY,
    TIMING_FIELDS,
    VLLM_LOG,
    EpisodeRecord,
    Tally,
    append_record,
    make_out,
    prepare_out,
    read_done,
    refuse_run_overlap,
    summarise,
    write_json,
    write_trajectories,
)
from fireact.tasks import TASKS, load_task, task_spec
from fireact.tasks.base import Example, Task
from fireact.tools.base import Tool

__all__ = [  # the options' names stay importable from here, as before the split
    "FIREACT_MAX_TOKENS",
    "FIREACT_TEACHER_TEMPERATURE",
    "RESUME_FIELDS",
    "TIMING_FIELDS",
    "RunOptions",
    "arun",
    "describe_error",
    "generate",
    "generation_defaults",
    "option_conflicts",
    "options_from_dict",
    "run",
    "to_record",
]


def prompt_fingerprint(head: str) -> str:
    """A short hash of the few-shot prompt text, so that an edited prompt file is noticed."""
    return hashlib.sha256(head.encode("utf-8")).hexdigest()[:16]


def step_stats(step: Step) -> dict[str, Any]:
    """What one step cost: model calls, tokens, dollars and the time of its model/tool calls."""
    return {name: getattr(step, name) for name in STEP_COST_FIELDS}


def to_record(ep: Episode, task: Task, options: RunOptions, wall_s: float) -> EpisodeRecord:
    """The record of one finished episode (`fireact.runs.EpisodeRecord`): the episode's own
    fields, and those of the run."""
    own = {
        "task": task.name,
        "split": task.split,
        "model": options.model,
        "prediction": ep.prediction if ep.finished else None,
        "reward": ep.em,
        "steps": len(ep.steps),
        "step_stats": [step_stats(step) for step in ep.steps],
        "wall_s": wall_s,
    }
    return EpisodeRecord(**{n: getattr(ep, n) for n in RECORD_FIELDS if n not in own}, **own)


# ------------------------------------------------------------------ building


def select_examples(options: RunOptions) -> tuple[Task, list[Example]]:
    """The task and the examples this run asks for (the paper's selection)."""
    task = load_task(options.task, options.split, path=options.data, subject=options.subject)
    examples = task.select(options.start, options.end, options.random)
    if method_spec(options.method).needs_gold and any(ex.answer is None for ex in examples):
        raise FireactError(
            f"method {options.method} needs gold answers to decide when to retry; split "
            f"{task.split} of {task.name} has none: use method react"
        )
    ids = [ex.id for ex in examples]
    if len(set(ids)) != len(ids):
        raise FireactError(f"{task.source}: example ids are not unique; resume needs unique ids")
    return task, examples


def method_head(options: RunOptions, task: Task) -> str:
    """The few-shot prompt of the run's method (empty for the alpaca and chat formats)."""
    if options.format != "fewshot":
        return ""
    if options.prompt is not None:
        return user_prompt(str(options.prompt))
    kind = method_spec(options.method).prompt
    own = task_spec(task.name).prompts.get(kind) if task.name in TASKS else None
    if own is not None:  # the task ships its own prompt (tableqa's table actions)
        return user_prompt(str(own))
    return fewshot_prompt(kind, task.prompt_task, tool_style(options.tool, options.tool_style))


def http_options(options: RunOptions) -> dict[str, Any]:
    """What every OpenAI-compatible client of a run takes: concurrency, timeouts, retries."""
    return {
        "max_concurrency": options.concurrency,
        "timeout": options.llm_timeout,
        "max_retries": options.llm_retries,
        "retry_base_delay": options.retry_delay,
        "hedge_after_s": options.hedge_after,
    }


def build_llm(options: RunOptions) -> LLM:
    """The model backend named by ``model``."""
    from fireact.llm import load_llm

    extra: dict[str, Any] = {}
    if options.model.startswith("openai:"):
        from fireact.llm.openai_backend import resolve_api

        extra = http_options(options)
        extra["api"] = resolve_api(options.api, options.model.partition(":")[2], options.format)
        if options.base_url:
            extra["base_url"] = options.base_url
    elif options.model.startswith("vllm:"):
        extra = http_options(options)
        # a local open model: text prompts go to completions (a base model has no chat template)
        chat = options.api == "chat" or (options.api == "auto" and options.format == "chat")
        extra["api"] = "chat" if chat else "completions"
        extra["server_options"] = {
            "log_path": Path(options.out) / VLLM_LOG,  # kept with the run (resume appends)
            "dtype": options.vllm_dtype,
            "max_model_len": options.vllm_max_model_len,
            "gpu_memory_utilization": options.vllm_gpu_memory,
            "max_lora_rank": options.vllm_max_lora_rank,  # None: the adapter's own rank
            "extra_args": shlex.split(options.vllm_args or ""),
        }
    elif options.model.startswith("hf:"):
        # every episode in flight fits in one batched generate (the backend's default is 32)
        extra["max_batch_size"] = options.concurrency
        extra["seed"] = options.seed
        extra["compile"] = options.hf_compile
        extra["dtype"] = options.hf_dtype
        extra["load_in_4bit"] = options.hf_load_in_4bit
    return load_llm(options.model, **extra)


def wrap_llm_cache(llm: LLM, options: RunOptions) -> LLM:
    """The model behind the ``llm_cache`` file, when one applies (openai backends only: an hf
    model's weights can change under the same path; scripted answers need no cache)."""
    if not options.model.startswith("openai:"):
        return llm
    from fireact.llm.cache import CachedLLM, llm_identity, resolve_llm_cache

    path = resolve_llm_cache(options.llm_cache, options.temperature or 0.0)
    return llm if path is None else CachedLLM(llm, path, identity=llm_identity(llm))


def build_agent(options: RunOptions, task: Task, llm: LLM, tool: Tool | None) -> Agent:
    """The shared part of every episode of the run."""
    return Agent(
        llm=llm,
        tool=tool,
        task=task,
        method=options.method,
        format=options.format,
        head=method_head(options, task),
        max_steps=options.max_steps,
        max_reasks=options.max_reasks,
        max_tokens=options.max_tokens or FIREACT_MAX_TOKENS,
        temperature=options.temperature or 0.0,
        tool_timeout=options.tool_timeout,
        reflexion_tries=options.reflexion_tries,
    )


# ------------------------------------------------------------------ running


class ProgressBar:
    """A rich progress bar on stderr (done/total, running EM, cost, ETA), or nothing."""

    def __init__(self, enabled: bool, total: int, done: list[Tally]) -> None:
        self.bar = None
        self.correct = sum(t.em for t in done)
        self.done = len(done)
        self.cost = sum(t.cost_usd for t in done)
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("EM {task.fields[em]:.3f}  ${task.fields[cost]:.4f}"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self.task = self.bar.add_task("episodes", total=total, completed=self.done, **self._f())
        self.bar.start()

    def _f(self) -> dict[str, float]:
        return {"em": self.correct / max(self.done, 1), "cost": self.cost}

    def advance(self, tally: Tally) -> None:
        self.done += 1
        self.correct += tally.em
        self.cost += tally.cost_usd
        if self.bar is not None:
            self.bar.update(self.task, advance=1, **self._f())

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


async def _worker(
    todo: Iterator[Example], agent: Agent, options: RunOptions, sink: TextIO, bar: ProgressBar
) -> list[Tally]:
    tallies = []
    for example in todo:
        started = time.perf_counter()
        ep = await run_episode(example, agent)
        record = to_record(ep, agent.task, options, time.perf_counter() - started)
        append_record(sink, record)
        tally = Tally.of(record)
        tallies.append(tally)
        bar.advance(tally)
    return tallies


async def arun(
    options: RunOptions,
    *,
    llm: LLM | None = None,
    tool: Tool | None = None,
    generate: bool = False,
) -> dict[str, Any]:
    """Run the episodes `options` ask for; returns the summary (also in ``summary.json``).

    `llm` / `tool` replace the ones the options name (tests, embedding); they are not closed.
    """
    started = time.perf_counter()
    refuse_run_overlap(options.out, [options.data, options.prompt, options.index])
    task, examples = select_examples(options)
    needs_tool = method_spec(options.method).needs_tool
    own_tool = tool is None and needs_tool
    if own_tool:
        tool = build_tool(options.tool_setup(), task)
    own_llm = llm is None
    fresh = not Path(options.out).exists()
    try:
        if llm is None:
            llm = build_llm(options)  # built, not started: a vllm: server starts in check()
        make_out(Path(options.out))
        with FolderLock(options.out, "run"):  # one writer per run folder, before any model load
            sha = prompt_fingerprint(method_head(options, task))
            out = prepare_out(
                Path(options.out),
                resume=options.resume,
                overwrite=options.overwrite,
                check_resume=lambda out: check_resume_config(out, options, sha),
            )
            clean_leftovers(out)
            if own_llm:  # fail fast: unreachable server, bad key; a vllm: server loads here
                if (check := getattr(llm, "check", None)) is not None:
                    await check()
                for warning in getattr(llm, "warnings", ()):
                    print(f"warning: {warning}", file=sys.stderr)
                llm = wrap_llm_cache(llm, options)
            agent = build_agent(options, task, llm, tool if needs_tool else None)
            return await _run_in(out, options, agent, examples, started, generate)
    except BaseException:
        if fresh:  # a run refused before it wrote anything leaves no folder behind
            with contextlib.suppress(OSError):
                Path(options.out).rmdir()
        raise
    finally:
        if own_llm and llm is not None:
            await llm.aclose()
        if own_tool and tool is not None:
            await tool.aclose()


async def _run_in(
    out: Path,
    options: RunOptions,
    agent: Agent,
    examples: list[Example],
    started: float,
    generate: bool,
) -> dict[str, Any]:
    done = read_done(out / EPISODES) if options.resume else {}
    wanted = {ex.id for ex in examples}
    previous = [t for i, t in done.items() if i in wanted]
    todo = [ex for ex in examples if ex.id not in done]
    config = {"options": options.model_dump(mode="json"), "n": len(examples), "todo": len(todo)}
    config["prompt_sha256"] = prompt_fingerprint(agent.head)
    write_json(out / CONFIG, config | {"started_at": time.time(), "generate": generate})
    show = options.progress if options.progress is not None else sys.stderr.isatty()
    bar = ProgressBar(show, len(examples), previous)
    todo_iter = iter(todo)
    try:
        with (out / EPISODES).open("a", encoding="utf-8") as sink:
            async with asyncio.TaskGroup() as group:
                workers = [
                    group.create_task(_worker(todo_iter, agent, options, sink, bar))
                    for _ in range(min(options.concurrency, max(len(todo), 1)))
                ]
    except ExceptionGroup as failed:  # the first failure, as itself (a FireactError stays one)
        raise _first(failed) from None
    finally:
        bar.close()
    tallies = previous + [t for w in workers for t in w.result()]
    wall = time.perf_counter() - started
    summary = summarise(tallies, len(examples), agent.task, options, wall, len(todo))
    if generate:
        summary["kept"], summary["dropped_tool_errors"] = write_trajectories(
            out, options.keep, options.keep_tool_errors
        )
        summary["keep"] = options.keep
    stats = getattr(agent.llm, "stats", None)
    if callable(stats):  # the model-call cache: hits, misses, cost saved
        summary["llm_cache"] = stats()
    write_json(out / SUMMARY, summary)
    return summary


def _first(group: BaseExceptionGroup) -> BaseException:
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


def run(options: RunOptions, **kwargs: Any) -> dict[str, Any]:
    """`fireact run`: run the agent over the selected examples; returns the summary."""
    return asyncio.run(arun(options, **kwargs))


def generate(options: RunOptions, **kwargs: Any) -> dict[str, Any]:
    """`fireact generate`: run, then keep the successful episodes in ``trajectories.jsonl``."""
    return asyncio.run(arun(options, generate=True, **kwargs))

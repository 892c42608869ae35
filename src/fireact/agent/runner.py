"""The run: options, many concurrent episodes, one JSONL line each, resume, summary.

Owns `RunOptions` (every knob of `fireact run` / `fireact generate`, validated; an invalid
value raises `FireactError` naming the field), `run` / `generate` (sync) and `arun` (async),
and the files of a run folder ``OUT``:

* ``config.json`` — written at the start: the options, the number of episodes, the version;
* ``episodes.jsonl`` — one line per finished episode, appended and flushed as each one ends
  (order depends on timing; the set of records does not);
* ``summary.json`` — written at the end (see `summarise`);
* ``trajectories.jsonl`` — `generate` only: the kept records (reward 1, or all with keep=all).

Scheduling: ``concurrency`` workers pull examples from one shared iterator, so at most that many
episodes are in flight and each advances as soon as its own model or tool call returns — no
barrier across episodes. Per episode, the hot path is the step functions of
`fireact.agent.episode` plus one ``json.dumps`` and one write; nothing re-reads files.

Resume: ``resume=True`` skips the ids already in ``episodes.jsonl``. A last line cut short by a
kill (no trailing newline, or not JSON) is dropped from the file first; a bad line elsewhere is
an error. A non-empty ``OUT`` needs ``resume`` or ``overwrite``.

Record fields: id, task, split, method, format, model, question, gold, prediction (null unless
finished), finished, reward (= em), em, f1, steps (count, last try), trajectory, messages,
tool_calls [{action, argument, observation, latency_s}], llm_calls, reasks, prompt_tokens,
completion_tokens, cost_usd, llm_latency_s, tool_latency_s, wall_s, tries, reflections,
attempts, error (null, or why the episode stopped early).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fireact.agent.episode import TOOL_ERROR, Agent, Episode, Step, run_episode
from fireact.agent.prompts import fewshot_prompt, user_prompt
from fireact.agent.tools_setup import build_tool, tool_style
from fireact.errors import FireactError
from fireact.llm.base import LLM
from fireact.outputs import (
    LOCK_NAME,
    FolderLock,
    atomic_write_bytes,
    atomic_write_text,
    clean_leftovers,
    refuse_overlap,
)
from fireact.runs import CONFIG, EPISODES, RUN_FILES, SUMMARY, TRAJECTORIES
from fireact.tasks import TASKS, load_task
from fireact.tasks.base import Example, Task
from fireact.tools.base import Tool

# Options that must match between a run and its resumption.
# Options that change results (concurrency, timeouts, retries, hedging, caches may change).
RESUME_FIELDS = (
    "task", "split", "data", "subject", "start", "end", "random", "method", "format", "model",
    "api", "prompt", "temperature", "max_tokens", "max_reasks", "reflexion_tries", "tool",
    "index", "tool_style", "noise", "noise_p", "max_steps", "seed",
)  # fmt: skip
TIMING_FIELDS = ("wall_s", "llm_latency_s", "tool_latency_s")


class RunOptions(BaseModel):
    """Everything a run needs; build with `RunOptions(**values)` or `options_from_dict`."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    task: str
    split: str | None = None
    data: Path | None = None  # a user file in the task's format, instead of the shipped split
    subject: str | None = None  # mmlu only
    start: int = Field(0, ge=0)
    end: int | None = Field(None, ge=1)
    random: bool = False  # the paper's Random(233) shuffle before [start:end]
    method: Literal["react", "cot", "io", "reflexion"] = "react"
    format: Literal["fewshot", "alpaca", "chat"] = "fewshot"
    prompt: Path | None = None  # a few-shot prompt file instead of the shipped one
    model: str
    base_url: str | None = None  # openai backend only
    # openai backend: where a text prompt goes; auto = chat (one user message, as FireAct sends
    # it) unless format alpaca or a completion model (gpt-3.5-turbo-instruct, davinci-002, ...)
    api: Literal["auto", "chat", "completions"] = "auto"
    llm_cache: str = "auto"  # model-call cache: auto (on at temperature 0) | none | a SQLite file
    tool: Literal["local", "serpapi", "wikipedia"] = "local"
    index: Path | None = None  # local tool: index folder (default: the shipped HotpotQA one)
    tool_style: Literal["google", "wiki"] | None = None  # None: google, or what the tool is
    tool_timeout: float | None = Field(60.0, gt=0)
    noise: Literal["off", "none", "random"] = "off"  # the paper's noisy search: "None" / random
    noise_p: float = Field(0.5, ge=0.0, le=1.0)
    cache: str = "auto"  # auto | none | a SQLite file path
    concurrency: int = Field(64, ge=1)
    max_steps: int = Field(11, ge=1)
    max_reasks: int = Field(5, ge=0)
    max_tokens: int | None = Field(None, ge=1)  # None: FireAct's 1000
    llm_timeout: float = Field(120.0, gt=0)  # openai backend: seconds per request
    llm_retries: int = Field(6, ge=0)  # openai backend: retries on 429 / 5xx / timeouts / resets
    retry_delay: float = Field(1.0, ge=0)  # openai backend: first backoff, doubled per retry
    hedge_after: float | None = Field(None, gt=0)  # openai backend: duplicate after s (None: off)
    temperature: float | None = Field(None, ge=0.0)  # None: see `generation_defaults`
    out: Path
    resume: bool = False
    overwrite: bool = False
    keep: Literal["success", "all"] = "success"  # generate: which episodes become trajectories
    keep_tool_errors: bool = False  # generate: also keep episodes whose tool calls failed
    reflexion_tries: int = Field(3, ge=1)
    seed: int = 0
    progress: bool | None = None  # None: a progress bar when stderr is a terminal

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise FireactError(describe_error(exc)) from None

    @model_validator(mode="before")
    @classmethod
    def _fill_defaults(cls, values: Any) -> Any:
        if isinstance(values, dict):
            values = dict(values)
            temperature, max_tokens = generation_defaults(
                str(values.get("model", "")), str(values.get("format") or "fewshot")
            )
            if values.get("temperature") is None:
                values["temperature"] = temperature
            if values.get("max_tokens") is None:
                values["max_tokens"] = max_tokens
        return values

    @field_validator("task")
    @classmethod
    def _known_task(cls, value: str) -> str:
        if value not in TASKS:
            raise ValueError(f"unknown task {value!r}: choose one of {', '.join(TASKS)}")
        return value

    @field_validator("model")
    @classmethod
    def _model_spec(cls, value: str) -> str:
        kind, sep, rest = value.partition(":")
        if not sep or not rest or kind not in ("openai", "hf", "scripted"):
            raise ValueError(f"{value!r}: use openai:MODEL, hf:PATH[:ADAPTER] or scripted:FILE")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> RunOptions:
        for problem in option_conflicts(self):
            raise ValueError(problem)
        return self


FIREACT_MAX_TOKENS = 1000  # FireAct's max_tokens for every model call
FIREACT_TEACHER_TEMPERATURE = 0.7  # FireAct's temperature for prompted (few-shot) API models


def generation_defaults(model: str, format: str) -> tuple[float, int]:
    """FireAct's (temperature, max_tokens) for a setting the user left open.

    Prompted API models (the GPT-4 teacher: openai backend, few-shot format) sample at 0.7, as
    FireAct's generation defaults; fine-tuned models are evaluated as FireAct's README examples
    do: temperature 0 for fine-tuned GPT-3.5 (chat format), greedy for local models (FireAct's
    llama backend never samples). Every call may write up to 1000 tokens.
    """
    if model.startswith("openai:") and format == "fewshot":
        return FIREACT_TEACHER_TEMPERATURE, FIREACT_MAX_TOKENS
    return 0.0, FIREACT_MAX_TOKENS


def option_conflicts(o: RunOptions) -> Iterator[str]:
    """Combinations of options that cannot work, each naming the fields."""
    if o.resume and o.overwrite:
        yield "resume / overwrite: choose one (resume continues OUT, overwrite replaces it)"
    if o.method in ("cot", "io") and o.format != "fewshot":
        yield f"method {o.method} uses the few-shot {o.method}_* prompt: set format fewshot"
    if o.end is not None and o.end <= o.start:
        yield f"end {o.end} must be larger than start {o.start}"
    if o.tool != "local" and o.tool_style not in (None, tool_style(o)):
        yield f"tool_style {o.tool_style}: the {o.tool} tool answers in {tool_style(o)} style"
    if o.tool != "local" and o.index is not None:
        yield f"index: only the local tool reads an index, not {o.tool}"
    if o.prompt is not None and o.format != "fewshot":
        yield "prompt: a few-shot prompt file applies to format fewshot only"
    if o.base_url and not o.model.startswith("openai:"):
        yield "base_url: only the openai:MODEL backend takes a base URL"
    if o.api != "auto" and not o.model.startswith("openai:"):
        yield f"api {o.api}: only the openai:MODEL backend has APIs to choose from"
    if o.api == "completions" and o.format == "chat":
        yield "api completions / format chat: a conversation needs the chat API (api chat or auto)"


def describe_error(exc: ValidationError) -> str:
    """One line naming each invalid field, its value and the problem."""
    parts = []
    for err in exc.errors():
        message = err["msg"].removeprefix("Value error, ")
        if not err["loc"]:  # a combination of options; the message names the fields
            parts.append(f"run options: {message}")
            continue
        field = ".".join(str(p) for p in err["loc"])
        value = err.get("input")
        shown = "" if isinstance(value, dict) else f" = {value!r}"
        parts.append(f"run option '{field}'{shown}: {message}")
    return "; ".join(parts)


def options_from_dict(values: dict[str, Any]) -> RunOptions:
    """`RunOptions` from a plain dict (CLI flags / YAML); ``None`` values mean the default."""
    return RunOptions(**{k: v for k, v in values.items() if v is not None})


# ------------------------------------------------------------------ run folder


@dataclass
class Tally:
    """What the summary needs from one record."""

    finished: bool
    em: bool
    f1: float
    steps: int
    llm_calls: int
    tool_calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    wall_s: float
    error: str | None  # why the episode stopped early (None: it ran to its end)

    @classmethod
    def of(cls, r: dict[str, Any]) -> Tally:
        return cls(
            bool(r.get("finished")),
            bool(r.get("em")),
            float(r.get("f1") or 0.0),
            int(r.get("steps") or 0),
            int(r.get("llm_calls") or 0),
            len(r.get("tool_calls") or ()),
            int(r.get("prompt_tokens") or 0),
            int(r.get("completion_tokens") or 0),
            float(r.get("cost_usd") or 0.0),
            float(r.get("wall_s") or 0.0),
            None if r.get("error") is None else str(r["error"]),
        )


def refuse_run_overlap(options: RunOptions) -> None:
    """The run's files may not be one of its inputs (the questions, the prompt, the index)."""
    inputs = [p for p in (options.data, options.prompt, options.index) if p is not None]
    outputs = [Path(options.out) / name for name in RUN_FILES]
    refuse_overlap([Path(options.out)], [p for p in inputs if Path(p).is_dir()], what="--out")
    refuse_overlap(outputs, inputs, what="--out")


def prompt_fingerprint(head: str) -> str:
    """A short hash of the few-shot prompt text, so that an edited prompt file is noticed."""
    return hashlib.sha256(head.encode("utf-8")).hexdigest()[:16]


def make_out(out: Path) -> None:
    """Create the run folder (the lock file lives in it); one line when it cannot be."""
    if out.exists() and not out.is_dir():
        raise FireactError(f"out: {out} is a file; give a folder for the run")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise FireactError(
            f"out: cannot write to {out} ({err.strerror}); pick another folder"
        ) from None


def prepare_out(options: RunOptions, prompt_sha: str = "") -> Path:
    """Create OUT, or check it may be written: empty, resumed or overwritten."""
    out = Path(options.out)
    if out.exists() and not out.is_dir():
        raise FireactError(f"out: {out} is a file; give a folder for the run")
    if out.is_dir() and any(p.name != LOCK_NAME for p in out.iterdir()):
        if options.overwrite:
            for name in RUN_FILES:
                (out / name).unlink(missing_ok=True)
        elif not options.resume:
            raise FireactError(
                f"out: {out} is not empty; pass --resume to continue that run or --overwrite "
                "to replace it"
            )
        else:
            check_resume_config(out, options, prompt_sha)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.touch()
        probe.unlink()
    except OSError as err:
        raise FireactError(
            f"out: cannot write to {out} ({err.strerror}); pick another folder"
        ) from None
    return out


def check_resume_config(out: Path, options: RunOptions, prompt_sha: str = "") -> None:
    """Resuming with settings that change results would mix two runs in one file: refuse."""
    path = out / CONFIG
    if not path.is_file():
        return
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        old = saved.get("options", {})
    except (ValueError, AttributeError):
        return
    new = options.model_dump(mode="json")
    for name in RESUME_FIELDS:
        if name in old and old[name] != new[name]:
            raise FireactError(
                f"{name}: {out} was run with {old[name]!r}, not {new[name]!r}; --resume only "
                "continues the same run: resume with the same setting, or use a new --out"
            )
    if saved.get("prompt_sha256", prompt_sha) != prompt_sha:
        raise FireactError(
            f"prompt: the few-shot prompt text changed since {out} was started; --resume only "
            "continues the same run: restore the prompt file, or use a new --out"
        )


def read_done(path: Path) -> dict[str, Tally]:
    """Tallies of the records already in ``episodes.jsonl``, dropping a torn last line.

    Episodes that ended with an error (an API outage, a crashed tool) are not done: their lines
    are removed from the file (rewritten atomically) so that the resumed run retries them.
    """
    if not path.is_file():
        return {}
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1  # a last line without its newline was cut by a kill
    lines = data[:keep].split(b"\n")[:-1]
    if lines:
        try:
            json.loads(lines[-1])
        except ValueError:  # a torn write that happened to end on a newline
            keep -= len(lines.pop()) + 1
    if keep < len(data):
        os.truncate(path, keep)
    done: dict[str, Tally] = {}
    kept: list[bytes] = []
    for lineno, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except ValueError:
            raise FireactError(
                f"{path}:{lineno}: not a JSON record; fix or remove that line, or use --overwrite"
            ) from None
        if record.get("error") is not None:
            continue
        kept.append(line)
        done.setdefault(str(record.get("id")), Tally.of(record))
    if len(kept) < len(lines):
        atomic_write_bytes(path, b"".join(line + b"\n" for line in kept))
    return done


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write a JSON file atomically (temp file + rename)."""
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


# ------------------------------------------------------------------ records and summary


def step_stats(step: Step) -> dict[str, Any]:
    """What one step cost: model calls, tokens, dollars and the time of its model/tool calls."""
    return {
        "llm_calls": step.llm_calls,
        "prompt_tokens": step.prompt_tokens,
        "completion_tokens": step.completion_tokens,
        "cost_usd": step.cost_usd,
        "llm_latency_s": step.llm_latency_s,
        "tool_latency_s": step.tool_latency_s,
    }


def to_record(ep: Episode, task: Task, options: RunOptions, wall_s: float) -> dict[str, Any]:
    """The JSONL record of one finished episode (schema in the module doc)."""
    return {
        "id": ep.id,
        "task": task.name,
        "split": task.split,
        "method": ep.method,
        "format": ep.format,
        "model": options.model,
        "question": ep.question,
        "gold": ep.gold,
        "prediction": ep.prediction if ep.finished else None,
        "finished": ep.finished,
        "reward": ep.em,
        "em": ep.em,
        "f1": ep.f1,
        "steps": len(ep.steps),
        "trajectory": ep.trajectory,
        "messages": ep.messages,
        "tool_calls": ep.tool_calls,
        "step_stats": [step_stats(step) for step in ep.steps],
        "llm_calls": ep.llm_calls,
        "reasks": ep.reasks,
        "prompt_tokens": ep.prompt_tokens,
        "completion_tokens": ep.completion_tokens,
        "cost_usd": ep.cost_usd,
        "llm_latency_s": ep.llm_latency_s,
        "tool_latency_s": ep.tool_latency_s,
        "wall_s": wall_s,
        "tries": ep.tries,
        "reflections": ep.reflections,
        "attempts": ep.attempts,
        "error": ep.error,
    }


def summarise(
    tallies: list[Tally], n: int, task: Task, options: RunOptions, wall_s: float, ran: int
) -> dict[str, Any]:
    """The run's summary: EM and F1 over the episodes requested, means, totals, speed."""
    done = len(tallies)
    return {
        "task": task.name,
        "split": task.split,
        "method": options.method,
        "format": options.format,
        "model": options.model,
        "n": n,
        "done": done,
        "finished": sum(t.finished for t in tallies),
        "unfinished": n - sum(t.finished for t in tallies),
        "errors": sum(t.error is not None for t in tallies),
        "first_error": next((t.error for t in tallies if t.error is not None), None),
        "correct": sum(t.em for t in tallies),
        "em": sum(t.em for t in tallies) / n,
        "f1": sum(t.f1 for t in tallies) / n,
        "mean_steps": sum(t.steps for t in tallies) / max(done, 1),
        "llm_calls": sum(t.llm_calls for t in tallies),
        "tool_calls": sum(t.tool_calls for t in tallies),
        "prompt_tokens": sum(t.prompt_tokens for t in tallies),
        "completion_tokens": sum(t.completion_tokens for t in tallies),
        "cost_usd": sum(t.cost_usd for t in tallies),
        "mean_episode_s": sum(t.wall_s for t in tallies) / max(done, 1),
        "wall_s": wall_s,
        "episodes_run": ran,
        "episodes_per_s": ran / wall_s if wall_s > 0 else 0.0,
        "options": options.model_dump(mode="json"),
    }


def had_tool_error(record: dict[str, Any]) -> bool:
    """True when a tool call of the episode failed (its observation is a "Tool error: ...")."""
    return any(
        str(call.get("observation", "")).startswith(TOOL_ERROR)
        for call in record.get("tool_calls") or ()
    )


def write_trajectories(out: Path, keep: str, keep_tool_errors: bool = False) -> tuple[int, int]:
    """`generate`: copy the kept records of ``episodes.jsonl`` to ``trajectories.jsonl``.

    An episode whose tool calls failed is never training data unless `keep_tool_errors`: the
    model would learn to answer "Tool error" observations. Returns (kept, dropped for that).
    """
    kept, dropped = [], 0
    for line in (out / EPISODES).read_bytes().splitlines():
        record = json.loads(line)
        if keep == "all" or (record.get("finished") and record.get("reward")):
            if not keep_tool_errors and had_tool_error(record):
                dropped += 1
                continue
            kept.append(line)
    atomic_write_bytes(out / TRAJECTORIES, b"".join(line + b"\n" for line in kept))
    return len(kept), dropped


# ------------------------------------------------------------------ building


def select_examples(options: RunOptions) -> tuple[Task, list[Example]]:
    """The task and the examples this run asks for (the paper's selection)."""
    task = load_task(options.task, options.split, path=options.data, subject=options.subject)
    examples = task.select(options.start, options.end, options.random)
    if options.method == "reflexion" and any(ex.answer is None for ex in examples):
        raise FireactError(
            f"method reflexion needs gold answers to decide when to retry; split {task.split} "
            f"of {task.name} has none: use method react"
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
    kind = "react" if options.method in ("react", "reflexion") else options.method
    return fewshot_prompt(kind, task.prompt_task, tool_style(options))


def build_llm(options: RunOptions) -> LLM:
    """The model backend named by ``model``."""
    from fireact.llm import load_llm

    extra: dict[str, Any] = {}
    if options.model.startswith("openai:"):
        extra["max_concurrency"] = options.concurrency
        extra["timeout"] = options.llm_timeout
        extra["max_retries"] = options.llm_retries
        extra["retry_base_delay"] = options.retry_delay
        extra["hedge_after_s"] = options.hedge_after
        from fireact.llm.openai_backend import resolve_api

        extra["api"] = resolve_api(options.api, options.model.partition(":")[2], options.format)
        if options.base_url:
            extra["base_url"] = options.base_url
    elif options.model.startswith("hf:"):
        # every episode in flight fits in one batched generate (the backend's default is 32)
        extra["max_batch_size"] = options.concurrency
        extra["seed"] = options.seed
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
    todo: Iterator[Example], agent: Agent, options: RunOptions, sink: Any, bar: ProgressBar
) -> list[Tally]:
    tallies = []
    for example in todo:
        started = time.perf_counter()
        ep = await run_episode(example, agent)
        record = to_record(ep, agent.task, options, time.perf_counter() - started)
        try:
            sink.write(json.dumps(record, ensure_ascii=False) + "\n")
            sink.flush()
        except OSError as err:
            raise FireactError(
                f"{sink.name}: cannot write ({err.strerror or err}); the episodes before this one "
                "are saved: fix that (e.g. free disk space), then rerun with --resume"
            ) from None
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
    refuse_run_overlap(options)
    task, examples = select_examples(options)
    needs_tool = options.method in ("react", "reflexion")
    own_tool = tool is None and needs_tool
    if own_tool:
        tool = build_tool(options, task)
    own_llm = llm is None
    try:
        if llm is None:
            llm = build_llm(options)
            check = getattr(llm, "check", None)
            if check is not None:  # fail fast: unreachable server, bad key (else warnings)
                await check()
                for warning in getattr(llm, "warnings", ()):
                    print(f"warning: {warning}", file=sys.stderr)
            llm = wrap_llm_cache(llm, options)
        agent = build_agent(options, task, llm, tool if needs_tool else None)
        make_out(Path(options.out))
        with FolderLock(options.out, "run"):  # one writer per run folder
            out = prepare_out(options, prompt_fingerprint(agent.head))
            clean_leftovers(out)
            return await _run_in(out, options, agent, examples, started, generate)
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

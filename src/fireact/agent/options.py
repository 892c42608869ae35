"""The run options: every knob of `fireact run` / `fireact generate`, validated, described once.

Owns `RunOptions` (a pydantic model; an invalid value or combination raises `FireactError`
naming the field), its conflicts (`option_conflicts`), its one-line messages (`describe_error`),
what a resumed run must keep (`RESUME_FIELDS`, `check_resume_config`),
FireAct's generation defaults (`generation_defaults`) and `options_from_dict`. Each field's
``description`` is its help text: the CLI builds the ``run`` / ``generate`` flags from the fields
(name, type, description, default), so help and behaviour cannot drift; `RECIPE_ONLY` names the
fields that have no flag (a recipe or the library sets them).

Names are checked against the registries: ``task`` (`fireact.tasks`), ``tool``
(`fireact.tools`), ``method`` (`fireact.agent.methods`) and the backend prefix of ``model``
(`fireact.llm`), so a plug-in's task, tool, method or backend is a valid option.
"""

from __future__ import annotations

import contextlib
import json
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core.core_schema import ValidationInfo

from fireact.agent.methods import METHOD_REGISTRY, method_spec
from fireact.agent.tools_setup import ToolSetup
from fireact.errors import FireactError
from fireact.llm import LLM_REGISTRY, spec_help
from fireact.llm.hedging import check_hedge_after
from fireact.runs import CONFIG
from fireact.tasks import TASK_REGISTRY
from fireact.tools import TOOL_REGISTRY, tool_spec

FIREACT_MAX_TOKENS = 1000  # FireAct's max_tokens for every model call
FIREACT_TEACHER_TEMPERATURE = 0.7  # FireAct's temperature for prompted (few-shot) API models

# Options that must match between a run and its resumption.
# Options that change results (concurrency, timeouts, retries, hedging, caches may change).
RESUME_FIELDS = (
    "task", "split", "data", "subject", "start", "end", "random", "method", "format", "model",
    "api", "prompt", "temperature", "max_tokens", "max_reasks", "reflexion_tries", "tool",
    "index", "tool_style", "noise", "noise_p", "max_steps", "seed",
)  # fmt: skip
# The managed vLLM server's options (vllm: models only).
VLLM_FIELDS = (
    "vllm_dtype", "vllm_max_model_len", "vllm_gpu_memory", "vllm_max_lora_rank", "vllm_args",
)  # fmt: skip
RECIPE_ONLY = ("tool_timeout", "max_reasks", "progress")  # fields without a CLI flag
REGISTRIES = {"task": TASK_REGISTRY, "method": METHOD_REGISTRY, "tool": TOOL_REGISTRY}


class RunOptions(BaseModel):
    """Everything a run needs; build with `RunOptions(**values)` or `options_from_dict`."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    task: str = Field(
        description="hotpotqa | bamboogle | strategyqa | mmlu | tableqa | arith (or a plug-in task)."
    )
    split: str | None = Field(None, description="Split (default: the task's).")
    data: Path | None = Field(None, description="Your own file in the task's format.")
    subject: str | None = Field(None, description="MMLU subject.")
    start: int = Field(0, ge=0, description="First episode (after shuffling).")
    end: int | None = Field(None, ge=1, description="End episode, exclusive.")
    random: bool = Field(False, description="Shuffle with Random(233) first (the paper).")
    method: str = Field("react", description="react | cot | io | reflexion.")
    format: Literal["fewshot", "alpaca", "chat"] = Field(
        "fewshot", description="fewshot | alpaca | chat."
    )
    prompt: Path | None = Field(None, description="Your own few-shot prompt file.")
    model: str = Field(
        description="openai:MODEL | vllm:PATH_OR_ID[:ADAPTER] | hf:PATH[:ADAPTER] | scripted:FILE."
    )
    base_url: str | None = Field(
        None,
        description="OpenAI-compatible server, e.g. a vLLM server; several, comma-separated: replicas.",
    )
    api: Literal["auto", "chat", "completions"] = Field(
        "auto",
        description="auto | chat | completions: where a text prompt goes (auto: chat, one user "
        "message, unless format alpaca or a completion model).",
    )
    llm_cache: str = Field(
        "auto", description="Model-call cache: auto (on at temperature 0) | none | FILE."
    )
    tool: str = Field(
        "local",
        description="local | serpapi | wikipedia | sql | calculate, or several: sql,calculate.",
    )
    index: Path | None = Field(
        None, description="Local index folder (default: the shipped HotpotQA one)."
    )
    tool_style: Literal["google", "wiki"] | None = Field(
        None, description="google | wiki (default: the tool's own, else google)."
    )
    tool_timeout: float | None = Field(60.0, gt=0, description="Seconds per tool call.")
    noise: Literal["off", "none", "random"] = Field(
        "off", description='Noisy search: off | none (observation "None") | random.'
    )
    noise_p: float = Field(0.5, ge=0.0, le=1.0, description="Probability of a noisy search.")
    cache: str = Field("auto", description="Tool cache: auto | none | FILE.")
    concurrency: int = Field(64, ge=1, description="Episodes in flight.")
    max_steps: int = Field(11, ge=1, description="Step cap per episode.")
    max_reasks: int = Field(5, ge=0, description="Re-asks of an output without an action.")
    max_tokens: int | None = Field(
        None, ge=1, description=f"Tokens per model call (default {FIREACT_MAX_TOKENS}, as FireAct)."
    )
    vllm_dtype: str | None = Field(
        None, description="vllm: backend: the model's dtype (vLLM's --dtype; default auto)."
    )
    vllm_max_model_len: int | None = Field(
        None, ge=1, description="vllm: backend: the longest prompt + output (--max-model-len)."
    )
    vllm_gpu_memory: float | None = Field(
        None,
        gt=0,
        le=1,
        description="vllm: backend: share of GPU memory (--gpu-memory-utilization).",
    )
    vllm_max_lora_rank: int | None = Field(
        None,
        ge=1,
        description="vllm: backend: --max-lora-rank (default: the smallest rank vLLM accepts "
        "that holds the adapter's r, from its adapter_config.json).",
    )
    vllm_args: str | None = Field(
        None,
        description="vllm: backend: extra `vllm serve` arguments, split as a shell does and "
        "added last, e.g. '--enforce-eager --max-num-seqs 128'.",
    )
    hf_compile: Literal["auto", "on", "off"] = Field(
        "auto",
        description="hf: backend: static KV cache + torch.compile (auto: on with CUDA, off on "
        "the CPU, where compiling takes a while).",
    )
    hf_dtype: Literal["bfloat16", "float16", "float32", "bf16", "fp16", "fp32"] | None = Field(
        None,
        description="hf: backend: weights' dtype (bfloat16, float16, float32; default bf16 on "
        "CUDA, fp32 on the CPU).",
    )
    hf_load_in_4bit: bool = Field(
        False, description="hf: backend: load the base model in 4-bit (bitsandbytes; CUDA only)."
    )
    llm_timeout: float = Field(120.0, gt=0, description="Seconds per API request.")
    llm_retries: int = Field(6, ge=0, description="Retries on 429/5xx/timeouts/resets.")
    retry_delay: float = Field(1.0, ge=0, description="First retry backoff in seconds.")
    hedge_after: float | Literal["auto"] | None = Field(
        None,
        description="Hedge requests slower than this: seconds, or auto (the p90 of recent "
        "latencies); default off.",
    )
    temperature: float | None = Field(
        None,
        ge=0.0,
        description=f"Sampling temperature (default: {FIREACT_TEACHER_TEMPERATURE} for prompted "
        "API models, as FireAct; 0 otherwise).",
    )
    out: Path = Field(description="Run folder (episodes.jsonl etc.).")
    resume: bool = Field(False, description="Skip episodes already done.")
    overwrite: bool = Field(False, description="Replace the run.")
    keep: Literal["success", "all"] = Field("success", description="generate: keep success | all.")
    keep_tool_errors: bool = Field(
        False,
        description="generate: also keep episodes whose tool calls failed (dropped by default).",
    )
    reflexion_tries: int = Field(3, ge=1, description="Reflexion tries.")
    seed: int = Field(0, description="Seed (noise).")
    progress: bool | None = Field(
        None, description="A progress bar on stderr (default: when stderr is a terminal)."
    )

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

    @field_validator("task", "method", "tool")
    @classmethod
    def _registered(cls, value: str, info: ValidationInfo) -> str:
        registry = REGISTRIES[info.field_name]
        if info.field_name == "tool" and "," in value:  # tools used together: sql,calculate
            try:
                tool_spec(value)
            except FireactError as err:
                raise ValueError(str(err)) from None
            return value
        if registry.find(value) is None:
            raise ValueError(registry.unknown(value))
        return value

    @field_validator("hedge_after", mode="before")
    @classmethod
    def _hedge_after(cls, value: Any) -> Any:
        if isinstance(value, str) and value != "auto":  # a flag's text: seconds, if a number
            with contextlib.suppress(ValueError):
                value = float(value)
        try:
            return check_hedge_after(value)  # the backend's own rule
        except FireactError:
            raise ValueError("give seconds > 0, or auto") from None

    @field_validator("vllm_args")
    @classmethod
    def _vllm_args(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                shlex.split(value)
            except ValueError as err:  # an unclosed quote
                raise ValueError(f"cannot split it as a shell would ({err})") from None
        return value

    @field_validator("model")
    @classmethod
    def _model_spec(cls, value: str) -> str:
        kind, sep, rest = value.partition(":")
        if not sep or not rest or LLM_REGISTRY.find(kind) is None:
            raise ValueError(f"{value!r}: {spec_help()}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> RunOptions:
        for problem in option_conflicts(self):
            raise ValueError(problem)
        return self

    def tool_setup(self) -> ToolSetup:
        """The tool settings of the run (all `build_tool` reads)."""
        return ToolSetup(
            self.tool, self.index, self.tool_style, self.cache, self.noise, self.noise_p, self.seed
        )


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
    format_problem = method_spec(o.method).format_problem(o.format)
    if format_problem:
        yield format_problem
    if o.end is not None and o.end <= o.start:
        yield f"end {o.end} must be larger than start {o.start}"
    tool = tool_spec(o.tool)
    if tool.style is not None and o.tool_style not in (None, tool.style):
        yield f"tool_style {o.tool_style}: the {o.tool} tool answers in {tool.style} style"
    if "index_dir" not in tool.settings and o.index is not None:
        readers = [t.name for t in TOOL_REGISTRY.specs() if "index_dir" in t.settings]
        yield f"index: only the {' / '.join(readers)} tool reads an index, not {o.tool}"
    if o.prompt is not None and o.format != "fewshot":
        yield "prompt: a few-shot prompt file applies to format fewshot only"
    if o.base_url and not o.model.startswith("openai:"):
        yield "base_url: only the openai:MODEL backend takes a base URL"
    if o.api != "auto" and not o.model.startswith(("openai:", "vllm:")):
        yield f"api {o.api}: only the openai: and vllm: backends have APIs to choose from"
    vllm_set = [n for n in VLLM_FIELDS if getattr(o, n)]
    if vllm_set and not o.model.startswith("vllm:"):
        yield f"{', '.join(vllm_set)}: only the vllm: backend starts a vLLM server"
    elif o.vllm_max_lora_rank and o.model.count(":") < 2:
        yield "vllm_max_lora_rank: only a vllm:MODEL:ADAPTER model serves a LoRA adapter"
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


def check_resume_config(out: Path, options: RunOptions, prompt_sha: str = "") -> None:
    """Resuming with settings that change results (`RESUME_FIELDS`, the prompt text) would mix
    two runs in one file: refuse."""
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


def options_from_dict(values: dict[str, Any]) -> RunOptions:
    """`RunOptions` from a plain dict (CLI flags / YAML); ``None`` values mean the default."""
    return RunOptions(**{k: v for k, v in values.items() if v is not None})

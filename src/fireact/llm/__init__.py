"""Language-model backends behind one `LLM` protocol, and `load_llm` to pick one by spec.

Specs: `openai:MODEL` (any OpenAI-compatible endpoint; options such as base_url, api_key,
max_concurrency), `hf:PATH[:ADAPTER]` (transformers in-process, optional PEFT adapter),
`scripted:FILE` (replays outputs from a JSON/JSONL file). Backends import their heavy
dependencies (openai, torch, transformers) only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fireact.errors import FireactError
from fireact.llm.base import LLM, Completion, LLMError, Prompt, ScriptExhaustedError, cut_at_stop

if TYPE_CHECKING:
    from fireact.llm.hf import HFLLM
    from fireact.llm.openai_backend import OpenAILLM
    from fireact.llm.scripted import ScriptedLLM

__all__ = [
    "LLM",
    "Completion",
    "HFLLM",
    "LLMError",
    "OpenAILLM",
    "Prompt",
    "ScriptExhaustedError",
    "ScriptedLLM",
    "cut_at_stop",
    "load_llm",
]

_LAZY = {
    "OpenAILLM": "fireact.llm.openai_backend",
    "HFLLM": "fireact.llm.hf",
    "ScriptedLLM": "fireact.llm.scripted",
}
SPEC_HELP = "use openai:MODEL, hf:PATH[:ADAPTER] or scripted:FILE"


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fireact.llm' has no attribute {name!r}")


def load_llm(spec: str, **options: Any) -> LLM:
    """Build the backend named by `spec`; `options` go to its constructor."""
    kind, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise FireactError(f"bad model spec {spec!r}: {SPEC_HELP}")
    if kind == "openai":
        from fireact.llm.openai_backend import OpenAILLM

        return _build(OpenAILLM, spec, rest, **options)
    if kind == "hf":
        from fireact.llm.hf import HFLLM
        from fireact.llm.zoo import download_hint_on_failure, resolve_hf

        path, adapter = resolve_hf(rest)  # hf:fireact/NAME -> FireAct's base model + adapter
        with download_hint_on_failure(rest):
            return _build(HFLLM, spec, path, adapter=adapter, **options)
    if kind == "scripted":
        from fireact.llm.scripted import ScriptedLLM

        if options:
            raise FireactError(f"{spec}: the scripted backend takes no options ({sorted(options)})")
        return ScriptedLLM.from_file(rest)
    raise FireactError(f"unknown model backend {kind!r} in {spec!r}: {SPEC_HELP}")


def _build(cls: Any, spec: str, *args: Any, **options: Any) -> LLM:
    try:
        return cls(*args, **options)
    except TypeError as exc:
        if "unexpected keyword argument" in str(exc):
            raise FireactError(f"{spec}: {exc}; see {cls.__name__}'s options") from None
        raise

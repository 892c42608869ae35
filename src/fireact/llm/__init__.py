"""Language-model backends behind one `LLM` protocol, their registry, and `load_llm` by spec.

Owns `LLMSpec` (a backend as the registry knows it: its spec prefix, factory and syntax),
`LLM_REGISTRY` and `load_llm`. Built in: `openai:MODEL` (any OpenAI-compatible endpoint; options
such as base_url, api_key, max_concurrency), `hf:PATH[:ADAPTER]` (transformers in-process,
optional PEFT adapter; `hf:fireact/NAME` names a published FireAct model, see `zoo.py`),
`scripted:FILE` (replays outputs from a JSON/JSONL file). Backends import their heavy
dependencies (openai, torch, transformers) only when built. A plug-in package adds a backend
with an entry point in the group ``fireact.llms`` (docs/extending.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fireact.errors import FireactError
from fireact.llm.base import LLM, Completion, LLMError, Prompt, ScriptExhaustedError, cut_at_stop
from fireact.registry import GROUPS, Registry, resolve

if TYPE_CHECKING:
    from fireact.llm.hf import HFLLM
    from fireact.llm.openai_backend import OpenAILLM
    from fireact.llm.scripted import ScriptedLLM

__all__ = [
    "LLM",
    "LLM_REGISTRY",
    "Completion",
    "HFLLM",
    "LLMError",
    "LLMSpec",
    "OpenAILLM",
    "Prompt",
    "ScriptExhaustedError",
    "ScriptedLLM",
    "cut_at_stop",
    "llm_spec",
    "load_llm",
    "spec_help",
]

_LAZY = {
    "OpenAILLM": "fireact.llm.openai_backend",
    "HFLLM": "fireact.llm.hf",
    "ScriptedLLM": "fireact.llm.scripted",
}


def __getattr__(name: str) -> Any:
    if name == "SPEC_HELP":  # the constant it was before backends could be plug-ins
        return spec_help()
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fireact.llm' has no attribute {name!r}")


Factory = Callable[..., LLM]  # factory(spec, target, **options): spec "hf:x:y" has target "x:y"


@dataclass(frozen=True)
class LLMSpec:
    """A backend: ``--model PREFIX:TARGET`` builds ``factory(spec, TARGET, **options)``; a
    ``"module:attr"`` factory is imported on the first build."""

    prefix: str  # e.g. openai
    factory: Factory | str
    syntax: str  # how its specs are written, for help and errors: e.g. hf:PATH[:ADAPTER]
    summary: str = ""  # one line for listings and docs

    REQUIRED = ("prefix", "factory", "syntax")

    def problems(self) -> Iterator[str]:
        """What is wrong with the spec (the registry refuses it with these)."""
        if not (callable(self.factory) or (isinstance(self.factory, str) and ":" in self.factory)):
            yield "factory must be a function or class, or a 'module:attr' string"
        if not self.syntax.startswith(f"{self.prefix}:"):
            yield f"syntax {self.syntax!r} must start with '{self.prefix}:'"

    def build(self, spec: str, target: str, **options: Any) -> LLM:
        """The backend for `spec` (whose part after the prefix is `target`)."""
        factory = resolve(self.factory) if isinstance(self.factory, str) else self.factory
        return factory(spec, target, **options)


def _build(cls: Any, spec: str, *args: Any, **options: Any) -> LLM:
    try:
        return cls(*args, **options)
    except TypeError as exc:
        if "unexpected keyword argument" in str(exc):
            raise FireactError(f"{spec}: {exc}; see {cls.__name__}'s options") from None
        raise


def _openai(spec: str, target: str, **options: Any) -> LLM:
    if "," in str(options.get("base_url") or ""):  # several servers of one model: replicas
        from fireact.llm.replicas import ReplicatedLLM

        urls = str(options.pop("base_url")).split(",")
        return _build(ReplicatedLLM, spec, target, urls, **options)
    from fireact.llm.openai_backend import OpenAILLM

    return _build(OpenAILLM, spec, target, **options)


def _hf(spec: str, target: str, **options: Any) -> LLM:
    from fireact.llm.hf import HFLLM
    from fireact.llm.zoo import check_hub_repos, download_hint_on_failure, resolve_hf

    path, adapter = resolve_hf(target)  # hf:fireact/NAME -> FireAct's base model + adapter
    with download_hint_on_failure(target):
        check_hub_repos(target, (path, adapter))  # not cached and no hub: one line, at once
        return _build(HFLLM, spec, path, adapter=adapter, **options)


def _vllm(spec: str, target: str, **options: Any) -> LLM:
    from fireact.llm.vllm import VLLMLLM

    model, _, adapter = target.partition(":")
    return _build(VLLMLLM, spec, model, adapter or None, **options)


def _scripted(spec: str, target: str, **options: Any) -> LLM:
    from fireact.llm.scripted import ScriptedLLM

    if options:
        raise FireactError(f"{spec}: the scripted backend takes no options ({sorted(options)})")
    return ScriptedLLM.from_file(target)


BUILT_IN = (
    LLMSpec("openai", _openai, "openai:MODEL", "any OpenAI-compatible server (OpenAI, vLLM)"),
    LLMSpec("vllm", _vllm, "vllm:PATH_OR_ID[:ADAPTER]", "a vLLM server started for the run (GPU)"),
    LLMSpec("hf", _hf, "hf:PATH[:ADAPTER]", "transformers in-process, optional PEFT adapter"),
    LLMSpec("scripted", _scripted, "scripted:FILE", "replays outputs from a JSON/JSONL file"),
)
LLM_REGISTRY: Registry[LLMSpec] = Registry(
    "model backend",
    GROUPS["llm"],
    spec_type=LLMSpec,
    required=LLMSpec.REQUIRED,
    key="prefix",
    built_in=BUILT_IN,
)


def spec_help() -> str:
    """How model specs are written, e.g. "use openai:MODEL, hf:PATH[:ADAPTER] or scripted:FILE"."""
    *first, last = [spec.syntax for spec in LLM_REGISTRY.specs()]
    return f"use {', '.join(first)} or {last}" if first else f"use {last}"


def llm_spec(prefix: str) -> LLMSpec:
    """The backend of a spec prefix; unknown: a `FireactError` listing the prefixes."""
    return LLM_REGISTRY.get(prefix)


def load_llm(spec: str, **options: Any) -> LLM:
    """Build the backend named by `spec`; `options` go to its constructor."""
    kind, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise FireactError(f"bad model spec {spec!r}: {spec_help()}")
    backend = LLM_REGISTRY.find(kind)
    if backend is None:
        raise FireactError(f"unknown model backend {kind!r} in {spec!r}: {spec_help()}")
    return backend.build(spec, rest, **options)

"""FireAct's published models (the "Model Zoo" of FireAct's README) and the `hf:fireact/NAME` specs.

Owns the table of the six models (name, base model, training method, Hugging Face repos), the
resolver that turns ``hf:fireact/NAME`` (or ``hf:forestai/fireact_...``) into base model +
adapter, and the one-line message that says what to download when the weights are not in the
Hugging Face cache and cannot be fetched (``HF_HUB_OFFLINE`` is set, or the download failed).

Base models: the indexed FireAct model cards tag the adapters PEFT / llama-2 but name no base
model, so the bases here are an assumption: the plain (non-chat) checkpoints
``meta-llama/Llama-2-{7,13}b-hf`` and ``codellama/CodeLlama-{7,13,34}b-hf``. Note that FireAct's
own README hints at the chat models instead: its LoRA fine-tuning example starts from
``meta-llama/Llama-2-13b-chat-hf`` and its inference example loads
``forestai/fireact_llama_2_7b_lora`` on ``meta-llama/Llama-2-7b-chat``. The adapter's own
``adapter_config.json`` (``base_model_name_or_path``) settles it once downloaded; to use another
base, pass it explicitly:
``--model hf:meta-llama/Llama-2-7b-chat-hf:forestai/fireact_llama_2_7b_lora``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from fireact.errors import FireactError

PREFIX = "fireact/"
WEIGHTS = ("*.safetensors", "*.bin", "*.pt", "*.pth", "*.gguf")
_TRUE = {"1", "on", "yes", "true"}


@dataclass(frozen=True)
class ZooModel:
    """One published FireAct model: ``repo`` is the adapter (LoRA) or the whole model (full)."""

    name: str  # the name after fireact/, e.g. llama-2-7b-lora
    base: str  # the base model as FireAct's README names it
    method: str  # LoRA or full
    repo: str  # its Hugging Face repo
    base_repo: str | None  # the base model's repo, for an adapter

    @property
    def spec(self) -> str:
        """The explicit model spec: ``hf:BASE:ADAPTER`` or ``hf:REPO``."""
        return f"hf:{self.base_repo}:{self.repo}" if self.base_repo else f"hf:{self.repo}"

    @property
    def repos(self) -> tuple[str, ...]:
        """Every repo it needs, base first."""
        return (self.base_repo, self.repo) if self.base_repo else (self.repo,)


ZOO: dict[str, ZooModel] = {
    m.name: m
    for m in (
        ZooModel(
            "llama-2-7b-lora",
            "Llama2-7B",
            "LoRA",
            "forestai/fireact_llama_2_7b_lora",
            "meta-llama/Llama-2-7b-hf",
        ),
        ZooModel(
            "llama-2-13b-lora",
            "Llama2-13B",
            "LoRA",
            "forestai/fireact_llama_2_13b_lora",
            "meta-llama/Llama-2-13b-hf",
        ),
        ZooModel(
            "codellama-7b-lora",
            "CodeLlama-7B",
            "LoRA",
            "forestai/fireact_codellama_7b_lora",
            "codellama/CodeLlama-7b-hf",
        ),
        ZooModel(
            "codellama-13b-lora",
            "CodeLlama-13B",
            "LoRA",
            "forestai/fireact_codellama_13b_lora",
            "codellama/CodeLlama-13b-hf",
        ),
        ZooModel(
            "codellama-34b-lora",
            "CodeLlama-34B",
            "LoRA",
            "forestai/fireact_codellama_34b_lora",
            "codellama/CodeLlama-34b-hf",
        ),
        ZooModel("llama-2-7b", "Llama2-7B", "full", "forestai/fireact_llama_2_7b", None),
    )
}
_BY_REPO = {m.repo: m for m in ZOO.values()}


def find(path: str) -> ZooModel | None:
    """The zoo model ``path`` names (``fireact/NAME`` or its forestai repo), else None.

    A local folder that happens to be called ``fireact/...`` is not a zoo name.
    """
    if path.startswith(PREFIX) and not Path(path).expanduser().exists():
        name = path.removeprefix(PREFIX)
        if name not in ZOO:
            raise FireactError(
                f"unknown FireAct model {path!r}: choose one of "
                f"{', '.join(PREFIX + n for n in ZOO)} (see `fireact models`)"
            )
        return ZOO[name]
    return _BY_REPO.get(path)


def resolve_hf(rest: str) -> tuple[str, str | None]:
    """``PATH[:ADAPTER]`` of an ``hf:`` spec → (model, adapter), zoo names expanded.

    Raises the one-line download hint when a zoo model's weights are not cached and the hub is
    switched off (``HF_HUB_OFFLINE``).
    """
    path, _, adapter = rest.partition(":")
    model = find(path)
    if model is None or model.repo == path and not model.base_repo:
        return path, adapter or None
    if adapter:
        raise FireactError(
            f"hf:{rest}: {path} already names its adapter; use hf:BASE:ADAPTER for another one"
        )
    if hub_offline() and missing(model):
        raise FireactError(download_hint(model, "HF_HUB_OFFLINE is set"))
    return model.base_repo or model.repo, model.repo if model.base_repo else None


@contextlib.contextmanager
def download_hint_on_failure(rest: str) -> Iterator[None]:
    """Turn a failed load of a zoo model whose weights are not cached into the download hint."""
    try:
        yield
    except FireactError as err:
        model = find(rest.partition(":")[0])
        if model is None or not missing(model):
            raise
        raise FireactError(download_hint(model, "the download failed")) from err


def hub_offline() -> bool:
    """Whether Hugging Face downloads are switched off (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE)."""
    return any(
        os.environ.get(name, "").strip().lower() in _TRUE
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def hub_cache() -> Path:
    """The Hugging Face hub cache folder, read from the environment now (not at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "huggingface"
    )
    return Path(home).expanduser() / "hub"


def cached(repo: str) -> bool:
    """Whether a snapshot of ``repo`` with weight files is in the Hugging Face cache."""
    snapshots = hub_cache() / f"models--{repo.replace('/', '--')}" / "snapshots"
    if not snapshots.is_dir():
        return False
    return any(
        next(snapshot.glob(pattern), None) is not None
        for snapshot in snapshots.iterdir()
        for pattern in WEIGHTS
    )


def hub_unreachable() -> str | None:
    """Why the Hugging Face hub (``HF_ENDPOINT``) cannot be reached now, or None if it answers:
    one HEAD request through huggingface_hub's own session, no retries."""
    import importlib

    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    session = get_session()  # an httpx (httpx2) client: its connection and timeout errors
    client = importlib.import_module(type(session).__module__.split(".")[0])
    try:
        session.head(constants.ENDPOINT, timeout=constants.HF_HUB_ETAG_TIMEOUT)
    except (getattr(client, "TransportError", OSError), OSError) as err:
        return f"{constants.ENDPOINT} cannot be reached ({first_line(err)})"
    return None


def hub_unavailable() -> str | None:
    """Why nothing can be downloaded now (``HF_HUB_OFFLINE`` set, or the hub unreachable), or
    None when the hub answers."""
    return "HF_HUB_OFFLINE is set" if hub_offline() else hub_unreachable()


def first_line(err: BaseException) -> str:
    """An error's first line (its type's name if it has no text)."""
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def check_hub_repos(target: str, repos: Sequence[str | None]) -> None:
    """An ``hf:`` model or adapter named by a hub id that is not in the Hugging Face cache needs
    the hub: with ``HF_HUB_OFFLINE`` set or the hub unreachable, one line saying how to supply
    it, at once instead of huggingface_hub's minute of retries. Local folders pass."""
    from fireact.llm.hf_load import is_hub_id

    needed = [r for r in repos if r and is_hub_id(r) and not cached(r)]
    if not needed:
        return
    why = hub_unavailable()
    if why:
        commands = " and ".join(f"`hf download {repo}`" for repo in needed)
        raise FireactError(
            f"hf:{target}: {' and '.join(needed)} not in the Hugging Face cache ({hub_cache()}) "
            f"and {why}: run {commands} where the hub is reachable, or pass --model "
            "hf:/path/to/a/local/folder"
        )


def missing(model: ZooModel) -> list[str]:
    """The repos of ``model`` whose weights are not in the cache."""
    return [repo for repo in model.repos if not cached(repo)]


def download_hint(model: ZooModel, why: str) -> str:
    """One line: what ``model`` needs, how to download it, how to pass local copies instead."""
    todo = missing(model) or list(model.repos)
    commands = " and ".join(f"`hf download {repo}`" for repo in todo)
    gated = (
        " (meta-llama repos need their licence accepted and HF_TOKEN)"
        if any(repo.startswith("meta-llama/") for repo in todo)
        else ""
    )
    local = "hf:/path/to/base:/path/to/adapter" if model.base_repo else "hf:/path/to/model"
    return (
        f"{PREFIX}{model.name} needs {' and '.join(model.repos)}, not in the Hugging Face cache "
        f"({hub_cache()}) and {why}: run {commands} online{gated}, or pass --model {local}"
    )


def zoo_lines() -> list[str]:
    """`fireact models`: one aligned row per model, then how to use one."""
    rows = [("model", "base", "method", "hub id", "base hub id")]
    rows += [(PREFIX + m.name, m.base, m.method, m.repo, m.base_repo or "-") for m in ZOO.values()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    return [
        *lines,
        "run one with --model hf:fireact/NAME (the base model and the adapter come from the "
        "Hugging Face hub on first use)",
    ]


__all__ = ["ZOO", "ZooModel", "download_hint", "find", "resolve_hf", "zoo_lines"]

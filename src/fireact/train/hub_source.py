"""Where `fireact train` gets a model or tokenizer named by a Hugging Face hub id: whether the
hub cache holds it, whether the hub can be reached (`fireact.llm.zoo.hub_unreachable`: one
request, no retries), and the one-line error saying how to supply one that cannot be fetched
(`hf download`, or a local folder)."""

from __future__ import annotations

from pathlib import Path

from fireact.errors import FireactError
from fireact.llm.zoo import cached, first_line, hub_cache, hub_unavailable
from fireact.train.config import SFTConfig


def hub_sources(config: SFTConfig) -> list[tuple[str, str]]:
    """(config key, hub id) of the model and tokenizer that come from the Hugging Face hub."""
    sources = [("model", config.model), ("tokenizer", config.tokenizer)]
    return [(k, n) for k, n in sources if isinstance(n, str) and not Path(n).expanduser().exists()]


def check_hub_source(name: str, key: str) -> None:
    """A hub id missing from the Hugging Face cache needs the hub: with ``HF_HUB_OFFLINE`` set,
    or the hub unreachable (one request, no retries), a one-line `FireactError` saying how to
    supply it. Cached or reachable: nothing (the online case costs one HEAD request)."""
    if not in_cache(name, key):
        why = hub_unavailable()
        if why:
            raise FireactError(hub_hint(name, key, why))


def in_cache(name: str, key: str) -> bool:
    """Whether the Hugging Face cache holds hub id `name`'s weights (a model) or tokenizer."""
    if key == "model":
        return cached(name)
    snapshots = hub_cache() / f"models--{name.replace('/', '--')}" / "snapshots"
    return any(snapshots.glob("*/tokenizer_config.json"))


def hub_hint(name: str, key: str, why: str) -> str:
    """One line: `name` is not in the cache, why it cannot be fetched, how to supply it."""
    licence = " (accept its licence and set HF_TOKEN)" if name.startswith("meta-llama/") else ""
    return (
        f"{key}: cannot load {name!r}: not in the Hugging Face cache ({hub_cache()}) and {why}: "
        f"run `hf download {name}` where the hub is reachable{licence}, or pass --{key} "
        "/path/to/a/local/folder"
    )


def load_failure(name: str, key: str, err: BaseException, what: str = "") -> str:
    """The one line for a failed load: a hub id missing from the cache gets `hub_hint`."""
    reason = first_line(err)
    if Path(name).expanduser().exists() or in_cache(name, key):
        return f"{what or key}: cannot load {name!r}: {reason}"
    return hub_hint(name, key, f"the download failed ({reason})")

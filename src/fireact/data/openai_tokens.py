"""Counting the tokens of an OpenAI chat fine-tuning example, and each model's limit per example.

Owns the token rule `fireact.data.check` applies: tiktoken when it is installed (and its encoding
loads offline), else an estimate of ``ceil(characters / 4)`` per string; each message adds 3 (and
a ``name`` 1), each example 3 — the rule of OpenAI's data-preparation cookbook. `token_limit` is
the model's training-example limit from OpenAI's fine-tuning guide (`TRAINING_TOKENS`).
"""

from __future__ import annotations

import functools
import json
import math
from typing import Any

# Tokens allowed in one training example, by model (OpenAI's fine-tuning guide); a model name
# matches the longest entry it starts with, after dropping ``ft:`` and any ``:org:...`` tail.
TRAINING_TOKENS = {
    "gpt-3.5-turbo": 16_385,
    "gpt-3.5-turbo-0613": 4_096,
    "gpt-3.5-turbo-1106": 16_385,
    "gpt-3.5-turbo-0125": 16_385,
    "gpt-4-0613": 8_192,
    "gpt-4o-mini": 65_536,
    "gpt-4o": 65_536,
    "gpt-4.1": 65_536,
}


@functools.lru_cache(maxsize=4)
def _encoder(model: str) -> Any | None:
    try:
        import tiktoken

        name = "o200k_base" if _base_model(model).startswith(("gpt-4o", "gpt-4.1")) else None
        return tiktoken.get_encoding(name or "cl100k_base")
    except Exception:  # noqa: BLE001 - not installed, or its encoding cannot be loaded offline
        return None


def token_rule(model: str) -> str:
    encoder = _encoder(model)
    return f"tiktoken {encoder.name}" if encoder is not None else "estimated as characters/4"


def count_tokens(text: str, model: str = "gpt-3.5-turbo") -> int:
    """Tokens of one string: tiktoken when available, else ``ceil(len(text) / 4)``."""
    encoder = _encoder(model)
    if encoder is not None:
        return len(encoder.encode(text, disallowed_special=()))
    return math.ceil(len(text) / 4)


def example_tokens(example: dict[str, Any], model: str = "gpt-3.5-turbo") -> int:
    """Tokens of one chat example: 3 per message (+1 for a name) + its strings, + 3."""
    total = 3
    for message in example.get("messages") or []:
        if not isinstance(message, dict):
            continue
        total += 3
        for key, value in message.items():
            if isinstance(value, str):
                total += count_tokens(value, model) + (1 if key == "name" else 0)
            elif key in ("content", "tool_calls", "function_call") and value is not None:
                total += count_tokens(json.dumps(value), model)
    for key in ("tools", "functions"):
        if example.get(key):
            total += count_tokens(json.dumps(example[key]), model)
    return total


def _base_model(model: str) -> str:
    if model.startswith("ft:"):
        model = model[3:]
    return model.split(":")[0]


def token_limit(model: str) -> int | None:
    """The model's per-example training token limit, or None for a model not in the table."""
    base = _base_model(model)
    matches = [name for name in TRAINING_TOKENS if base.startswith(name)]
    return TRAINING_TOKENS[max(matches, key=len)] if matches else None

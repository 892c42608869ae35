"""Prices of hosted models, in USD per 1M tokens, and the cost of one call.

The built-in table holds OpenAI's list prices for the models the FireAct paper used (and a few
neighbours). Fine-tuned models (`ft:BASE:org:suffix:id`) are priced as fine-tuned usage of BASE.
A dated snapshot (`gpt-4o-mini-2024-07-18`) falls back to its undated name. Users extend or
override the table with a dict or a YAML/JSON file mapping model -> {input: X, output: Y} (or
[X, Y]). A model that is not in the table costs 0; its tokens are still counted by the caller.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fireact.errors import FireactError


@dataclass(frozen=True, slots=True)
class Price:
    """USD per 1M input (prompt) tokens and per 1M output (completion) tokens."""

    input: float
    output: float


DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4": Price(30.0, 60.0),
    "gpt-4-0613": Price(30.0, 60.0),
    "gpt-3.5-turbo": Price(0.50, 1.50),
    "gpt-3.5-turbo-0125": Price(0.50, 1.50),
    "gpt-3.5-turbo-1106": Price(1.00, 2.00),
    "gpt-3.5-turbo-0613": Price(1.50, 2.00),
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4o": Price(2.50, 10.00),
    # Fine-tuned usage (inference on a fine-tuned model).
    "ft:gpt-3.5-turbo": Price(3.00, 6.00),
    "ft:gpt-4o-mini": Price(0.30, 1.20),
}

_SNAPSHOT = re.compile(r"-(\d{4}|\d{4}-\d{2}-\d{2})$")


def parse_prices(raw: Mapping[str, Any], source: str = "prices") -> dict[str, Price]:
    """Validate a mapping model -> {input, output} | [input, output] | Price."""
    table: dict[str, Price] = {}
    for model, value in raw.items():
        if isinstance(value, Price):
            table[model] = value
        elif isinstance(value, Mapping) and {"input", "output"} <= value.keys():
            table[model] = Price(float(value["input"]), float(value["output"]))
        elif isinstance(value, list | tuple) and len(value) == 2:
            table[model] = Price(float(value[0]), float(value[1]))
        else:
            raise FireactError(
                f"{source}: price of {model!r} must be {{input: X, output: Y}} in USD per 1M "
                f"tokens, got {value!r}"
            )
    return table


def load_prices(path: str | Path) -> dict[str, Price]:
    """Read a YAML or JSON price file (model -> {input, output}, USD per 1M tokens)."""
    path = Path(path)
    if not path.is_file():
        raise FireactError(f"price file {path} does not exist: give a YAML or JSON file")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        raw = json.loads(text)
    else:
        import yaml

        raw = yaml.safe_load(text)
    if not isinstance(raw, Mapping):
        raise FireactError(f"price file {path} must map model names to prices")
    return parse_prices(raw, str(path))


def price_table(extra: Mapping[str, Any] | str | Path | None = None) -> dict[str, Price]:
    """The default table updated with `extra` (a mapping or a price file path)."""
    table = dict(DEFAULT_PRICES)
    if isinstance(extra, str | Path):
        table.update(load_prices(extra))
    elif extra:
        table.update(parse_prices(extra))
    return table


def lookup_price(model: str, table: Mapping[str, Price]) -> Price | None:
    """The price of `model`: exact name, fine-tuned base, or undated snapshot; else None."""
    if model in table:
        return table[model]
    if model.startswith("ft:"):
        base = model[3:].split(":", 1)[0]
        for name in (f"ft:{base}", f"ft:{_SNAPSHOT.sub('', base)}"):
            if name in table:
                return table[name]
        return None
    undated = _SNAPSHOT.sub("", model)
    return table.get(undated) if undated != model else None


def cost_usd(
    model: str, prompt_tokens: int, completion_tokens: int, table: Mapping[str, Price]
) -> float:
    """Cost of one call in USD (0 for models without a price)."""
    price = lookup_price(model, table)
    if price is None:
        return 0.0
    return (prompt_tokens * price.input + completion_tokens * price.output) / 1_000_000

"""``--key value`` overrides on top of a YAML file: the one parser for configs and recipes.

Owns turning the extra arguments of `fireact train CONFIG.yaml ...` and `fireact run
RECIPE.yaml ...` into ``(key, value)`` pairs. Keys lose their leading ``--`` and spell ``-`` as
``_`` (``--noise-p`` is ``noise_p``); ``--key=value`` works too; each value is read as a YAML
scalar or flow collection (``--packing false`` → False, ``--lr 1e-4`` → 1e-4,
``--lora.target_modules [q_proj,k_proj]`` → a list). A malformed value or a key with no value is
one `FireactError` naming the option.

`WordsLoader` is YAML with only ``true`` / ``false`` as booleans (as in YAML 1.2): for settings
whose values are words, where YAML 1.1 would read ``off``, ``no`` or ``on`` as booleans
(``noise: off``). Run recipes use it for the file and its overrides; the validator (pydantic)
still turns ``yes``/``no``/``on``/``off`` into booleans for the boolean settings.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Container
from typing import Any

import yaml

from fireact.errors import FireactError


class WordsLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` whose only booleans are true / false (any case), as in YAML 1.2."""


WordsLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
WordsLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def parse_overrides(
    args: list[str],
    *,
    loader: type[yaml.SafeLoader] = yaml.SafeLoader,
    flags: Container[str] = (),
) -> list[tuple[str, Any]]:
    """``["--lr", "1e-4", "--packing=false"]`` → ``[("lr", 1e-4), ("packing", False)]``.

    Values are parsed as YAML with `loader`. A key in `flags` may stand alone (``--resume``,
    true), when it is the last argument or the next one starts with ``--``.
    """
    pairs: list[tuple[str, Any]] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) == 2:
            raise FireactError(f"override {arg!r}: expected --key value")
        key, eq, value = arg[2:].partition("=")
        name = key.replace("-", "_")
        if not eq:
            if name in flags and (i + 1 >= len(args) or args[i + 1].startswith("--")):
                pairs.append((name, True))
                i += 1
                continue
            if i + 1 >= len(args):
                raise FireactError(f"override --{key}: missing its value")
            i += 1
            value = args[i]
        pairs.append((name, yaml_value(key, value, loader)))
        i += 1
    return pairs


def yaml_value(key: str, text: str, loader: type[yaml.SafeLoader] = yaml.SafeLoader) -> Any:
    """The value of ``--key text`` read as YAML (blank text stays as it is)."""
    try:
        return yaml.load(text, Loader=loader) if text.strip() else text
    except yaml.YAMLError:
        raise FireactError(f"override --{key}: cannot parse value {shlex.quote(text)}") from None


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """``data[a][b] = value`` for the key ``a.b``, creating sections as needed."""
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise FireactError(f"override --{key}: {part} is not a section")
        node = child
    node[parts[-1]] = value

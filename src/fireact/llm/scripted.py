"""The `scripted` backend: replays given outputs per episode, for tests and dry runs.

Built from a mapping `key -> list of outputs` (or read from a file), `complete(..., key=K)`
returns K's next output, cut at the first stop string and at `max_tokens`. When K's outputs are
used up it raises `ScriptExhaustedError`. Calls take no time and cost nothing; token counts are
whitespace-separated words (prompt: the prompt string, or all message contents joined).

File formats: a JSON object `{"key": ["output 1", "output 2"], ...}`, or JSONL with one
`{"key": ..., "outputs": [...]}` per line (`"id"` is accepted for `"key"`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from fireact.errors import FireactError
from fireact.files import jsonl_records
from fireact.llm.base import (
    Completion,
    LLMError,
    Prompt,
    ScriptExhaustedError,
    cut_at_stop,
    prompt_text,
    truncate_words,
    whitespace_tokens,
)


class ScriptedLLM:
    """Replays `outputs[key]` one call at a time; `key=None` works when there is one script."""

    def __init__(self, outputs: Mapping[str, Sequence[str]], *, name: str = "scripted") -> None:
        self.name = name
        self.outputs = {str(k): [v] if isinstance(v, str) else list(v) for k, v in outputs.items()}
        self.used: dict[str, int] = dict.fromkeys(self.outputs, 0)
        self.calls = 0

    @classmethod
    def from_file(cls, path: str | Path) -> ScriptedLLM:
        """Load a JSON mapping or a JSONL file of {"key", "outputs"} lines."""
        return cls(load_script(path), name=f"scripted:{path}")

    def remaining(self, key: str) -> int:
        """How many outputs `key` still has."""
        return len(self.outputs.get(key, [])) - self.used.get(key, 0)

    async def complete(
        self,
        prompt: Prompt,
        *,
        stop: list[str] | None = None,
        max_tokens: int = 256,
        temperature: float = 0.0,
        key: str | None = None,
    ) -> Completion:
        """The next output for `key`, cut at `stop` and `max_tokens` (whitespace tokens)."""
        key = self._resolve_key(key)
        n = self.used[key]
        if n >= len(self.outputs[key]):
            raise ScriptExhaustedError(
                f"{self.name}: the script for {key!r} is exhausted after {n} outputs"
            )
        self.used[key] = n + 1
        self.calls += 1
        text, stopped = cut_at_stop(self.outputs[key][n], stop)
        text, cut = truncate_words(text, max_tokens)
        return Completion(
            text=text,
            prompt_tokens=whitespace_tokens(prompt_text(prompt)),
            completion_tokens=whitespace_tokens(text),
            finish_reason="length" if cut and not stopped else "stop",
        )

    def _resolve_key(self, key: str | None) -> str:
        if key is None:
            if len(self.outputs) != 1:
                raise LLMError(f"{self.name}: pass key= (the episode id); it has several scripts")
            return next(iter(self.outputs))
        if key not in self.outputs:
            raise LLMError(f"{self.name}: no script for key {key!r}")
        return key

    async def aclose(self) -> None:
        """Nothing to release."""


def load_script(path: str | Path) -> dict[str, list[str]]:
    """Read a script file (JSON mapping or JSONL of {"key"|"id", "outputs"})."""
    path = Path(path)
    if not path.is_file():
        raise FireactError(f"script file {path} does not exist: give a JSON or JSONL file")
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".jsonl":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FireactError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
        if not isinstance(data, dict):
            raise FireactError(f"{path}: expected an object mapping keys to lists of outputs")
        return {str(k): _outputs(v, f"{path}: key {k!r}") for k, v in data.items()}
    return _load_jsonl(path, text)


def _load_jsonl(path: Path, text: str) -> dict[str, list[str]]:
    script: dict[str, list[str]] = {}
    # a script is written by hand, never cut short by a killed run: no such hint for its end
    for lineno, row in jsonl_records(path, text if text.endswith("\n") else text + "\n"):
        where = f"{path}:{lineno}"
        key = row.get("key", row.get("id")) if isinstance(row, dict) else None
        if key is None:
            raise FireactError(f'{where}: expected {{"key": ..., "outputs": [...]}}')
        script[str(key)] = _outputs(row.get("outputs"), where)
    return script


def _outputs(value: object, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise FireactError(f"{where}: outputs must be a list of strings")

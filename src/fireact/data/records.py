"""The fields of an episode record as convert reads them, each checked with a one-line error.

Owns where an episode came from (`Source`: a file and a line, or an entry of a FireAct
trajectory JSON), its text fields (`require_text`), its success (`is_success`, `maybe_success`)
and a Reflexion episode's earlier tries (`reflexion_tries`); `json_kind` names a JSON value's type
in those errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fireact.errors import FireactError


@dataclass(frozen=True)
class Source:
    """Where an episode came from, for error messages: a file and a line (or an entry id)."""

    path: Path
    where: str  # "12" (a line) or "entry 6238"

    def __str__(self) -> str:
        return (
            f"{self.path}:{self.where}" if self.where.isdigit() else f"{self.path} ({self.where})"
        )


def json_kind(value: Any) -> str:
    """The type of a JSON value as an error names it (``null`` for None)."""
    return "null" if value is None else type(value).__name__


def require_text(source: Source, record: Any, field: str) -> str:
    """The string field `field` of an episode record, or an error naming the spot."""
    if not isinstance(record, dict):
        raise FireactError(
            f"{source}: expected a JSON object (an episode), got {json_kind(record)}"
        )
    if field not in record:
        raise FireactError(f"{source}: episode has no {field!r} field")
    value = record[field]
    if not isinstance(value, str):
        raise FireactError(f"{source}: field {field!r} must be a string, got {json_kind(value)}")
    return value


def is_success(source: Source, record: dict[str, Any]) -> bool:
    """Reward 1: ``em`` true (or, without ``em``, ``reward`` true / 1)."""
    for field in ("em", "reward"):
        if field in record:
            value = record[field]
            if isinstance(value, bool | int | float) and not isinstance(value, str):
                return bool(value)
            raise FireactError(
                f"{source}: field {field!r} must be true/false or 0/1, got {value!r}"
            )
    raise FireactError(
        f"{source}: episode has no 'em' or 'reward' field (needed to keep successes;"
        " use keep='all' to keep every episode)"
    )


def maybe_success(record: dict[str, Any]) -> bool:
    """`is_success` without the errors (``keep="all"``): a missing or odd value is a failure."""
    value = record.get("em", record.get("reward", False))
    return bool(value) if isinstance(value, bool | int | float) else False


def reflexion_tries(source: Source, record: dict[str, Any]) -> list[tuple[str, str]]:
    """(trajectory, reflection written after it) of each earlier try of a Reflexion episode.

    The reflection is the attempt's ``reflection``, else the matching ``reflections`` entry.
    """
    attempts = record.get("attempts") or []
    reflections = record.get("reflections") or []
    if not isinstance(attempts, list) or not isinstance(reflections, list):
        raise FireactError(f"{source}: fields 'attempts' and 'reflections' must be lists")
    tries: list[tuple[str, str]] = []
    for i, attempt in enumerate(attempts):
        if not isinstance(attempt, dict) or not isinstance(attempt.get("trajectory"), str):
            raise FireactError(
                f"{source}: attempts[{i}] must be an object with a 'trajectory' text"
            )
        reflection = attempt.get("reflection", reflections[i] if i < len(reflections) else "")
        if not isinstance(reflection, str):
            raise FireactError(f"{source}: attempts[{i}]: 'reflection' must be a string")
        tries.append((attempt["trajectory"], reflection))
    return tries

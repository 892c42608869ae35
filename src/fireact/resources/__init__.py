"""Data shipped with fireact: task splits, prompts and licences (see README.md here)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent


def resource(*parts: str) -> Path:
    """Path of a shipped data file, e.g. ``resource("hotpotqa", "dev.json")``."""
    return ROOT.joinpath(*parts)

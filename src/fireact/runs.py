"""The run folder's file names, declared once, and which of them a writer must never replace.

A run folder (``fireact run --out DIR``) holds ``config.json`` (written at the start),
``episodes.jsonl`` (one line per finished episode), ``summary.json`` (at the end) and, for
`generate`, ``trajectories.jsonl``; `view` adds ``view.html``. Every module that reads or writes
these names imports them from here.
"""

from __future__ import annotations

from pathlib import Path

EPISODES = "episodes.jsonl"
SUMMARY = "summary.json"
CONFIG = "config.json"
TRAJECTORIES = "trajectories.jsonl"
VIEW = "view.html"
RUN_FILES = (EPISODES, SUMMARY, CONFIG, TRAJECTORIES)  # what a run writes (--overwrite removes)


def run_inputs(path: Path | str) -> list[Path]:
    """What a reader of `path` reads: a run folder's own files (never to be overwritten by
    another command's output), or the file itself."""
    path = Path(path)
    if path.is_dir():
        return [path / name for name in RUN_FILES]
    return [path]

"""Building a run's tool stack from explicit settings: backend, then cache, then noise.

Owns `ToolSetup` (the tool settings of a run, and nothing else of it) and which tool, style and
wrappers a run uses; the backends come from the tool registry (`fireact.tools`):

* the tool's style is the one it always answers in (serpapi: google, wikipedia: wiki), else the
  style asked for, else google (`ToolSpec.style_for`); the backend gets ``index_dir`` and
  ``style`` when its spec takes them (the local tool does).
* cache ``auto`` caches the network tools in ``$FIREACT_HOME/cache/tools.sqlite`` and leaves the
  local one uncached (it is faster than the cache); ``none`` disables it; anything else is a path.
* the table tools (``sql``) get ``tables_for``: each episode's tables, by episode id.
* noise ``none`` / ``random`` wraps the stack in `NoisyTool` (p = ``noise_p``, the pool = every
  question of the task split, seed = ``seed``), outside the cache so that noise is never stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fireact.errors import FireactError
from fireact.tasks.base import Task
from fireact.tools import tool_spec
from fireact.tools.base import Tool


@dataclass(frozen=True)
class ToolSetup:
    """A run's tool settings (`RunOptions.tool_setup()` gives those of a run)."""

    tool: str = "local"
    index: Path | None = None  # the local tool's index folder (None: the shipped one)
    style: str | None = None  # the style asked for (None: the tool's own, or google)
    cache: str = "auto"  # auto | none | a SQLite file
    noise: str = "off"  # off | none | random
    noise_p: float = 0.5
    seed: int = 0


def tool_style(tool: str, requested: str | None = None) -> str:
    """The style `tool` answers in (and so which few-shot prompt fits it)."""
    return tool_spec(tool).style_for(requested)


def cache_path(setup: ToolSetup) -> Path | None:
    """Where search results are cached, or None."""
    if setup.cache == "none":
        return None
    if setup.cache == "auto":
        if not tool_spec(setup.tool).network:
            return None
        from fireact.home import fireact_home

        return fireact_home() / "cache" / "tools.sqlite"
    return Path(setup.cache)


def build_tool(setup: ToolSetup, task: Task) -> Tool:
    """The tool stack a run's episodes share."""
    tool = _backend(setup, task)
    path = cache_path(setup)
    if path is not None:
        from fireact.tools.cache import CachedTool

        if path.is_dir():
            raise FireactError(f"cache: {path} is a folder; give a file path for the tool cache")
        tool = CachedTool(tool, path)
    if setup.noise != "off":
        from fireact.tools.noisy import NoisyTool

        pool = [ex.question for ex in task.examples]
        tool = NoisyTool(tool, p=setup.noise_p, mode=setup.noise, pool=pool, seed=setup.seed)
    return tool


def _backend(setup: ToolSetup, task: Task) -> Tool:
    spec = tool_spec(setup.tool)
    settings: dict[str, Any] = {}
    if "tables_for" in spec.settings:  # the table tools: each episode sees its question's tables
        tables = {ex.id: getattr(ex, "tables", None) for ex in task.examples}
        if not any(tables.values()):
            raise FireactError(
                f"tool {setup.tool}: task {task.name} has no tables; the sql tool answers over "
                "a question's tables (task tableqa, or --data with tables)"
            )
        settings["tables_for"] = tables.get
    if "index_dir" in spec.settings:
        settings["index_dir"] = setup.index
    if "style" in spec.settings:
        settings["style"] = spec.style_for(setup.style)
    return spec.build(**settings)

"""Building a run's tool stack from its options: backend, then cache, then noise.

Owns which tool, style and wrappers a run uses:

* ``local``: `LocalSearch(index, style)`; ``serpapi``: `SerpAPISearch()` (Google style);
  ``wikipedia``: `WikipediaSearch()` (wiki style).
* cache ``auto`` caches the network tools in ``$FIREACT_HOME/cache/tools.sqlite`` and leaves the
  local one uncached (it is faster than the cache); ``none`` disables it; anything else is a path.
* noise ``none`` / ``random`` wraps the stack in `NoisyTool` (p = ``noise_p``, the pool = every
  question of the task split, seed = ``seed``), outside the cache so that noise is never stored.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fireact.errors import FireactError
from fireact.tasks.base import Task
from fireact.tools.base import Tool

if TYPE_CHECKING:
    from fireact.agent.runner import RunOptions

NETWORK_TOOLS = ("serpapi", "wikipedia")
TOOL_STYLE = {"serpapi": "google", "wikipedia": "wiki"}


def tool_style(options: RunOptions) -> str:
    """The style the run's tool answers in (and so which few-shot prompt fits it)."""
    if options.tool in TOOL_STYLE:
        return TOOL_STYLE[options.tool]
    return options.tool_style or "google"


def cache_path(options: RunOptions) -> Path | None:
    """Where search results are cached, or None."""
    if options.cache == "none":
        return None
    if options.cache == "auto":
        if options.tool not in NETWORK_TOOLS:
            return None
        from fireact.tools.local_index import fireact_home

        return fireact_home() / "cache" / "tools.sqlite"
    return Path(options.cache)


def build_tool(options: RunOptions, task: Task) -> Tool:
    """The tool stack a run's episodes share."""
    tool = _backend(options)
    path = cache_path(options)
    if path is not None:
        from fireact.tools.cache import CachedTool

        if path.is_dir():
            raise FireactError(f"cache: {path} is a folder; give a file path for the tool cache")
        tool = CachedTool(tool, path)
    if options.noise != "off":
        from fireact.tools.noisy import NoisyTool

        pool = [ex.question for ex in task.examples]
        tool = NoisyTool(tool, p=options.noise_p, mode=options.noise, pool=pool, seed=options.seed)
    return tool


def _backend(options: RunOptions) -> Tool:
    if options.tool == "serpapi":
        from fireact.tools.serpapi import SerpAPISearch

        return SerpAPISearch()
    if options.tool == "wikipedia":
        from fireact.tools.wikipedia import WikipediaSearch

        return WikipediaSearch()
    from fireact.tools.local import LocalSearch

    if options.index is not None and not Path(options.index).is_dir():
        raise FireactError(
            f"index: {options.index} is not a folder; build one with `fireact index build`"
        )
    return LocalSearch(index_dir=options.index, style=tool_style(options))

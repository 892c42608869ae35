"""The tool protocol every search backend and wrapper implements.

A tool answers actions such as ``search[...]`` and ``lookup[...]``. One tool object is shared by
all concurrent episodes (it holds the index, the HTTP client, the cache); whatever an episode
needs to remember between calls (the page its last search opened, the lookup cursor) lives in
that episode's own `ToolState`, so tools are safe to call from many episodes at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass
class ToolState:
    """Per-episode memory of the tools: created once per episode, passed to every call."""

    episode_id: str = ""
    calls: int = 0  # tool calls made so far in this episode (wrappers use it for seeding)
    page: list[str] | None = None  # sentences of the page the last Wikipedia-style search opened
    keyword: str | None = None  # the current lookup keyword
    hits: list[str] = field(default_factory=list)  # sentences of `page` containing `keyword`
    cursor: int = 0  # index of the next lookup hit to return


@runtime_checkable
class Tool(Protocol):
    """An async tool: ``await tool(action, argument, state) -> observation text``."""

    name: str
    actions: frozenset[str]  # the action names this tool answers, e.g. {"search", "lookup"}

    async def __call__(self, action: str, argument: str, state: ToolState) -> str: ...

    async def aclose(self) -> None: ...


def lookup(state: ToolState, keyword: str) -> str:
    """ReAct's ``lookup[keyword]`` over the page the last search opened.

    Returns the next sentence containing the keyword as ``(Result k / N) sentence``; a new
    keyword restarts the count; with no page open there are no results. Matching is
    case-insensitive, as in ReAct's Wikipedia env.
    """
    page = state.page or []  # no page open: nothing matches, as in ReAct
    if state.keyword != keyword:
        state.keyword = keyword
        needle = keyword.lower()
        state.hits = [s.strip() for s in page if needle in s.lower()]
        state.cursor = 0
    if state.cursor >= len(state.hits):
        return "No more results."
    state.cursor += 1
    return f"(Result {state.cursor} / {len(state.hits)}) {state.hits[state.cursor - 1]}"


def open_page(state: ToolState, sentences: list[str]) -> str:
    """Record a page a search opened (resetting lookup) and return its first 5 sentences."""
    state.page = sentences
    state.keyword = None
    state.hits = []
    state.cursor = 0
    return " ".join(s.strip() for s in sentences[:5])

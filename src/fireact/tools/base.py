"""The tool protocol every search backend and wrapper implements, and the spec of a tool.

A tool answers actions such as ``search[...]`` and ``lookup[...]``. One tool object is shared by
all concurrent episodes (it holds the index, the HTTP client, the cache); whatever an episode
needs to remember between calls (the page its last search opened, the lookup cursor) lives in
that episode's own `ToolState`, so tools are safe to call from many episodes at once.

`ToolSpec` says what the tool registry (`fireact.tools`) knows about a tool without building
it: its factory, the actions it answers, its observation style, whether it calls the network.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from fireact.errors import FireactError
from fireact.registry import resolve


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


DEFAULT_STYLE = "google"  # FireAct's observation style, for a tool that lets the run choose


@dataclass(frozen=True)
class ToolSpec:
    """A tool as the registry knows it, before it is built.

    `factory` builds the tool from keyword `settings` only (never from run options); a
    ``"module:attr"`` string is imported on the first build, so listing tools stays cheap.
    """

    name: str
    factory: Callable[..., Tool] | str
    actions: frozenset[str]  # the actions it answers (besides the agent's own finish[...])
    network: bool = False  # calls a web service: cached by default, needs the network
    style: str | None = None  # the style it always answers in (google / wiki); None: run's choice
    settings: tuple[str, ...] = ()  # the keyword settings the factory takes
    summary: str = ""  # one line for listings and docs

    REQUIRED = ("name", "factory", "actions")

    def style_for(self, requested: str | None) -> str:
        """The style its observations come in, given the style a run asks for (or None)."""
        return self.style or requested or DEFAULT_STYLE

    def problems(self) -> Iterator[str]:
        """What is wrong with the spec (the registry refuses it with these)."""
        if not (callable(self.factory) or (isinstance(self.factory, str) and ":" in self.factory)):
            yield "factory must be a function or class, or a 'module:attr' string"
        if not isinstance(self.actions, frozenset) or not all(
            isinstance(a, str) and a.isidentifier() for a in self.actions
        ):
            yield "actions must be a frozenset of action names such as {'search'}"
        elif "finish" in self.actions:
            yield "actions must not include finish (the agent answers it)"
        if not all(isinstance(s, str) for s in self.settings):
            yield "settings must be a tuple of keyword names"

    def build(self, **settings: Any) -> Tool:
        """The tool, from its settings; an unknown setting or a factory that does not give a
        `Tool` answering `actions` is a `FireactError`."""
        unknown = sorted(set(settings) - set(self.settings))
        if unknown:
            takes = ", ".join(self.settings) or "none"
            raise FireactError(
                f"tool {self.name}: unknown setting {', '.join(unknown)}; it takes: {takes}"
            )
        factory = resolve(self.factory) if isinstance(self.factory, str) else self.factory
        tool = factory(**settings)
        if not isinstance(tool, Tool) or frozenset(tool.actions) != self.actions:
            raise FireactError(
                f"tool {self.name}: its factory gave {type(tool).__name__}, not a Tool answering "
                f"{sorted(self.actions)} (name, actions, async __call__, aclose)"
            )
        return tool

"""The tool registry: every search backend a run can use, built in or from a plug-in.

Owns `TOOL_REGISTRY` (a `Registry` of `ToolSpec`) and what reads it: `tool_spec`, `names`,
`build`. Built in: ``local`` (BM25 over an on-disk index, either style), ``serpapi`` (Google
through SerpAPI) and ``wikipedia`` (the MediaWiki API); their modules are imported only when one
is built. Adding a tool is a module with the tool class and ``SPEC = ToolSpec(...)``, plus the line
``"fireact.tools.MODULE:SPEC",`` in `BUILT_IN` (a plug-in package declares an entry point in the
group ``fireact.tools`` instead; docs/extending.md). ``calculate`` and ``sql`` (the table tools)
need the ``tables`` extra. Tools combine: ``--tool sql,calculate`` (`tools.toolset`).
Wrappers (the cache, the noisy search) are not tools of their own: the run's tool stack adds them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fireact.errors import FireactError
from fireact.registry import GROUPS, Registry
from fireact.tools.base import DEFAULT_STYLE, Tool, ToolSpec, ToolState


def local_search(index_dir: Path | None = None, style: str = "wiki") -> Tool:
    """`LocalSearch` over `index_dir` (None: the shipped HotpotQA index), which must be a folder."""
    if index_dir is not None and not Path(index_dir).is_dir():
        raise FireactError(
            f"index: {index_dir} is not a folder; build one with `fireact index build`"
        )
    from fireact.tools.local import LocalSearch

    return LocalSearch(index_dir=index_dir, style=style)


SEARCH_LOOKUP = frozenset({"search", "lookup"})
BUILT_IN = (
    ToolSpec(
        "local",
        local_search,
        SEARCH_LOOKUP,
        settings=("index_dir", "style"),
        summary="BM25 search over a local index (wiki or google style)",
    ),
    ToolSpec(
        "serpapi",
        "fireact.tools.serpapi:SerpAPISearch",
        frozenset({"search"}),
        network=True,
        style="google",
        settings=("api_key", "base_url", "timeout", "hl", "gl"),
        summary="Google search through SerpAPI (SERPAPI_API_KEY)",
    ),
    ToolSpec(
        "wikipedia",
        "fireact.tools.wikipedia:WikipediaSearch",
        SEARCH_LOOKUP,
        network=True,
        style="wiki",
        settings=("base_url", "timeout", "user_agent"),
        summary="ReAct's Wikipedia search over the MediaWiki API",
    ),
    ToolSpec(
        "calculate",
        "fireact.tools.calculate:CalculatorTool",
        frozenset({"calculate"}),
        summary="safe arithmetic (simpleeval; needs fireact[tables])",
    ),
    ToolSpec(
        "sql",
        "fireact.tools.sql:SQLTool",
        frozenset({"sql", "tables"}),
        settings=("tables_for",),
        summary="read-only DuckDB SQL over the question's tables (needs fireact[tables])",
    ),
)
TOOL_REGISTRY: Registry[ToolSpec] = Registry(
    "tool", GROUPS["tool"], spec_type=ToolSpec, required=ToolSpec.REQUIRED, built_in=BUILT_IN
)


def tool_spec(name: str) -> ToolSpec:
    """The spec of tool `name`; an unknown name is a `FireactError` listing the tools. A
    comma-separated list (``sql,calculate``) is the tools used together (`combined_spec`)."""
    if "," not in name:
        return TOOL_REGISTRY.get(name)
    from fireact.tools.toolset import combined_spec

    parts = [part.strip() for part in name.split(",")]
    if not all(parts) or len(set(parts)) != len(parts):
        raise FireactError(f"tool {name!r}: name each tool once, separated by commas")
    return combined_spec(name, [TOOL_REGISTRY.get(part) for part in parts])


def names() -> tuple[str, ...]:
    """The tools a run can use, built-ins first."""
    return TOOL_REGISTRY.names()


def build(name: str, **settings: Any) -> Tool:
    """Build tool `name` from its settings (`ToolSpec.settings`), without wrappers."""
    return tool_spec(name).build(**settings)


def register_tool(spec: ToolSpec) -> ToolSpec:
    """Register a tool at run time (plug-in packages use the entry point instead)."""
    return TOOL_REGISTRY.register(spec, origin="register_tool()")


__all__ = [
    "DEFAULT_STYLE",
    "TOOL_REGISTRY",
    "Tool",
    "ToolSpec",
    "ToolState",
    "build",
    "names",
    "register_tool",
    "tool_spec",
]

"""Several tools as one: ``--tool sql,calculate`` gives the agent every action of each.

Owns `ToolSet` (routes each action to the tool that answers it) and `combined_spec` (the
`ToolSpec` of a comma-separated list of registered tools: the union of their actions and
settings, network when any is, the first fixed style), so everything that reads a tool spec —
option checks, the cache, the prompt's style — works on a combination as on one tool.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fireact.errors import FireactError
from fireact.tools.base import Tool, ToolSpec, ToolState


class ToolSet:
    """The tools of a combination; an action goes to the one tool that answers it."""

    def __init__(self, tools: Sequence[Tool]) -> None:
        self.tools = list(tools)
        self.name = ",".join(tool.name for tool in self.tools)
        self.route = {action: tool for tool in self.tools for action in tool.actions}
        self.actions = frozenset(self.route)

    async def __call__(self, action: str, argument: str, state: ToolState) -> str:
        return await self.route[action](action, argument, state)

    async def aclose(self) -> None:
        for tool in self.tools:
            await tool.aclose()


def combined_spec(names: str, specs: Sequence[ToolSpec]) -> ToolSpec:
    """The spec of the tools `specs` used together (named `names`, e.g. ``sql,calculate``)."""
    seen: dict[str, str] = {}
    for spec in specs:
        for action in spec.actions:
            if action in seen:
                raise FireactError(
                    f"tool {names}: {seen[action]} and {spec.name} both answer {action}[...]; "
                    "combine tools whose actions differ"
                )
            seen[action] = spec.name

    def build(**settings: Any) -> Tool:
        return ToolSet(
            [s.build(**{k: v for k, v in settings.items() if k in s.settings}) for s in specs]
        )

    return ToolSpec(
        names,
        build,
        frozenset(seen),
        network=any(s.network for s in specs),
        style=next((s.style for s in specs if s.style), None),
        settings=tuple(dict.fromkeys(k for s in specs for k in s.settings)),
        summary=" + ".join(s.summary or s.name for s in specs),
    )

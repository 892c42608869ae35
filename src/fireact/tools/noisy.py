"""The paper's noisy-tool setting: `NoisyTool` corrupts a fraction of ``search`` observations.

With probability ``p`` a search's observation is replaced: mode ``"none"`` answers the string
``"None"`` (the inner tool is not called, so no page is opened); mode ``"random"`` answers the
inner tool's result for a query drawn from ``pool`` (another question of the split, say),
exactly as if the agent had searched that query, page included. ``lookup`` and other actions
pass through untouched.

Determinism: each call draws from ``random.Random(f"{seed}:{episode_id}:{calls}")``, so an
episode's replacements depend only on the seed, its id and how many tool calls it has made,
never on how episodes interleave. This wrapper is what increments ``ToolState.calls`` (once per
call, any action, after drawing); no other tool touches it, so use one `NoisyTool` per stack.
Put caches inside it (``NoisyTool(CachedTool(tool))``) so noise is never stored.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from fireact.errors import FireactError
from fireact.tools.base import Tool, ToolState

MODES = ("none", "random")


class NoisyTool:
    """Wraps a tool; each ``search`` observation is replaced with probability ``p``."""

    def __init__(
        self,
        tool: Tool,
        p: float = 0.5,
        mode: str = "none",
        pool: Sequence[str] = (),
        seed: int = 0,
    ) -> None:
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
            raise FireactError(f"noise probability p={p!r} is invalid: give a number in [0, 1]")
        if mode not in MODES:
            raise FireactError(f"noise mode {mode!r} is unknown: use one of {', '.join(MODES)}")
        if mode == "random" and not pool:
            raise FireactError(
                "noise mode 'random' needs a pool of other queries (e.g. the split's questions)"
            )
        self.tool = tool
        self.name = tool.name
        self.actions = tool.actions
        self.p = float(p)
        self.mode = mode
        self.pool = tuple(pool)
        self._distinct = len(set(self.pool))
        self.seed = seed
        self.calls = 0  # search calls seen
        self.replaced = 0  # search observations replaced

    def _rng(self, state: ToolState) -> random.Random:
        rng = random.Random(f"{self.seed}:{state.episode_id}:{state.calls}")
        state.calls += 1
        return rng

    def _other_query(self, rng: random.Random, query: str) -> str:
        """A pool query other than ``query`` (unless the pool holds nothing else)."""
        choice = rng.choice(self.pool)
        while choice == query and self._distinct > 1:
            choice = rng.choice(self.pool)
        return choice

    async def __call__(self, action: str, argument: str, state: ToolState) -> str:
        rng = self._rng(state)
        if action != "search":
            return await self.tool(action, argument, state)
        self.calls += 1
        if rng.random() >= self.p:
            return await self.tool(action, argument, state)
        self.replaced += 1
        if self.mode == "none":
            return "None"
        return await self.tool(action, self._other_query(rng, argument), state)

    async def aclose(self) -> None:
        await self.tool.aclose()

"""What all browser sessions of the demo share: the task, each model and each tool stack.

Owns `Shared`: a model named in the page (any spec the CLI accepts: ``openai:``, ``vllm:``,
``hf:``, ``scripted:``) is built once by the runner's `build_llm` (checked as ``fireact run``
checks it, then behind the model-call cache where one applies) and the same object serves every
session after that; a tool stack is built once by `build_tool` per tool setting. Building is
guarded by one lock per key, so two sessions asking for a new model at the same moment load it
once. A model or tool that fails to build is not kept: the next request tries again.

The episodes of all sessions run on one asyncio loop (the web server's), through these shared
objects, exactly as the runner's concurrent episodes do. `aclose` releases them all.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fireact.agent.options import RunOptions
from fireact.agent.runner import build_llm, wrap_llm_cache
from fireact.agent.tools_setup import ToolSetup, build_tool
from fireact.errors import FireactError
from fireact.llm.base import LLM
from fireact.tasks.base import Task
from fireact.tools.base import Tool

T = TypeVar("T")


def llm_key(options: RunOptions) -> tuple[str, str]:
    """What makes two models different objects: the spec, and for the HTTP backends the
    format (it decides the API they call)."""
    http = options.model.startswith(("openai:", "vllm:"))
    return options.model, options.format if http else ""


class Shared:
    """The demo's task and its lazily built, shared models and tools (module doc)."""

    def __init__(
        self,
        task: Task,
        *,
        llms: dict[tuple[str, str], LLM] | None = None,
        tools: dict[ToolSetup, Tool] | None = None,
    ) -> None:
        self.task = task
        self.llms: dict[tuple[str, str], LLM] = dict(llms or {})  # given ones are not closed
        self.tools: dict[ToolSetup, Tool] = dict(tools or {})
        self._given = {id(x) for x in [*self.llms.values(), *self.tools.values()]}
        self._locks: dict[object, asyncio.Lock] = {}

    async def llm(self, options: RunOptions) -> LLM:
        """The model `options` name, built on first use (`FireactError` if it cannot be)."""
        return await self._get(self.llms, llm_key(options), lambda: self._build_llm(options))

    async def tool(self, options: RunOptions) -> Tool:
        """The tool stack `options` name, built on first use."""
        setup = options.tool_setup()

        async def build() -> Tool:
            return build_tool(setup, self.task)

        return await self._get(self.tools, setup, build)

    async def _get(self, cache: dict[Any, T], key: Any, build: Callable[[], Awaitable[T]]) -> T:
        if key in cache:
            return cache[key]
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if key not in cache:
                cache[key] = await build()
            return cache[key]

    async def _build_llm(self, options: RunOptions) -> LLM:
        if options.model.startswith("hf:"):  # loading weights takes seconds: not on the loop
            llm = await asyncio.to_thread(build_llm, options)
        else:
            llm = build_llm(options)
        check = getattr(llm, "check", None)
        if check is not None:  # as `fireact run`: an unreachable server or a bad key, now
            try:
                await check()
            except BaseException:
                await llm.aclose()
                raise
            for warning in getattr(llm, "warnings", ()):
                print(f"warning: {warning}", file=sys.stderr)
        return wrap_llm_cache(llm, options)

    async def aclose(self) -> None:
        """Close every model and tool this object built."""
        owned = [x for x in [*self.llms.values(), *self.tools.values()] if id(x) not in self._given]
        self.llms.clear()
        self.tools.clear()
        for item in owned:
            await item.aclose()


def load_error(what: str, spec: str, err: BaseException) -> FireactError:
    """A model or tool that failed to build, as one line naming it."""
    if isinstance(err, FireactError):
        return FireactError(f"{what} {spec}: {err}")
    text = " ".join(f"{type(err).__name__}: {err}".split())
    return FireactError(f"{what} {spec} failed to load ({text})")

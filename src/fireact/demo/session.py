"""Running one asked question as an episode and streaming it as it happens; Stop.

Owns `Sessions` (the episodes of every browser session: running, and the recently finished
ones that can still be kept or flagged) and `Live` (what the page shows of one episode).

`Sessions.ask(request)` is an async generator: it checks the form (`fireact.demo.inputs`), gets
the shared model and tool (`fireact.demo.shared`), builds the run's `Agent` (`build_agent`, as
``fireact run`` does) with the episode hooks ``on_action`` / ``on_step``, and runs
`run_episode` as its own asyncio task on the server's loop, so the episodes of different
sessions run concurrently, each advancing as its own calls return. It yields a `Live` when the
episode starts, when the model has chosen an action (the Thought / Action show before the tool
answers), after each step, and once at the end: ``finished`` (the final answer), ``stopped``
(`Sessions.stop`, or the page went away: the episode's task is cancelled), or ``error`` (a
one-line message; nothing else changes and the server goes on serving).

A ``scripted:`` model replays a script per question: the episode, whose id is new
(``demo-<time>-<random>``), replays the script of its question's exact text from its start.
A table task's tables (the table box) are given to the episode's tool state before its first
tool call (`load_tables`).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from fireact.agent.episode import Episode, Step, run_episode
from fireact.agent.methods import method_spec
from fireact.agent.options import RunOptions
from fireact.agent.runner import build_agent
from fireact.demo.inputs import AskRequest, check_scripted, parse_tables, request_options
from fireact.demo.shared import Shared, load_error
from fireact.demo.store import Finished
from fireact.errors import FireactError
from fireact.llm.base import LLM
from fireact.tasks.base import Example
from fireact.tools.base import Tool
from fireact.tools.sql_tables import Table, load_tables, registered_tables

KEEP_FINISHED = 512  # finished episodes remembered for keep / flag (the oldest are forgotten)


def new_episode_id() -> str:
    """A fresh, unguessable episode id: ``demo-YYYYmmddTHHMMSS-<8 hex>``."""
    return f"demo-{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}"


@dataclass
class Live:
    """One episode as the page shows it while it runs and after."""

    id: str
    question: str
    state: str = "starting"  # starting | running | finished | stopped | error
    message: str = ""  # the error, for state "error"
    ep: Episode | None = None  # the live episode (steps, totals) once it runs
    pending: tuple[str, str] | None = None  # (thought, action) while the tool works
    shown: int = 0  # steps recorded when the event shown was sent (the episode runs on)
    started_at: float = 0.0
    ended_at: float | None = None

    @property
    def steps(self) -> list[Step]:
        return list(self.ep.steps[: self.shown]) if self.ep is not None else []

    def fail(self, message: str) -> Live:
        self.state, self.message, self.pending = "error", " ".join(message.split()), None
        return self


@contextmanager
def scripted_episode(llm: LLM, question: str, episode_id: str) -> Iterator[None]:
    """Let a ``scripted:`` model answer this episode with its question's script, from the
    start (`fireact.demo.inputs.check_scripted`); nothing for other models."""
    key = check_scripted(llm, question)
    if key is None:
        yield
        return
    llm.outputs[episode_id] = llm.outputs[key]  # type: ignore[attr-defined]
    llm.used[episode_id] = 0  # type: ignore[attr-defined]
    try:
        yield
    finally:
        llm.outputs.pop(episode_id, None)  # type: ignore[attr-defined]
        llm.used.pop(episode_id, None)  # type: ignore[attr-defined]


class Sessions:
    """Every session's episodes: ask (stream), stop, and the finished ones by id."""

    def __init__(self, shared: Shared, defaults: RunOptions, needs_tables: bool = False) -> None:
        self.shared = shared
        self.defaults = defaults
        self.needs_tables = needs_tables
        self.running: dict[str, asyncio.Task[Episode]] = {}
        self.finished: OrderedDict[str, Finished] = OrderedDict()

    def get(self, episode_id: str) -> Finished:
        """A finished episode (`FireactError` when there is none by that id)."""
        done = self.finished.get(episode_id or "")
        if done is None:
            raise FireactError("no finished episode to keep or flag: run a question first")
        return done

    def stop(self, episode_id: str) -> bool:
        """Cancel the running episode `episode_id`; False when it is not running."""
        task = self.running.get(episode_id or "")
        if task is None or task.done():
            return False
        task.cancel()
        return True

    async def _prepare(
        self, request: AskRequest
    ) -> tuple[RunOptions, LLM, Tool | None, list[Table] | None]:
        options = request_options(request, self.defaults)
        tables = parse_tables(request.table) if self.needs_tables else None
        try:
            llm = await self.shared.llm(options)
        except Exception as err:  # noqa: BLE001 - any failure to load is one line in the page
            raise load_error("model", options.model, err) from None
        tool = None
        if method_spec(options.method).needs_tool:
            try:
                tool = await self.shared.tool(options)
            except Exception as err:  # noqa: BLE001
                raise load_error("tool", options.tool, err) from None
        return options, llm, tool, tables

    async def ask(self, request: AskRequest) -> AsyncIterator[Live]:
        """Run the question as one episode, yielding the page's view as it goes (module doc)."""
        live = Live(new_episode_id(), request.question.strip())
        try:
            options, llm, tool, tables = await self._prepare(request)
            with scripted_episode(llm, live.question, live.id):
                async for view in self._run(live, options, llm, tool, tables):
                    yield view
        except FireactError as err:
            yield live.fail(str(err))

    async def _run(
        self,
        live: Live,
        options: RunOptions,
        llm: LLM,
        tool: Tool | None,
        tables: list[Table] | None,
    ) -> AsyncIterator[Live]:
        agent = build_agent(options, self.shared.task, llm, tool)
        events: asyncio.Queue[tuple[Episode, tuple[str, str] | None, int] | None]
        events = asyncio.Queue()  # (episode, pending action, steps recorded by then); None: end

        def on_action(ep: Episode, thought: str, action: str) -> None:
            if tables is not None and registered_tables(ep.tool_state) is None:
                load_tables(ep.tool_state, tables)
            events.put_nowait((ep, (thought, action), len(ep.steps)))

        agent.on_action = on_action
        agent.on_step = lambda ep, step: events.put_nowait((ep, None, len(ep.steps)))
        live.started_at = time.time()  # the episode's own time (a model's loading is not in it)
        task = asyncio.create_task(run_episode(Example(live.id, live.question, None), agent))
        task.add_done_callback(lambda _: events.put_nowait(None))
        self.running[live.id] = task
        live.state = "running"
        try:
            yield live
            while (event := await events.get()) is not None:
                live.ep, live.pending, live.shown = event
                yield live
            live.ended_at, live.pending = time.time(), None
            if task.cancelled():
                live.state = "stopped"
                yield live
                return
            ep = task.result()  # a FireactError (a rejected key, a broken tool) is raised here
            live.ep, live.shown = ep, len(ep.steps)
            if ep.error is not None:
                yield live.fail(ep.error)
                return
            self._remember(Finished(ep, agent, options, live.started_at, live.ended_at))
            live.state = "finished"
            yield live
        finally:
            if not task.done():  # the page went away: stop the episode
                task.cancel()
            self.running.pop(live.id, None)

    def _remember(self, done: Finished) -> None:
        self.finished[done.ep.id] = done
        while len(self.finished) > KEEP_FINISHED:
            self.finished.popitem(last=False)

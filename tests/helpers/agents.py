"""Agent-level helpers: a dict-backed tool, a prompt-recording scripted model, an Agent maker
and the Milhouse example with its scripted outputs and expected trajectory."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from fireact.agent.episode import Agent, Episode, run_episode
from fireact.agent.prompts import fewshot_prompt
from fireact.llm.base import Completion
from fireact.llm.scripted import ScriptedLLM
from fireact.tasks.base import Example, Task, score_qa
from fireact.tools.base import ToolState, lookup, open_page

QUESTION = "Who was Milhouse named after?"
EXAMPLE = Example("q1", QUESTION, "Richard Nixon")
HEAD = fewshot_prompt("react", "hotpotqa")


class DictTool:
    """A real, tiny tool: ``search[title]`` opens a page (its sentences) from a dict."""

    name = "dict"
    actions = frozenset({"search", "lookup"})

    def __init__(self, pages: Mapping[str, list[str]], fail: Sequence[str] = (), slow: float = 0.0):
        self.pages = dict(pages)
        self.fail = set(fail)
        self.slow = slow
        self.calls: list[tuple[str, str]] = []

    async def __call__(self, action: str, argument: str, state: ToolState) -> str:
        self.calls.append((action, argument))
        state.calls += 1
        if argument in self.fail:
            raise RuntimeError("backend down")
        if self.slow:
            await asyncio.sleep(self.slow)
        if action == "lookup":
            return lookup(state, argument)
        if argument in self.pages:
            return open_page(state, self.pages[argument])
        return f"No results for {argument}."

    async def aclose(self) -> None:
        pass


class RecordingLLM(ScriptedLLM):
    """The scripted backend, also remembering every prompt and stop list it was given."""

    def __init__(self, outputs: Mapping[str, Sequence[str]]):
        super().__init__(outputs)
        self.prompts: list[object] = []
        self.stops: list[list[str] | None] = []

    async def complete(self, prompt, *, stop=None, max_tokens=256, temperature=0.0, key=None):
        self.prompts.append(prompt if isinstance(prompt, str) else [dict(m) for m in prompt])
        self.stops.append(stop)
        out = await super().complete(prompt, stop=stop, max_tokens=max_tokens, key=key)
        return Completion(out.text, out.prompt_tokens, out.completion_tokens, 0.001, "stop", 0.0)


def make_agent(llm, tool=None, *, examples=(EXAMPLE,), scorer=score_qa, **options) -> Agent:
    task = Task("hotpotqa", "dev", list(examples), scorer, "hotpotqa")
    method = options.pop("method", "react")
    fmt = options.pop("format", "fewshot")
    kind = "react" if method in ("react", "reflexion") else method
    head = fewshot_prompt(kind, "hotpotqa") if fmt == "fewshot" else ""
    return Agent(llm, tool, task, method=method, format=fmt, head=head, **options)


def run(agent: Agent, example: Example = EXAMPLE) -> Episode:
    return asyncio.run(run_episode(example, agent))


NIXON = {
    "Milhouse": ["Milhouse is named after U.S. president Richard Nixon.", "He is a character."]
}
GOOD = [
    " I need to search Milhouse.\nAction: search[Milhouse]",
    " Milhouse is named after Nixon.\nAction: finish[Richard Nixon]",
]
GOOD_TRAJECTORY = (
    "Thought: I need to search Milhouse.\nAction: search[Milhouse]\n"
    "Observation: Milhouse is named after U.S. president Richard Nixon. He is a character.\n"
    "Thought: Milhouse is named after Nixon.\nAction: finish[Richard Nixon]\n"
    "Observation: Episode finished, reward = True\n"
)

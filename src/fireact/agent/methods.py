"""The method registry: what the runner needs to know about each agent method, in one place.

Owns `Method` (a method's spec) and `METHOD_REGISTRY` (a `fireact.registry.Registry` of them:
the four built-ins, then plug-ins of the entry-point group ``fireact.methods``). The runner and
the run options read every method rule from here: which few-shot prompt it uses, whether it
needs a tool and gold answers, which formats it runs in. Built in:

| method | run function | prompt | tool | gold | formats |
|---|---|---|---|---|---|
| react | `react_run` | react | yes | no | fewshot, alpaca, chat |
| cot | `cot_run` | cot | no | no | fewshot |
| io | `io_run` | io | no | no | fewshot |
| reflexion | `reflexion_run` | react | yes | yes (the reward decides a retry) | fewshot, alpaca, chat |
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from fireact.agent.episode import Agent, Episode, cot_run, io_run, react_run, reflexion_run
from fireact.registry import GROUPS, Registry

FORMATS = ("fewshot", "alpaca", "chat")
PROMPT_KINDS = ("react", "cot", "io")  # the shipped few-shot prompt families (`fewshot_prompt`)
RunFunction = Callable[[Episode, Agent], Awaitable[None]]


@dataclass(frozen=True)
class Method:
    """An agent method: the function that runs one episode and the rules around it."""

    name: str
    run: RunFunction  # drives one episode to its end (`fireact.agent.episode`)
    prompt: str  # the few-shot prompt family it asks with: react, cot or io
    needs_tool: bool = False  # its episodes call the run's tool
    needs_gold: bool = False  # it reads the gold answer while running (every example needs one)
    formats: tuple[str, ...] = FORMATS  # the prompt formats it runs in

    REQUIRED = ("name", "run", "prompt", "formats")

    def problems(self) -> Iterator[str]:
        """What is wrong with the spec (the registry refuses it with these)."""
        if not callable(self.run):
            yield "run must be an async function (episode, agent)"
        if self.prompt not in PROMPT_KINDS:
            yield f"prompt {self.prompt!r}: use one of {', '.join(PROMPT_KINDS)}"
        unknown = [f for f in self.formats if f not in FORMATS]
        if unknown:
            yield f"formats {', '.join(unknown)}: use some of {', '.join(FORMATS)}"

    def format_problem(self, format: str) -> str | None:
        """Why the method cannot run in `format`, or None."""
        if format in self.formats:
            return None
        if self.formats == ("fewshot",):
            return (
                f"method {self.name} uses the few-shot {self.prompt}_* prompt: set format fewshot"
            )
        return f"method {self.name} runs in format {' / '.join(self.formats)}, not {format}"


BUILT_IN = (
    Method("react", react_run, "react", needs_tool=True),
    Method("cot", cot_run, "cot", formats=("fewshot",)),
    Method("io", io_run, "io", formats=("fewshot",)),
    Method("reflexion", reflexion_run, "react", needs_tool=True, needs_gold=True),
)
METHOD_REGISTRY: Registry[Method] = Registry(
    "method", GROUPS["method"], spec_type=Method, required=Method.REQUIRED, built_in=BUILT_IN
)


def method_spec(name: str) -> Method:
    """The spec of method `name`; an unknown name is a `FireactError` listing the methods."""
    return METHOD_REGISTRY.get(name)


def register_method(spec: Method) -> Method:
    """Register a method at run time (plug-in packages use the entry point instead)."""
    return METHOD_REGISTRY.register(spec, origin="register_method()")

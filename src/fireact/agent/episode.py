"""One episode of the agent: its state (`Episode`) and the step functions of each method.

Owns the agent loop of SPEC §2. `run_episode(example, agent)` drives one episode to its end with
the method's function (`react_run`, `cot_run`, `io_run`, `reflexion_run`); all state lives in
the `Episode`, everything shared (model, tool, task, limits) in the `Agent`, so any number of
episodes run concurrently, each advancing as soon as its own call returns. A live view (the
demo) can follow an episode through the agent's optional hooks: ``on_action(ep, thought,
action)`` when the model has chosen a tool action, before the tool runs, and ``on_step(ep,
step)`` once each step is recorded; they must not block (they run on the episode's loop).

The trajectory text (and its chat messages) is written by `fireact.trajectory`: one
``Thought:`` / ``Action:`` / ``Observation:`` block per step, the thought line left out when the
model wrote none, as in FireAct's IO data. ``finish[x]`` ends the episode; its observation is
``Episode finished, reward = <r>`` (the task's exact match, written as FireAct's tasks do:
True/False for HotpotQA and Bamboogle, 1/0 for StrategyQA and MMLU). As in FireAct's inference,
the alpaca prompt holds the question without trailing whitespace; the few-shot prompt and the
chat message keep it as it is. Tool observations are put on one line (newlines → spaces).

The rules for one ReAct step (`ask_action`), in order:

1. Ask the model (few-shot and alpaca: prompt + trajectory + ``"Thought:"``, as FireAct asks
   both; chat: the messages), stop ``"\\nObservation:"``. An ``Action:`` line with text → done.
2. Otherwise re-ask the same prompt, up to ``max_reasks`` (5) more times, until one has an action.
3. Still none: the thought is the first line of the last output (ReAct's rule). If it is not
   empty and the format is a text format, one more call with prompt + ``"Thought: <thought>\\n
   Action:"``, stop ``"\\n"``; its stripped text, if not empty, is the action. (Chat APIs cannot
   continue a partial assistant turn, so chat skips this call.)
4. Still none: the action is ``finish[]`` (an empty answer, scored as such).

At most ``max_steps`` (11) steps; an episode that has not finished by then keeps
``finished = False``, no prediction, and scores 0. An action that does not parse as
``name[argument]`` or names no action of the tool gets ``Invalid action: ...`` as observation;
a tool that raises or exceeds ``tool_timeout`` gets ``Tool error: ...``; the episode goes on.
A `FireactError` (a user-fixable problem, e.g. a rejected API key) stops the whole run; any other
error of the model call ends the episode with ``error`` set.

CoT and IO (few-shot only) are one step: CoT asks prompt + ``"Thought:"`` (stop ``"\\n\\n"``)
and reads ``Answer: <x>``; IO asks prompt + ``"Answer:"`` (stop ``"\\n"``). Outputs without an
answer are re-asked as in 2; CoT then continues a thought with ``"\\nAnswer:"`` as in 3; still
none → ``finish[]``. They are recorded in FireAct's multimethod format: CoT as
``Thought: <reasoning>`` + ``Action: finish[<x>]``, IO as ``Action: finish[<x>]``.

Reflexion (needs gold answers: the reward decides whether to retry): a ReAct try; if its reward
is False and fewer than ``reflexion_tries`` tries were made, the model is shown
`prompts.REFLECTION_PROMPT` (the question and the failed trajectory; stop ``"\\n\\n"``) and its
answer, on one line, is added to the episode's reflections; the next try starts from scratch
with `prompts.reflections_block` put before the question (in every format). The record keeps
the last try's trajectory and the earlier tries under ``attempts``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from fireact import trajectory
from fireact.agent.parse import first_line, one_line, parse_action, parse_answer, parse_turn
from fireact.agent.prompts import REFLECTION_PROMPT, reflections_block
from fireact.errors import FireactError
from fireact.llm.base import LLM, Prompt
from fireact.runs import TOOL_ERROR, EpisodeCosts
from fireact.tasks.base import Answer, Example, Task
from fireact.tools.base import Tool, ToolState

OBSERVATION_STOP = ["\nObservation:"]


@dataclass
class Agent:
    """What all episodes of a run share: model, tool, task, prompt head and limits."""

    llm: LLM
    tool: Tool | None
    task: Task
    method: str = "react"
    format: str = "fewshot"
    head: str = ""  # few-shot prompt of the method (fewshot format only)
    max_steps: int = 11
    max_reasks: int = 5
    max_tokens: int = 256
    temperature: float = 0.0
    tool_timeout: float | None = 60.0
    reflexion_tries: int = 3
    tool_fail_limit: int = 10  # a tool failing on each of its first N calls stops the run
    # a live view of episodes (the demo): on_action(ep, thought, action) once the model has
    # chosen a tool action, before the tool is called; on_step(ep, step) once a step is recorded
    on_action: Callable[[Episode, str, str], None] | None = None
    on_step: Callable[[Episode, Step], None] | None = None

    def __post_init__(self) -> None:
        names = set(self.tool.actions) if self.tool is not None else set()
        self.actions = frozenset(names)
        listed = ", ".join(f"{a}[...]" for a in sorted(names | {"finish"}))
        self.valid_actions = f"Use one of: {listed}."
        self.tool_ok = 0  # tool calls that answered, across the run's episodes
        self.tool_failed = 0  # ... and that failed (a "Tool error: ..." observation)

    def count_tool_call(self, observation: str) -> None:
        """Count one tool call; a tool that has failed on every call so far, `tool_fail_limit`
        times, is broken (no key, server down, damaged index): stop the run instead of burning
        the whole range on error observations."""
        if not observation.startswith(TOOL_ERROR):
            self.tool_ok += 1
            return
        self.tool_failed += 1
        if self.tool_ok == 0 and self.tool_failed >= self.tool_fail_limit > 0:
            raise FireactError(
                f"the {self.tool.name if self.tool else ''} tool failed on each of its first "
                f"{self.tool_failed} calls ({observation.removeprefix(TOOL_ERROR).strip()}); "
                "stopping the run: fix the tool, then rerun with --resume"
            )


@dataclass
class Step(EpisodeCosts):
    """One model turn and what it led to, with the cost of getting there (`EpisodeCosts`)."""

    thought: str
    action: str
    observation: str


@dataclass
class Episode(EpisodeCosts):
    """The whole state of one episode (see the module doc for the rules that change it); its
    counters (calls, tokens, cost, time) are `EpisodeCosts`."""

    id: str
    question: str
    gold: Answer
    method: str = "react"
    format: str = "fewshot"
    prompt: str = ""  # text formats: the head of every prompt (examples/template + question)
    trajectory: str = ""
    messages: list[dict[str, str]] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finished: bool = False
    prediction: str | None = None
    em: bool = False
    f1: float = 0.0
    tries: int = 1
    reflections: list[str] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    tool_state: ToolState = field(default_factory=ToolState)


def new_episode(example: Example, agent: Agent) -> Episode:
    """A fresh episode for one example, with its prompt head built."""
    question = example.question if agent.tool is not None else agent.task.ask_without_tools(example)
    ep = Episode(example.id, question, example.answer, agent.method, agent.format)
    ep.tool_state = ToolState(episode_id=example.id)
    start_try(ep, agent)
    return ep


def start_try(ep: Episode, agent: Agent) -> None:
    """Build the prompt head and first message (reflections, if any, before the question)."""
    question = reflections_block(ep.reflections) + ep.question
    if agent.format == "fewshot":
        ep.prompt = agent.head + question + "\n"
    elif agent.format == "alpaca":  # FireAct's prepare_prompt(question.rstrip())
        ep.prompt = trajectory.alpaca_prompt(question.rstrip())
    else:
        ep.prompt = ""
    ep.messages = [{"role": "user", "content": question}]


# ------------------------------------------------------------------ calls


async def complete(ep: Episode, agent: Agent, prompt: Prompt, stop: list[str]) -> str:
    """One model call for this episode, counted into its totals."""
    out = await agent.llm.complete(
        prompt, stop=stop, max_tokens=agent.max_tokens, temperature=agent.temperature, key=ep.id
    )
    ep.llm_calls += 1
    ep.prompt_tokens += out.prompt_tokens
    ep.completion_tokens += out.completion_tokens
    ep.cost_usd += out.cost_usd
    ep.llm_latency_s += out.latency_s
    return out.text


def step_prompt(ep: Episode, agent: Agent) -> Prompt:
    """The prompt of the next ReAct turn in the episode's format."""
    if agent.format in ("fewshot", "alpaca"):
        return ep.prompt + ep.trajectory + "Thought:"
    return list(ep.messages)


async def ask_action(ep: Episode, agent: Agent) -> tuple[str, str]:
    """(thought, action) of the next ReAct turn, applying the re-ask rules 1-4."""
    prompt = step_prompt(ep, agent)
    turn = parse_turn(await complete(ep, agent, prompt, OBSERVATION_STOP))
    for _ in range(agent.max_reasks):
        if turn.action is not None:
            break
        ep.reasks += 1
        turn = parse_turn(await complete(ep, agent, prompt, OBSERVATION_STOP))
    if turn.action is not None:
        return turn.thought, turn.action
    thought = first_line(turn.thought)
    if thought and agent.format != "chat":
        head = ep.prompt + ep.trajectory + f"Thought: {thought}\nAction:"
        action = (await complete(ep, agent, head, ["\n"])).strip()
        if action:
            return thought, action
    return thought, "finish[]"


def finish(ep: Episode, agent: Agent, answer: str) -> str:
    """End the episode with `answer`, score it, and return the final observation."""
    score = agent.task.score(answer, ep.gold)
    ep.finished, ep.prediction = True, answer
    ep.em, ep.f1 = bool(score.em), float(score.f1)
    return trajectory.finish_observation(agent.task.reward_text(ep.em))


async def use_tool(ep: Episode, agent: Agent, action: str, call: tuple[str, str] | None) -> str:
    """The observation of a non-finish action; invalid actions and tool failures become text."""
    if call is None or call[0] not in agent.actions:
        return f"Invalid action: {action}. {agent.valid_actions}"
    name, argument = call
    started = time.perf_counter()
    try:
        async with asyncio.timeout(agent.tool_timeout):  # no extra task, unlike wait_for
            observation = one_line(await agent.tool(name, argument, ep.tool_state))  # type: ignore[misc]
    except FireactError:
        raise
    except TimeoutError:
        observation = f"{TOOL_ERROR} {name}[{argument}] timed out after {agent.tool_timeout:g} s."
    except Exception as exc:  # noqa: BLE001 - any tool failure is an observation, not a crash
        observation = one_line(f"{TOOL_ERROR} {type(exc).__name__}: {exc}")
    agent.count_tool_call(observation)
    latency = time.perf_counter() - started
    ep.tool_latency_s += latency
    ep.tool_calls.append(
        {"action": name, "argument": argument, "observation": observation, "latency_s": latency}
    )
    return observation


def add_step(
    ep: Episode, agent: Agent, thought: str, action: str, observation: str, before: tuple
) -> None:
    """Append a step to the trajectory text, the messages and the step list (then tell
    ``agent.on_step``)."""
    ep.trajectory += trajectory.render([trajectory.Step(thought, action, observation)])
    ep.messages.append({"role": "assistant", "content": trajectory.render_turn(thought, action)})
    ep.messages.append({"role": "user", "content": trajectory.render_observation(observation)})
    spent = {name: a - b for name, a, b in zip(COST_NAMES, _totals(ep), before, strict=True)}
    ep.steps.append(Step(thought, action, observation, **spent))
    if agent.on_step is not None:
        agent.on_step(ep, ep.steps[-1])


COST_NAMES = tuple(f.name for f in fields(EpisodeCosts))


def _totals(ep: Episode) -> tuple:
    """The episode's counters, in `COST_NAMES` order (a step records the difference)."""
    return tuple(getattr(ep, name) for name in COST_NAMES)


# ------------------------------------------------------------------ methods


async def react_step(ep: Episode, agent: Agent) -> None:
    """One ReAct step: ask for a thought and action, act, record."""
    before = _totals(ep)
    thought, action = await ask_action(ep, agent)
    call = parse_action(action)
    if call is not None and call[0] == "finish":
        observation = finish(ep, agent, call[1])
    else:
        if agent.on_action is not None:
            agent.on_action(ep, thought, action)
        observation = await use_tool(ep, agent, action, call)
    add_step(ep, agent, thought, action, observation, before)


async def react_run(ep: Episode, agent: Agent) -> None:
    """ReAct: steps until ``finish[...]`` or the step cap."""
    while not ep.finished and len(ep.steps) < agent.max_steps:
        await react_step(ep, agent)


async def ask_answer(
    ep: Episode, agent: Agent, prompt: str, stop: list[str], parse: Callable
) -> tuple[str, str | None]:
    """(thought, answer or None) for CoT/IO with the re-ask rule."""
    thought, answer = parse(await complete(ep, agent, prompt, stop))
    for _ in range(agent.max_reasks):
        if answer is not None:
            break
        ep.reasks += 1
        thought, answer = parse(await complete(ep, agent, prompt, stop))
    return thought, answer


def _io_parse(text: str) -> tuple[str, str | None]:
    return "", text.strip() or None


async def cot_run(ep: Episode, agent: Agent) -> None:
    """CoT: one call with the ``cot_*`` prompt; the answer is read from ``Answer: ...``."""
    before = _totals(ep)
    prompt = ep.prompt + "Thought:"
    thought, answer = await ask_answer(ep, agent, prompt, ["\n\n"], parse_answer)
    if answer is None:
        thought = first_line(thought)
        if thought:
            answer = (await complete(ep, agent, f"{prompt} {thought}\nAnswer:", ["\n"])).strip()
    action = f"finish[{answer or ''}]"
    add_step(ep, agent, thought, action, finish(ep, agent, answer or ""), before)


async def io_run(ep: Episode, agent: Agent) -> None:
    """IO: one call with the ``io_*`` prompt; the output is the answer."""
    before = _totals(ep)
    _, answer = await ask_answer(ep, agent, ep.prompt + "Answer:", ["\n"], _io_parse)
    answer = answer or ""
    add_step(ep, agent, "", f"finish[{answer}]", finish(ep, agent, answer), before)


async def reflect(ep: Episode, agent: Agent) -> str:
    """Ask the model why the last try failed; its answer on one line."""
    text = REFLECTION_PROMPT.format(question=ep.question, trajectory=ep.trajectory)
    prompt: Prompt = [{"role": "user", "content": text}] if agent.format == "chat" else text
    return one_line(await complete(ep, agent, prompt, ["\n\n"])).strip()


def archive_try(ep: Episode, reflection: str) -> None:
    """Keep the failed try under ``attempts`` and reset the episode for the next one."""
    ep.attempts.append(
        {
            "trajectory": ep.trajectory,
            "prediction": ep.prediction,
            "finished": ep.finished,
            "em": ep.em,
            "f1": ep.f1,
            "steps": len(ep.steps),
            "reflection": reflection,
        }
    )
    ep.reflections.append(reflection)
    ep.tries += 1
    ep.trajectory, ep.steps = "", []
    ep.finished, ep.prediction, ep.em, ep.f1 = False, None, False, 0.0
    ep.tool_state = ToolState(episode_id=ep.id, calls=ep.tool_state.calls)


async def reflexion_run(ep: Episode, agent: Agent) -> None:
    """Reflexion: ReAct tries, each failed one followed by a reflection, up to the try limit."""
    while True:
        await react_run(ep, agent)
        if ep.em or ep.tries >= agent.reflexion_tries:
            return
        archive_try(ep, await reflect(ep, agent))
        start_try(ep, agent)


async def run_episode(example: Example, agent: Agent) -> Episode:
    """Run one episode to its end; a model failure ends it with ``error`` set."""
    ep = new_episode(example, agent)
    try:
        from fireact.agent.methods import method_spec  # methods.py imports this module

        await method_spec(agent.method).run(ep, agent)
    except FireactError:
        raise
    except Exception as exc:  # noqa: BLE001 - one failed episode must not stop the run
        ep.error = one_line(f"{type(exc).__name__}: {exc}")
        ep.finished, ep.prediction, ep.em, ep.f1 = False, None, False, 0.0
    return ep

"""The agent: prompts, parsing, episodes (ReAct, CoT, IO, Reflexion) and the concurrent runner.

Public entry points: `run(RunOptions(...))` / `generate(...)` (sync), `arun` (async),
`options_from_dict` (CLI), and `run_episode` with an `Agent` for one episode at a time.
"""

from __future__ import annotations

from fireact.agent.episode import Agent, Episode, Step, run_episode
from fireact.agent.parse import parse_action, parse_answer, parse_turn
from fireact.agent.runner import RunOptions, arun, generate, options_from_dict, run

__all__ = [
    "Agent",
    "Episode",
    "RunOptions",
    "Step",
    "arun",
    "generate",
    "options_from_dict",
    "parse_action",
    "parse_answer",
    "parse_turn",
    "run",
    "run_episode",
]

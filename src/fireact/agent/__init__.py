"""The agent: prompts, parsing, methods, episodes (ReAct, CoT, IO, Reflexion) and the runner.

Public entry points: `run(RunOptions(...))` / `generate(...)` (sync), `arun` (async),
`options_from_dict` (CLI), `run_episode` with an `Agent` for one episode at a time, and the
method registry (`Method`, `METHOD_REGISTRY`, `method_spec`, `register_method`).
"""

from __future__ import annotations

from fireact.agent.episode import Agent, Episode, Step, run_episode
from fireact.agent.methods import METHOD_REGISTRY, Method, method_spec, register_method
from fireact.agent.options import RunOptions, options_from_dict
from fireact.agent.parse import parse_action, parse_answer, parse_turn
from fireact.agent.runner import arun, generate, run

__all__ = [
    "METHOD_REGISTRY",
    "Agent",
    "Episode",
    "Method",
    "RunOptions",
    "Step",
    "arun",
    "generate",
    "method_spec",
    "options_from_dict",
    "parse_action",
    "parse_answer",
    "parse_turn",
    "register_method",
    "run",
    "run_episode",
]

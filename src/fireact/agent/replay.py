"""Replaying recorded trajectories through the real runner.

A recorded episode (FireAct's alpaca ``output`` text, or our own ``trajectory``) is split into the
model's turns and the observations the tool gave; the turns become a scripted model and the
observations a `ReplayTool`, so the agent loop runs for real (parsing, stop strings, scoring,
the run file) and reproduces the recording. The quickstart uses this as its teacher: FireAct's
own GPT-4 trajectories stand in for calls to GPT-4.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fireact.errors import FireactError
from fireact.tools.base import ToolState
from fireact.trajectory import parse, render_turn


def split_trajectory(trajectory: str) -> tuple[list[str], list[str]]:
    """A trajectory text → (model turns, observations), one turn per observation.

    A turn is what the model wrote, ``Thought: ...\\nAction: ...`` (`fireact.trajectory.
    render_turn`); a turn after the last observation (cut short) is not replayed.
    """
    turns: list[str] = []
    observations: list[str] = []
    for step in parse(trajectory):
        if step.observation is not None:
            turns.append(render_turn(step.thought, step.action))
            observations.append(step.observation)
    return turns, observations


class ReplayTool:
    """Answers each episode's tool calls with its recorded observations, in order."""

    name = "replay"
    actions = frozenset({"search", "lookup"})

    def __init__(self, observations: Mapping[str, Sequence[str]]) -> None:
        self.observations = {k: list(v) for k, v in observations.items()}

    async def __call__(self, action: str, argument: str, state: ToolState) -> str:
        state.calls += 1
        recorded = self.observations.get(state.episode_id, [])
        if state.calls > len(recorded):
            return "None"  # the model went beyond the recording
        return recorded[state.calls - 1]

    async def aclose(self) -> None:
        return None


def write_replay_inputs(
    records: Sequence[Mapping[str, Any]], out_dir: Path, task: str = "hotpotqa"
) -> tuple[Path, Path, ReplayTool]:
    """Questions file, scripted-model file and replay tool for FireAct alpaca records.

    Each record's gold answer is the argument of its final ``finish[...]``, so a faithful replay
    scores reward 1 (these are FireAct's successful trajectories).
    """
    questions, turns, observations = [], {}, {}
    for i, rec in enumerate(records):
        model_turns, obs = split_trajectory(str(rec.get("output", "")))
        if not model_turns or "finish[" not in model_turns[-1]:
            raise FireactError(f"record {i}: its output has no finish[...] step to replay")
        key = f"{task}/replay/{i}"
        gold = model_turns[-1].split("finish[", 1)[1].rsplit("]", 1)[0]
        questions.append({"_id": key, "question": rec["instruction"], "answer": gold})
        turns[key], observations[key] = model_turns, obs[:-1]
    out_dir.mkdir(parents=True, exist_ok=True)
    questions_path, script_path = out_dir / "questions.json", out_dir / "teacher.json"
    questions_path.write_text(json.dumps(questions, ensure_ascii=False), encoding="utf-8")
    script_path.write_text(json.dumps(turns, ensure_ascii=False), encoding="utf-8")
    return questions_path, script_path, ReplayTool(observations)

"""What a fine-tuning record is about, read from its text alone: its method (react, cot, io,
reflexion), its task, its question and model text, and its Thought/Action format problems.

FireAct's sets carry no task or method fields, so `fireact data report` infers them here:
reflexion from FireAct's inline reflection cue, cot/io from the single finish step, MMLU from
the A-D options block, StrategyQA from a yes/no answer, else HotpotQA (approximate).
"""

from __future__ import annotations

import re
from typing import Any

from fireact import trajectory
from fireact.train.dataset import record_prompt

REFLEXION_CUE = "Now that I haven't solved the task within"  # FireAct's inline reflection cue
_REWARD = re.compile(r"Episode finished, reward = (True|False|1|0)")
_OPTIONS = re.compile(r"(^|\n)A\. [^\n]*\nB\. [^\n]*\nC\. [^\n]*\nD\. ")
_FINISH = re.compile(r"finish\[(.*)\]\s*$", re.DOTALL)


def model_text(record: dict[str, Any]) -> str:
    """The trajectory text of a record: the alpaca output, or the chat turns after the first."""
    if "messages" not in record:
        return record["output"]
    return "".join(m["content"] + "\n" for m in record["messages"][1:])


def question_text(record: dict[str, Any]) -> str:
    if "messages" not in record:
        return record_prompt(record) + record["output"].split("Thought:")[0]
    return record["messages"][0]["content"] if record["messages"] else ""


def infer_method(record: dict[str, Any]) -> str:
    """FireAct's method: reflexion (an inline reflection cue), cot / io (one ``finish`` step,
    with / without a thought; in alpaca also no final newline, as FireAct writes them), else
    react. A chat record of one Thought + finish step cannot tell react from cot: ``react|cot``."""
    if record.get("method"):
        return str(record["method"])
    text = model_text(record)
    found = trajectory.blocks(text, numbered=True)
    if any(b.kind == trajectory.THOUGHT and b.text.startswith(REFLEXION_CUE) for b in found):
        return "reflexion"
    actions = [b for b in found if b.kind == trajectory.ACTION]
    if len(actions) != 1 or not actions[0].text.startswith("finish["):
        return "react"
    has_thought = any(b.kind == trajectory.THOUGHT for b in found)
    if "messages" not in record:
        if record["output"].endswith("\n"):
            return "react"
        return "cot" if has_thought else "io"
    return "react|cot" if has_thought else "io"


def infer_task(record: dict[str, Any]) -> str:
    """FireAct's task: mmlu (a ``Question:`` or A-D options), hotpotqa (a True/False reward, as
    FireAct's hotpotqa prints it), strategyqa (a yes/no answer), else hotpotqa."""
    if record.get("task"):
        return str(record["task"])
    question, text = question_text(record), model_text(record)
    if question.lstrip().startswith("Question:") or _OPTIONS.search(question + "\n" + text):
        return "mmlu"
    rewards = _REWARD.findall(text)
    if rewards and rewards[-1] in ("True", "False"):
        return "hotpotqa"
    actions = [b for b in trajectory.blocks(text) if b.kind == trajectory.ACTION]
    answer = _FINISH.match(actions[-1].text.strip()) if actions else None
    if answer and answer.group(1).strip().lower() in ("yes", "no"):
        return "strategyqa"
    return "hotpotqa"


def parse_problems(record: dict[str, Any]) -> list[str]:
    """What in the record's Thought/Action text the parser cannot read as steps."""
    problems = []
    if "messages" in record:
        for k, message in enumerate(record["messages"]):
            kinds = {b.kind for b in trajectory.blocks(message["content"], numbered=True)}
            if message["role"] == "assistant" and trajectory.ACTION not in kinds:
                problems.append(f"message {k}: an assistant turn with no 'Action:'")
    text = model_text(record)
    steps = trajectory.parse(text, numbered=True)
    if not steps:
        return [*problems, "no Thought/Action block"]
    for n, step in enumerate(steps, 1):
        if step.action is None and step.observation is not None:
            problems.append(f"step {n}: an observation with no action before it")
    return problems

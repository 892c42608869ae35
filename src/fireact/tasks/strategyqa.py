"""StrategyQA: yes/no questions needing implicit reasoning steps, scored by the yes/no prefix rule.

Splits ``dev``, ``test`` (no gold) and ``train_filtered`` as shipped; the gold is a bool.
"""

from __future__ import annotations

from fireact.resources import resource
from fireact.tasks.base import TaskSpec, reward_int, score_strategyqa
from fireact.tasks.loaders import json_questions

SPEC = TaskSpec(
    name="strategyqa",
    read=json_questions("strategyqa", id_field="qid", answer_type=bool, answer_kind="true/false"),
    splits={
        split: resource("strategyqa", f"strategyqa_{split}.json")
        for split in ("dev", "test", "train_filtered")
    },
    default_split="dev",
    scorer=score_strategyqa,
    prompt_task="strategyqa",
    reward_text=reward_int,
    unlabelled=frozenset({"test"}),
    summary="yes/no questions needing implicit reasoning (JSON with a bool answer)",
)

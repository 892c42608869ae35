"""HotpotQA, the paper's main task: multi-hop questions, EM / F1 on SQuAD-normalised answers.

Splits ``dev`` and ``test`` (no gold) as shipped; ``--data`` takes any HotpotQA-format JSON file
(the distractor and fullwiki files too: their extra fields are ignored).
"""

from __future__ import annotations

from fireact.resources import resource
from fireact.tasks.base import TaskSpec, score_qa
from fireact.tasks.loaders import json_questions

SPEC = TaskSpec(
    name="hotpotqa",
    read=json_questions("hotpotqa", id_field="_id", answer_type=str, answer_kind="a string"),
    splits={split: resource("hotpotqa", f"{split}.json") for split in ("dev", "test")},
    default_split="dev",
    scorer=score_qa,
    prompt_task="hotpotqa",
    unlabelled=frozenset({"test"}),
    summary="multi-hop Wikipedia questions (HotpotQA format JSON)",
)

"""Readers of task files shared by several tasks (and open to plug-ins).

Owns `json_questions`: the reader of a JSON list of ``{question, answer?, <id>?}`` records, the
format of HotpotQA and StrategyQA. Each reader returns examples with a stable id, the question
text exactly as the paper's agent sees it (SPEC §1) and the gold answer (None when a record has
none, as on unlabelled test splits). The formats of one task only live in that task's module.
"""

from __future__ import annotations

from pathlib import Path

from fireact.errors import FireactError
from fireact.files import read_json
from fireact.tasks.base import Example, Reader, require
from fireact.tasks.mmlu import mmlu_subjects

__all__ = ["json_questions", "mmlu_subjects"]


def json_questions(
    task: str,
    id_field: str = "id",
    answer_type: type | tuple[type, ...] = str,
    answer_kind: str = "a string",
) -> Reader:
    """A reader of a JSON list of questions: a record's id is its `id_field` or
    ``{task}/{split}/{index}``; an answer, when present, must be an `answer_type`."""

    def read(path: Path, split: str) -> list[Example]:
        records = read_json(path)
        if not isinstance(records, list):
            raise FireactError(
                f"{path}: expected a JSON list of questions, got {type(records).__name__}"
            )
        examples = []
        for i, rec in enumerate(records):
            where = f"{path}: record {i}"
            question = require(rec, "question", str, where)
            answer = rec.get("answer")
            if answer is not None and not isinstance(answer, answer_type):
                raise FireactError(
                    f"{where}: field 'answer' should be {answer_kind}, got {answer!r}"
                )
            ex_id = rec.get(id_field) or f"{task}/{split}/{i}"
            examples.append(Example(str(ex_id), question, answer))
        return examples

    return read

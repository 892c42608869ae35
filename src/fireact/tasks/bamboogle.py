"""Bamboogle: two-hop questions Google answers wrongly; a CSV ``Question,Answer``, scored like
HotpotQA, with HotpotQA's prompts."""

from __future__ import annotations

from pathlib import Path

from fireact.errors import FireactError
from fireact.files import read_csv_rows
from fireact.resources import resource
from fireact.tasks.base import Example, TaskSpec, score_qa


def read_bamboogle(path: Path, split: str) -> list[Example]:
    """A CSV with a header row naming the columns ``Question`` and ``Answer``."""
    rows = read_csv_rows(path)
    if not rows:
        raise FireactError(f"{path}: empty CSV, expected a header 'Question,Answer'")
    header = [h.strip() for h in rows[0]]
    if "Question" not in header or "Answer" not in header:
        raise FireactError(
            f"{path}:1: header must name columns 'Question' and 'Answer', got {header}"
        )
    q_col, a_col = header.index("Question"), header.index("Answer")
    examples = []
    for i, row in enumerate(rows[1:]):
        if len(row) <= max(q_col, a_col):
            raise FireactError(f"{path}:{i + 2}: expected {len(header)} columns, got {len(row)}")
        examples.append(Example(f"bamboogle/{split}/{i}", row[q_col], row[a_col]))
    return examples


SPEC = TaskSpec(
    name="bamboogle",
    read=read_bamboogle,
    splits={"test": resource("bamboogle", "test.csv")},
    scorer=score_qa,
    prompt_task="hotpotqa",
    summary="two-hop questions search engines answer wrongly (CSV Question,Answer)",
)

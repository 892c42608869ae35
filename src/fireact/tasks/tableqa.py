"""TableQA: questions over the question's own tables (the `fireact.tableqa` package), answered
with the ``sql`` and ``calculate`` tools; numeric answers within a relative tolerance, text by
the official normalisation (`fireact.tableqa.score`). Its own few-shot prompts: ReAct (table
actions), and CoT / IO over the same four worked examples (``resources/prompts/tableqa``, whose
``examples.jsonl`` holds those examples' full tables), each example's tables written after its
question by `question_with_tables`, since these methods have no tool to read them with."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fireact.resources import resource
from fireact.tableqa.data import TableData, TableQAExample, read_tableqa
from fireact.tableqa.score import score_tableqa
from fireact.tasks.base import TaskSpec, reward_int

HERE = Path(__file__).resolve().parent.parent / "tableqa"
PROMPTS = resource("prompts", "tableqa")  # cot.txt, io.txt and the examples they show


def table_text(table: TableData) -> str:
    """One table as the CoT / IO prompts show it: ``Table NAME (N rows):``, then the header and
    each row on a line of their own, cells joined by `` | `` and written as the sql tool writes
    them (``NULL`` for a missing value)."""
    from fireact.tools.sql_render import format_value  # imports duckdb: only when rendering

    rows = len(table.rows)
    lines = [f"Table {table.name} ({rows} row{'' if rows == 1 else 's'}):"]
    lines += [" | ".join(format_value(cell) for cell in row) for row in [table.header, *table.rows]]
    return "\n".join(lines)


def question_with_tables(question: str, tables: Sequence[TableData]) -> str:
    """A question with its tables after it: what a method without tools (CoT, IO) is asked."""
    return "\n".join([question.rstrip(), *(table_text(t) for t in tables)])


def example_text(example: TableQAExample) -> str:
    """`question_with_tables` of one table-QA example."""
    return question_with_tables(example.question, example.tables)


SPEC = TaskSpec(
    name="tableqa",
    read=read_tableqa,
    splits={"dev": HERE / "data" / "dev.jsonl", "test": HERE / "data" / "test.jsonl"},
    scorer=score_tableqa,
    prompt_task="tableqa",
    reward_text=reward_int,
    prompts={"react": HERE / "prompt.txt", "cot": PROMPTS / "cot.txt", "io": PROMPTS / "io.txt"},
    tool_free_question=example_text,  # type: ignore[arg-type]  # its examples are TableQAExamples
    summary="generated questions over tables (sql / calculate tools; JSONL question,answer,tables)",
)

"""The table-QA task (``tableqa``): questions answered from one or two small tables.

Owns the task's pieces, one module each: `generate` (the seeded generator of realistic tables
and verified questions, and the shipped ``data/dev.jsonl`` / ``data/test.jsonl`` it wrote),
`data` (reading a split or a user's ``{question, answer, tables}`` JSONL into examples that carry
their tables) and `score` (numeric answers within a relative tolerance, text answers by the
official HotpotQA normalisation). ``prompt.txt`` is the few-shot ReAct prompt with the
``tables[]`` / ``sql[...]`` / ``calculate[...]`` tools. The task registry and the SQL tool live
elsewhere and use these.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).parent
DATA_DIR = PACKAGE_DIR / "data"
SPLITS = {"dev": DATA_DIR / "dev.jsonl", "test": DATA_DIR / "test.jsonl"}
PROMPT_FILE = PACKAGE_DIR / "prompt.txt"

__all__ = ["DATA_DIR", "PACKAGE_DIR", "PROMPT_FILE", "SPLITS"]

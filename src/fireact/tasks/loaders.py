"""Loaders for the four tasks of the paper, from the shipped data or a user's own file.

Each loader returns a `Task` whose examples carry a stable id, the question text exactly as
the paper's agent sees it (SPEC §1) and the gold answer (None on unlabelled test splits).
"""

from __future__ import annotations

from pathlib import Path

from fireact.errors import FireactError
from fireact.files import read_csv_rows, read_json
from fireact.resources import resource
from fireact.tasks.base import Example, Task, require, score_mmlu, score_qa, score_strategyqa

HOTPOTQA_SPLITS = ("dev", "test")
BAMBOOGLE_SPLITS = ("test",)
STRATEGYQA_SPLITS = ("dev", "test", "train_filtered")
MMLU_SPLITS = ("dev", "val", "test")


def _check_split(task: str, split: str, allowed: tuple[str, ...]) -> None:
    if split not in allowed:
        raise FireactError(
            f"unknown split '{split}' for task {task}: choose one of {', '.join(allowed)}"
        )


def _json_questions(
    path: Path, task: str, split: str, id_field: str, answer_type: type, answer_kind: str
) -> list[Example]:
    """Examples of a JSON list of ``{question, answer?, <id_field>?}`` records."""
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
            raise FireactError(f"{where}: field 'answer' should be {answer_kind}, got {answer!r}")
        ex_id = rec.get(id_field) or f"{task}/{split}/{i}"
        examples.append(Example(str(ex_id), question, answer))
    return examples


def load_hotpotqa(split: str = "dev", path: Path | None = None) -> Task:
    """HotpotQA: ``dev``/``test`` as shipped, or any HotpotQA-format JSON file (incl. distractor)."""
    if path is None:
        _check_split("hotpotqa", split, HOTPOTQA_SPLITS)
        path = resource("hotpotqa", f"{split}.json")
    else:
        split = Path(path).stem
    examples = _json_questions(path, "hotpotqa", split, "_id", str, "a string")
    return Task("hotpotqa", split, examples, score_qa, "hotpotqa", str(path))


def load_bamboogle(split: str = "test", path: Path | None = None) -> Task:
    """Bamboogle: a CSV with a header row ``Question,Answer``; scored like HotpotQA."""
    if path is None:
        _check_split("bamboogle", split, BAMBOOGLE_SPLITS)
        path = resource("bamboogle", "test.csv")
    else:
        split = Path(path).stem
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
    return Task("bamboogle", split, examples, score_qa, "hotpotqa", str(path))


def load_strategyqa(split: str = "dev", path: Path | None = None) -> Task:
    """StrategyQA: ``dev``/``test``/``train_filtered``; gold is a bool (absent on test)."""
    if path is None:
        _check_split("strategyqa", split, STRATEGYQA_SPLITS)
        path = resource("strategyqa", f"strategyqa_{split}.json")
    else:
        split = Path(path).stem
    examples = _json_questions(path, "strategyqa", split, "qid", bool, "true/false")
    return Task("strategyqa", split, examples, score_strategyqa, "strategyqa", str(path))


def mmlu_subjects(split: str = "test", folder: Path | None = None) -> list[str]:
    """The MMLU subjects present for a split, sorted by name."""
    folder = Path(folder) if folder is not None else resource("mmlu", split)
    suffix = f"_{split}.csv"
    return sorted(p.name[: -len(suffix)] for p in folder.glob(f"*{suffix}"))


def format_mmlu_question(question: str, options: list[str]) -> str:
    """The paper's MMLU question text: the question, then the four lettered options."""
    lettered = "\n".join(f"{letter}. {text}" for letter, text in zip("ABCD", options, strict=True))
    return f"Question: {question}\n{lettered}"


def load_mmlu(split: str = "test", subject: str | None = None, path: Path | None = None) -> Task:
    """MMLU: all subjects of a split (sorted by subject) or one; rows ``q,A,B,C,D,letter``."""
    if path is not None:
        files = [Path(path)]
        split = Path(path).stem
    else:
        _check_split("mmlu", split, MMLU_SPLITS)
        subjects = mmlu_subjects(split)
        if subject is not None:
            if subject not in subjects:
                raise FireactError(
                    f"unknown MMLU subject '{subject}': see `fireact tasks` for the list"
                )
            subjects = [subject]
        files = [resource("mmlu", split, f"{s}_{split}.csv") for s in subjects]
    examples = []
    for file in files:
        name = file.stem.removesuffix(f"_{split}") if path is None else file.stem
        for i, row in enumerate(read_csv_rows(file)):
            if len(row) != 6:
                raise FireactError(
                    f"{file}:{i + 1}: expected 6 columns (q,A,B,C,D,answer), got {len(row)}"
                )
            letter = row[5].strip()
            if letter not in ("A", "B", "C", "D"):
                raise FireactError(f"{file}:{i + 1}: answer must be A, B, C or D, got {letter!r}")
            question = format_mmlu_question(row[0], row[1:5])
            examples.append(Example(f"mmlu/{split}/{name}/{i}", question, letter))
    source = str(path) if path is not None else str(resource("mmlu", split))
    return Task("mmlu", split, examples, score_mmlu, "mmlu", source)

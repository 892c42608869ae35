"""MMLU: four-option multiple choice over 57 subjects, scored by the answer-letter prefix rule.

Splits ``dev``, ``val`` and ``test`` as shipped, each a folder of ``{subject}_{split}.csv`` files
(rows ``question,A,B,C,D,letter``, no header) read in subject order; ``--subject`` picks one.
"""

from __future__ import annotations

from pathlib import Path

from fireact.errors import FireactError
from fireact.files import read_csv_rows
from fireact.resources import resource
from fireact.tasks.base import Example, TaskSpec, reward_int, score_mmlu


def mmlu_subjects(split: str = "test", folder: Path | None = None) -> list[str]:
    """The MMLU subjects present for a split, sorted by name."""
    folder = Path(folder) if folder is not None else resource("mmlu", split)
    suffix = f"_{split}.csv"
    return sorted(p.name[: -len(suffix)] for p in folder.glob(f"*{suffix}"))


def subject_files(folder: Path, split: str, subject: str | None) -> list[Path]:
    """The files of a split folder in subject order, or of one subject."""
    subjects = mmlu_subjects(split, folder)
    if subject is not None:
        if subject not in subjects:
            raise FireactError(
                f"unknown MMLU subject '{subject}': see `fireact tasks` for the list"
            )
        subjects = [subject]
    return [Path(folder) / f"{s}_{split}.csv" for s in subjects]


def format_mmlu_question(question: str, options: list[str]) -> str:
    """The paper's MMLU question text: the question, then the four lettered options."""
    lettered = "\n".join(f"{letter}. {text}" for letter, text in zip("ABCD", options, strict=True))
    return f"Question: {question}\n{lettered}"


def read_mmlu(path: Path, split: str) -> list[Example]:
    """One MMLU CSV; ids ``mmlu/{split}/{subject}/{row}`` (a user's file: its name for both)."""
    file = Path(path)
    name = file.stem.removesuffix(f"_{split}")
    examples = []
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
    return examples


SPEC = TaskSpec(
    name="mmlu",
    read=read_mmlu,
    splits={split: resource("mmlu", split) for split in ("dev", "val", "test")},
    default_split="test",
    scorer=score_mmlu,
    prompt_task="mmlu",
    reward_text=reward_int,
    subject_files=subject_files,
    summary="four-option multiple choice over 57 subjects (CSV q,A,B,C,D,letter)",
)

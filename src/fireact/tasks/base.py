"""What a task is: its spec, a loaded split (examples with stable ids, a scorer), the paper's
episode selection.

Owns `TaskSpec` (everything fireact needs to know about a task: where its splits are, how to read
its files, how to score and reward an answer, which prompts fit it; the task registry in
`fireact.tasks` holds them), `Task` (one loaded split), the scorers of the paper's tasks, the two
ways FireAct writes the reward, and `select_indices`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fireact.errors import FireactError
from fireact.tasks import metrics

Answer = str | bool | None


@dataclass(frozen=True)
class Example:
    """One question of a task: a stable id, the question text the agent sees, the gold answer."""

    id: str
    question: str
    answer: Answer


@dataclass(frozen=True)
class Score:
    """The score of one prediction: exact match (the paper's reward) and token F1."""

    em: bool
    f1: float


def score_qa(prediction: str, gold: Answer) -> Score:
    """HotpotQA / Bamboogle: EM and F1 on SQuAD-normalised strings."""
    gold_text = "" if gold is None else str(gold)
    return Score(metrics.exact_match(prediction, gold_text), metrics.f1(prediction, gold_text))


def score_strategyqa(prediction: str, gold: Answer) -> Score:
    """StrategyQA: the yes/no prefix rule; F1 equals EM. A gold given as text ("yes"/"no",
    "true"/"false", as some files spell it) counts by its meaning, not by being non-empty."""
    if isinstance(gold, str):
        gold = gold.strip().lower() in ("yes", "true")
    ok = metrics.strategyqa_correct(prediction, bool(gold))
    return Score(ok, float(ok))


def score_mmlu(prediction: str, gold: Answer) -> Score:
    """MMLU: the answer-letter prefix rule; F1 equals EM."""
    ok = metrics.mmlu_correct(prediction, str(gold))
    return Score(ok, float(ok))


Scorer = Callable[[str, Answer], Score]
Reader = Callable[[Path, str], Sequence[Example]]  # (file, split) -> the file's examples
RewardText = Callable[[bool], str]


def reward_bool(em: bool) -> str:
    """The reward as FireAct's QA tasks (HotpotQA, Bamboogle) return it: "True" / "False"."""
    return str(em)


def reward_int(em: bool) -> str:
    """The reward as FireAct's StrategyQA and MMLU return it: "1" / "0"."""
    return str(int(em))


@dataclass(frozen=True)
class Task:
    """A loaded split of a task: its examples and how to score a prediction against gold."""

    name: str
    split: str
    examples: Sequence[Example]
    scorer: Scorer
    prompt_task: str  # which FireAct prompt family this task uses (hotpotqa/strategyqa/mmlu)
    source: str = ""  # the file or folder the examples came from
    reward: RewardText | None = None  # the spec's reward rule; None: by the prompt family
    # how an episode without a tool (CoT, IO) is asked an example; None: its question as it is
    tool_free_question: Callable[[Example], str] | None = None

    def ask_without_tools(self, example: Example) -> str:
        """The question an episode with no tool gets (the task's `tool_free_question`, e.g. the
        question with its tables written out, since nothing can look them up)."""
        hook = self.tool_free_question
        return example.question if hook is None else hook(example)

    def reward_text(self, em: bool) -> str:
        """How the final observation writes the reward (the task spec's `reward_text`); a task
        built by hand follows its prompt family: "1"/"0" for StrategyQA and MMLU, else a bool."""
        if self.reward is not None:
            return self.reward(em)
        return reward_int(em) if self.prompt_task in ("strategyqa", "mmlu") else reward_bool(em)

    def score(self, prediction: str, gold: Answer) -> Score:
        """Score one prediction against one gold answer; no gold (a test split) scores 0."""
        if gold is None:
            return Score(False, 0.0)
        return self.scorer(prediction, gold)

    def select(
        self, start: int = 0, end: int | None = None, shuffle: bool = False
    ) -> list[Example]:
        """The paper's episode selection (see `select_indices`)."""
        return [self.examples[i] for i in select_indices(len(self.examples), start, end, shuffle)]


@dataclass(frozen=True)
class TaskSpec:
    """Everything fireact needs to know about a task; registering one (`fireact.tasks`) makes it
    a ``--task`` of `fireact run` / `generate` / `score` and a line of `fireact tasks`.

    A split is loaded by reading its shipped file with `read`; a user's own file in the task's
    format (``--data``) is read the same way, its split named after the file. A task whose
    splits are folders of per-subject files (MMLU) gives `subject_files` as well.
    """

    name: str
    read: Reader  # the examples of one file in the task's format
    splits: Mapping[str, Path]  # shipped split -> its file (a folder, with `subject_files`)
    scorer: Scorer  # (prediction, gold) -> EM / F1; a missing gold is never passed
    prompt_task: str  # the FireAct prompt family that fits: hotpotqa, strategyqa or mmlu
    default_split: str | None = None  # None: the first of `splits`
    reward_text: RewardText = reward_bool  # the reward in the final observation (default: a bool)
    unlabelled: frozenset[str] = field(default_factory=frozenset)  # splits without gold answers
    # (folder, split, subject or None) -> the split's files, in order; unknown subject: an error
    subject_files: Callable[[Path, str, str | None], list[Path]] | None = None
    summary: str = ""  # one line for listings and docs
    # its own few-shot prompt files by method kind (react / cot / io), instead of FireAct's
    prompts: Mapping[str, Path] = field(default_factory=dict)
    # the question as an episode without a tool (CoT, IO) is asked it; None: unchanged
    tool_free_question: Callable[[Example], str] | None = None

    REQUIRED = ("name", "read", "splits", "scorer", "prompt_task")

    @property
    def default(self) -> str:
        """The split used when none is given."""
        return self.default_split or next(iter(self.splits))

    def labelled(self, split: str) -> bool:
        """Whether a shipped split has gold answers."""
        return split not in self.unlabelled

    def problems(self) -> Iterator[str]:
        """What is wrong with the spec (the registry refuses it with these)."""
        for part in ("read", "scorer", "reward_text"):
            if not callable(getattr(self, part)):
                yield f"{part} must be a function"
        for part in ("subject_files", "tool_free_question"):
            if getattr(self, part) is not None and not callable(getattr(self, part)):
                yield f"{part} must be a function"
        if self.default_split is not None and self.default_split not in self.splits:
            yield f"default_split {self.default_split!r} is not one of its splits"
        if not set(self.unlabelled) <= set(self.splits):
            yield f"unlabelled names splits it does not have: {sorted(set(self.unlabelled) - set(self.splits))}"

    def load(
        self, split: str | None = None, *, path: Path | None = None, subject: str | None = None
    ) -> Task:
        """A shipped split (default: `default`), or the user's file `path` in this task's format;
        `subject` picks one subject of a split (tasks with `subject_files` only)."""
        split = split or self.default
        if path is None:
            if split not in self.splits:
                raise FireactError(
                    f"unknown split '{split}' for task {self.name}: choose one of {', '.join(self.splits)}"
                )
            source = self.splits[split]
            files = [source]
            if self.subject_files is not None:
                files = self.subject_files(source, split, subject)
        else:
            split = Path(path).stem
            source, files = path, [path]
        examples = [example for file in files for example in self.read(file, split)]
        return Task(
            self.name, split, examples, self.scorer, self.prompt_task, str(source),
            self.reward_text, self.tool_free_question,
        )  # fmt: skip


def select_indices(
    n: int, start: int = 0, end: int | None = None, shuffle: bool = False
) -> list[int]:
    """Indices of the episodes to run, exactly as the paper picks them.

    With ``shuffle`` (the CLI's ``--random``) all ``n`` indices are shuffled by
    ``random.Random(233)``, then ``[start:end]`` is taken. ``end=None`` means ``n``.
    """
    end = n if end is None else end
    if start < 0 or end < 0:
        raise FireactError(f"--start {start} / --end {end}: must not be negative")
    if start >= end:
        raise FireactError(f"--start {start} must be smaller than --end {end}")
    if end > n:
        raise FireactError(f"--end {end} is beyond the split, which has {n} examples")
    indices = list(range(n))
    if shuffle:
        random.Random(233).shuffle(indices)
    return indices[start:end]


def require(record: dict[str, Any], field: str, kind: type | tuple[type, ...], where: str) -> Any:
    """``record[field]`` checked for presence and type; the error names `where` and the field."""
    if not isinstance(record, dict):
        raise FireactError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if field not in record:
        raise FireactError(f"{where}: missing field '{field}'")
    value = record[field]
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise FireactError(
            f"{where}: field '{field}' should be {names}, got {type(value).__name__}"
        )
    return value

"""Converting runs reproduces FireAct's own fine-tuning sets (``data/finetune``), byte for byte.

For each shipped set, every alpaca record is turned back into the run record `fireact run` would
have written for it (method from its shape; reward ``True``/``False`` with the trajectory's final
newline, as our runner writes it; Reflexion as separate tries with the reflections apart; an
MMLU question with its options), those records go through `convert` (the code path of
``fireact convert``) to alpaca and to chat, and the results are compared with the shipped files:
the alpaca file byte for byte with the non-derivable records put back, each chat line byte for
byte against the lines of the shipped chat file (FireAct's chat files hold the same records in
another order). The records that cannot be derived are listed below by index (0-based: the
alpaca list index, the chat line index), each with its reason; a reason is checked on the
record, and the test fails if any other record cannot be derived.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from fireact.data.convert import convert
from tests.helpers.paths import SHARED_DATA

FINETUNE = SHARED_DATA / "finetune"
SETS = ("hotpotqa", "hotpotqa_multimethod", "multitask", "multitask_multimethod")

# The two texts FireAct's multimethod sets put inline at the start of a thought, each followed by
# " " and the model's own thought: we read each as a reflection between two tries.
CUES = (
    "Now that I haven't solved the task within 5 steps, let me do a reflection and think about"
    " how to improve my strategy.",
    "Now that I haven't solved the task within 9 steps, I need to wrap up and finish this task in"
    " the next step.",
)
_FINISH = re.compile(r"Observation: Episode finished, reward = (True|False|1|0)")
_STEP = re.compile(r"^(?:Thought|Action):", re.MULTILINE)
_MARKER = re.compile(r"^(Thought|Action|Observation):")
_RUN_SHAPE = re.compile(r"(?:T?AO)+")  # our runner's steps: (Thought) Action Observation


# ---------------------------------------------------------------- why a record is not derivable


@dataclass(frozen=True)
class Reason:
    """Why a shipped record cannot come out of `convert`, and a check that it holds."""

    text: str
    holds: Callable[[Any], bool]


def _lines(record: dict[str, str]) -> list[str]:
    return record["output"].rstrip("\n").split("\n")


def _pairs(record: dict[str, str]) -> list[tuple[str, str]]:
    return list(zip(_lines(record), _lines(record)[1:], strict=False))


QUESTION_IN_OUTPUT = Reason(
    "the question's lines after the first (MMLU options, a 'Yes or no:' line) open the output"
    " instead of closing the instruction",
    lambda r: _STEP.match(r["output"]) is None and "\nThought: " in r["output"],
)
TWO_OBSERVATIONS = Reason(
    "two observations in a row (a second 'Episode finished' line): no run writes that",
    lambda r: any(
        a.startswith("Observation:") and b.startswith("Observation:") for a, b in _pairs(r)
    ),
)
THOUGHT_WITHOUT_ACTION = Reason(
    "a thought followed by an observation with no action between: no run writes that",
    lambda r: any(a.startswith("Thought:") and b.startswith("Observation:") for a, b in _pairs(r)),
)
CHAT_TRAILING_SPACE = Reason(
    "the chat question keeps its trailing whitespace (every other chat set strips it)",
    lambda m: m[0]["content"] != m[0]["content"].rstrip(),
)
CHAT_SAME_ROLE = Reason(
    "two turns of one role in a row (the first 'Episode finished' observation is an assistant"
    " turn)",
    lambda m: any(a["role"] == b["role"] for a, b in zip(m, m[1:], strict=False)),
)
CHAT_ASSISTANT_FIRST = Reason(
    "starts with an assistant turn holding the question and the action",
    lambda m: m[0]["role"] == "assistant",
)
CHAT_TURN_WITHOUT_ACTION = Reason(
    "an assistant turn with no action (its alpaca record has a thought without an action)",
    lambda m: any(t["role"] == "assistant" and "\nAction: " not in t["content"] for t in m),
)


_HM, _MM = "hotpotqa_multimethod", "multitask_multimethod"


def _first_turns(name: str) -> list[dict[str, str]]:
    return [json.loads(line)["messages"][0] for line in shipped_chat(name)]


NO_CHAT_LINE_AT_ALL = Reason(
    "the chat file has no line for this IO row (734 alpaca records, 733 chat lines)",
    lambda r: all(t["content"] != r["instruction"].strip() for t in _first_turns(_HM)),
)
CHAT_LINE_ASSISTANT_FIRST = Reason(
    "an IO row 'Action: finish[Thought: ...]' whose chat line starts with an assistant turn",
    lambda r: (
        r["output"].startswith("Action: finish[Thought: ")
        and any(
            t["role"] == "assistant" and t["content"].startswith(r["instruction"] + "\n")
            for t in _first_turns(_MM)
        )
    ),
)
CHAT_LINE_KEEPS_SPACE = Reason(
    "its chat line keeps the question's trailing whitespace (hotpotqa.jsonl only)",
    lambda r: any(
        t["content"] == r["instruction"].lstrip() != r["instruction"].strip()
        for t in _first_turns("hotpotqa")
    ),
)

Listed = dict[int, tuple[Reason, ...]]


def listed(indices: Iterable[int], *reasons: Reason) -> Listed:
    """The same reasons for several indices."""
    return dict.fromkeys(indices, reasons)


# Alpaca records (list index) that no run record converts to.
NOT_DERIVABLE_ALPACA: dict[str, Listed] = {
    "hotpotqa": {},
    _HM: {},
    "multitask": listed(range(500, 956), QUESTION_IN_OUTPUT),
    _MM: {
        **listed([*range(500, 956), *range(1530, 1777), 1803], QUESTION_IN_OUTPUT),
        **listed(range(2040, 2047), QUESTION_IN_OUTPUT),
        **listed([2039, 2047], QUESTION_IN_OUTPUT, TWO_OBSERVATIONS),
        **listed([2048, 2056, 2057], TWO_OBSERVATIONS),
        **listed([2053, 2059, 2060, 2061, 2062], THOUGHT_WITHOUT_ACTION),
    },
}
# In hotpotqa.jsonl (same order as hotpotqa.json) the questions with trailing whitespace.
_SPACED = [5, 10, 17, 28, 54, 101, 139, 144, 192, 235, 271, 273, 302, 308, 335, 341, 363, 381]
_SPACED += [384, 406, 412, 425, 466, 470, 471, 492]
# Shipped chat lines (0-based) that no run record converts to.
NOT_DERIVABLE_CHAT: dict[str, Listed] = {
    "hotpotqa": listed(_SPACED, CHAT_TRAILING_SPACE),
    _HM: {},
    "multitask": {},
    _MM: {
        **listed([239, 993, 1490, 1587, 1830], CHAT_SAME_ROLE),  # alpaca 2056 2039 2048 2057 2047
        **listed([263, 282, 982, 991, 1396], CHAT_TURN_WITHOUT_ACTION),  # alpaca 2053 2059-2062
        **listed([1859, 2046], CHAT_ASSISTANT_FIRST),  # alpaca 1926 1816
    },
}
# Derivable alpaca records whose chat line is not in the shipped chat file.
NO_CHAT_LINE: dict[str, Listed] = {
    "hotpotqa": listed(_SPACED, CHAT_LINE_KEEPS_SPACE),
    _HM: listed([100], NO_CHAT_LINE_AT_ALL),
    "multitask": {},
    _MM: listed([1816, 1926], CHAT_LINE_ASSISTANT_FIRST),
}


# ---------------------------------------------------------------- shipped files → run records


@cache
def shipped_alpaca(name: str) -> tuple[str, list[dict[str, str]]]:
    text = (FINETUNE / "alpaca_format" / f"{name}.json").read_text(encoding="utf-8")
    return text, json.loads(text)


@cache
def shipped_chat(name: str) -> list[str]:
    return (FINETUNE / "gpt_format" / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()


def runner_text(text: str) -> str:
    """Steps as our runner writes them: the finish reward as True/False, a final newline."""
    lines = text.rstrip("\n").split("\n")
    match = _FINISH.fullmatch(lines[-1])
    if match:
        success = match.group(1) in ("True", "1")
        lines[-1] = f"Observation: Episode finished, reward = {success}"
    return "".join(line + "\n" for line in lines)


def run_shaped(text: str) -> bool:
    """Whether steps read as our runner writes them: ((Thought) Action Observation)+."""
    kinds = "".join(m.group(1)[0] for line in text.split("\n") if (m := _MARKER.match(line)))
    return _RUN_SHAPE.fullmatch(kinds) is not None


def split_tries(steps: str) -> tuple[list[tuple[str, str]], str]:
    """FireAct's Reflexion text → ([(earlier try, reflection after it)], last try)."""
    tries: list[tuple[str, str]] = []
    current: list[str] = []
    for line in steps.rstrip("\n").split("\n"):
        cue = next((c for c in CUES if line.startswith(f"Thought: {c} ")), None)
        if cue is None:
            current.append(line)
            continue
        tries.append(("".join(x + "\n" for x in current), cue))
        current = ["Thought: " + line[len(f"Thought: {cue} ") :]]
    return tries, "\n".join(current)


def method_of(output: str, steps: str) -> str:
    """FireAct's method of a record, read from its alpaca shape."""
    if any(f"Thought: {cue} " in steps for cue in CUES):
        return "reflexion"
    if output.endswith("\n"):
        return "react"
    return "cot" if steps.startswith("Thought:") else "io"


def run_record(index: int, record: dict[str, str]) -> dict[str, Any] | None:
    """The run record `fireact run` would write for a shipped alpaca record (None: none would)."""
    output = record["output"]
    first_step = _STEP.search(output)
    assert first_step is not None, f"record {index} has no step"
    lead, steps = output[: first_step.start()].rstrip("\n"), output[first_step.start() :]
    question = record["instruction"] + ("\n" + lead if lead else "")
    rewards = re.findall(r"Episode finished, reward = (True|False|1|0)", output)
    success = rewards[-1] in ("True", "1")
    method = method_of(output, steps)
    # FireAct prints hotpotqa rewards as True/False, strategyqa and mmlu ones as 1/0 (cot and io
    # rows print 1/0 in every task, so their task is not in their text and changes nothing).
    mmlu = record["instruction"].startswith("Question:")
    task = "mmlu" if mmlu else "hotpotqa" if rewards[-1] in ("True", "False") else "strategyqa"
    tries, last = split_tries(steps) if method == "reflexion" else ([], steps)
    if not all(run_shaped(text) for text in [*(t for t, _ in tries), last]):
        return None
    trajectory = runner_text(last)
    return {
        "id": str(index),
        "task": task,
        "split": "train",
        "method": method,
        "format": "fewshot",
        "question": question,
        "finished": True,
        "reward": success,
        "em": success,
        "f1": float(success),
        "steps": trajectory.count("\nAction: ") + trajectory.startswith("Action: "),
        "trajectory": trajectory,
        "tries": len(tries) + 1,
        "reflections": [reflection for _, reflection in tries],
        "attempts": [
            {"trajectory": text, "finished": False, "em": False, "reflection": reflection}
            for text, reflection in tries
        ],
        "error": None,
    }


@dataclass
class Conversion:
    """One shipped set converted back: our records/lines by alpaca index, what was not derived."""

    runs: dict[int, dict[str, Any]]
    not_run_shaped: list[int]
    alpaca: dict[int, dict[str, str]]
    chat: dict[int, str]


@cache
def converted(name: str, tmp: Path) -> Conversion:
    _, records = shipped_alpaca(name)
    runs: dict[int, dict[str, Any]] = {}
    not_run_shaped = []
    for index, record in enumerate(records):
        run = run_record(index, record)
        if run is None:
            not_run_shaped.append(index)
        else:
            runs[index] = run
    folder = tmp / name
    folder.mkdir(parents=True)
    lines = "".join(json.dumps(run) + "\n" for run in runs.values())
    (folder / "episodes.jsonl").write_text(lines, encoding="utf-8")
    options: dict[str, Any] = {"keep": "all", "dedupe": False}
    stats = convert([folder], "alpaca", folder / "train.json", **options)
    assert stats["kept"] == len(runs)
    convert([folder], "chat", folder / "train.jsonl", **options)
    alpaca = json.loads((folder / "train.json").read_text(encoding="utf-8"))
    chat = (folder / "train.jsonl").read_text(encoding="utf-8").splitlines()
    return Conversion(
        runs,
        not_run_shaped,
        dict(zip(runs, alpaca, strict=True)),
        dict(zip(runs, chat, strict=True)),
    )


@pytest.fixture(scope="module")
def tmp_sets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sets")


def pair_chat(name: str, tmp: Path) -> tuple[dict[int, int], list[int], list[int]]:
    """Match our chat lines to the shipped ones, equal bytes only: ({alpaca index: chat line},
    our unmatched alpaca indices, unmatched shipped line indices)."""
    ours: dict[str, list[int]] = defaultdict(list)
    for index, line in converted(name, tmp).chat.items():
        ours[line].append(index)
    pairs: dict[int, int] = {}
    unmatched_shipped = []
    for number, line in enumerate(shipped_chat(name)):
        if ours.get(line):
            pairs[ours[line].pop(0)] = number
        else:
            unmatched_shipped.append(number)
    return pairs, sorted(i for left in ours.values() for i in left), unmatched_shipped


# ---------------------------------------------------------------- tests


def unexplained(found: list[int], expected: Listed, record: Callable[[int], Any]) -> list[int]:
    """The found indices not listed, listed but not found, or listed with a reason that fails."""
    odd = set(found) ^ set(expected)
    odd |= {
        i for i in set(found) & set(expected) if not all(r.holds(record(i)) for r in expected[i])
    }
    return sorted(odd)


@pytest.mark.parametrize("name", SETS)
def test_alpaca_file_is_reproduced_byte_for_byte(name: str, tmp_sets: Path) -> None:
    text, records = shipped_alpaca(name)
    ours = converted(name, tmp_sets).alpaca
    listed_here = NOT_DERIVABLE_ALPACA[name]
    rebuilt = [record if i in listed_here else ours.get(i) for i, record in enumerate(records)]
    assert json.dumps(rebuilt, indent=4) == text


@pytest.mark.parametrize("name", SETS)
def test_only_the_listed_alpaca_records_are_not_derivable(name: str, tmp_sets: Path) -> None:
    _, records = shipped_alpaca(name)
    ours = converted(name, tmp_sets).alpaca
    missing = [i for i, record in enumerate(records) if ours.get(i) != record]
    assert unexplained(missing, NOT_DERIVABLE_ALPACA[name], records.__getitem__) == []


@pytest.mark.parametrize("name", SETS)
def test_only_the_listed_chat_lines_are_not_derivable(name: str, tmp_sets: Path) -> None:
    _, _, unmatched_shipped = pair_chat(name, tmp_sets)
    lines = shipped_chat(name)

    def messages(number: int) -> list[dict[str, str]]:
        return json.loads(lines[number])["messages"]

    assert unexplained(unmatched_shipped, NOT_DERIVABLE_CHAT[name], messages) == []


@pytest.mark.parametrize("name", SETS)
def test_every_derived_chat_line_is_shipped_but_the_listed(name: str, tmp_sets: Path) -> None:
    _, records = shipped_alpaca(name)
    _, unmatched_ours, _ = pair_chat(name, tmp_sets)
    assert unexplained(unmatched_ours, NO_CHAT_LINE[name], records.__getitem__) == []


@pytest.mark.parametrize(
    ("name", "methods"),
    [
        ("hotpotqa", {("react", 1): 500}),
        (
            "hotpotqa_multimethod",
            {("react", 1): 500, ("cot", 1): 186, ("io", 1): 1, ("reflexion", 2): 32}
            | {("reflexion", 3): 15},
        ),
        ("multitask", {("react", 1): 1344}),
        (
            "multitask_multimethod",
            {("react", 1): 1344, ("cot", 1): 646, ("io", 1): 2, ("reflexion", 2): 45}
            | {("reflexion", 3): 16},
        ),
    ],
)
def test_runs_derived_by_method_and_tries(
    name: str, methods: dict[tuple[str, int], int], tmp_sets: Path
) -> None:
    runs = converted(name, tmp_sets).runs.values()
    assert Counter((run["method"], run["tries"]) for run in runs) == methods


@pytest.mark.parametrize("name", SETS)
def test_records_no_run_writes_are_the_listed_shapes(name: str, tmp_sets: Path) -> None:
    shapes = (TWO_OBSERVATIONS, THOUGHT_WITHOUT_ACTION)
    listed_here = NOT_DERIVABLE_ALPACA[name]
    expected = [i for i, reasons in listed_here.items() if set(reasons) & set(shapes)]
    assert converted(name, tmp_sets).not_run_shaped == sorted(expected)

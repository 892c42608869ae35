"""The arith environment: shipped splits = the seeded generator, the exact-sign scorer, its
registration, and the scripted teacher solving episodes through the real runner and calculator."""

from __future__ import annotations

import json

import pytest

from fireact.agent import RunOptions, generate
from fireact.tasks import load_task, task_spec
from fireact.tasks.arith import HERE, SIZES, score_number, teacher_script, teacher_turns
from fireact.tasks.arith import generate as generate_split


def test_arith_splits_are_the_generators_output():
    for split in SIZES:
        assert json.loads((HERE / f"{split}.json").read_text()) == generate_split(split)
    dev = load_task("arith", "dev")
    assert (len(dev.examples), dev.examples[1].question, dev.examples[1].answer) == (
        200, "What is 12 minus 49?", "-37",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("prediction", "em"),
    [("-37", True), ("-37.", True), ("37", False), ("- 37", True), ("-38", False)],
)
def test_arith_score_keeps_the_sign(prediction, em):
    assert score_number(prediction, "-37").em is em


def test_arith_is_registered_with_its_react_prompt():
    spec = task_spec("arith")
    assert spec.default_split == "dev"
    assert spec.prompts["react"].read_text().startswith("Solve an arithmetic question")


def test_teacher_turns_call_the_calculator_then_finish():
    assert teacher_turns("What is 13 minus 40?", "-27") == [
        " I subtract 13 and 40.\nAction: calculate[13 - 40]",
        " The answer is -27.\nAction: finish[-27]",
    ]


def test_scripted_teacher_solves_every_episode_with_the_real_calculator(tmp_path):
    script = tmp_path / "teacher.json"
    script.write_text(json.dumps(teacher_script("dev")))
    options = RunOptions(
        task="arith", split="dev", end=30, model=f"scripted:{script}", tool="calculate",
        format="alpaca", out=tmp_path / "run", progress=False,
    )  # fmt: skip
    summary = generate(options)
    assert (summary["n"], summary["kept"], summary["em"]) == (30, 30, 1.0)
    records = [json.loads(line) for line in (tmp_path / "run" / "episodes.jsonl").open()]
    first = next(r for r in records if r["question"] == "What is 12 minus 49?")
    assert "Action: calculate[12 - 49]\nObservation: -37\n" in first["trajectory"]

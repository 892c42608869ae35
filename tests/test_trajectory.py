"""The trajectory text (fireact.trajectory): one writer, one parser, FireAct's data read exactly."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from fireact.agent.prompts import ALPACA_TEMPLATE as PROMPTS_TEMPLATE
from fireact.trajectory import (
    ALPACA_TEMPLATE,
    Block,
    Step,
    alpaca_prompt,
    blocks,
    finish_observation,
    parse,
    render,
    render_turn,
    split_alpaca_prompt,
)
from tests.helpers.paths import SHARED_DATA

HOTPOTQA = SHARED_DATA / "finetune" / "alpaca_format" / "hotpotqa.json"


def hotpotqa_rows() -> list[dict[str, str]]:
    if not HOTPOTQA.is_file():
        pytest.skip("FireAct's fine-tuning data is not available")
    return json.loads(HOTPOTQA.read_text(encoding="utf-8"))


def test_render_of_parse_is_each_of_fireacts_500_hotpotqa_trajectories():
    rows = hotpotqa_rows()
    assert len(rows) == 500
    steps = [parse(row["output"]) for row in rows]
    for row, row_steps in zip(rows, steps, strict=True):
        assert render(row_steps) == row["output"]
    assert sum(map(len, steps)) == 1385
    assert sorted(Counter(map(len, steps)).items()) == [
        (1, 1),
        (2, 176),
        (3, 273),
        (4, 37),
        (5, 13),
    ]
    actions = Counter(s.action.split("[", 1)[0] for row in steps for s in row if s.action)
    assert actions == {"search": 885, "finish": 500}
    assert all(row[-1].observation == "Episode finished, reward = True" for row in steps)
    assert all(s.thought and "\n" not in s.thought for row in steps for s in row)


def test_parse_reads_a_fireact_row_exactly():
    row = hotpotqa_rows()[108]
    assert parse(row["output"]) == [
        Step(
            "I need to search the year NSYNC was formed in Orlando, Florida.",
            "search[NSYNC formation year]",
            "1995",
        ),
        Step("I find the answer.", "finish[1995]", "Episode finished, reward = True"),
    ]


def test_render_writes_the_agents_text():
    steps = [
        Step("I should search X. ", "search[X]", "X is a town."),
        Step("", "finish[x]", finish_observation("True")),  # IO: no thought line
        Step("  ", "finish[]", ""),  # a blank thought is left out too
    ]
    assert render(steps) == (
        "Thought: I should search X. \nAction: search[X]\nObservation: X is a town.\n"
        "Action: finish[x]\nObservation: Episode finished, reward = True\n"
        "Action: finish[]\nObservation: \n"
    )
    assert render_turn("t", "a") == "Thought: t\nAction: a"
    assert render_turn("", "a") == "Action: a"
    assert render_turn("t", None) == "Thought: t"


def test_parse_keeps_what_is_written_and_leaves_the_preamble_out():
    text = (
        "A. one\nB. two\n"  # FireAct's MMLU rows: options before the first marker
        "Thought: a\nstill a\nThought: b\nAction: search[x]\nObservation: o\nmore o\n"
        "Observation: second\n"  # two observations in a row
        "Thought: c\nObservation: no action\n"
        "Action: finish[y]\nThought: after\n"  # cut short: no observation
    )
    assert parse(text) == [
        Step("a\nstill a\nThought: b", "search[x]", "o\nmore o"),
        Step("", None, "second"),
        Step("c", None, "no action"),
        Step("", "finish[y]\nThought: after", None),
    ]
    assert render(parse(text)) == text.removeprefix("A. one\nB. two\n")


def test_parse_of_a_cot_row_without_final_newline_and_of_numbered_markers():
    assert parse("Thought: r\nAction: finish[1]\nObservation: Episode finished, reward = 1") == [
        Step("r", "finish[1]", "Episode finished, reward = 1")
    ]
    numbered = "Thought 1: r\nAction 1: search[x]\nObservation 1: o\n"
    assert parse(numbered) == []  # strict: the whole text is a preamble
    assert parse(numbered, numbered=True) == [Step("r", "search[x]", "o")]
    assert parse("") == [] and parse("\n\n") == []


def test_blocks_spans_tile_the_text():
    text = "pre\nThought: a\n\nAction:b\nObservation: c\nd\n\n"
    found = blocks(text)
    assert found == [
        Block("", "pre"),
        Block("Thought", "a\n"),
        Block("Action", "b"),
        Block("Observation", "c\nd"),
    ]
    assert [b.start for b in found] == [0, 4, 16, 25]
    assert [b.end for b in found] == [4, 16, 25, len(text)]
    assert [text[b.start : b.body] for b in found] == ["", "Thought: ", "Action:", "Observation: "]
    assert blocks("Answer: x") == [Block("", "Answer: x")]
    assert blocks("Answer: x", answers=True) == [Block("Answer", "x")]
    assert Block("Action", "").render() == "Action:" and Block("", "p").render() == "p"


def test_the_alpaca_template_is_spelled_once():
    assert PROMPTS_TEMPLATE is ALPACA_TEMPLATE
    prompt = alpaca_prompt("Who?")
    assert prompt == (
        "Below is an instruction that describes a task. Write a response that appropriately "
        "completes the request.\n\n### Instruction:\nWho?\n\n### Response:\n"
    )
    assert split_alpaca_prompt(prompt + "Thought: x\n") == ("Who?", "Thought: x\n")
    assert split_alpaca_prompt("Who?\nThought: x\n") is None
    assert "### Input:\nctx\n\n### Response:\n" in alpaca_prompt("Who?", "ctx")

"""Parsing model output: thought/action split, ``name[argument]``, CoT answers, prompt files."""

from __future__ import annotations

import pytest

from fireact.agent.parse import first_line, one_line, parse_action, parse_answer, parse_turn
from fireact.agent.prompts import ALPACA_TEMPLATE, fewshot_prompt, reflections_block, wiki_prompt


@pytest.mark.parametrize(
    ("text", "thought", "action"),
    [
        # few-shot: the prompt ended in "Thought:", the model continues
        (" I need to search X.\nAction: search[X]", "I need to search X.", "search[X]"),
        # fine-tuned / chat: the model writes the markers itself
        ("Thought: Found it.\nAction: finish[Richard Nixon]", "Found it.", "finish[Richard Nixon]"),
        # IO-style turn without a thought
        ("Action: finish[A]", "", "finish[A]"),
        # ReAct's numbered markers
        ("Thought 2: hmm\nAction 2: Search[High Plains]", "hmm", "Search[High Plains]"),
        # only the action line counts; trailing text on later lines is ignored
        (" a\nAction: search[q]\nThought: more", "a", "search[q]"),
        # the first marker wins; spaces around the action are stripped
        (" t\nAction:   lookup[x]  \nAction: finish[y]", "t", "lookup[x]"),
        # trailing spaces of a thought are the model's (FireAct's data has them); breaks go
        (" gin and tequila. \nAction: search[q]", "gin and tequila. ", "search[q]"),
        # multi-line thoughts are kept as written
        (" line one\nline two\nAction: search[q]", "line one\nline two", "search[q]"),
        # no marker, or nothing after it on its line: no action
        (" I am thinking.", "I am thinking.", None),
        (" I am thinking.\nAction:", "I am thinking.", None),
        (" I am thinking.\nAction:\nsearch[x]", "I am thinking.", None),
        ("", "", None),
        # "Action:" must start a word: "Reaction:" is not a marker
        (" Chemical Reaction: fast", "Chemical Reaction: fast", None),
    ],
)
def test_parse_turn(text, thought, action):
    assert parse_turn(text) == (thought, action)


@pytest.mark.parametrize(
    ("action", "parsed"),
    [
        ("search[Milhouse]", ("search", "Milhouse")),
        ("Search[Milhouse]", ("search", "Milhouse")),
        ("FINISH[yes]", ("finish", "yes")),
        ("finish[]", ("finish", "")),
        # argument = between the first "[" and the last "]", kept exactly
        ("search[list [1] of things]", ("search", "list [1] of things")),
        ("search[ spaced ]", ("search", " spaced ")),
        ("finish[a] and more]", ("finish", "a] and more")),
        ("search[x] trailing", ("search", "x")),
        (" search [x]", ("search", "x")),
        # malformed
        ("search", None),
        ("search x]", None),
        ("search[x", None),
        ("[x]", None),
        ("two words[x]", None),
        ("search]x[", None),
    ],
)
def test_parse_action(action, parsed):
    assert parse_action(action) == parsed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            " Milhouse was named after Nixon.\nAnswer: Richard Nixon",
            ("Milhouse was named after Nixon.", "Richard Nixon"),
        ),
        ("Thought: so yes.\nAnswer: yes\nNext question?", ("so yes.", "yes")),
        ("Answer: A", ("", "A")),
        (" no answer here", ("no answer here", None)),
        (" t\nAnswer:", ("t", "")),
    ],
)
def test_parse_answer(text, expected):
    assert parse_answer(text) == expected


def test_first_line_and_one_line():
    assert first_line(" Thought: first\nsecond") == "first"
    assert one_line("a\nb\r\nc") == "a b c"
    assert one_line("  kept  ") == "  kept  "


def test_shipped_prompts_end_with_one_blank_line():
    for kind in ("react", "cot", "io"):
        for task in ("hotpotqa", "strategyqa", "mmlu"):
            text = fewshot_prompt(kind, task)
            assert text.endswith("\n\n") and not text.endswith("\n\n\n"), (kind, task)
    react = fewshot_prompt("react", "mmlu")
    assert react.endswith("Action: finish[A]\nObservation: Episode finished, reward = 1\n\n")


def test_wiki_prompt_is_in_our_format():
    text = wiki_prompt()
    assert "Thought 1:" not in text and "Question:" not in text and "Search[" not in text
    assert "\nAction: search[Colorado orogeny]\n" in text
    assert "\nAction: lookup[eastern sector]\n" in text
    assert text.endswith("Action: finish[yes]\nObservation: Episode finished, reward = 1\n\n")
    assert text.count("Observation: Episode finished") == 6
    with pytest.raises(Exception, match="hotpotqa only"):
        fewshot_prompt("react", "mmlu", "wiki")


def test_alpaca_template_and_reflections():
    assert ALPACA_TEMPLATE.format(question="Q?") == (
        "Below is an instruction that describes a task. Write a response that appropriately "
        "completes the request.\n\n### Instruction:\nQ?\n\n### Response:\n"
    )
    assert reflections_block([]) == ""
    block = reflections_block(["Search the film first.", "Check the year."])
    assert block.endswith("Reflections:\n- Search the film first.\n- Check the year.\n\n")

"""Checking fine-tuning files (fireact.data.check): OpenAI's rules as errors, ours as warnings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fireact.data.check import (
    Issue,
    check_alpaca_file,
    check_chat_file,
    message_problems,
    token_limit,
)
from fireact.errors import FireactError
from tests.helpers.paths import SHARED_DATA

FINETUNE = SHARED_DATA / "finetune"
GOOD = {
    "messages": [
        {"role": "user", "content": "Who wrote Hamlet?"},
        {"role": "assistant", "content": "Thought: I know it.\nAction: finish[Shakespeare]"},
        {"role": "user", "content": "Observation: Episode finished, reward = True"},
    ]
}


def write_lines(path: Path, rows: list[Any]) -> Path:
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)
    path.write_text(text, encoding="utf-8")
    return path


def issues(items: list[Issue]) -> list[tuple[int, str]]:
    return [(i.line, i.message) for i in items]


# ---------------------------------------------------------------- FireAct's shipped files


@pytest.mark.parametrize(
    ("name", "examples"),
    [("hotpotqa", 500), ("hotpotqa_multimethod", 733), ("multitask", 1344)],
)
def test_shipped_chat_files_are_clean(name: str, examples: int) -> None:
    report = check_chat_file(FINETUNE / "gpt_format" / f"{name}.jsonl")
    assert (report.examples, report.errors, report.warnings) == (examples, [], [])


def test_shipped_multitask_multimethod_has_exactly_the_known_quirks() -> None:
    report = check_chat_file(FINETUNE / "gpt_format" / "multitask_multimethod.jsonl")
    assert report.examples == 2063 and report.errors == []
    same = "two assistant turns in a row (turns {} and {})"
    start = "starts with an assistant turn, not the user's question"
    assert issues(report.warnings) == [
        (240, same.format(16, 17)),
        (994, same.format(12, 13)),
        (1491, same.format(12, 13)),
        (1588, same.format(20, 21)),
        (1831, same.format(20, 21)),
        (1860, start),
        (2047, start),
    ]
    assert report.longest_tokens < 16_385 and report.token_limit == 16_385


@pytest.mark.parametrize(
    ("name", "examples", "mmlu"),
    [
        ("hotpotqa", 500, 0),
        ("hotpotqa_multimethod", 734, 0),
        ("multitask", 1344, 456),
        ("multitask_multimethod", 2063, 712),
    ],
)
def test_shipped_alpaca_files_load(name: str, examples: int, mmlu: int) -> None:
    report = check_alpaca_file(FINETUNE / "alpaca_format" / f"{name}.json")
    assert (report.examples, report.errors) == (examples, [])
    assert {w.message for w in report.warnings} <= {
        "output starts with answer options A.-D.; they belong in the instruction"
    }
    assert len(report.warnings) == mmlu


def test_alpaca_warning_points_at_the_record_line() -> None:
    path = FINETUNE / "alpaca_format" / "multitask.json"
    report = check_alpaca_file(path)
    first = report.warnings[0].line
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[first - 1] == "    {"
    assert lines[first + 1].startswith('        "input"')
    assert '"output": "A. ' in lines[first + 2]


# ---------------------------------------------------------------- chat rules


def test_chat_errors_and_warnings_with_lines(tmp_path: Path) -> None:
    rows: list[Any] = [GOOD] * 10 + [
        "{not json",
        "[1]",
        {"prompt": "x"},
        {"messages": [{"role": "user", "content": "q"}, {"role": "robot", "content": "a"}]},
        {"messages": [{"role": "user", "content": "q"}]},
        {"messages": [{"role": "user", "content": 3}, {"role": "assistant", "content": "a", "extra": 1}]},
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "weight": 2}]},
        {"messages": [{"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}, {"role": "assistant", "content": "b"}]},
        "",
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "search", "arguments": "{}"}}]}, {"role": "tool", "tool_call_id": "c1", "content": "r"}, {"role": "assistant", "content": "done", "weight": 1}]},
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": None}, {"role": "tool", "content": "r"}]},
    ]  # fmt: skip
    report = check_chat_file(write_lines(tmp_path / "t.jsonl", rows))
    assert report.examples == 18
    assert issues(report.errors) == [
        (11, "not valid JSON (Expecting property name enclosed in double quotes, column 2)"),
        (12, "expected a JSON object, got list"),
        (13, "unknown key 'prompt' (allowed: functions, messages, parallel_tool_calls, tools)"),
        (13, "missing 'messages': expected a non-empty list of messages"),
        (14, "message 1: role 'robot' is not one of system, user, assistant, tool, function"),
        (14, "no assistant message (nothing to train on)"),
        (15, "no assistant message (nothing to train on)"),
        (16, "message 0: 'content' must be a string, got int"),
        (16, "message 1: unknown key 'extra'"),
        (17, "message 1: 'weight' must be 0 or 1, on assistant messages only"),
        (19, "blank line (every line must be one JSON example)"),
        (21, "message 1: 'content' is null"),
        (21, "message 2: a tool message needs a string 'tool_call_id'"),
    ]
    assert issues(report.warnings) == [
        (18, "starts with an assistant turn, not the user's question"),
        (18, "two assistant turns in a row (turns 1 and 2)"),
    ]
    assert not report.ok
    assert (
        report.lines()[0]
        == f"{tmp_path / 't.jsonl'}:11: error: not valid JSON (Expecting property name enclosed in double quotes, column 2)"
    )


def test_minimum_ten_examples(tmp_path: Path) -> None:
    report = check_chat_file(write_lines(tmp_path / "t.jsonl", [GOOD] * 9))
    assert issues(report.errors) == [(0, "9 examples: OpenAI needs at least 10 to fine-tune")]
    assert check_chat_file(write_lines(tmp_path / "u.jsonl", [GOOD] * 10)).ok


def test_example_length_against_the_model(tmp_path: Path) -> None:
    long = {"messages": [{"role": "user", "content": "word " * 20_000}, GOOD["messages"][1]]}
    path = write_lines(tmp_path / "t.jsonl", [GOOD] * 10 + [long])
    report = check_chat_file(path)  # gpt-3.5-turbo: 16,385 tokens
    assert [e.line for e in report.errors] == [11]
    assert report.errors[0].message.startswith("example has about ")
    assert report.errors[0].message.endswith(" tokens, over gpt-3.5-turbo's 16,385")
    assert check_chat_file(path, model="gpt-4o-mini-2024-07-18").ok  # 65,536
    assert not check_chat_file(path, model="gpt-4o-mini", max_tokens=1000).ok
    unknown = check_chat_file(path, model="my-model")
    assert unknown.ok and issues(unknown.warnings) == [
        (0, "unknown model 'my-model': example lengths not checked")
    ]


def test_token_limits_table() -> None:
    assert token_limit("gpt-3.5-turbo") == 16_385
    assert token_limit("gpt-3.5-turbo-0613") == 4_096
    assert token_limit("ft:gpt-3.5-turbo-0125:fireact::abc123") == 16_385
    assert token_limit("gpt-4o-mini-2024-07-18") == 65_536
    assert token_limit("llama-2-7b") is None


def test_message_problems_documented_forms() -> None:
    assert message_problems({"role": "system", "content": "s", "name": "sys"}) == []
    assert message_problems({"role": "user", "content": [{"type": "text", "text": "hi"}]}) == []
    assert (
        message_problems(
            {
                "role": "assistant",
                "content": None,
                "function_call": {"name": "f", "arguments": "{}"},
            }
        )
        == []
    )
    assert message_problems({"role": "function", "name": "f", "content": "r"}) == []
    assert message_problems({"role": "user", "tool_calls": []}) == [
        "missing 'content'",
        "only assistant messages may have tool_calls / function_call",
    ]
    assert message_problems(
        {"role": "assistant", "content": "a", "tool_calls": [{"type": "function"}]}
    ) == ["tool call 0 needs a string 'id'"]
    assert message_problems("hi") == ["expected an object, got str"]


def test_summary_line(tmp_path: Path) -> None:
    report = check_chat_file(write_lines(tmp_path / "t.jsonl", [GOOD] * 10))
    assert report.summary().startswith(
        f"{tmp_path / 't.jsonl'}: 10 chat examples, 0 errors, 0 warnings; longest example "
    )


def test_unreadable_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FireactError, match="file not found"):
        check_chat_file(tmp_path / "missing.jsonl")


# ---------------------------------------------------------------- alpaca rules


def test_alpaca_errors(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    rows = [
        {"instruction": "q", "input": "", "output": "Thought: t\nAction: finish[a]\n"},
        {"instruction": "", "input": "", "output": "x", "history": []},
        {"instruction": "q", "output": 5},
        "text",
        {"instruction": "q", "input": "", "output": "  "},
    ]
    path.write_text(json.dumps(rows, indent=4))
    report = check_alpaca_file(path)
    assert report.examples == 5
    assert issues(report.errors) == [
        (13, "missing 'input'"),
        (13, "'output' must be a string, got int"),
        (17, "expected an object with instruction/input/output, got str"),
        (18, "empty 'output' (nothing to train on)"),
    ]
    assert issues(report.warnings) == [
        (7, "unknown key 'history' (ignored by training)"),
        (7, "empty 'instruction'"),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', (1, "expected a JSON list of {instruction, input, output}")),
        ("[\n  {}\n  {}\n]", (3, "malformed JSON (expected ',' or ']')")),
        ('[\n  {"a": }\n]', (2, "malformed JSON (Expecting value, column 9)")),
        ("[\n  {}", (2, "malformed JSON (the list is not closed)")),
        ("[]", (0, "no examples (the list is empty)")),
        ("[] x", (1, "malformed JSON (extra data after the list)")),
    ],
)
def test_alpaca_malformed(tmp_path: Path, text: str, expected: tuple[int, str]) -> None:
    path = tmp_path / "a.json"
    path.write_text(text)
    assert issues(check_alpaca_file(path).errors)[0] == expected

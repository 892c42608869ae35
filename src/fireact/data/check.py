"""Checking fine-tuning files before they are used (``fireact convert --check``).

Owns `check_chat_file` (OpenAI chat fine-tuning JSONL) and `check_alpaca_file` (alpaca JSON),
which return a `Report` of errors and warnings, each with its line number, instead of raising on
the first problem.

Chat files — errors are what OpenAI's fine-tuning guide documents (a file that breaks them is
rejected or its job fails): every line one JSON object with a ``messages`` list (optional
``tools`` / ``functions`` / ``parallel_tool_calls``); every message an object with a known role
(system, user, assistant, tool, function) and only the keys the API knows (role, content, name,
weight, tool_calls, tool_call_id, function_call); string content (a list of text / image parts
for user turns; null or absent only on an assistant turn with tool_calls / function_call);
``weight`` 0 or 1 on assistant turns only; at least one assistant turn; an example's tokens
within the model's training-example limit; at least 10 examples (`MIN_EXAMPLES`, OpenAI's
minimum). A blank line is an error too. Tokens are counted, and each model's limit looked up, by
`fireact.data.openai_tokens` (tiktoken when installed, else characters / 4).

Warnings are our agent conventions: the first non-system turn is the user's question, and user
and assistant turns alternate (tool / function results count as the user side). FireAct's
``multitask_multimethod.jsonl`` has 7 such lines (SPEC §4); they still load.

Alpaca files: a JSON list of objects whose ``instruction``, ``input`` and ``output`` are strings
(errors: anything else, an empty output); warnings: an empty instruction, unknown keys, and an
output that starts with multiple-choice options (FireAct's MMLU records), which belong in the
instruction.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fireact.data.openai_tokens import example_tokens, token_limit, token_rule
from fireact.data.records import json_kind
from fireact.files import read_text

MIN_EXAMPLES = 10
ROLES = ("system", "user", "assistant", "tool", "function")
MESSAGE_KEYS = {"role", "content", "name", "weight", "tool_calls", "tool_call_id", "function_call"}
EXAMPLE_KEYS = {"messages", "tools", "functions", "parallel_tool_calls"}
_OPTIONS = re.compile(r"A\. [^\n]*\nB\. [^\n]*\nC\. [^\n]*\nD\. ")


@dataclass(frozen=True)
class Issue:
    """One problem: the 1-based line of the file (0 = the file as a whole) and what is wrong."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


@dataclass
class Report:
    """What a check found; `ok` when there are no errors (warnings do not block a file)."""

    path: Path
    kind: str  # "chat" or "alpaca"
    examples: int = 0
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    longest_tokens: int = 0  # chat: the longest example's token count
    total_tokens: int = 0  # chat: all examples' tokens (one epoch)
    token_rule: str = ""  # how tokens were counted
    token_limit: int | None = None  # chat: the model's per-example limit used

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, line: int, message: str) -> None:
        self.errors.append(Issue(line, message))

    def warn(self, line: int, message: str) -> None:
        self.warnings.append(Issue(line, message))

    def lines(self) -> list[str]:
        """Every issue as ``PATH:LINE: error|warning: message``, in file order."""
        tagged = [(i, "error") for i in self.errors] + [(i, "warning") for i in self.warnings]
        tagged.sort(key=lambda pair: pair[0].line)
        return [f"{self.path}:{i.line}: {tag}: {i.message}" for i, tag in tagged]

    def summary(self) -> str:
        """One line: the counts, and the tokens for chat files."""
        head = (
            f"{self.path}: {self.examples} {self.kind} examples, "
            f"{len(self.errors)} errors, {len(self.warnings)} warnings"
        )
        if self.kind != "chat" or not self.examples:
            return head
        limit = f" (limit {self.token_limit:,})" if self.token_limit else ""
        return (
            f"{head}; longest example {self.longest_tokens:,} tokens{limit},"
            f" {self.total_tokens:,} in all ({self.token_rule})"
        )


# ---------------------------------------------------------------- chat files


def check_chat_file(
    path: Path, *, model: str = "gpt-3.5-turbo", max_tokens: int | None = None
) -> Report:
    """Check an OpenAI chat fine-tuning JSONL file (see the module doc for the rules).

    `max_tokens` overrides the model's per-example limit. A file that cannot be read at all
    (missing, not UTF-8) raises `FireactError`.
    """
    path = Path(path)
    text = read_text(path)
    limit = max_tokens if max_tokens is not None else token_limit(model)
    report = Report(path, "chat", token_rule=token_rule(model), token_limit=limit)
    if limit is None:
        report.warn(0, f"unknown model {model!r}: example lengths not checked")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline
    for lineno, line in enumerate(lines, start=1):
        example = _parse_line(report, lineno, line)
        if example is None:
            continue
        report.examples += 1
        _check_example(report, lineno, example)
        _check_conventions(report, lineno, example)
        tokens = example_tokens(example, model)
        report.longest_tokens = max(report.longest_tokens, tokens)
        report.total_tokens += tokens
        if limit is not None and tokens > limit:
            report.error(lineno, f"example has about {tokens:,} tokens, over {model}'s {limit:,}")
    if report.examples < MIN_EXAMPLES:
        report.error(
            0, f"{report.examples} examples: OpenAI needs at least {MIN_EXAMPLES} to fine-tune"
        )
    return report


def _parse_line(report: Report, lineno: int, line: str) -> dict[str, Any] | None:
    if not line.strip():
        report.error(lineno, "blank line (every line must be one JSON example)")
        return None
    try:
        example = json.loads(line)
    except json.JSONDecodeError as err:
        report.error(lineno, f"not valid JSON ({err.msg}, column {err.colno})")
        return None
    if not isinstance(example, dict):
        report.error(lineno, f"expected a JSON object, got {json_kind(example)}")
        return None
    return example


def _check_example(report: Report, lineno: int, example: dict[str, Any]) -> None:
    for key in sorted(set(example) - EXAMPLE_KEYS):
        report.error(lineno, f"unknown key {key!r} (allowed: {', '.join(sorted(EXAMPLE_KEYS))})")
    messages = example.get("messages")
    if not isinstance(messages, list) or not messages:
        report.error(lineno, "missing 'messages': expected a non-empty list of messages")
        return
    for key in ("tools", "functions"):
        if key in example and not _list_of_dicts(example[key]):
            report.error(lineno, f"{key!r} must be a list of objects")
    for index, message in enumerate(messages):
        for problem in message_problems(message):
            report.error(lineno, f"message {index}: {problem}")
    if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages):
        report.error(lineno, "no assistant message (nothing to train on)")


def message_problems(message: Any) -> list[str]:
    """What is wrong with one message under OpenAI's chat fine-tuning format ([] if nothing)."""
    if not isinstance(message, dict):
        return [f"expected an object, got {json_kind(message)}"]
    problems = [f"unknown key {key!r}" for key in sorted(set(message) - MESSAGE_KEYS)]
    role = message.get("role")
    if role not in ROLES:
        return [*problems, f"role {role!r} is not one of {', '.join(ROLES)}"]
    calls = message.get("tool_calls") is not None or message.get("function_call") is not None
    problems += _content_problems(role, message, calls)
    if "name" in message and not isinstance(message["name"], str):
        problems.append("'name' must be a string")
    if "weight" in message and (role != "assistant" or message["weight"] not in (0, 1)):
        problems.append("'weight' must be 0 or 1, on assistant messages only")
    if role == "assistant" and message.get("tool_calls") is not None:
        problems += _tool_call_problems(message["tool_calls"])
    if role == "assistant" and message.get("function_call") is not None:
        problems += _function_problems("function_call", message["function_call"])
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        problems.append("a tool message needs a string 'tool_call_id'")
    if role != "assistant" and calls:
        problems.append("only assistant messages may have tool_calls / function_call")
    return problems


def _content_problems(role: str, message: dict[str, Any], calls: bool) -> list[str]:
    content = message.get("content")
    if isinstance(content, str):
        return []
    if content is None:
        if role == "assistant" and calls:
            return []
        return ["missing 'content'" if "content" not in message else "'content' is null"]
    if isinstance(content, list) and role == "user":
        bad = [i for i, part in enumerate(content) if not _is_content_part(part)]
        return [f"content part {i} must be a text or image_url part" for i in bad]
    return [f"'content' must be a string, got {json_kind(content)}"]


def _is_content_part(part: Any) -> bool:
    if not isinstance(part, dict):
        return False
    if part.get("type") == "text":
        return isinstance(part.get("text"), str)
    return part.get("type") == "image_url" and isinstance(part.get("image_url"), dict)


def _tool_call_problems(calls: Any) -> list[str]:
    if not isinstance(calls, list) or not calls:
        return ["'tool_calls' must be a non-empty list"]
    problems: list[str] = []
    for i, call in enumerate(calls):
        if not isinstance(call, dict) or not isinstance(call.get("id"), str):
            problems.append(f"tool call {i} needs a string 'id'")
            continue
        if call.get("type", "function") != "function":
            problems.append(f"tool call {i}: type must be 'function'")
        problems += _function_problems(f"tool call {i} 'function'", call.get("function"))
    return problems


def _function_problems(where: str, function: Any) -> list[str]:
    if not isinstance(function, dict):
        return [f"{where} must be an object with name and arguments"]
    if not isinstance(function.get("name"), str) or not isinstance(function.get("arguments"), str):
        return [f"{where} needs a string 'name' and a string 'arguments' (JSON text)"]
    return []


def _check_conventions(report: Report, lineno: int, example: dict[str, Any]) -> None:
    messages = example.get("messages")
    if not isinstance(messages, list):
        return
    roles = [
        "user" if m.get("role") in ("tool", "function") else m.get("role")
        for m in messages
        if isinstance(m, dict) and m.get("role") in ROLES and m.get("role") != "system"
    ]
    if roles and roles[0] != "user":
        report.warn(lineno, f"starts with an {roles[0]} turn, not the user's question")
    for index in range(1, len(roles)):
        if roles[index] == roles[index - 1]:
            report.warn(
                lineno, f"two {roles[index]} turns in a row (turns {index} and {index + 1})"
            )


def _list_of_dicts(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


# ---------------------------------------------------------------- alpaca files


def check_alpaca_file(path: Path) -> Report:
    """Check an alpaca JSON file: a list of ``{instruction, input, output}`` string records."""
    path = Path(path)
    text = read_text(path)
    report = Report(path, "alpaca")
    items = _alpaca_items(report, text)
    for lineno, item in items:
        report.examples += 1
        _check_alpaca_item(report, lineno, item)
    if report.examples == 0 and report.ok:
        report.error(0, "no examples (the list is empty)")
    return report


def _alpaca_items(report: Report, text: str) -> list[tuple[int, Any]]:
    """The list's items with the line each starts on; a syntax problem becomes an error."""
    decoder = json.JSONDecoder()
    pos = _skip_space(text, 0)
    if pos >= len(text) or text[pos] != "[":
        report.error(_line_of(text, pos), "expected a JSON list of {instruction, input, output}")
        return []
    pos = _skip_space(text, pos + 1)
    items: list[tuple[int, Any]] = []
    while pos < len(text) and text[pos] != "]":
        try:
            item, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as err:
            report.error(err.lineno, f"malformed JSON ({err.msg}, column {err.colno})")
            return items
        items.append((_line_of(text, pos), item))
        pos = _skip_space(text, end)
        if pos < len(text) and text[pos] == ",":
            pos = _skip_space(text, pos + 1)
        elif pos < len(text) and text[pos] != "]":
            report.error(_line_of(text, pos), "malformed JSON (expected ',' or ']')")
            return items
    if pos >= len(text):
        report.error(_line_of(text, pos), "malformed JSON (the list is not closed)")
    elif text[pos + 1 :].strip():
        report.error(_line_of(text, pos + 1), "malformed JSON (extra data after the list)")
    return items


def _check_alpaca_item(report: Report, lineno: int, item: Any) -> None:
    if not isinstance(item, dict):
        report.error(
            lineno, f"expected an object with instruction/input/output, got {json_kind(item)}"
        )
        return
    for key in ("instruction", "input", "output"):
        if key not in item:
            report.error(lineno, f"missing {key!r}")
        elif not isinstance(item[key], str):
            report.error(lineno, f"{key!r} must be a string, got {json_kind(item[key])}")
    for key in sorted(set(item) - {"instruction", "input", "output"}):
        report.warn(lineno, f"unknown key {key!r} (ignored by training)")
    output, instruction = item.get("output"), item.get("instruction")
    if isinstance(output, str) and not output.strip():
        report.error(lineno, "empty 'output' (nothing to train on)")
    if isinstance(instruction, str) and not instruction.strip():
        report.warn(lineno, "empty 'instruction'")
    if isinstance(output, str) and _OPTIONS.match(output):
        report.warn(
            lineno, "output starts with answer options A.-D.; they belong in the instruction"
        )


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1

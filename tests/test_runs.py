"""The run folder's record and statistics (`fireact.runs`), the method registry and the flags."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest
import typer

from fireact.agent import run
from fireact.agent.episode import TOOL_ERROR as EPISODE_TOOL_ERROR
from fireact.agent.methods import METHOD_REGISTRY, Method, method_spec
from fireact.agent.options import RECIPE_ONLY, RunOptions
from fireact.errors import FireactError
from fireact.runs import (
    RECORD_FIELDS,
    RECORD_VERSION,
    TOOL_ERROR,
    EpisodeRecord,
    Tally,
    read_records,
    run_stats,
)
from tests.helpers.runs import options, tool

# the keys of a line, in order, as fireact has always written them
LINE_KEYS = (
    "id", "task", "split", "method", "format", "model", "question", "gold", "prediction",
    "finished", "reward", "em", "f1", "steps", "trajectory", "messages", "tool_calls",
    "step_stats", "llm_calls", "reasks", "prompt_tokens", "completion_tokens", "cost_usd",
    "llm_latency_s", "tool_latency_s", "wall_s", "tries", "reflections", "attempts", "error",
)  # fmt: skip
STEP_KEYS = (
    "llm_calls", "prompt_tokens", "completion_tokens", "cost_usd", "llm_latency_s",
    "tool_latency_s",
)  # fmt: skip
STATS_KEYS = (
    "n", "done", "finished", "unfinished", "errors", "first_error", "correct", "em", "f1",
    "mean_steps", "llm_calls", "tool_calls", "prompt_tokens", "completion_tokens", "cost_usd",
    "mean_episode_s",
)  # fmt: skip


def test_records_of_a_real_run_round_trip_byte_for_byte(tmp_path: Path) -> None:
    summary = run(options(tmp_path, n=10), tool=tool())
    lines = (tmp_path / "out" / "episodes.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 10
    for line in lines:
        data = json.loads(line)
        assert tuple(data) == LINE_KEYS
        assert all(tuple(s) == STEP_KEYS for s in data["step_stats"])
        assert line == json.dumps(data, ensure_ascii=False)  # what the old writer produced
        record = EpisodeRecord.from_json(line)
        assert record.to_json() == line and record.extra == {}
    records = read_records(tmp_path / "out" / "episodes.jsonl")
    assert [r.to_json() for r in records] == lines
    # the summary's statistics are run_stats over the records, over the episodes requested
    stats = run_stats(records, n=summary["n"])
    assert list(stats) == list(STATS_KEYS)
    assert {k: summary[k] for k in STATS_KEYS} == stats
    assert list(summary)[5 : 5 + len(STATS_KEYS)] == list(STATS_KEYS)


def test_record_fields_and_version() -> None:
    assert RECORD_FIELDS == LINE_KEYS
    assert set(RECORD_FIELDS) == {f.name for f in fields(EpisodeRecord)} - {"extra"}
    assert TOOL_ERROR == EPISODE_TOOL_ERROR
    assert RECORD_VERSION == 1


def test_old_or_foreign_lines_read_with_defaults_and_keep_unknown_keys() -> None:
    record = EpisodeRecord.from_json('{"id": "q1", "em": true, "note": "kept"}')
    assert (record.id, record.em, record.f1, record.tool_calls, record.tries) == (
        "q1",
        True,
        0.0,
        [],
        1,
    )
    assert record.extra == {"note": "kept"}
    assert record.to_dict()["note"] == "kept" and list(record.to_dict())[-1] == "note"
    with pytest.raises(FireactError, match="f.jsonl:3: record version 2 is newer"):
        EpisodeRecord.from_json('{"id": "q1", "version": 2}', "f.jsonl:3")
    with pytest.raises(FireactError, match="f.jsonl:4: not a JSON record"):
        EpisodeRecord.from_json("{cut", "f.jsonl:4")
    with pytest.raises(FireactError, match="expected a JSON object"):
        EpisodeRecord.from_json("[1]")


def test_run_stats_exact_values() -> None:
    rows = [
        {"finished": True, "em": True, "f1": 1.0, "steps": 2, "llm_calls": 3,
         "tool_calls": [{}, {}], "prompt_tokens": 100, "completion_tokens": 10,
         "cost_usd": 0.5, "wall_s": 2.0, "error": None},
        {"finished": True, "em": False, "f1": 0.5, "steps": 4, "llm_calls": 5,
         "tool_calls": [{}], "prompt_tokens": 200, "completion_tokens": 20,
         "cost_usd": 0.25, "wall_s": 4.0},
        {"finished": False, "steps": 0, "llm_calls": 1, "error": "APIError: down"},
    ]  # fmt: skip
    mixed = [rows[0], EpisodeRecord.from_dict(rows[1]), Tally.of(rows[2])]
    stats = run_stats(mixed, n=4)  # one episode requested but never run
    assert stats == {
        "n": 4,
        "done": 3,
        "finished": 2,
        "unfinished": 2,
        "errors": 1,
        "first_error": "APIError: down",
        "correct": 1,
        "em": 0.25,
        "f1": 0.375,
        "mean_steps": 2.0,
        "llm_calls": 9,
        "tool_calls": 3,
        "prompt_tokens": 300,
        "completion_tokens": 30,
        "cost_usd": 0.75,
        "mean_episode_s": 2.0,
    }
    assert run_stats(rows)["n"] == 3 and run_stats([])["em"] == 0.0


def test_methods_registry_holds_the_rules_of_each_method() -> None:
    assert METHOD_REGISTRY.names() == ("react", "cot", "io", "reflexion")
    react, cot, reflexion = method_spec("react"), method_spec("cot"), method_spec("reflexion")
    assert (react.needs_tool, react.needs_gold, react.prompt) == (True, False, "react")
    assert (cot.needs_tool, cot.formats, cot.format_problem("fewshot")) == (
        False,
        ("fewshot",),
        None,
    )
    assert (
        cot.format_problem("chat")
        == "method cot uses the few-shot cot_* prompt: set format fewshot"
    )
    assert (reflexion.needs_gold, reflexion.prompt) == (True, "react")
    with pytest.raises(FireactError, match="unknown method 'tot': choose one of react, cot"):
        method_spec("tot")
    with pytest.raises(FireactError, match="prompt 'tot'"):
        METHOD_REGISTRY._check(Method("tot", react.run, "tot"), "test")
    with pytest.raises(FireactError, match="run option 'method' = 'tot': unknown method"):
        RunOptions(task="hotpotqa", model="scripted:x", out="o", method="tot")


def test_every_run_flag_comes_from_a_run_option() -> None:
    from fireact.cli import app

    for name in ("run", "generate"):
        command = typer.main.get_command(app).commands[name]
        flags = {p.name: p for p in command.params if p.name not in ("recipe", "dry_run")}
        expected = [n for n in RunOptions.model_fields if n not in RECIPE_ONLY]
        assert sorted(flags) == sorted(expected)
        for field_name, param in flags.items():
            field = RunOptions.model_fields[field_name]
            assert param.opts == ["--" + field_name.replace("_", "-")]
            assert param.help == field.description and field.description
            default = None if field.is_required() else field.default
            assert param.default == default, field_name

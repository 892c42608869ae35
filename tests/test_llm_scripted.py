"""The scripted backend: per-episode replay, stop strings, exhaustion, script files."""

from __future__ import annotations

import asyncio
import json

import pytest

from fireact.errors import FireactError
from fireact.llm import LLM, LLMError, ScriptExhaustedError, load_llm
from fireact.llm.scripted import ScriptedLLM

STOP = ["\nObservation:"]


def test_replays_each_episode_in_order_and_cuts_at_stop() -> None:
    llm = ScriptedLLM(
        {
            "ep1": ["Thought: a\nAction: search[x]\nObservation: fake", "Action: finish[y]"],
            "ep2": ["Action: finish[z]"],
        }
    )
    assert isinstance(llm, LLM)

    async def go():
        first = await llm.complete("Question: q1\nThought:", stop=STOP, key="ep1")
        other = await llm.complete([{"role": "user", "content": "q2"}], stop=STOP, key="ep2")
        second = await llm.complete("anything", stop=STOP, key="ep1")
        return first, other, second

    first, other, second = asyncio.run(go())
    assert first.text == "Thought: a\nAction: search[x]" and first.finish_reason == "stop"
    assert (first.prompt_tokens, first.completion_tokens) == (3, 4)
    assert first.cost_usd == 0.0 and first.latency_s == 0.0
    assert other.text == "Action: finish[z]" and other.prompt_tokens == 1
    assert second.text == "Action: finish[y]"
    assert llm.remaining("ep1") == 0 and llm.calls == 3


def test_max_tokens_counts_whitespace_tokens() -> None:
    llm = ScriptedLLM({"e": ["one two  three four"]})
    out = asyncio.run(llm.complete("p", max_tokens=2, key="e"))
    assert out.text == "one two" and out.finish_reason == "length"


def test_exhausted_script_raises_a_clear_error() -> None:
    llm = ScriptedLLM({"ep1": ["only"]})
    asyncio.run(llm.complete("p", key="ep1"))
    with pytest.raises(ScriptExhaustedError, match="'ep1' is exhausted after 1 outputs"):
        asyncio.run(llm.complete("p", key="ep1"))


def test_key_rules() -> None:
    single = ScriptedLLM({"only": "out"})
    assert asyncio.run(single.complete("p")).text == "out"
    several = ScriptedLLM({"a": ["1"], "b": ["2"]})
    with pytest.raises(LLMError, match="pass key="):
        asyncio.run(several.complete("p"))
    with pytest.raises(LLMError, match="no script for key 'c'"):
        asyncio.run(several.complete("p", key="c"))


def test_loads_json_and_jsonl_scripts(tmp_path) -> None:
    as_json = tmp_path / "script.json"
    as_json.write_text(json.dumps({"e1": ["a", "b"]}))
    as_jsonl = tmp_path / "script.jsonl"
    as_jsonl.write_text('{"key": "e1", "outputs": ["a", "b"]}\n\n{"id": 7, "outputs": ["c"]}\n')
    assert ScriptedLLM.from_file(as_json).outputs == {"e1": ["a", "b"]}
    llm = load_llm(f"scripted:{as_jsonl}")
    assert llm.outputs == {"e1": ["a", "b"], "7": ["c"]}
    assert asyncio.run(llm.complete("p", key="7")).text == "c"


def test_bad_script_files_name_the_problem(tmp_path) -> None:
    with pytest.raises(FireactError, match="does not exist"):
        load_llm(f"scripted:{tmp_path / 'missing.json'}")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"key": "e", "outputs": [1]}\n')
    with pytest.raises(FireactError, match=r"bad.jsonl:1: outputs must be a list of strings"):
        ScriptedLLM.from_file(bad)

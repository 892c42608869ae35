"""The hf backend on a tiny random Llama: batching, stop strings, adapters, errors."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

pytest.importorskip("transformers")
pytest.importorskip("peft")

from fireact.errors import FireactError  # noqa: E402
from fireact.llm import load_llm  # noqa: E402
from fireact.llm.base import render_chat  # noqa: E402
from fireact.llm.hf import HFLLM  # noqa: E402
from tests.helpers.tiny_models import build_tiny_llama, build_tiny_lora  # noqa: E402

PROMPTS = [
    "Question: Which magazine was started first?",
    "Thought: I need to search",
    "Question: Were Scott Derrickson and Ed Wood of the same nationality?\nThought:",
    "Action: search[Arthur's Magazine]\nObservation:",
    "Q",
    "Question: What government position was held by the woman who portrayed Corliss Archer?",
    "Answer the question step by step. Question: Who is older? Thought: I need to",
    "Action: finish[yes]",
]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="module")
def llm(tiny_dir: Path) -> HFLLM:
    return HFLLM(str(tiny_dir), batch_window_s=0.05)


def one_at_a_time(llm: HFLLM, prompts, **kwargs):
    async def go():
        return [await llm.complete(p, **kwargs) for p in prompts]

    return asyncio.run(go())


def all_at_once(llm: HFLLM, prompts, **kwargs):
    async def go():
        return await asyncio.gather(*(llm.complete(p, **kwargs) for p in prompts))

    return asyncio.run(go())


def test_concurrent_calls_are_batched_and_match_single_greedy(llm: HFLLM) -> None:
    single = one_at_a_time(llm, PROMPTS, max_tokens=24)
    calls_before = llm.generate_calls
    batched = all_at_once(llm, PROMPTS, max_tokens=24)
    assert [c.text for c in batched] == [c.text for c in single]
    assert [c.completion_tokens for c in batched] == [c.completion_tokens for c in single]
    assert [c.prompt_tokens for c in batched] == [c.prompt_tokens for c in single]
    assert llm.generate_calls - calls_before <= 2 < len(PROMPTS)
    assert max(llm.batch_sizes) >= len(PROMPTS) // 2
    assert all(0 < c.completion_tokens <= 24 for c in batched)


def test_stop_strings_truncate_each_sequence(llm: HFLLM) -> None:
    full = one_at_a_time(llm, PROMPTS, max_tokens=24)
    stops = [[c.text[6:9]] if len(c.text) > 9 else ["\nObservation:"] for c in full]

    async def go():
        return await asyncio.gather(
            *(llm.complete(p, stop=s, max_tokens=24) for p, s in zip(PROMPTS, stops, strict=True))
        )

    assert sum(len(c.text) > 9 for c in full) >= len(PROMPTS) // 2
    for whole, stop, got in zip(full, stops, asyncio.run(go()), strict=True):
        cut = whole.text.find(stop[0])
        expected = whole.text[:cut] if cut >= 0 else whole.text
        assert got.text == expected
        if cut >= 0:
            assert got.finish_reason == "stop"
            assert got.completion_tokens <= whole.completion_tokens


def test_each_sequence_keeps_its_own_max_tokens(llm: HFLLM) -> None:
    async def go():
        return await asyncio.gather(
            *(llm.complete(p, max_tokens=n) for p, n in zip(PROMPTS[:4], [1, 3, 5, 9], strict=True))
        )

    outs = asyncio.run(go())
    assert all(o.completion_tokens <= n for o, n in zip(outs, [1, 3, 5, 9], strict=True))


def test_sampling_runs_with_temperature(llm: HFLLM) -> None:
    outs = all_at_once(llm, PROMPTS[:3], max_tokens=5, temperature=0.8)
    assert all(0 < o.completion_tokens <= 5 for o in outs)


def test_chat_without_template_uses_plain_rendering(llm: HFLLM) -> None:
    messages = [
        {"role": "user", "content": "Question: Who wrote Hamlet?"},
        {"role": "assistant", "content": "Thought: search\nAction: search[Hamlet]"},
        {"role": "user", "content": "Observation: a play"},
    ]
    chat, text = one_at_a_time(llm, [messages, render_chat(messages)], max_tokens=8)
    assert chat.text == text.text and chat.prompt_tokens == text.prompt_tokens


def test_peft_adapter_loads_from_the_spec(tiny_dir: Path, tmp_path: Path) -> None:
    from peft import PeftModel

    adapter = build_tiny_lora(tiny_dir, tmp_path / "lora")
    tuned = load_llm(f"hf:{tiny_dir}:{adapter}")
    assert isinstance(tuned.model, PeftModel)
    base = HFLLM(str(tiny_dir))
    with_adapter = one_at_a_time(tuned, PROMPTS[:3], max_tokens=12)
    without = one_at_a_time(base, PROMPTS[:3], max_tokens=12)
    assert [c.text for c in with_adapter] != [c.text for c in without]
    assert [c.text for c in all_at_once(tuned, PROMPTS[:3], max_tokens=12)] == [
        c.text for c in with_adapter
    ]


def test_missing_paths_and_unavailable_options_are_clear_errors(
    tiny_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(FireactError, match="model path .*nope.* does not exist"):
        load_llm(f"hf:{tmp_path / 'nope'}")
    with pytest.raises(FireactError, match="adapter path .*no-adapter.* does not exist"):
        load_llm(f"hf:{tiny_dir}:{tmp_path / 'no-adapter'}")
    with pytest.raises(FireactError, match="load_in_4bit needs a CUDA GPU"):
        HFLLM(str(tiny_dir), device="cpu", load_in_4bit=True)

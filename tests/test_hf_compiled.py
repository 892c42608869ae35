"""The hf backend's static-cache path (compiled and not) against its eager path, on a tiny Llama.

Greedy text, token counts and finish reasons are the eager path's, batched and alone, with stop
strings; shapes are bucketed so that several batch sizes compile a few graphs; stop strings are
found on the device, row by row.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

pytest.importorskip("transformers")

from fireact.errors import FireactError  # noqa: E402
from fireact.llm import load_llm  # noqa: E402
from fireact.llm.hf import HFLLM  # noqa: E402
from fireact.llm.hf_static import Buckets, compile_wanted  # noqa: E402
from fireact.llm.hf_stops import DeviceStops  # noqa: E402
from tests.helpers.tiny_models import build_tiny_llama  # noqa: E402

PROMPTS = [
    "Question: Which magazine was started first?",
    "Thought: I need to search",
    "Question: Were Scott Derrickson and Ed Wood of the same nationality?\nThought:",
    "Q",
    "Action: search[Arthur's Magazine]\nObservation:",
]
# each prompt's stop: 3 characters from the middle of its eager greedy text (so that it stops
# early), or FireAct's stop string where the text is short
MAX_TOKENS = 24


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


def complete_all(llm: HFLLM, prompts: list[str], stops: list[list[str]]) -> list[tuple]:
    """Concurrent calls (one batch); (text, completion tokens, finish reason) of each."""

    async def go():
        calls = (
            llm.complete(p, stop=s, max_tokens=MAX_TOKENS)
            for p, s in zip(prompts, stops, strict=True)
        )
        return await asyncio.gather(*calls)

    return [(c.text, c.completion_tokens, c.finish_reason) for c in asyncio.run(go())]


@pytest.fixture(scope="module")
def eager(tiny_dir: Path) -> tuple[list[list[str]], list[tuple]]:
    """The stops and the eager path's completions with them (the reference)."""
    llm = HFLLM(str(tiny_dir), compile="off", batch_window_s=0.05)
    assert llm.static is None
    full = complete_all(llm, PROMPTS, [[]] * len(PROMPTS))
    stops = [[text[6:9]] if len(text) > 9 else ["\nObservation:"] for text, _, _ in full]
    reference = complete_all(llm, PROMPTS, stops)
    assert sum(reason == "stop" for _, _, reason in reference) >= 3  # the stops do cut
    return stops, reference


def batched_then_alone(llm: HFLLM, stops: list[list[str]]) -> tuple[list[tuple], list[tuple]]:
    """Batches of 3 and 2 prompts, then every prompt on its own."""
    batched = complete_all(llm, PROMPTS[:3], stops[:3]) + complete_all(llm, PROMPTS[3:], stops[3:])
    alone = [complete_all(llm, [p], [s])[0] for p, s in zip(PROMPTS, stops, strict=True)]
    return batched, alone


def test_static_cache_path_gives_the_eager_greedy_text(tiny_dir: Path, eager) -> None:
    stops, reference = eager
    llm = HFLLM(str(tiny_dir), compile="off", static_cache=True, batch_window_s=0.05)
    batched, alone = batched_then_alone(llm, stops)
    assert batched == reference
    assert alone == reference
    # batches of 3 and 2 run padded to 4 and 2 rows; the cache is 512 long (the tiny model's positions)
    assert llm.batch_sizes == [3, 2, 1, 1, 1, 1, 1]
    assert dict(llm.static.shapes) == {(4, 512): 1, (2, 512): 1, (1, 512): 5}


def test_compiled_path_gives_the_eager_greedy_text_with_few_graphs(tiny_dir: Path, eager) -> None:
    from torch._dynamo.utils import counters

    stops, reference = eager
    llm = HFLLM(str(tiny_dir), compile="on", batch_window_s=0.05)
    assert llm.static is not None and llm.static.compiled
    graphs_before = counters["stats"]["unique_graphs"]
    batched = complete_all(llm, PROMPTS[:3], stops[:3]) + complete_all(llm, PROMPTS[1:], stops[1:])
    alone = [complete_all(llm, [p], [s])[0] for p, s in zip(PROMPTS[:3], stops, strict=False)]
    assert batched == reference[:3] + reference[1:]
    assert alone == reference[:3]
    # five generates of 3, 4, 1, 1, 1 rows: two shapes, each compiled once
    assert dict(llm.static.shapes) == {(4, 512): 2, (1, 512): 3}
    assert counters["stats"]["unique_graphs"] - graphs_before == 2


def test_static_cache_path_with_an_adapter_gives_the_eager_text(
    tiny_dir: Path, tmp_path: Path
) -> None:
    pytest.importorskip("peft")
    from tests.helpers.tiny_models import build_tiny_lora

    adapter = str(build_tiny_lora(tiny_dir, tmp_path / "lora"))
    stops = [["\nObservation:"]] * len(PROMPTS)
    eager = HFLLM(str(tiny_dir), adapter, compile="off", batch_window_s=0.05)
    static = HFLLM(str(tiny_dir), adapter, compile="off", static_cache=True, batch_window_s=0.05)
    assert complete_all(static, PROMPTS, stops) == complete_all(eager, PROMPTS, stops)
    assert dict(static.static.shapes) == {(8, 512): 1}  # 5 rows padded to 8


def test_device_stops_mark_each_row_at_its_own_stop(tiny_dir: Path) -> None:
    import torch
    from transformers import AutoTokenizer, StopStringCriteria

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_dir))
    prompt = tokenizer("Question: x\nObservation:").input_ids  # a stop inside the prompt: no stop
    texts = [" a\nObservation: b c", " a\nObservation: b c", " the cat sat on"]
    new = [tokenizer(t, add_special_tokens=False).input_ids for t in texts]
    steps = min(len(ids) for ids in new)
    stops = DeviceStops(
        lambda s: StopStringCriteria(tokenizer, list(s)),
        len(prompt),
        [["\nObservation:"], [], ["cat"]],
        [100, 3, 100],
        torch.device("cpu"),
    )
    done_at: list[int | None] = [None, None, None]
    for n in range(1, steps + 1):
        input_ids = torch.tensor([prompt + ids[:n] for ids in new])
        for row, done in enumerate(stops(input_ids, None).tolist()):
            if done and done_at[row] is None:
                done_at[row] = n
    # the first n whose decoded new text holds the row's stop; row 1 stops at its max_tokens
    first = [
        next(n for n in range(1, steps + 1) if stop in tokenizer.decode(ids[:n]))
        for ids, stop in ((new[0], "\nObservation:"), (new[2], "cat"))
    ]
    assert done_at == [first[0], 3, first[1]]
    assert stops.lengths() == done_at


def test_buckets_round_batches_and_cache_lengths() -> None:
    buckets = Buckets(max_batch_size=48, cache_step=256)
    assert [buckets.batch(n) for n in (1, 2, 3, 5, 8, 9, 17, 33, 48, 60)] == [
        1, 2, 4, 8, 8, 16, 32, 48, 48, 60
    ]  # fmt: skip
    assert [buckets.cache(n, 4096) for n in (1, 256, 257, 700, 4000, 5000)] == [
        256, 256, 512, 768, 4096, 5120
    ]  # fmt: skip
    assert buckets.cache(300, 400) == 400  # never past the model's positions when it fits


def test_compile_choice(tiny_dir: Path) -> None:
    assert [compile_wanted(c, "cpu") for c in ("auto", "on", "off")] == [False, True, False]
    assert [compile_wanted(c, "cuda:0") for c in ("auto", "on", "off")] == [True, True, False]
    with pytest.raises(FireactError, match="hf compile: 'yes' is not one of auto, on, off"):
        load_llm(f"hf:{tiny_dir}", compile="yes")
    assert load_llm(f"hf:{tiny_dir}").static is None  # auto on the CPU: eager


def test_run_option_hf_compile_reaches_the_backend(tiny_dir: Path, tmp_path: Path) -> None:
    from fireact.agent.options import RunOptions
    from fireact.agent.runner import build_llm

    def built(**option: str) -> HFLLM:
        return build_llm(
            RunOptions(task="hotpotqa", model=f"hf:{tiny_dir}", out=tmp_path, **option)
        )

    assert built(hf_compile="on").static.compiled
    assert built(hf_compile="off").static is None
    assert built().static is None  # auto, on the CPU


def test_run_options_hf_dtype_and_4bit_reach_the_backend(tiny_dir: Path, tmp_path: Path) -> None:
    import torch

    from fireact.agent.options import RunOptions
    from fireact.agent.runner import build_llm

    def built(**option: object) -> HFLLM:
        return build_llm(
            RunOptions(task="hotpotqa", model=f"hf:{tiny_dir}", out=tmp_path, **option)
        )

    assert built(hf_dtype="bfloat16").model.dtype == torch.bfloat16
    assert built().model.dtype == torch.float32  # the CPU's default
    with pytest.raises(FireactError, match="^load_in_4bit needs a CUDA GPU"):
        built(hf_load_in_4bit=True)


def test_each_shape_keeps_one_cache_across_calls(tiny_dir: Path, eager) -> None:
    # a new cache per call would mean a new CUDA graph recording per call under compile
    stops, reference = eager
    llm = HFLLM(str(tiny_dir), compile="off", static_cache=True, batch_window_s=0.05)
    assert batched_then_alone(llm, stops) == (reference, reference)
    assert sum(llm.static.shapes.values()) == 7
    assert llm.static.caches.made == 3  # (4, 512), (2, 512), (1, 512)


NO_COMPILER = """
import asyncio, json, sys
from fireact.errors import FireactError
from fireact.llm.hf import HFLLM
from fireact.llm.hf_static import StaticDecoder

path, prompt = sys.argv[1], sys.argv[2]
out = {}
strict = HFLLM(path, compile="on")
try:
    asyncio.run(strict.complete(prompt, max_tokens=8))
except FireactError as err:
    out["on"] = str(err)
llm = HFLLM(path, compile="off", static_cache=True)
llm.static = StaticDecoder(llm.model, llm.tokenizer, compiled=True, max_batch_size=32,
                           cache_step=512, fall_back=True)  # compile="auto" as on a GPU
out["auto"] = asyncio.run(llm.complete(prompt, max_tokens=8)).text
out["still_compiled"] = llm.static.compiled
out["off"] = asyncio.run(HFLLM(path, compile="off").complete(prompt, max_tokens=8)).text
print(json.dumps(out))
"""


def test_compile_failure_is_one_line_under_on_and_uncompiled_under_auto(
    tiny_dir: Path, tmp_path: Path
) -> None:
    import json
    import os
    import subprocess
    import sys

    # a real failure: inductor cannot build its C++ kernels without a compiler (fresh cache dir,
    # so nothing compiled earlier is reused)
    env = {
        **os.environ,
        "CXX": str(tmp_path / "no-such-g++"),
        "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "ind"),
    }
    child = subprocess.run(
        [sys.executable, "-c", NO_COMPILER, str(tiny_dir), PROMPTS[0]],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert child.returncode == 0, child.stderr[-2000:]
    out = json.loads(child.stdout.strip().splitlines()[-1])
    assert out["on"].startswith("hf compile: torch.compile failed (")
    assert out["on"].endswith("; run with --hf-compile off") and "\n" not in out["on"]
    assert out["auto"] == out["off"] and out["still_compiled"] is False
    assert child.stderr.count("fireact: hf compile: torch.compile failed") == 1

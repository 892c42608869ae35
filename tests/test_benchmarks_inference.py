"""Smoke test of the inference benchmark: a micro CPU run end to end, every figure in the JSON.

It runs as ``python -m benchmarks.inference_bench`` without the packages the lent GPU machine's
image lacks (pydantic, tantivy, openai), as ``run_gpu.sh`` runs it there.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.benchmark_module import GPU_IMAGE_LACKS, run_module

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")


def test_quick_run_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "inference.json"
    argv = ["--quick", "--device", "cpu", "--model-size", "tiny", "--out", str(out)]
    done = run_module("inference_bench", argv, blocked=GPU_IMAGE_LACKS)
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads(out.read_text())
    for key in ("command", "git", "machine", "packages", "settings", "rows", "equality", "sweep",
                "roofline", "targets", "target_check"):  # fmt: skip
        assert key in doc, key
    settings = doc["settings"]
    assert settings["attn_implementation"] == "sdpa"
    assert settings["episodes"] == 4 and settings["steps"] == 2 and settings["gen_tokens"] == 8

    ours, baseline = doc["rows"]
    assert (ours["system"], baseline["system"]) == ("ours", "baseline")
    for row in (ours, baseline):
        assert row["llm_calls"] == 8
        assert row["generated_tokens"] == 8 * 8  # the length is forced: 8 tokens per call
        for key in ("wall_s", "episodes_per_s", "generated_tokens_per_s", "x_vs_baseline_episodes"):
            assert isinstance(row[key], float) and row[key] > 0, key
    # ours: the 4 concurrent episodes share one generate per step; every call ran to its length
    assert ours["generate_calls"] == 2 and ours["batch_sizes"] == {"4": 2}
    assert ours["finish_reasons"] == {"length": 8} and ours["completion_tokens"] == {"8": 8}
    assert baseline["generate_calls"] == 8

    # batched and one at a time produce the same greedy text, step after step
    equality = doc["equality"]
    assert (equality["compared_calls"], equality["same_text"], equality["all_same"]) == (8, 8, True)

    points = {(r["system"], r["batch"]) for r in doc["sweep"]}
    assert points == {("hfllm", 1), ("generate", 1), ("hfllm", 4), ("generate", 4)}
    for row in doc["sweep"]:
        assert row["prompt_tokens"] == 128  # sweep prompts are exactly --prompt-tokens long
        assert row["tokens_per_s"] > 0 and row["prefill_s"] > 0
        if row["system"] == "hfllm":
            assert row["generate_calls"] == 2  # one generate per timed run: the batch is whole

    roof = doc["roofline"]
    assert roof["params"] > 0 and roof["bytes_per_param"] == 4  # fp32 on the CPU
    assert roof["measured_copy_gbs"] > 0 and roof["roofline_measured_tokens_per_s"] > 0
    assert doc["target_check"]["evaluated"] is False

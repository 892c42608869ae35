"""Smoke test of the inference benchmark: a micro CPU run end to end (the eager and the compiled
hf backend, the baseline, the sweep), every figure in the JSON.

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
                "roofline", "targets", "target_check", "progress"):  # fmt: skip
        assert key in doc, key
    settings = doc["settings"]
    assert settings["attn_implementation"] == "sdpa"
    assert settings["episodes"] == 4 and settings["steps"] == 2 and settings["gen_tokens"] == 8

    systems = ["ours", "baseline", "ours-compiled-first", "ours-compiled"]
    assert [r["system"] for r in doc["rows"]] == systems
    rows = {r["system"]: r for r in doc["rows"]}
    for row in rows.values():
        assert row["llm_calls"] == 8
        assert row["generated_tokens"] == 8 * 8  # the length is forced: 8 tokens per call
        for key in ("wall_s", "episodes_per_s", "generated_tokens_per_s", "x_vs_baseline_episodes"):
            assert isinstance(row[key], float) and row[key] > 0, key
    # ours: the 4 concurrent episodes share one generate per step; every call ran to its length
    for system in ("ours", "ours-compiled-first", "ours-compiled"):
        ours = rows[system]
        assert ours["generate_calls"] == 2 and ours["batch_sizes"] == {"4": 2}
        assert ours["finish_reasons"] == {"length": 8} and ours["completion_tokens"] == {"8": 8}
    assert "static_shapes" not in rows["ours"]  # eager
    # compiled: both steps on one bucket: 4 rows, a 512-token cache (prompts of ~128-150 + 8)
    assert rows["ours-compiled"]["static_shapes"] == {"4x512": 2}
    # one cache for the batch-1 sweep point measured before, one for the 4 episodes: both runs
    # of the episodes (first and warm) use the same one
    assert rows["ours-compiled"]["kv_caches_made"] == 2
    assert rows["baseline"]["generate_calls"] == 8

    # batched (eager and compiled) and one at a time produce the same greedy text, step by step
    for name in ("ours vs baseline", "ours-compiled vs baseline"):
        equality = doc["equality"][name]
        assert (equality["compared_calls"], equality["same_text"], equality["all_same"]) == (
            8, 8, True
        )  # fmt: skip

    points = [(r["system"], r["batch"]) for r in doc["sweep"]]
    assert points == [(s, b) for b in (1, 4) for s in ("hfllm-compiled", "hfllm-eager", "generate")]
    for row in doc["sweep"]:
        assert row["prompt_tokens"] == 128  # sweep prompts are exactly --prompt-tokens long
        assert row["tokens_per_s"] > 0 and row["prefill_s"] > 0
        if row["system"] != "generate":
            assert row["generate_calls"] == 2  # one generate per timed run: the batch is whole
        if row["system"] == "hfllm-compiled":
            assert row["cache_len"] == 512

    roof = doc["roofline"]
    assert roof["params"] > 0 and roof["bytes_per_param"] == 4  # fp32 on the CPU
    assert roof["measured_copy_gbs"] > 0 and roof["roofline_measured_tokens_per_s"] > 0
    for system in ("hfllm-compiled", "hfllm-eager", "generate"):
        assert roof[f"batch1_decode_tokens_per_s_{system}"] > 0
    assert doc["target_check"]["evaluated"] is False
    sweep = [f"sweep {s} x{{}}" for s in ("hfllm-compiled", "hfllm-eager", "generate")]
    assert (
        doc["progress"]
        == {  # batch 1 (the roofline) before the compiled episodes
            "done": systems[:2]
            + [p.format(1) for p in sweep]
            + systems[2:]
            + [p.format(4) for p in sweep],
            "complete": True,
        }
    )


def test_results_file_is_rewritten_after_each_configuration(tmp_path: Path) -> None:
    from benchmarks.inference_bench import Results, parse_args
    from benchmarks.inference_work import episode_row

    out = tmp_path / "inference.json"
    res = Results(parse_args(["--quick", "--device", "cpu", "--out", str(out)]))
    res.add_row(episode_row("ours-compiled", 4, 2, 2.0, 64))
    res.done("ours-compiled")
    partial = json.loads(out.read_text())  # what a timeout right now would leave
    assert partial["progress"] == {"done": ["ours-compiled"], "complete": False}
    assert [r["system"] for r in partial["rows"]] == ["ours-compiled"]
    assert partial["target_check"]["x_episodes_per_s"] is None  # no baseline yet

    res.add_row(episode_row("baseline", 4, 2, 8.0, 64))
    res.done("baseline")
    doc = json.loads(out.read_text())
    assert doc["progress"]["done"] == ["ours-compiled", "baseline"]
    assert [r["x_vs_baseline_episodes"] for r in doc["rows"]] == [4.0, 1.0]
    assert doc["target_check"]["x_episodes_per_s"] == 4.0


@pytest.mark.parametrize("module", ["inference_bench", "train_bench"])
def test_the_7b_shape_is_refused_without_a_gpu(module: str, capsys: pytest.CaptureFixture) -> None:
    from importlib import import_module

    parse_args = import_module(f"benchmarks.{module}").parse_args
    with pytest.raises(SystemExit) as stop:
        parse_args(["--model-size", "7b", "--device", "cpu"])
    assert stop.value.code == 2
    assert "--model-size 7b needs a CUDA device" in capsys.readouterr().err.splitlines()[-1]

"""Smoke test of the inference benchmark: a micro CPU run end to end (the eager and the compiled
hf backend, the baseline, `fireact run`'s runner, the sweep), every figure in the JSON.

The run is ``python -m benchmarks.inference_bench`` with what ``run_gpu.sh`` has on the lent GPU
machine: every module the image lacks is made unimportable (tantivy, openai, ...) except those
of the carried wheels (pydantic, which the runner's options need). Without pydantic the runner's
row is skipped, saying why.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.benchmark_module import (
    GPU_IMAGE_LACKS,
    REPO,
    carried,
    distribution_of,
    run_module,
)

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

SYSTEMS = ["ours", "baseline", "ours-compiled-first", "ours-compiled", "ours-runner"]
SWEEP = ("hfllm-compiled", "hfllm-eager", "generate")


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The ``--quick`` run's results document (4 episodes x 2 steps x 8 tokens, micro model)."""
    out = tmp_path_factory.mktemp("inference") / "inference.json"
    argv = ["--quick", "--device", "cpu", "--model-size", "tiny", "--out", str(out)]
    # (the emulated image itself, `carry=`, compiles cold each time: ~40 s more on 2 cores)
    blocked = [m for m in GPU_IMAGE_LACKS if distribution_of(m) not in carried()]
    assert "pydantic" not in blocked and "tantivy" in blocked
    done = run_module("inference_bench", argv, blocked=blocked)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


def test_quick_run_writes_every_figure(quick: dict[str, Any]) -> None:
    for key in ("command", "git", "machine", "packages", "settings", "rows", "equality", "sweep",
                "roofline", "targets", "target_check", "progress"):  # fmt: skip
        assert key in quick, key
    settings = quick["settings"]
    assert settings["attn_implementation"] == "sdpa"
    assert settings["episodes"] == 4 and settings["steps"] == 2 and settings["gen_tokens"] == 8
    assert [r["system"] for r in quick["rows"]] == SYSTEMS
    assert "skipped" not in quick
    assert quick["target_check"]["evaluated"] is False


def test_quick_run_batches_every_step_of_the_concurrent_episodes(quick: dict[str, Any]) -> None:
    rows = {r["system"]: r for r in quick["rows"]}
    for row in (rows[s] for s in SYSTEMS[:-1]):
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
    # compiled: both steps on one bucket: 4 rows, a 512-token cache (prompts of ~128-150 + 8),
    # compiled by the first run, not the warm one
    assert rows["ours-compiled-first"]["shapes_first_seen"] == ["4x512"]
    assert rows["ours-compiled"]["static_shapes"] == {"4x512": 2}
    assert rows["ours-compiled"]["shapes_first_seen"] == []
    # one cache for the batch-1 sweep point measured before, one for the 4 episodes: both runs
    # of the episodes (first and warm) use the same one
    assert rows["ours-compiled"]["kv_caches_made"] == 2
    assert rows["baseline"]["generate_calls"] == 8


def test_batched_and_one_at_a_time_write_the_same_greedy_text(quick: dict[str, Any]) -> None:
    for name in ("ours vs baseline", "ours-compiled vs baseline"):
        equality = quick["equality"][name]
        assert (equality["compared_calls"], equality["same_text"], equality["all_same"]) == (
            8, 8, True
        )  # fmt: skip


def test_quick_run_sweeps_and_bounds_batch_1_decode(quick: dict[str, Any]) -> None:
    points = [(r["system"], r["batch"]) for r in quick["sweep"]]
    assert points == [(s, b) for b in (1, 4) for s in SWEEP]
    for row in quick["sweep"]:
        assert row["prompt_tokens"] == 128  # sweep prompts are exactly --prompt-tokens long
        assert row["tokens_per_s"] > 0 and row["prefill_s"] > 0
        if row["system"] != "generate":
            assert row["generate_calls"] == 6  # 3 repeats x (full, 1 token), each one generate
        if row["system"] == "hfllm-compiled":
            assert row["cache_len"] == 512
    roof = quick["roofline"]
    assert roof["params"] > 0 and roof["bytes_per_param"] == 4  # fp32 on the CPU
    assert roof["measured_copy_gbs"] > 0 and roof["roofline_measured_tokens_per_s"] > 0
    for system in SWEEP:
        assert roof[f"batch1_decode_tokens_per_s_{system}"] > 0


def test_quick_run_measures_in_order(quick: dict[str, Any]) -> None:
    sweep = [f"sweep {s} x{{}}" for s in SWEEP]
    # batch 1 (the roofline) before the compiled episodes; the runner last, after the sweep
    done = SYSTEMS[:2] + [p.format(1) for p in sweep] + SYSTEMS[2:4] + [p.format(4) for p in sweep]
    done += SYSTEMS[4:]
    assert quick["progress"] == {"done": done, "complete": True}


def test_quick_run_puts_the_episodes_through_fireacts_runner(quick: dict[str, Any]) -> None:
    runner = next(r for r in quick["rows"] if r["system"] == "ours-runner")
    # every episode ran, and the runner wrote one record for each into its episodes.jsonl
    assert runner["episodes"] == runner["records_written"] == 4
    assert runner["steps"] == 2  # max_steps = the workload's steps
    steps = {int(k): v for k, v in runner["steps_taken"].items()}
    assert sum(steps.values()) == 4 and max(steps) <= 2
    total = sum(k * v for k, v in steps.items())
    assert runner["mean_steps"] == total / 4
    # each step ended in exactly one way: finish, a tool call, or the runner's invalid action
    assert runner["finished"] + runner["tool_calls"] + runner["invalid_actions"] == total
    assert runner["errors"] == 0
    # one call per step, one more for a turn without an Action line (no re-asks)
    assert total <= runner["llm_calls"] <= 2 * total
    # every call went through the compiled HFLLM's batches, none longer than --gen-tokens
    assert sum(int(b) * k for b, k in runner["batch_sizes"].items()) == runner["llm_calls"]
    assert sum(runner["static_shapes"].values()) == runner["generate_calls"]
    assert 0 < runner["generated_tokens"] <= 8 * runner["llm_calls"]
    assert runner["prompt_tokens_per_call"] > 0 and runner["episodes_per_s"] > 0
    assert runner["what"].startswith("fireact.agent.runner.arun(RunOptions(task=hotpotqa")
    assert "no text equality is claimed" in runner["note"]
    assert quick["settings"]["ours-runner"].startswith("the same questions through")


def test_without_pydantic_the_runner_row_is_skipped_naming_it() -> None:
    code = (
        "import sys\n"
        "sys.modules['pydantic'] = None  # import pydantic now raises ModuleNotFoundError\n"
        "from benchmarks.inference_bench import runner_missing\n"
        "print(runner_missing())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "fireact's runner needs pydantic, not on this machine (the GPU machine: "
        "bash benchmarks/gpu_wheels.sh, then carry=['.whl'])"
    )


def test_results_file_is_rewritten_after_each_configuration(tmp_path: Path) -> None:
    from benchmarks.inference_bench import parse_args
    from benchmarks.inference_report import Results
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


def test_a_failed_system_keeps_its_error_and_the_others_their_ratios(tmp_path: Path) -> None:
    from benchmarks.inference_bench import parse_args
    from benchmarks.inference_report import Results, tables
    from benchmarks.inference_work import episode_row

    res = Results(parse_args(["--quick", "--device", "cpu", "--out", str(tmp_path / "i.json")]))
    res.add_row(episode_row("baseline", 4, 2, 8.0, 64))
    res.add_row({"system": "ours-runner", "error": "OutOfMemoryError: CUDA out of memory"})
    res.add_row(episode_row("ours", 4, 2, 2.0, 64))
    assert [r.get("x_vs_baseline_episodes") for r in res.doc["rows"]] == [1.0, None, 4.0]
    assert "ours-runner: failed: OutOfMemoryError: CUDA out of memory" in tables(res.doc)


@pytest.mark.parametrize("module", ["inference_bench", "train_bench"])
def test_the_7b_shape_is_refused_without_a_gpu(module: str, capsys: pytest.CaptureFixture) -> None:
    from importlib import import_module

    parse_args = import_module(f"benchmarks.{module}").parse_args
    with pytest.raises(SystemExit) as stop:
        parse_args(["--model-size", "7b", "--device", "cpu"])
    assert stop.value.code == 2
    assert "--model-size 7b needs a CUDA device" in capsys.readouterr().err.splitlines()[-1]

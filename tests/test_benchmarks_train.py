"""Smoke test of the training benchmark: a micro CPU run end to end, every figure in the JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.benchmark_module import load_benchmark

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")
pytest.importorskip("peft")


@pytest.fixture(scope="module")
def train_bench():
    """The benchmark module, imported from its file."""
    return load_benchmark("train_bench")


def test_quick_run_writes_every_figure(train_bench, tmp_path: Path) -> None:
    out = tmp_path / "train.json"
    train_bench.main(["--quick", "--device", "cpu", "--model-size", "tiny", "--out", str(out)])
    doc = json.loads(out.read_text())
    for key in ("command", "git", "machine", "packages", "settings", "data", "flops", "isolation",
                "rows", "ratios", "targets", "target_check"):  # fmt: skip
        assert key in doc, key
    settings = doc["settings"]
    assert settings["attn_implementation"] == "sdpa" and settings["packing_attention"] == "mask4d"
    assert settings["micro_batch"] == 4 and settings["cutoff_len"] == 512
    assert settings["lora"]["r"] == 8 and settings["lora"]["target_modules"] == ["q_proj", "v_proj"]
    assert settings["config"]["packing"] is True and settings["config"]["mask"] == "model_turns"

    ours, baseline = doc["rows"]
    assert (ours["system"], baseline["system"]) == ("ours", "baseline")
    # both systems ran the same number of steps, each step a micro-batch of 4 rows
    assert ours["steps"] == baseline["steps"] == settings["steps"] == 2
    assert ours["warmup_steps"] == baseline["warmup_steps"] == 1
    for row in (ours, baseline):
        assert row["rows_total"] == 4 * row["steps"]
        assert 0 < row["supervised_total"] <= row["nonpad_total"] <= row["tokens_total"]
        assert 0 < row["model_turn_total"] <= row["nonpad_total"]
        for key in ("wall_s", "supervised_tokens_per_s", "nonpad_tokens_per_s",
                    "model_turn_tokens_per_s", "achieved_model_tflops", "projected_epoch_s"):  # fmt: skip
            assert isinstance(row[key], float) and row[key] > 0, key
        assert row["losses_finite"]
        assert row["mfu_pct"] is None and row["peak_gpu_mem_gib"] is None  # CPU: no peak, no GPU
    # ours supervises exactly the model turns; the baseline every non-pad token but the first
    assert ours["supervised_total"] == ours["model_turn_total"]
    assert baseline["supervised_total"] == baseline["nonpad_total"] - baseline["rows_total"]
    assert ours["examples_total"] >= ours["rows_total"]  # packed rows hold whole examples
    assert baseline["examples_total"] == baseline["rows_total"]

    ratios = doc["ratios"]
    for key in ("supervised", "nonpad", "model_turn", "epoch_time_baseline_over_ours"):
        assert ratios[key] > 0, key
    assert doc["flops"]["n_base_matmul"] > 0 and doc["flops"]["n_lora"] > 0
    data = doc["data"]
    assert data["records"] == 48 and data["examples"] + data["dropped"] == 48
    assert data["epoch"]["ours"]["steps"] < data["epoch"]["baseline"]["steps"]
    # packing keeps examples apart: same logits as alone, unlike one causal sequence
    iso = doc["isolation"]
    assert iso["checked"]
    assert iso["max_abs_diff_packed_vs_alone"] < 1e-3 < iso["max_abs_diff_as_one_sequence"]
    assert doc["target_check"]["evaluated"] is False

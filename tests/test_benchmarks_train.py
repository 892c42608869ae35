"""Smoke test of the training benchmark: a micro CPU run end to end, every figure in the JSON,
and its ``ours`` row is ``fireact train``: `fireact.train.train` (the function the command calls)
ran the steps, and the trainer's own log holds them."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")
pytest.importorskip("peft")

import fireact.train  # noqa: E402
from benchmarks import train_bench  # noqa: E402
from fireact.train import sft  # noqa: E402


def test_quick_run_writes_every_figure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    shipped = fireact.train.train

    def recording_train(config: Any, **kwargs: Any) -> dict[str, Any]:
        summary = shipped(config, **kwargs)
        log = (config.output_dir / sft.LOG_FILE).read_text().splitlines()
        model = Path(config.model)  # the random model the benchmark saved (gone after the run)
        saved = (model / "config.json").is_file() and any(model.glob("*.safetensors"))
        calls.append({"config": config, "kwargs": kwargs, "log": log, "saved": saved})
        return summary

    monkeypatch.setattr(fireact.train, "train", recording_train)
    out = tmp_path / "train.json"
    train_bench.main(["--quick", "--device", "cpu", "--model-size", "tiny", "--out", str(out)])
    # the ours row ran through the trainer entry point, once, on the recipe + the bench's model
    (call,) = calls
    config = call["config"]
    assert config.max_steps == 3 and config.packing and config.save_steps is None
    assert config.lora.r == 8 and config.micro_batch_size == config.batch_size == 4
    assert Path(config.model).name == "base" and call["saved"]
    (probe,) = call["kwargs"]["callbacks"]
    assert type(probe).__name__ == "StepProbe" and len(probe.marks) == 3
    assert len([line for line in call["log"] if '"loss"' in line]) == 3  # the trainer's own log
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
    trainer = doc["trainer"]
    assert trainer["entry_point"].endswith("recording_train")  # the function called: the spy
    assert trainer["summary"]["steps"] == 3 and trainer["train_log_steps"] == [1, 2, 3]
    assert trainer["batches_seen"] == 3 and trainer["summary"]["rows"] == data["packed_rows"]


def test_the_entry_point_is_what_fireact_train_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``fireact train CONFIG`` calls `fireact.train.train`, the function the benchmark calls."""
    from fireact import cli

    seen: list[Any] = []

    def recording_train(config: Any, **kwargs: Any) -> dict[str, Any]:
        seen.append(config)
        return {"steps": 0, "final_loss": 0.0, "outputs": {}}

    monkeypatch.setattr(fireact.train, "train", recording_train)
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(
        "model: {build_tiny: {}}\ndataset: fireact:finetune/alpaca_format/hotpotqa.json\n"
        f"output_dir: {tmp_path / 'out'}\n"
    )
    with contextlib.suppress(SystemExit):
        cli.main(["train", str(recipe), "--max_steps", "1"])
    assert [config.max_steps for config in seen] == [1]


def test_counts_of_a_packed_batch_match_its_rows() -> None:
    """``ours`` counts what the trainer fed the model from its labels and positions alone."""
    from fireact.train.dataset import Example

    def example(n: int, supervised: int) -> Example:
        return Example(list(range(1, n + 1)), [-100] * (n - supervised) + [7] * supervised)

    rows = [[example(5, 2), example(3, 1)], [example(6, 3)], [example(2, 1), example(3, 2)]]
    collate = train_bench.PackedCollator(0, "mask4d")
    batch = collate([{"row": row} for row in rows])
    counts, lengths = train_bench.ours_counts(batch)
    items = train_bench.ours_items(rows)
    assert counts == train_bench.batch_counts(items, batch)
    assert lengths == [5, 3, 6, 2, 3]

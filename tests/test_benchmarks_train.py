"""The training benchmark (P3): a micro CPU run end to end, its ``ours`` configuration is
``fireact train`` (`fireact.train.train`, the function the command calls) and its baseline
FireAct's settings on transformers' Trainer, the JSON is rewritten after every configuration,
and the counting and FLOP arithmetic on hand-made batches."""

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
from benchmarks import train_bench, train_runs  # noqa: E402
from benchmarks.train_figures import FlopModel, batch_counts, epoch_summary  # noqa: E402
from fireact.train import sft  # noqa: E402
from fireact.train.dataset import IGNORE, Example  # noqa: E402
from fireact.train.packing import PackedCollator  # noqa: E402

QUICK = ["--quick", "--device", "cpu", "--model-size", "tiny"]


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
    written: list[list[str]] = []
    write = train_bench.Bench.write

    def recording_write(self: Any) -> None:
        write(self)
        written.append([row["system"] for row in json.loads(out.read_text())["rows"]])

    monkeypatch.setattr(train_bench.Bench, "write", recording_write)
    out = tmp_path / "train.json"
    train_bench.main([*QUICK, "--out", str(out)])
    # the JSON was on disk after setup and after each configuration
    assert written == [[], ["ours"], ["ours", "baseline"]]
    (call,) = calls  # ours ran through the trainer entry point, once
    config = call["config"]
    assert config.dataset.name == "multitask_multimethod.json" and config.cutoff_len == 512
    assert (config.max_steps, config.batch_size, config.micro_batch_size) == (2, 8, 4)
    assert config.packing and config.save_steps is None and config.lora.r == 8
    assert Path(config.model).name == "base" and call["saved"]
    (probe,) = call["kwargs"]["callbacks"]
    assert type(probe).__name__ == "StepProbe" and len(probe.marks) == 2
    assert len([line for line in call["log"] if '"loss"' in line]) == 2  # the trainer's own log

    doc = json.loads(out.read_text())
    for key in ("command", "git", "machine", "packages", "settings", "data", "flops", "rows",
                "comparison", "targets", "target_check", "isolation"):  # fmt: skip
        assert key in doc, key
    assert doc["configurations_done"] == ["ours", "baseline"]
    assert "4*N_base + 6*N_lora" in doc["flops"]["formula"]
    assert doc["flops"]["n_base_matmul"] > 0 and doc["flops"]["n_lora"] > 0
    assert doc["settings"]["ours_command"].startswith(
        "fireact train configs/llama2-7b-lora-multitask-multimethod.yaml --model MODEL"
    )
    ours, baseline = doc["rows"]
    assert (ours["system"], baseline["system"]) == ("ours", "baseline")
    for row in (ours, baseline):  # one timed step of 2 micro-batches of 4 rows
        assert row["timed_optimizer_steps"] == 1 and row["micro_batches_total"] == 2
        assert row["rows_total"] == 8
        assert 0 < row["supervised_total"] <= row["nonpad_total"] <= row["tokens_total"]
        for key in ("wall_s", "nonpad_tokens_per_s", "achieved_model_tflops",
                    "epoch_s_extrapolated"):  # fmt: skip
            assert isinstance(row[key], float) and row[key] > 0, key
        assert row["losses_finite"]
        assert row["mfu_pct"] is None and row["peak_gpu_mem_gb"] is None  # CPU: no peak
    assert ours["trainer"]["attention"] == {
        "implementation": "sdpa", "packing": "positions", "liger_applied": False
    }  # fmt: skip
    assert ours["examples_total"] >= ours["rows_total"]  # packed rows hold whole examples
    assert ours["supervised_total"] < ours["nonpad_total"]  # the loss mask: model turns only
    # the baseline: one example per row, every token supervised but a row's unpadded first one
    assert baseline["examples_total"] == baseline["rows_total"]
    assert baseline["nonpad_total"] - 8 <= baseline["supervised_total"] <= baseline["nonpad_total"]
    assert baseline["trainer"]["checkpointed_layers"] == 2  # every layer, as FireAct's
    data = doc["data"]
    assert data["records"] == 48 and data["examples"] + data["dropped"] == 48
    epochs = data["epoch"]
    assert epochs["ours"]["nonpad_tokens"] == epochs["baseline"]["nonpad_tokens"] == data["tokens"]
    assert epochs["ours"]["micro_batches"] < epochs["baseline"]["micro_batches"] == 12
    speedup = doc["comparison"]["ours"]["epoch_speedup"]
    assert speedup == baseline["epoch_s_extrapolated"] / ours["epoch_s_extrapolated"]
    assert doc["target_check"]["evaluated"] is False
    # on the trained model, a packed example's logits are its logits alone (fp32 here)
    iso = doc["isolation"]
    assert iso["checked"] and iso["mode"] == "positions"
    assert iso["max_abs_diff_packed_vs_alone"] < 1e-4 < 1e-2 < iso["max_abs_diff_as_one_sequence"]


def test_a_failing_configuration_keeps_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("CUDA out of memory\nmore")

    monkeypatch.setattr(train_bench, "run_baseline", broken)
    out = tmp_path / "train.json"
    train_bench.main([*QUICK, "--configs", "baseline,ours", "--out", str(out)])
    doc = json.loads(out.read_text())
    failed, ours = doc["rows"]
    assert failed["error"] == "RuntimeError: CUDA out of memory"
    assert ours["system"] == "ours" and ours["wall_s"] > 0
    assert doc["comparison"] == {} and "target_check" not in doc


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


def example(n: int, supervised: int) -> Example:
    return Example(list(range(1, n + 1)), [IGNORE] * (n - supervised) + [7] * supervised)


def test_counts_of_a_packed_batch_come_from_its_positions() -> None:
    rows = [[example(5, 2), example(3, 1)], [example(6, 3)], [example(2, 1), example(3, 2)]]
    batch = PackedCollator(0, "positions")([{"row": row} for row in rows])
    counts, lengths = batch_counts(batch)
    assert lengths == [5, 3, 6, 2, 3]
    assert counts == {"micro_batches": 1, "rows": 3, "examples": 5, "tokens": 24,
                      "nonpad": 19, "supervised": 9}  # fmt: skip


def test_counts_of_a_padded_batch_come_from_its_mask() -> None:
    import torch

    batch = {
        "labels": torch.tensor([[IGNORE, IGNORE, 3, 4], [1, 2, 3, 4]]),  # left padding
        "attention_mask": torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]]),
    }
    counts, lengths = batch_counts(batch)
    assert lengths == [2, 4] and counts["nonpad"] == 6 and counts["supervised"] == 5


def test_an_epoch_is_padded_per_micro_batch() -> None:
    rows, order = [5, 3, 6, 2, 3], [0, 1, 2, 3, 4]
    assert epoch_summary(rows, order, 2, 1) == {
        "micro_batches": 3, "padded_tokens": 25, "nonpad_tokens": 19, "padding_pct": 24.0
    }  # fmt: skip
    assert epoch_summary(rows, order, 2, 8)["padded_tokens"] == 40


def test_flops_count_the_frozen_base_twice_and_recompute_apart() -> None:
    flops = FlopModel(n_base=10, n_lora=1, hidden=2, layers=3)
    # 2 tokens x (4*10 + 6*1) + 12 * h * layers * (2*3/2 pairs); recompute: half the layers
    assert flops.step([2], 0.5) == (2 * 46 + 12 * 18, 0.5 * (2 * 22 + 4 * 18))
    assert flops.per_token() == 46


def test_the_baseline_uses_this_transformers_names() -> None:
    """Checkpointing and group_by_length under this transformers' names: 5.2x's
    ``activation_checkpointing``, 5.17's (the GPU image's) ``gradient_checkpointing``; both have
    ``train_sampling_strategy``, older ones ``group_by_length``."""
    from transformers import TrainingArguments

    fields = TrainingArguments.__dataclass_fields__
    args = train_runs.version_arguments()
    assert set(args) <= set(fields)
    ckpt = "activation" if "activation_checkpointing" in fields else "gradient"
    grouping = (
        {"train_sampling_strategy": "group_by_length"}
        if "train_sampling_strategy" in fields
        else {"group_by_length": True}
    )
    assert args == {
        f"{ckpt}_checkpointing": True,
        f"{ckpt}_checkpointing_kwargs": {"use_reentrant": False},
        **grouping,
    }

"""Training that goes wrong says so in one line, exits 2 and never leaves a broken final model.

A learning rate of 1e30 really diverges a tiny Llama: step 1 trains on finite numbers, step 2's
forward pass overflows (loss and gradients NaN). The run stops there, keeps checkpoint-1 and
saves no final weights; that stopped folder is then refused as a model, with directions.
Hyperparameters that are NaN, infinite or negative, and an empty chat example in a training
file, are refused before anything is written. All on CPU, offline.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fireact.errors import FireactError
from fireact.train import load_config
from tests.helpers.clirun import run_cli
from tests.helpers.runs import snapshot

RECIPE = """
model: {build_tiny: {hidden_size: 32, layers: 1, heads: 2, vocab_size: 400}}
dataset: fireact:finetune/alpaca_format/hotpotqa.json
max_examples: 8
method: full
precision: fp32
cpu_threads: 1
learning_rate: 1.0e-3
lr_scheduler: constant
batch_size: 2
micro_batch_size: 1
cutoff_len: 1024
logging_steps: 1
max_steps: 4
save_steps: 1
"""
GOOD_CHAT = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}


def recipe(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(RECIPE)
    return path


def error_line(result) -> str:
    """The last stderr line, after checking exit code 2 and no traceback."""
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return result.stderr.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def diverged(tmp_path_factory):
    """A real run at learning rate 1e30 through the CLI: (its result, its output_dir)."""
    tmp = tmp_path_factory.mktemp("diverged")
    out = tmp / "run"
    result = run_cli("train", str(recipe(tmp)), "--learning_rate", "1e30", "--output_dir", str(out))
    return result, out


def test_a_diverging_run_stops_at_the_step_with_the_last_checkpoint(diverged):
    result, out = diverged
    assert error_line(result) == (
        "error: training stopped at step 2: the loss and the gradients are NaN or infinite (the"
        " run diverged; try a lower learning_rate); nothing was saved as the final model; the"
        f" last checkpoint before it is {out}/checkpoint-1 (resume from it with --resume"
        f" {out}/checkpoint-1 and a lower --learning_rate)"
    )
    assert "final_loss" not in result.stdout  # no summary printed


def test_a_diverged_run_leaves_no_final_model_and_keeps_its_checkpoint(diverged):
    _, out = diverged
    assert sorted(p.name for p in out.glob("*.safetensors")) == []
    assert not (out / "config.json").exists() and not (out / "train_summary.json").exists()
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1"]
    assert (out / "checkpoint-1" / "model.safetensors").is_file()
    logged = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged] == [1]  # the NaN step never reached the log


def test_the_stopped_runs_folder_is_refused_as_a_model_with_directions(diverged, tmp_path):
    _, out = diverged
    no_weights = (
        f"{out} has no model weights (*.safetensors / *.bin): a training run that was killed"
        " leaves no final model; resume it with `fireact train CONFIG --resume true` or point"
        f" to a checkpoint-N folder (the latest here: {out}/checkpoint-1)"
    )
    before = snapshot(tmp_path)
    ran = run_cli(
        "run", "--task", "hotpotqa", "--end", "1", "--model", f"hf:{out}", "--format", "alpaca",
        "--out", str(tmp_path / "agent"),
    )  # fmt: skip
    assert ran.stderr.splitlines() == [f"error: {no_weights}"]
    assert ran.returncode == 2 and snapshot(tmp_path) == before
    config = recipe(tmp_path)
    before = snapshot(tmp_path)
    trained = run_cli(
        "train", str(config), "--model", str(out), "--output_dir", str(tmp_path / "o")
    )
    assert trained.stderr.splitlines() == [f"error: {config}: model: {no_weights}"]
    assert trained.returncode == 2 and snapshot(tmp_path) == before


def test_a_folder_without_weights_that_is_not_a_run_is_refused_too(tmp_path):
    from fireact.llm.hf import check_weights

    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FireactError) as err:
        check_weights(str(tmp_path))
    assert str(err.value) == (
        f"{tmp_path} has no model weights (*.safetensors / *.bin): give a folder saved with"
        " save_pretrained"
    )
    (tmp_path / "model.safetensors").write_bytes(b"")
    check_weights(str(tmp_path))  # weights present: no complaint
    check_weights("meta-llama/Llama-2-7b-hf")  # a hub id: not checked here


BAD_HYPERPARAMETERS = [
    (["--learning_rate", "nan"], "learning_rate: Input should be a finite number (got 'nan')"),
    (["--learning_rate", ".inf"], "learning_rate: Input should be a finite number (got inf)"),
    (["--learning_rate", "-1e-3"], "learning_rate: Input should be greater than 0 (got '-1e-3')"),
    (["--weight_decay", ".nan"], "weight_decay: Input should be a finite number (got nan)"),
    (["--weight_decay", "-0.1"], "weight_decay: Input should be greater than or equal to 0 (got -0.1)"),
    (["--warmup_steps", ".inf"], "warmup_steps: Input should be a finite number (got inf)"),
    (["--epochs", ".inf"], "epochs: Input should be a finite number (got inf)"),
    (["--epochs", "0"], "epochs: Input should be greater than 0 (got 0)"),
    (["--eval_fraction", ".nan"], "eval_fraction: Input should be a finite number (got nan)"),
    (["--lora.dropout", ".nan"], "lora.dropout: Input should be a finite number (got nan)"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "says"), BAD_HYPERPARAMETERS, ids=[" ".join(o) for o, _ in BAD_HYPERPARAMETERS]
)
def test_a_nan_infinite_or_negative_hyperparameter_is_refused_naming_the_key(
    tmp_path, overrides, says
):
    config = recipe(tmp_path)
    with pytest.raises(FireactError) as err:
        load_config(config, [*overrides, "--output_dir", str(tmp_path / "o")])
    assert str(err.value) == f"{config}: {says}"


def test_cli_train_with_a_nan_learning_rate_is_one_line_and_writes_nothing(tmp_path):
    config = recipe(tmp_path)
    before = snapshot(tmp_path)
    result = run_cli(
        "train", str(config), "--learning_rate", "nan", "--output_dir", str(tmp_path / "o")
    )
    assert result.stderr.splitlines() == [
        f"error: {config}: learning_rate: Input should be a finite number (got 'nan')"
    ]
    assert result.returncode == 2 and snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("example", "says"),
    [
        ({"messages": []}, "empty chat example (no messages)"),
        (
            {"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": " "}]},
            "empty chat example (every message is blank)",
        ),
    ],
)
def test_an_empty_chat_example_is_one_line_naming_file_and_line(tmp_path, example, says):
    data = tmp_path / "chat.jsonl"
    lines = [json.dumps(GOOD_CHAT), "", json.dumps(GOOD_CHAT), json.dumps(example)]
    data.write_text("\n".join(lines) + "\n")
    config = recipe(tmp_path)
    before = snapshot(tmp_path)
    result = run_cli(
        "train", str(config), "--dataset", str(data), "--output_dir", str(tmp_path / "o")
    )
    assert result.stderr.splitlines() == [f"error: {data}:4: {says}: remove the line or fill it in"]
    assert result.returncode == 2 and snapshot(tmp_path) == before

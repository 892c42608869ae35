"""SFT runs on a tiny Llama (CPU, offline): full fine-tuning, LoRA, saving, resume, 2 processes.

One module-scoped full fine-tuning run memorises 32 FireAct trajectories; the LoRA tests start
from that trained model (LoRA on random weights learns almost nothing).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from fireact.train import load_config, train
from fireact.train.dataset import build_examples
from fireact.train.packing import PackedCollator, make_rows
from tests.helpers.launch import launch_gloo
from tests.helpers.paths import SHARED_DATA

REPO = Path(__file__).resolve().parents[1]
ALPACA = SHARED_DATA / "finetune/alpaca_format/hotpotqa.json"

TINY_FULL = f"""
model: {{build_tiny: {{hidden_size: 128, layers: 2, heads: 4, vocab_size: 1000}}}}
dataset: {ALPACA}
max_examples: 32
method: full
precision: fp32
cpu_threads: 1
learning_rate: 3.0e-3
lr_scheduler: cosine
warmup_steps: 10
epochs: 22
batch_size: 1
micro_batch_size: 1
cutoff_len: 1024
logging_steps: 12
"""

SMALL = f"""
model: {{build_tiny: {{hidden_size: 32, layers: 1, heads: 2, vocab_size: 400}}}}
dataset: {ALPACA}
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
"""


def config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def log_losses(output_dir: Path) -> dict[int, float]:
    lines = (output_dir / "train_log.jsonl").read_text().splitlines()
    return {r["step"]: r["loss"] for r in map(json.loads, lines) if "loss" in r}


def mean_loss(model, tokenizer, records) -> float:
    """Token-weighted loss of `model` on `records` (model_turns mask), in fp32."""
    import torch

    examples = build_examples(records, tokenizer)
    collate = PackedCollator(tokenizer.pad_token_id, "mask4d")
    total = tokens = 0.0
    model.eval()
    with torch.no_grad():
        for row in make_rows(examples, 1024, packing=True):
            n = sum(e.supervised for e in row)
            total += model(**collate([{"row": row}])).loss.item() * n
            tokens += n
    return total / tokens


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models train fastest on one thread (and do not fight other processes for cores)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    config = load_config(config_file(out, TINY_FULL), ["--output_dir", str(out / "run")])
    return config, train(config)


def test_full_fine_tuning_memorises_32_trajectories(full_run):
    config, summary = full_run
    assert summary["final_loss"] < 0.5, summary
    assert summary["examples"] == 32 and summary["world_size"] == 1
    assert summary["supervised_tokens_per_epoch"] > 0 and summary["tokens_per_s"] > 0
    out = config.output_dir
    for name in ("model.safetensors", "config.json", "tokenizer.json", "fireact_config.yaml"):
        assert (out / name).is_file(), name
    assert load_config(out / "fireact_config.yaml") == config
    losses = log_losses(out)
    assert summary["final_loss"] == losses[max(losses)] and max(losses) <= summary["steps"]


def test_a_finished_run_is_not_overwritten_silently(full_run):
    from fireact.errors import FireactError

    config, _ = full_run
    with pytest.raises(FireactError, match="holds an earlier run"):
        train(config)


def test_lora_on_the_trained_model_lowers_loss_and_reloads_exactly(full_run, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fireact.llm import load_llm
    from fireact.train.sft import fit

    base = full_run[0].output_dir
    others = json.loads(ALPACA.read_text())[32:48]
    (tmp_path / "others.json").write_text(json.dumps(others))
    tokenizer = AutoTokenizer.from_pretrained(base)
    base_model = AutoModelForCausalLM.from_pretrained(base)
    before = mean_loss(base_model, tokenizer, others)
    lora = "{r: 8, alpha: 16, dropout: 0.0, target_modules: [q_proj, v_proj, o_proj, down_proj]}"
    overrides = f"--method lora --lora {lora!r} --learning_rate 1e-2 --epochs 3 --warmup_steps 0"
    overrides = shlex.split(overrides) + [
        *("--model", str(base), "--dataset", str(tmp_path / "others.json")),
        *("--merge", "true", "--output_dir", str(tmp_path / "lora")),
    ]
    summary, trainer = fit(load_config(config_file(tmp_path, TINY_FULL), overrides))
    trained = trainer.model.eval()
    after = mean_loss(trained, tokenizer, others)
    assert after < before - 0.1, (before, after)

    batch = PackedCollator(tokenizer.pad_token_id, "mask4d")(
        [{"row": build_examples(others[:2], tokenizer)}]
    )
    reloaded = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(base), tmp_path / "lora"
    )
    merged = AutoModelForCausalLM.from_pretrained(summary["outputs"]["merged"])
    with torch.no_grad():
        expected = trained(**batch).logits
        assert torch.allclose(reloaded.eval()(**batch).logits, expected, atol=1e-5, rtol=0)
        assert torch.allclose(merged.eval()(**batch).logits, expected, atol=1e-4, rtol=0)
        # the agent's own backend, from the spec a user passes: hf:BASE:ADAPTER
        agent_llm = load_llm(f"hf:{base}:{tmp_path / 'lora'}")
        assert torch.allclose(agent_llm.model(**batch).logits, expected, atol=1e-5, rtol=0)


def test_resume_continues_like_an_uninterrupted_run(tmp_path):
    path = config_file(tmp_path, SMALL)
    train(load_config(path, ["--output_dir", str(tmp_path / "a"), "--max_steps", "6"]))
    interrupted = ["--output_dir", str(tmp_path / "b"), "--save_steps", "3"]
    train(load_config(path, [*interrupted, "--max_steps", "3"]))
    resumed = train(load_config(path, [*interrupted, "--max_steps", "6", "--resume", "true"]))
    assert resumed["resumed_from"].endswith("checkpoint-3")
    a, b = log_losses(tmp_path / "a"), log_losses(tmp_path / "b")
    assert sorted(b) == [1, 2, 3, 4, 5, 6]
    for step in (4, 5, 6):
        assert abs(a[step] - b[step]) < 1e-4, (step, a[step], b[step])


def test_two_processes_with_gloo_train_and_save_once(tmp_path):
    out = tmp_path / "ddp"
    config = config_file(tmp_path, SMALL + f"max_steps: 3\noutput_dir: {out}\n")
    done = launch_gloo("fireact.train.sft", config, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rank 0/2 finished 3 steps" in done.stderr
    assert "rank 1/2 finished 3 steps" in done.stderr
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 3
    steps = [
        json.loads(line)["step"] for line in (out / "train_log.jsonl").read_text().splitlines()
    ]
    assert steps[:3] == [1, 2, 3] and len(steps) == 4  # three losses + the final summary, once
    assert (out / "model.safetensors").is_file()


def test_a_diverging_run_raises_naming_the_step_and_saves_no_final_model(tmp_path):
    from fireact.errors import FireactError

    out = tmp_path / "diverged"
    config = load_config(
        config_file(tmp_path, SMALL),
        ["--learning_rate", "1e30", "--max_steps", "4", "--output_dir", str(out)],
    )
    with pytest.raises(FireactError) as err:
        train(config)
    assert str(err.value) == (
        "training stopped at step 2: the loss and the gradients are NaN or infinite (the run"
        " diverged; try a lower learning_rate); nothing was saved as the final model; no"
        " checkpoint was saved before it"
    )
    assert not list(out.glob("*.safetensors")) and not (out / "train_summary.json").exists()


def test_two_processes_stop_together_on_a_diverging_run(tmp_path):
    out = tmp_path / "ddp"
    config = config_file(
        tmp_path,
        SMALL + f"max_steps: 4\nsave_steps: 1\nlearning_rate: 1.0e+30\noutput_dir: {out}\n",
    )
    done = launch_gloo(
        "fireact.train.sft", config, timeout=180,
        settled=lambda done: "error: training stopped" in done.stderr,
    )  # fmt: skip
    assert done.returncode != 0, done.stderr[-3000:]
    stopped = (
        "error: training stopped at step 2: the loss and the gradients are NaN or infinite (the"
        " run diverged; try a lower learning_rate); nothing was saved as the final model; the"
        f" last checkpoint before it is {out}/checkpoint-1"
    )
    assert done.stderr.count(stopped) == 2, done.stderr[-3000:]  # each rank, at the same step
    assert not list(out.glob("*.safetensors")) and (out / "checkpoint-1").is_dir()

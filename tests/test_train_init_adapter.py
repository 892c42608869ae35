"""`init_adapter`: a LoRA run that continues a saved adapter instead of starting a new one.

A tiny random Llama (no download) with a random non-zero LoRA adapter on it; the run loads that
adapter as trainable, trains two steps and saves an adapter on the same base. Bad folders, a
different base, a different shape and full fine-tuning are one-line errors naming the field.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fireact.errors import FireactError
from fireact.train import load_config, train
from tests.helpers.paths import SHARED_DATA
from tests.helpers.tiny_models import build_tiny_llama, build_tiny_lora

ALPACA = SHARED_DATA / "finetune/alpaca_format/hotpotqa.json"
LORA = "{r: 8, alpha: 16, dropout: 0.0, target_modules: [q_proj, v_proj]}"


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """A base, a LoRA adapter on it, and a base of another shape."""
    root = tmp_path_factory.mktemp("init_adapter")
    base = build_tiny_llama(root / "base", hidden_size=32, layers=1, heads=2)
    other = build_tiny_llama(root / "other", hidden_size=48, layers=1, heads=2)
    return {"base": base, "adapter": build_tiny_lora(base, root / "adapter"), "other": other}


def config(tmp_path: Path, model: Path, adapter: Path, *more: str):
    text = f"""
model: {model}
init_adapter: {adapter}
dataset: {ALPACA}
max_examples: 4
method: lora
lora: {LORA}
precision: fp32
cpu_threads: 1
learning_rate: 1.0e-2
lr_scheduler: constant
batch_size: 1
micro_batch_size: 1
max_steps: 2
cutoff_len: 512
logging_steps: 1
output_dir: {tmp_path / "out"}
"""
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return load_config(path, list(more))


def lora_tensors(model) -> dict[str, object]:
    """The LoRA tensors of a PEFT model, named as the saved adapter names them."""
    return {
        name.replace(".default", ""): param.detach().clone()
        for name, param in model.named_parameters()
        if "lora_" in name
    }


def test_training_starts_from_the_adapter_and_saves_an_adapter_on_the_base(models, tmp_path):
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, TrainerCallback

    from fireact.train.sft import fit

    class AtStart(TrainerCallback):
        tensors: dict[str, object] = {}
        trainable: set[str] = set()

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            AtStart.tensors = lora_tensors(model)
            AtStart.trainable = {n for n, p in model.named_parameters() if p.requires_grad}

    run = config(tmp_path, models["base"], models["adapter"])
    summary, trainer = fit(run, callbacks=[AtStart()])
    saved = load_file(models["adapter"] / "adapter_model.safetensors")
    assert sorted(AtStart.tensors) == sorted(saved) and len(saved) == 4  # q, v x A, B
    assert all(torch.equal(AtStart.tensors[name], saved[name]) for name in saved)
    assert {n.replace(".default", "") for n in AtStart.trainable} == set(saved)

    out = run.output_dir
    trained = load_file(out / "adapter_model.safetensors")
    assert summary["steps"] == 2 and summary["outputs"]["adapter"] == str(out)
    assert all(not torch.equal(trained[name], saved[name]) for name in saved)  # it trained
    recorded = json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert recorded == str(models["base"])
    reloaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(recorded), out)
    ids = torch.tensor([[1, 5, 9, 13, 17]])
    with torch.no_grad():
        expected = trainer.model.eval()(input_ids=ids).logits
        assert torch.allclose(reloaded.eval()(input_ids=ids).logits, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("model", "adapter", "more", "message"),
    [
        ("base", "missing", [], "init_adapter: {adapter} holds no adapter_config.json"),
        ("base", "base", [], "init_adapter: {adapter} holds no adapter_config.json"),
        ("other", "adapter", [], "init_adapter: {adapter} was trained on '{base}', not on model"),
        ("base", "adapter", ["--method", "full"], "init_adapter: {adapter} is a LoRA adapter; "),
        ("base", "adapter", ["--lora.r", "4"], "init_adapter: {adapter} has r 8, alpha 16, "),
    ],
)
def test_a_bad_init_adapter_is_one_line_naming_the_field(
    models, tmp_path, model, adapter, more, message
):
    folder = models.get(adapter, tmp_path / adapter)
    with pytest.raises(FireactError) as err:
        config(tmp_path, models[model], folder, *more)
    text = str(err.value)
    assert text.startswith(f"{tmp_path / 'config.yaml'}: ") and "\n" not in text
    assert message.format(adapter=folder, base=models["base"]) in text


def test_init_adapter_may_not_be_the_output_dir(models, tmp_path):
    with pytest.raises(FireactError, match=r"init_adapter: .* overlaps output_dir"):
        config(tmp_path, models["base"], models["adapter"], "--output_dir", str(models["adapter"]))


def test_an_adapter_whose_base_moved_away_is_checked_when_loading(models, tmp_path):
    """The recorded base is gone (moved): the config cannot compare it, the load does."""
    moving = shutil.copytree(models["base"], tmp_path / "moving")
    adapter = build_tiny_lora(moving, tmp_path / "adapter")
    moving.rename(tmp_path / "moved")
    run = config(tmp_path, models["other"], adapter)  # accepted: nothing to compare with
    with pytest.raises(FireactError, match=r"init_adapter: .* does not fit model .*size mismatch"):
        train(run)
    assert not (run.output_dir / "adapter_model.safetensors").exists()

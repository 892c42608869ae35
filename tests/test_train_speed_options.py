"""The training speed options: partial gradient checkpointing (exactly the first N decoder layers
recompute, with the same loss and gradients as no checkpointing), Liger kernels (asked for where
they cannot run: one line; ``auto``: off), ``torch_compile`` (validated and handed to the
Trainer). A tiny random 4-layer Llama with LoRA, on the CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from fireact.errors import FireactError  # noqa: E402
from fireact.train.config import validate  # noqa: E402
from fireact.train.dataset import build_examples, read_records  # noqa: E402
from fireact.train.packing import PackedCollator, pack  # noqa: E402
from fireact.train.sft import apply_method, load_model  # noqa: E402
from fireact.train.speed import checkpointed_layers, enable_checkpointing  # noqa: E402
from fireact.train.trainer import training_arguments  # noqa: E402
from tests.helpers.tiny_models import FIREACT_ALPACA, build_tiny_llama  # noqa: E402

LAYERS = 4


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny4"), layers=LAYERS)


def config(model_dir: Path, tmp_path: Path, **keys: Any) -> Any:
    base = {"model": str(model_dir), "dataset": str(FIREACT_ALPACA), "output_dir": str(tmp_path)}
    return validate(base | {"precision": "fp32", "lora": {"dropout": 0.0}} | keys)


def lora_step(model_dir: Path, tmp_path: Path, layers: int | None) -> dict[str, Any]:
    """One forward + backward of a LoRA model on two packed rows; `layers`: checkpoint the first
    N (0: none). Returns the loss, the LoRA gradients and each layer's attention call count."""
    import torch
    from transformers import AutoTokenizer

    keys = {"gradient_checkpointing": True, "gradient_checkpointing_layers": layers}
    cfg = config(model_dir, tmp_path, **(keys if layers else {}))
    torch.manual_seed(0)
    model = apply_method(load_model(cfg, str(model_dir), "sdpa"), cfg)
    checkpointed = enable_checkpointing(model, layers) if layers else 0
    calls = [0] * LAYERS
    for i, block in enumerate(model.base_model.model.model.layers):

        def count(*_: Any, i: int = i) -> None:
            calls[i] += 1

        block.self_attn.register_forward_pre_hook(count)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    examples = build_examples(read_records(FIREACT_ALPACA, "alpaca")[:4], tokenizer)
    batch = PackedCollator(tokenizer.eos_token_id, "positions")(
        [{"row": r} for r in pack(examples, 1024)]
    )
    model.train()
    loss = model(**batch).loss
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    return {"loss": loss.item(), "grads": grads, "calls": calls, "checkpointed": checkpointed,
            "layers": checkpointed_layers(model)}  # fmt: skip


def test_only_the_first_n_layers_recompute_and_the_gradients_are_unchanged(
    model_dir: Path, tmp_path: Path
) -> None:
    plain = lora_step(model_dir, tmp_path, 0)
    partial = lora_step(model_dir, tmp_path, 2)
    assert plain["calls"] == [1, 1, 1, 1] and plain["layers"] == []
    assert partial["checkpointed"] == 2 and partial["layers"] == [0, 1]
    assert partial["calls"] == [2, 2, 1, 1]  # checkpointed layers run their forward again
    assert abs(partial["loss"] - plain["loss"]) < 1e-6
    assert partial["grads"].keys() == plain["grads"].keys() and len(plain["grads"]) == 4 * LAYERS
    for name, grad in plain["grads"].items():
        assert (partial["grads"][name] - grad).abs().max().item() < 1e-6, name


def test_all_layers_are_checkpointed_when_no_count_is_given(model_dir: Path, tmp_path: Path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    assert enable_checkpointing(model, None) == LAYERS
    assert checkpointed_layers(model) == [0, 1, 2, 3]


def test_more_layers_than_the_model_has_is_refused(model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    with pytest.raises(FireactError) as err:
        enable_checkpointing(model, 5)
    assert str(err.value) == (
        "gradient_checkpointing_layers: 5 is more than the model's 4 decoder layers"
    )


def test_a_layer_count_without_checkpointing_is_refused(model_dir: Path, tmp_path: Path):
    with pytest.raises(FireactError) as err:
        config(model_dir, tmp_path, gradient_checkpointing_layers=2)
    assert str(err.value) == (
        "config: gradient_checkpointing_layers needs gradient_checkpointing: true"
    )


def test_liger_asked_for_without_cuda_is_one_line(model_dir: Path, tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    cfg = config(model_dir, tmp_path, use_liger_kernel=True)
    with pytest.raises(FireactError) as err:
        training_arguments(cfg, 1, has_eval=False)
    assert str(err.value) == (
        "use_liger_kernel: needs a CUDA GPU (none here); set use_liger_kernel false or auto"
    )


def test_liger_auto_is_off_without_cuda_and_the_trainer_is_told(model_dir: Path, tmp_path: Path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    args = training_arguments(config(model_dir, tmp_path, use_liger_kernel="auto"), 1, False)
    assert args.use_liger_kernel is False


def test_torch_compile_reaches_the_trainer(model_dir: Path, tmp_path: Path) -> None:
    args = training_arguments(config(model_dir, tmp_path, torch_compile=True), 1, False)
    assert args.torch_compile is True
    assert training_arguments(config(model_dir, tmp_path), 1, False).torch_compile is False


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"torch_compile": "sometimes"}, "torch_compile: Input should be a valid boolean"),
        ({"use_liger_kernel": "maybe"}, "use_liger_kernel"),
        ({"gradient_checkpointing": True, "gradient_checkpointing_layers": 0}, "greater than 0"),
        ({"packing_mask": "block"}, "packing_mask: Input should be 'auto', 'positions' or"),
        ({"torch_compile": True, "method": "qlora"}, "torch_compile: not with method qlora"),
    ],
)
def test_bad_speed_options_are_refused_naming_the_key(
    model_dir: Path, tmp_path: Path, keys: dict[str, Any], message: str
) -> None:
    with pytest.raises(FireactError) as err:
        config(model_dir, tmp_path, **keys)
    assert message in str(err.value)

"""Packed rows train on exactly the loss of the examples run alone, on every attention path the
trainer uses: transformers reading the examples from restarting ``position_ids`` (sdpa, eager),
the explicit block mask (sdpa bool, eager additive), and flash-attn's one flattened row (skipped
without CUDA and flash-attn). A tiny random Llama in fp32 on real FireAct records."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from fireact.train.config import validate  # noqa: E402
from fireact.train.dataset import build_examples, read_records  # noqa: E402
from fireact.train.packing import PackedCollator, pack  # noqa: E402
from fireact.train.speed import attention_mode, collate_width  # noqa: E402
from tests.helpers.tiny_models import FIREACT_ALPACA, build_tiny_llama  # noqa: E402

PATHS = [
    ("sdpa", "positions", "cpu"),
    ("eager", "positions", "cpu"),
    ("sdpa", "mask4d", "cpu"),
    ("eager", "mask4d_additive", "cpu"),
    ("flash_attention_2", "varlen", "cuda"),
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The tiny model's folder, its tokenizer, 6 FireAct examples and their packed rows."""
    from transformers import AutoTokenizer

    model_dir = build_tiny_llama(tmp_path_factory.mktemp("tiny"))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    examples = build_examples(read_records(FIREACT_ALPACA, "alpaca")[:6], tokenizer)
    rows = pack(examples, 1024)
    assert len(rows) < len(examples)  # some rows hold two examples
    return {"dir": model_dir, "pad": tokenizer.eos_token_id, "examples": examples, "rows": rows}


def losses(tiny: dict[str, Any], impl: str, mode: str, device: str) -> tuple[float, float]:
    """(packed loss, token-weighted loss of the examples one at a time) in fp32."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        tiny["dir"], dtype=torch.float32, attn_implementation=impl
    ).to(device)
    model.config.use_cache = False  # as the trainer loads it
    model.eval()

    def loss(batch: dict[str, Any]) -> float:
        return model(**{k: v.to(device) for k, v in batch.items()}).loss.item()

    examples = tiny["examples"]
    with torch.no_grad():
        packed = loss(PackedCollator(tiny["pad"], mode)([{"row": r} for r in tiny["rows"]]))
        alone = PackedCollator(tiny["pad"], "padded")
        total = sum(loss(alone([{"row": [e]}])) * e.supervised for e in examples)
    return packed, total / sum(e.supervised for e in examples)


@pytest.mark.parametrize(("impl", "mode", "device"), PATHS, ids=[f"{i}-{m}" for i, m, _ in PATHS])
def test_packed_loss_equals_unpacked_loss(tiny: dict[str, Any], impl: str, mode: str, device: str):
    import torch

    if device == "cuda" and not (
        torch.cuda.is_available() and importlib.util.find_spec("flash_attn")
    ):
        pytest.skip("flash_attention_2 needs a CUDA GPU and flash-attn")
    packed, unpacked = losses(tiny, impl, mode, device)
    assert abs(packed - unpacked) < 1e-5


def test_position_ids_alone_carry_the_example_boundaries(tiny: dict[str, Any]) -> None:
    """The ``positions`` batch has no attention mask: nothing rows x width² is built or moved."""
    batch = PackedCollator(tiny["pad"], "positions")([{"row": r} for r in tiny["rows"][:2]])
    assert sorted(batch) == ["input_ids", "labels", "position_ids"]


def test_without_the_boundaries_the_packed_loss_differs(tiny: dict[str, Any]) -> None:
    """Control: positions running on through a row (one causal sequence) change the loss, so
    the equality above is the boundaries' doing."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny["dir"], dtype=torch.float32).eval()
    model.config.use_cache = False
    batch = PackedCollator(tiny["pad"], "positions")([{"row": r} for r in tiny["rows"]])
    with torch.no_grad():
        packed = model(**batch).loss.item()
        del batch["position_ids"]
        as_one = model(**batch).loss.item()
    assert abs(packed - as_one) > 1e-3


def config(tmp_path: Path, model_dir: Path, **keys: Any) -> Any:
    return validate(
        {"model": str(model_dir), "dataset": str(FIREACT_ALPACA), "output_dir": str(tmp_path)}
        | keys
    )


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"attention": "sdpa"}, ("sdpa", "positions")),
        ({"attention": "eager"}, ("eager", "positions")),
        ({"attention": "sdpa", "packing_mask": "explicit"}, ("sdpa", "mask4d")),
        ({"attention": "eager", "packing_mask": "explicit"}, ("eager", "mask4d_additive")),
        ({"attention": "flash_attention_2"}, ("flash_attention_2", "varlen")),
        ({"attention": "sdpa", "packing": False}, ("sdpa", "padded")),
    ],
)
def test_the_trainer_picks_the_mask_by_attention_kernel(
    tiny: dict[str, Any], tmp_path: Path, keys: dict[str, Any], expected: tuple[str, str]
) -> None:
    assert attention_mode(config(tmp_path, tiny["dir"], **keys)) == expected


def test_torch_compile_pads_every_batch_to_the_cutoff(tiny: dict[str, Any], tmp_path: Path):
    """Static shapes under torch_compile: every micro-batch is cutoff_len wide."""
    cfg = config(tmp_path, tiny["dir"], torch_compile=True, cutoff_len=1024)
    width = collate_width(cfg, "positions")
    assert width == 1024 and collate_width(cfg, "varlen") == 4 * 1024
    batch = PackedCollator(tiny["pad"], "positions", width)([{"row": tiny["rows"][0]}])
    assert batch["input_ids"].shape == (1, 1024)
    assert collate_width(config(tmp_path, tiny["dir"]), "positions") is None

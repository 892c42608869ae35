"""Tiny random-initialised models and a locally trained tokenizer, for offline tests.

Nothing is downloaded: the tokenizer and the model come from `fireact.train.tiny` (the builder
the trainer's ``build_tiny`` and the benchmarks use too); this file only picks the tests' text
(FireAct's alpaca set shipped in the package, else the packaged HotpotQA dev questions) and
shapes, and saves them with `save_pretrained`. Other tests reuse these helpers:

    model_dir = build_tiny_llama(tmp_path / "tiny")          # model + tokenizer in one folder
    adapter_dir = build_tiny_lora(model_dir, tmp_path / "lora")
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIREACT_ALPACA = REPO / "src/fireact/resources/finetune/alpaca_format/hotpotqa.json"
PACKAGED_DEV = REPO / "src/fireact/resources/hotpotqa/dev_distractor_first100.json"


def corpus_texts(limit: int = 300) -> list[str]:
    """Some HotpotQA / FireAct text to train the tokenizer on."""
    if FIREACT_ALPACA.is_file():
        rows = json.loads(FIREACT_ALPACA.read_text(encoding="utf-8"))[:limit]
        return [f"{r['instruction']}\n{r['output']}" for r in rows]
    rows = json.loads(PACKAGED_DEV.read_text(encoding="utf-8"))[:limit]
    return [f"{r['question']}\n{r['answer']}" for r in rows]


def _batches(texts: list[str], size: int = 64) -> Iterator[list[str]]:
    for i in range(0, len(texts), size):
        yield texts[i : i + size]


def train_tokenizer(out_dir: str | Path, vocab_size: int = 600):
    """Train a byte-level BPE tokenizer (<s> prepended, </s> as eos, no pad) and save it."""
    from fireact.train.tiny import train_bpe_tokenizer

    fast = train_bpe_tokenizer(_batches(corpus_texts()), vocab_size)
    fast.save_pretrained(str(out_dir))
    return fast


def build_tiny_llama(
    out_dir: str | Path,
    *,
    hidden_size: int = 64,
    layers: int = 2,
    heads: int = 4,
    seed: int = 0,
    init_range: float = 0.2,
) -> Path:
    """Save a tiny random LlamaForCausalLM and its tokenizer into `out_dir`; return the path.

    A wider `init_range` than Llama's 0.02 gives peaked logits, so that greedy decoding is not
    decided by float rounding (batched and single generation then agree token for token).
    """
    from fireact.train.tiny import build_llama

    out_dir = Path(out_dir)
    tokenizer = train_tokenizer(out_dir)
    model = build_llama(
        tokenizer,
        hidden_size=hidden_size,
        layers=layers,
        heads=heads,
        max_positions=512,
        init_range=init_range,
        seed=seed,
    )
    model.save_pretrained(str(out_dir))
    return out_dir


def build_tiny_lora(model_dir: str | Path, out_dir: str | Path, *, seed: int = 1) -> Path:
    """Save a LoRA adapter (q_proj/v_proj, r 8) with non-zero random weights; return its path.

    PEFT initialises LoRA's B matrix to zero (a no-op adapter); here B is random too, so that
    the adapter visibly changes the model's outputs.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(model_dir))
    config = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], lora_dropout=0.0)
    model = get_peft_model(base, config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    model.save_pretrained(str(out_dir))
    return Path(out_dir)

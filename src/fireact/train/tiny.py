"""Random-weight Llamas and the byte-level BPE tokenizer they use: the one builder for the
trainer's ``model: {build_tiny: {...}}``, the tests' tiny models and the benchmarks' models.

Owns:

* `train_bpe_tokenizer`: a byte-level BPE (``<s>`` prepended, ``</s>`` as EOS, no pad token)
  trained in seconds on any texts;
* `llama_config` / `build_llama`: a `LlamaConfig` of a given shape whose vocabulary and special
  ids are the tokenizer's, and a model with random weights drawn from a seed, built directly on
  a device in a dtype (no download, no checkpoint);
* `build_tiny`: the trainer's tiny model (tokenizer trained on the records + model, saved into a
  folder; reused when the folder already holds one built from the same spec).

Imports nothing heavy at import time and never imports pydantic (the trainer's spec is read by
attribute), so the benchmarks can use it on a machine with only torch, transformers and
tokenizers installed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fireact.train.config import TinyModel

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>"]
STAMP_FILE = "fireact_tiny.json"  # the spec a tiny model folder was built from
TOKENIZER_RECORDS = 2000  # build_tiny trains its tokenizer on the first records only


def train_bpe_tokenizer(texts: Iterable[str] | Iterable[list[str]], vocab_size: int) -> Any:
    """A byte-level BPE tokenizer (``<s>`` prepended, ``</s>`` as EOS) trained on `texts`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


def llama_config(
    tokenizer: Any,
    *,
    hidden_size: int,
    layers: int,
    heads: int,
    intermediate_size: int | None = None,
    min_vocab: int = 0,
    max_positions: int = 4096,
    init_range: float = 0.02,
) -> Any:
    """A `LlamaConfig` of this shape for `tokenizer`.

    Vocabulary: the larger of `min_vocab` and the tokenizer's size; bos, eos and pad ids are the
    tokenizer's (pad None when it has none); every head has its own key/value head; the output
    head is not tied to the input embeddings. `intermediate_size` defaults to twice the hidden
    size; `init_range` is the std of the random weights (Llama's own is 0.02).
    """
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=max(min_vocab, len(tokenizer)),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or 2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max_positions,
        initializer_range=init_range,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )


def build_llama(
    tokenizer: Any,
    *,
    seed: int | None = None,
    device: str = "cpu",
    dtype: Any = None,
    attention: str | None = None,
    **shape: Any,
) -> Any:
    """A `LlamaForCausalLM` with random weights, of the shape `llama_config` gives.

    `shape`: `llama_config`'s keywords (``hidden_size``, ``layers``, ``heads`` required;
    ``intermediate_size``, ``min_vocab``, ``max_positions``, ``init_range``).

    `seed`: ``torch.manual_seed`` right before the weights are drawn (None: the caller's RNG
    state). The weights are initialised directly on `device` in `dtype` (None: torch's default,
    fp32); `attention` is the ``attn_implementation`` (None: transformers' default). The model
    is left in the mode ``from_config`` gives it.
    """
    import torch
    from transformers import AutoModelForCausalLM

    config = llama_config(tokenizer, **shape)
    options: dict[str, Any] = {}
    if dtype is not None:
        options["dtype"] = dtype
    if attention is not None:
        options["attn_implementation"] = attention
    if seed is not None:
        torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, **options)
    return model.to(device)


def build_tiny(spec: TinyModel, out_dir: Path, records: list[dict[str, Any]]) -> Path:
    """The trainer's tiny model: a random-initialised Llama of `spec` and a byte-level BPE
    tokenizer trained on the records, saved into `out_dir`.

    Reused when `out_dir` already holds one built from the same spec (resume, other ranks).
    """
    from fireact.train.dataset import record_text

    stamp = out_dir / STAMP_FILE
    if stamp.is_file() and json.loads(stamp.read_text()) == spec.model_dump():
        return out_dir
    texts = [record_text(r) for r in records[:TOKENIZER_RECORDS]]
    tokenizer = train_bpe_tokenizer(texts, spec.vocab_size)
    tokenizer.save_pretrained(str(out_dir))
    model = build_llama(
        tokenizer,
        hidden_size=spec.hidden_size,
        layers=spec.layers,
        heads=spec.heads,
        seed=spec.seed,
    )
    model.save_pretrained(str(out_dir))
    stamp.write_text(json.dumps(spec.model_dump()))
    return out_dir

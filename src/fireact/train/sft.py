"""The SFT recipe: `train(config) -> summary`, on transformers' `Trainer` + PEFT.

Owns one training run from config to saved outputs, in this order:

1. the output folder, claimed by the main process (`fireact.train.output_dir`): locked until
   training returns, refused if it holds an earlier run (unless ``resume`` or ``overwrite``) or
   if it is or holds an input, marked, with ``fireact_config.yaml`` (the exact config) in it; a
   run that fails before it trains leaves the folder as it found it (`Claim`);
2. the model source: a local folder or hub id, or a tiny Llama built from the config (with a
   BPE tokenizer trained on the dataset, `fireact.train.tiny`) under ``output_dir/base``; a hub
   id missing from the cache while the hub is off or unreachable fails at once, before the
   folder is claimed, in one line saying how to supply it (`check_hub_source`);
3. the data (`fireact.train.dataset`), fitted to the cutoff and packed (`fireact.train.packing`);
4. the model: full fine-tuning, LoRA (a new adapter, or ``init_adapter`` continued), or QLoRA
   (4/8-bit base via bitsandbytes), in the dtype of its precision (`fireact.train.precision`),
   with the attention kernel that packing needs
   (`fireact.train.speed`: flash-attn varlen when installed on CUDA, else sdpa reading the
   examples from ``position_ids``, else an explicit block-diagonal 4D mask), and gradient
   checkpointing of the layers the config names;
5. `Trainer.train` (`fireact.train.trainer`: checkpoints every ``save_steps``; ``resume``
   continues from the latest ``checkpoint-*``), one JSON line per logging step in
   ``train_log.jsonl``; a NaN or infinite loss or gradient stops the run at that step with a
   `FireactError`;
6. the outputs (`fireact.train.saving`): the adapter (LoRA) or model (full) and the tokenizer in
   ``output_dir``, and on request the merged model in ``output_dir/merged``;
   ``train_summary.json``.

Multi-GPU runs go through ``accelerate launch`` (FSDP / DeepSpeed configs in
``configs/accelerate/``); each process runs this same function, and only the main process
writes files other than the model's. Run it as ``accelerate launch -m fireact.train.sft
CONFIG.yaml [--key value ...]`` (or ``python -m fireact.train.sft`` on one device).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fireact.errors import FireactError
from fireact.outputs import atomic_write_text
from fireact.train.config import SFTConfig, TinySource, load_config
from fireact.train.dataset import (
    DataStats,
    Example,
    build_examples,
    describe,
    detect_format,
    read_records,
    split_eval,
)
from fireact.train.hub_source import check_hub_source, hub_sources, load_failure
from fireact.train.init_adapter import load_init_adapter
from fireact.train.output_dir import (
    LOG_FILE,
    SUMMARY_FILE,
    last_complete_checkpoint,
    prepare_output_dir,
)
from fireact.train.packing import FitReport, fit_to_cutoff, make_rows
from fireact.train.precision import resolve_precision, torch_dtype
from fireact.train.saving import make_summary, save_outputs
from fireact.train.speed import attention_mode, collate_width, enable_checkpointing
from fireact.train.tiny import build_tiny
from fireact.train.trainer import make_trainer, training_arguments


@dataclass
class TrainData:
    """Rows for training and evaluation, and what loading them found."""

    train_rows: list[list[Example]]
    eval_rows: list[list[Example]]
    stats: DataStats
    fit: FitReport
    examples: int = 0
    tokens: int = 0
    supervised: int = 0


def train(config: SFTConfig, *, callbacks: Sequence[Any] = ()) -> dict[str, Any]:
    """Fine-tune as `config` says; return the summary (steps, losses, tokens, output paths).

    `callbacks`: extra transformers ``TrainerCallback``s, added after fireact's own (the
    benchmark times the steps with one).
    """
    return fit(config, callbacks=callbacks)[0]


def fit(config: SFTConfig, *, callbacks: Sequence[Any] = ()) -> tuple[dict[str, Any], Any]:
    """`train`, also returning the `Trainer` (its ``model`` is the model as trained).

    The output folder stays locked from `prepare_output_dir` until this returns or raises.
    """
    for key, name in hub_sources(config):  # before torch loads: a one-second refusal
        check_hub_source(name, key)
    with contextlib.ExitStack() as hold:
        return _fit(config, hold, callbacks)


def _fit(
    config: SFTConfig, hold: contextlib.ExitStack, callbacks: Sequence[Any] = ()
) -> tuple[dict[str, Any], Any]:
    import torch
    from accelerate import PartialState
    from transformers import set_seed

    state = PartialState(cpu=not torch.cuda.is_available())  # gloo across CPU processes
    if config.cpu_threads and not torch.cuda.is_available():
        torch.set_num_threads(config.cpu_threads)
    records, eval_records = load_records(config)
    claim = hold.enter_context(prepare_output_dir(config, state))
    set_seed(config.seed)
    with state.main_process_first():
        source = model_source(config, records)
    tokenizer = load_tokenizer(config, source)
    data = load_data(config, tokenizer, records, eval_records)
    if state.is_main_process:
        _say(
            f"data {describe(data.stats)}; {data.examples} examples in {len(data.train_rows)} "
            f"rows; {data.fit.truncated} truncated, {data.fit.dropped} dropped (cutoff_len)"
        )
    # TrainingArguments before the model: DeepSpeed ZeRO-3 then loads it already partitioned
    args = training_arguments(config, state.num_processes, has_eval=bool(data.eval_rows))
    attention, collate = attention_mode(config)
    model = apply_method(load_model(config, source, attention), config)
    if config.gradient_checkpointing:
        enable_checkpointing(model, config.gradient_checkpointing_layers)
    trainer = make_trainer(
        args, model, tokenizer, data, collate, config.output_dir / LOG_FILE,
        pad_to=collate_width(config, collate),
    )  # fmt: skip
    for callback in callbacks:
        trainer.add_callback(callback)
    resume_from = resume_point(config)
    claim.begin()  # overwrite: the earlier run goes now, once model and data have loaded
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume_from)
    runtime = time.perf_counter() - started
    _say(
        f"rank {state.process_index}/{state.num_processes} finished {trainer.state.global_step} steps"
    )
    paths = save_outputs(trainer, config, source, state)
    summary = make_summary(trainer, result, data, paths, runtime, resume_from)
    if state.is_main_process:
        atomic_write_text(config.output_dir / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
    return summary, trainer


def _say(message: str) -> None:
    print(f"fireact.train: {message}", file=sys.stderr, flush=True)


def resume_point(config: SFTConfig) -> str | None:
    """The checkpoint to resume from: the given one, or the latest complete one, or none."""
    if config.resume is False:
        return None
    if config.resume is not True:
        path = Path(config.resume).expanduser().resolve()
        if not path.is_dir():
            raise FireactError(f"resume: checkpoint folder {path} does not exist")
        return str(path)
    latest = last_complete_checkpoint(config.output_dir)
    if latest is None:
        _say(f"no checkpoint in {config.output_dir}; starting fresh")
    return latest


# -- model source, tokenizer, data -----------------------------------------------------------
def load_records(config: SFTConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Training and evaluation records (eval from its own file, a fraction, or none)."""
    fmt = detect_format(config.dataset, config.format)
    records = read_records(config.dataset, fmt)[: config.max_examples]
    if config.eval_dataset is not None:
        eval_fmt = detect_format(config.eval_dataset, config.format)
        return records, read_records(config.eval_dataset, eval_fmt)
    return split_eval(records, config.eval_fraction, config.seed)


def model_source(config: SFTConfig, records: list[dict[str, Any]]) -> str:
    """The folder or hub id to load; a tiny model is built first when the config asks."""
    if isinstance(config.model, TinySource):
        return str(build_tiny(config.model.build_tiny, config.output_dir / "base", records))
    return config.model


def load_tokenizer(config: SFTConfig, source: str) -> Any:
    """The tokenizer (its own source if given, else the model's), with a pad token."""
    from transformers import AutoTokenizer

    name = config.tokenizer or source
    key = "tokenizer" if config.tokenizer else "model"
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, trust_remote_code=config.trust_remote_code)
    except (OSError, ValueError) as err:
        raise FireactError(load_failure(name, key, err, "tokenizer")) from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def load_data(
    config: SFTConfig,
    tokenizer: Any,
    records: list[dict[str, Any]],
    eval_records: list[dict[str, Any]],
) -> TrainData:
    """Tokenise, fit to the cutoff and pack the training (and evaluation) records."""
    stats = DataStats()
    options = {
        "mask": config.mask,
        "chat_template": config.chat_template,
        "learn_stop": config.learn_stop,
        "add_eos": config.add_eos,
    }
    examples = build_examples(records, tokenizer, stats=stats, **options)
    examples, fit = fit_to_cutoff(examples, config.cutoff_len, config.overlong)
    if not examples:
        raise FireactError(
            f"dataset {config.dataset}: no example has a supervised token "
            f"(mask {config.mask}, cutoff_len {config.cutoff_len})"
        )
    held_out = build_examples(eval_records, tokenizer, **options) if eval_records else []
    held_out, _ = fit_to_cutoff(held_out, config.cutoff_len, config.overlong)
    return TrainData(
        train_rows=make_rows(examples, config.cutoff_len, config.packing),
        eval_rows=make_rows(held_out, config.cutoff_len, config.packing),
        stats=stats,
        fit=fit,
        examples=len(examples),
        tokens=sum(len(e.input_ids) for e in examples),
        supervised=sum(e.supervised for e in examples),
    )


# -- model -----------------------------------------------------------------------------------
def load_model(config: SFTConfig, source: str, attention: str) -> Any:
    """The base model, in the dtype its method needs (fp32 weights for full fine-tuning)."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = torch_dtype(resolve_precision(config))
    kwargs: dict[str, Any] = {
        "dtype": torch.float32 if config.method == "full" else dtype,
        "trust_remote_code": config.trust_remote_code,
        "attn_implementation": attention,
    }
    if config.method == "qlora":
        kwargs.update(
            quantization_config=qlora_quantization(config.qlora_bits, dtype),
            device_map={"": int(os.environ.get("LOCAL_RANK", 0))},
        )
    from safetensors import SafetensorError  # a truncated or damaged weights file

    try:
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except (OSError, ValueError, ImportError, SafetensorError) as err:
        raise FireactError(load_failure(source, "model", err)) from None
    model.config.use_cache = False
    return model


def qlora_quantization(bits: int, compute_dtype: Any) -> Any:
    """A BitsAndBytesConfig (4-bit NF4 or 8-bit); needs bitsandbytes and a CUDA GPU."""
    import torch
    from transformers import BitsAndBytesConfig

    if importlib.util.find_spec("bitsandbytes") is None:
        raise FireactError("method qlora needs bitsandbytes: pip install bitsandbytes (CUDA only)")
    if not torch.cuda.is_available():
        raise FireactError("method qlora needs a CUDA GPU: use method lora or full on CPU")
    if bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
    )


def apply_method(model: Any, config: SFTConfig) -> Any:
    """Full fine-tuning: the model as is. LoRA/QLoRA: a PEFT model with trainable adapters, new
    ones or those of ``init_adapter``."""
    if config.method == "full":
        return model
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if config.method == "qlora":
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=config.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    if config.init_adapter is not None:  # continue a saved adapter (checked by the config)
        return load_init_adapter(model, config.init_adapter, config.lora.dropout, str(config.model))
    lora = LoraConfig(
        r=config.lora.r,
        lora_alpha=config.lora.alpha,
        lora_dropout=config.lora.dropout,
        target_modules=config.lora.target_modules,
        bias="none",
        task_type="CAUSAL_LM",
    )
    try:
        return get_peft_model(model, lora)
    except ValueError as err:
        raise FireactError(f"lora.target_modules: {str(err).splitlines()[0]}") from None


def main(argv: list[str] | None = None) -> int:
    """``python -m fireact.train.sft CONFIG.yaml [--key value ...]`` (also under accelerate)."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0].startswith("--"):
        print("usage: python -m fireact.train.sft CONFIG.yaml [--key value ...]", file=sys.stderr)
        return 2
    try:
        summary = train(load_config(argv[0], argv[1:]))
    except FireactError as err:
        sys.stderr.write(f"error: {err}\n")  # one write: ranks' lines must not interleave
        return 2
    if int(os.environ.get("RANK", 0)) == 0:
        print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

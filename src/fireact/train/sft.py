"""The SFT recipe: `train(config) -> summary`, on transformers' `Trainer` + PEFT.

Owns one training run from config to saved outputs, in this order:

1. the output folder, claimed by the main process (`prepare_output_dir`, `fireact.outputs`):
   locked until training returns, refused if it holds an earlier run (unless ``resume`` or
   ``overwrite``) or if it is or holds an input, marked as a training output
   (``.fireact-train``), and ``fireact_config.yaml`` (the exact config) written into it;
2. the model source: a local folder or hub id, or a tiny Llama built from the config (with a
   BPE tokenizer trained on the dataset) under ``output_dir/base``;
3. the data (`fireact.train.dataset`), fitted to the cutoff and packed (`fireact.train.packing`);
4. the model: full fine-tuning, LoRA, or QLoRA (4/8-bit base via bitsandbytes), with the
   attention kernel that packing needs (flash-attn varlen when installed on CUDA, else an
   explicit block-diagonal 4D mask);
5. `Trainer.train` (checkpoints every ``save_steps``; ``resume`` continues from the latest
   ``checkpoint-*``), one JSON line per logging step in ``train_log.jsonl``; a NaN or infinite
   loss or gradient stops the run at that step (`finite_guard`) with a `FireactError`;
6. the outputs: the adapter (LoRA) or model (full) and the tokenizer in ``output_dir``, and on
   request the merged model in ``output_dir/merged``; ``train_summary.json``.

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
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fireact.errors import FireactError
from fireact.outputs import (
    FolderLock,
    atomic_write_text,
    clean_leftovers,
    clear_owned,
    mark_owned,
    refuse_overlap,
)
from fireact.train.config import SFTConfig, TinyModel, TinySource, load_config
from fireact.train.dataset import (
    DataStats,
    Example,
    build_examples,
    describe,
    detect_format,
    read_records,
    record_text,
    split_eval,
)
from fireact.train.packing import FitReport, PackedCollator, RowDataset, fit_to_cutoff, make_rows

CONFIG_FILE = "fireact_config.yaml"
LOG_FILE = "train_log.jsonl"
SUMMARY_FILE = "train_summary.json"
MARKER_KIND = "train"  # a training output folder holds .fireact-train (fireact.outputs)
# what training writes at the top of output_dir (we, transformers and PEFT): `overwrite`
# removes these and refuses to remove anything else
TRAIN_FILES = (
    CONFIG_FILE,
    LOG_FILE,
    SUMMARY_FILE,
    "base",
    "merged",
    "checkpoint-*",
    "runs",
    "*.safetensors",
    "*.safetensors.index.json",
    "*.bin",
    "*.pt",
    "*.pth",
    "config.json",
    "generation_config.json",
    "adapter_config.json",
    "README.md",
    "tokenizer*",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "chat_template.*",
    "trainer_state.json",
    "*_results.json",
)


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


def train(config: SFTConfig) -> dict[str, Any]:
    """Fine-tune as `config` says; return the summary (steps, losses, tokens, output paths)."""
    return fit(config)[0]


def fit(config: SFTConfig) -> tuple[dict[str, Any], Any]:
    """`train`, also returning the `Trainer` (its ``model`` is the model as trained).

    The output folder stays locked from `prepare_output_dir` until this returns or raises.
    """
    with contextlib.ExitStack() as hold:
        return _fit(config, hold)


def _fit(config: SFTConfig, hold: contextlib.ExitStack) -> tuple[dict[str, Any], Any]:
    import torch
    from accelerate import PartialState
    from transformers import set_seed

    state = PartialState(cpu=not torch.cuda.is_available())  # gloo across CPU processes
    if config.cpu_threads and not torch.cuda.is_available():
        torch.set_num_threads(config.cpu_threads)
    records, eval_records = load_records(config)
    hold.enter_context(prepare_output_dir(config, state))
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
    trainer = make_trainer(args, model, tokenizer, data, collate, config.output_dir / LOG_FILE)
    resume_from = resume_point(config)
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


# -- output folder ---------------------------------------------------------------------------
def prepare_output_dir(config: SFTConfig, state: Any) -> contextlib.AbstractContextManager:
    """Claim the output folder on the main process (`claim_output_dir`); every rank raises its
    one-line refusal. Returns the folder's lock, held until it is left as a context manager
    (a no-op on the other ranks)."""
    lock: contextlib.AbstractContextManager = contextlib.nullcontext()
    failure: Exception | None = None
    if state.is_main_process:
        try:
            lock = claim_output_dir(config)
        except Exception as err:  # told to the other ranks, which would wait forever otherwise
            failure = err
    message = "" if failure is None else str(failure) or type(failure).__name__
    if state.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        message = broadcast_object_list([message], from_process=0)[0]
    if failure is not None:
        raise failure
    if message:
        raise FireactError(message)
    return lock


def claim_output_dir(config: SFTConfig) -> FolderLock:
    """Lock, check, (on ``overwrite``) empty and mark ``output_dir``; write the exact config.

    Refused in one line: an input (dataset, eval dataset, local model or tokenizer folder) that
    is ``output_dir``, contains it, or (with ``overwrite``) lies in it; another training
    writing to it; an earlier run in it without ``resume`` or ``overwrite``; and, to
    ``overwrite``, a folder holding files that fireact train did not write. ``overwrite``
    removes the earlier run but keeps a tiny model's ``base/``. Returns the held lock.
    """
    out = config.output_dir
    inputs = training_inputs(config)
    replacing = bool(config.overwrite and not config.resume)
    refuse_overlap([out], inputs, what="output_dir", replacing=replacing)
    lock = FolderLock(out, "training").acquire()
    try:
        clean_leftovers(out)
        earlier = (out / CONFIG_FILE).exists() or any(out.glob("checkpoint-*"))
        if earlier and not (config.resume or config.overwrite):
            raise FireactError(
                f"output_dir {out} holds an earlier run: set resume: true to continue it, "
                "overwrite: true to replace it, or choose another output_dir"
            )
        # a run written before markers existed is recognised by its config file
        legacy = (out / CONFIG_FILE).exists()
        if earlier and replacing:
            clear_owned(
                out,
                MARKER_KIND,
                keep=[out / "base"],
                inputs=inputs,
                owns=TRAIN_FILES,
                legacy_markers=[CONFIG_FILE],
            )
        mark_owned(out, MARKER_KIND, adopt=legacy)
        atomic_write_text(out / CONFIG_FILE, config.to_yaml())
    except BaseException:
        lock.release()
        raise
    return lock


def training_inputs(config: SFTConfig) -> list[Path]:
    """The files and local folders a training run reads (never written or removed by it)."""
    paths = [config.dataset, config.eval_dataset]
    for source in (config.model, config.tokenizer):
        if isinstance(source, str) and Path(source).expanduser().exists():
            paths.append(Path(source).expanduser())
    return [p for p in paths if p is not None]


def last_complete_checkpoint(out: Path) -> str | None:
    """The newest ``checkpoint-N`` whose trainer state was written (it is saved last, so a
    checkpoint cut short by a kill is skipped)."""
    if not out.is_dir():
        return None
    done = [
        (int(p.name.split("-", 1)[1]), p)
        for p in out.glob("checkpoint-*")
        if p.name.split("-", 1)[1].isdigit() and (p / "trainer_state.json").is_file()
    ]
    return str(max(done)[1]) if done else None


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


def build_tiny(spec: TinyModel, out_dir: Path, records: list[dict[str, Any]]) -> Path:
    """A random-initialised Llama and a byte-level BPE tokenizer trained on the records.

    Reused when `out_dir` already holds one built from the same spec (resume, other ranks).
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    stamp = out_dir / "fireact_tiny.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == spec.model_dump():
        return out_dir
    tokenizer = train_bpe_tokenizer([record_text(r) for r in records[:2000]], spec.vocab_size)
    tokenizer.save_pretrained(str(out_dir))
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.hidden_size * 2,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        num_key_value_heads=spec.heads,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(spec.seed)
    LlamaForCausalLM(config).save_pretrained(str(out_dir))
    stamp.write_text(json.dumps(spec.model_dump()))
    return out_dir


def train_bpe_tokenizer(texts: Iterable[str] | Iterable[list[str]], vocab_size: int) -> Any:
    """A byte-level BPE tokenizer (``<s>`` prepended, ``</s>`` as EOS) trained on `texts`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<unk>", "<s>", "</s>"],
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


def load_tokenizer(config: SFTConfig, source: str) -> Any:
    """The tokenizer (its own source if given, else the model's), with a pad token."""
    from transformers import AutoTokenizer

    name = config.tokenizer or source
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, trust_remote_code=config.trust_remote_code)
    except (OSError, ValueError) as err:
        raise FireactError(f"tokenizer: cannot load {name!r}: {str(err).splitlines()[0]}") from None
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
def attention_mode(config: SFTConfig) -> tuple[str, str]:
    """(attn_implementation, collator mode): flash-attn varlen when available, else a 4D mask."""
    import torch

    impl = config.attention
    if impl == "auto":
        has_flash = importlib.util.find_spec("flash_attn") is not None
        impl = "flash_attention_2" if has_flash and torch.cuda.is_available() else "sdpa"
    if not config.packing:
        return impl, "padded"
    if impl == "flash_attention_2":
        return impl, "varlen"
    return impl, "mask4d_additive" if impl == "eager" else "mask4d"


def resolve_precision(config: SFTConfig) -> str:
    """bf16 / fp16 / fp32: ``auto`` is bf16 on a GPU that has it, fp16 on other GPUs, else fp32."""
    import torch

    if config.precision != "auto":
        if config.precision == "fp16" and not torch.cuda.is_available():
            raise FireactError("precision fp16 needs a GPU: use bf16 or fp32 on CPU")
        return config.precision
    if not torch.cuda.is_available():
        return "fp32"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def load_model(config: SFTConfig, source: str, attention: str) -> Any:
    """The base model, in the dtype its method needs (fp32 weights for full fine-tuning)."""
    import torch
    from transformers import AutoModelForCausalLM

    precision = resolve_precision(config)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[precision]
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
    try:
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except (OSError, ValueError, ImportError) as err:
        raise FireactError(f"model: cannot load {source!r}: {str(err).splitlines()[0]}") from None
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
    """Full fine-tuning: the model as is. LoRA/QLoRA: a PEFT model with trainable adapters."""
    if config.method == "full":
        return model
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if config.method == "qlora":
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=config.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
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


# -- trainer ---------------------------------------------------------------------------------
def make_trainer(
    args: Any, model: Any, tokenizer: Any, data: TrainData, collate: str, log_path: Path
) -> Any:
    """A transformers Trainer over the packed rows, logging to train_log.jsonl, that stops at
    the first step whose loss or gradients are not finite (`finite_guard`)."""
    from transformers import Trainer

    guard = finite_guard()

    class GuardedTrainer(Trainer):
        """The Trainer, showing each micro-batch's loss to the guard."""

        def training_step(self, *args: Any, **kwargs: Any) -> Any:
            loss = super().training_step(*args, **kwargs)
            guard.see_loss(loss)
            return loss

        def train(self, *args: Any, **kwargs: Any) -> Any:
            try:
                return super().train(*args, **kwargs)
            except FireactError:  # close the progress bar now, not after our error line
                for callback in self.callback_handler.callbacks:
                    if getattr(callback, "training_bar", None) is not None:
                        callback.training_bar.close()
                        callback.training_bar = None
                raise

    return GuardedTrainer(
        model=model,
        args=args,
        data_collator=PackedCollator(tokenizer.pad_token_id, collate),
        train_dataset=RowDataset(data.train_rows),
        eval_dataset=RowDataset(data.eval_rows) if data.eval_rows else None,
        processing_class=tokenizer,
        callbacks=[jsonl_log_callback(log_path), guard],
    )


def training_arguments(config: SFTConfig, world: int, has_eval: bool) -> Any:
    """TrainingArguments from the config; gradient accumulation = batch / (micro × world)."""
    import torch
    from transformers import TrainingArguments

    accumulation = config.batch_size // (config.micro_batch_size * world)
    if accumulation < 1:
        raise FireactError(
            f"batch_size {config.batch_size} is smaller than micro_batch_size "
            f"{config.micro_batch_size} × {world} processes"
        )
    precision = resolve_precision(config)
    eval_strategy = ("steps" if config.eval_steps else "epoch") if has_eval else "no"
    # transformers renamed gradient_checkpointing to activation_checkpointing (5.2x); older 5.x
    # releases (e.g. 5.17 on our GPU machine) know only the old name
    ckpt = (
        "activation_checkpointing"
        if "activation_checkpointing" in TrainingArguments.__dataclass_fields__
        else "gradient_checkpointing"
    )
    checkpointing = {
        ckpt: config.gradient_checkpointing and config.method != "qlora",
        f"{ckpt}_kwargs": {"use_reentrant": False},
    }
    return TrainingArguments(
        **checkpointing,
        output_dir=str(config.output_dir),
        per_device_train_batch_size=config.micro_batch_size,
        per_device_eval_batch_size=config.micro_batch_size,
        gradient_accumulation_steps=accumulation,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_steps,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        logging_steps=config.logging_steps,
        eval_strategy=eval_strategy,
        eval_steps=config.eval_steps,
        save_strategy="steps" if config.save_steps else "no",
        save_steps=config.save_steps or 500,
        save_total_limit=config.save_total_limit,
        report_to=report_targets(config.report_to),
        seed=config.seed,
        data_seed=config.seed,
        use_cpu=not torch.cuda.is_available(),
        remove_unused_columns=False,
        label_names=["labels"],
        ddp_find_unused_parameters=False,
        dataloader_num_workers=0,
    )


def report_targets(report_to: str) -> list[str]:
    """``report_to`` for transformers, after checking that the logger is installed."""
    if report_to == "none":
        return []
    modules = {"tensorboard": ("tensorboard", "tensorboardX"), "wandb": ("wandb",)}[report_to]
    if not any(importlib.util.find_spec(m) for m in modules):
        raise FireactError(f"report_to {report_to}: pip install {modules[0]}")
    return [report_to]


def jsonl_log_callback(path: Path) -> Any:
    """A TrainerCallback appending each log (loss, learning rate, eval loss...) as a JSON line."""
    from transformers import TrainerCallback

    class JsonlLog(TrainerCallback):
        last_loss: float | None = None

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if not logs:
                return
            if "loss" in logs:
                self.last_loss = float(logs["loss"])
            if state.is_world_process_zero:
                with path.open("a", encoding="utf-8") as f:
                    f.write(
                        json.dumps({"step": state.global_step, "epoch": state.epoch, **logs}) + "\n"
                    )

    return JsonlLog()


def finite_guard() -> Any:
    """A TrainerCallback that stops the run at the first step with a NaN or infinite loss or
    gradient, raising `FireactError` with the step and the last checkpoint saved before it.

    It acts at the end of that step, before the step's log line and checkpoint, so no checkpoint
    holds the broken weights, and the final save never happens. Each micro-batch's loss comes
    through `see_loss` (the trainer calls it); the gradients are looked at just before the
    optimizer step, after clipping (a non-finite norm leaves NaN in them), except under fp16,
    whose grad scaler skips overflowing steps on its own. The flags stay on the device until
    the step ends, where they are read once (reduced over processes, so every rank stops at
    the same step).
    """
    import torch
    from transformers import TrainerCallback

    class FiniteGuard(TrainerCallback):
        def __init__(self) -> None:
            self.loss_bad: Any = None  # bool tensors for the current step
            self.grads_bad: Any = None

        def see_loss(self, loss: Any) -> None:
            bad = ~torch.isfinite(loss.detach()).all()
            self.loss_bad = bad if self.loss_bad is None else self.loss_bad | bad

        def on_pre_optimizer_step(
            self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any
        ) -> None:
            if args.fp16 or model is None:
                return
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            grads = [g.to_local() if hasattr(g, "to_local") else g for g in grads]  # sharded
            if grads:  # one sum per tensor: NaN and inf survive it
                total = torch.stack([g.sum(dtype=torch.float32).to(grads[0].device) for g in grads])
                self.grads_bad = ~torch.isfinite(total.sum())

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            flags = [torch.zeros((), dtype=torch.float32, device=args.device)] * 2
            for i, flag in enumerate((self.loss_bad, self.grads_bad)):
                if flag is not None:
                    flags[i] = flag.to(args.device, torch.float32)
            self.loss_bad = self.grads_bad = None
            both = torch.stack(flags)
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                torch.distributed.all_reduce(both, op=torch.distributed.ReduceOp.MAX)
            loss_bad, grads_bad = (bool(x) for x in both.tolist())
            if loss_bad or grads_bad:
                raise FireactError(diverged_message(state.global_step, loss_bad, grads_bad, args))

    return FiniteGuard()


def diverged_message(step: int, loss_bad: bool, grads_bad: bool, args: Any) -> str:
    """The one line for a run stopped on a non-finite loss or gradient at `step`."""
    what = " and ".join(
        name for name, bad in (("the loss", loss_bad), ("the gradients", grads_bad)) if bad
    )
    verb = "are" if grads_bad else "is"
    last = last_complete_checkpoint(Path(args.output_dir))
    where = (
        f"the last checkpoint before it is {last} (resume from it with --resume {last} and a"
        " lower --learning_rate)"
        if last
        else "no checkpoint was saved before it"
    )
    return (
        f"training stopped at step {step}: {what} {verb} NaN or infinite (the run diverged; try"
        f" a lower learning_rate); nothing was saved as the final model; {where}"
    )


# -- outputs ---------------------------------------------------------------------------------
def save_outputs(trainer: Any, config: SFTConfig, source: str, state: Any) -> dict[str, str]:
    """Save the adapter or model + tokenizer (all ranks take part); merge on the main rank."""
    trainer.save_model(str(config.output_dir))
    state.wait_for_everyone()
    kind = "model" if config.method == "full" else "adapter"
    paths = {
        kind: str(config.output_dir),
        "tokenizer": str(config.output_dir),
        "config": str(config.output_dir / CONFIG_FILE),
        "train_log": str(config.output_dir / LOG_FILE),
    }
    if config.merge:
        if state.is_main_process:
            merge_adapter(source, config.output_dir, config.output_dir / "merged", config)
        state.wait_for_everyone()
        paths["merged"] = str(config.output_dir / "merged")
    return paths


def merge_adapter(base: str, adapter_dir: Path, out_dir: Path, config: SFTConfig) -> None:
    """Base (unquantised, reloaded) + saved adapter → one model, saved with the tokenizer."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    precision = resolve_precision(config)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[precision]
    model = AutoModelForCausalLM.from_pretrained(
        base, dtype=dtype, trust_remote_code=config.trust_remote_code
    )
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(str(out_dir))
    AutoTokenizer.from_pretrained(str(adapter_dir)).save_pretrained(str(out_dir))


def make_summary(
    trainer: Any,
    result: Any,
    data: TrainData,
    paths: dict[str, str],
    runtime: float,
    resumed_from: str | None,
) -> dict[str, Any]:
    """What the run did: steps, losses, tokens, tokens/s, data oddities and output paths."""
    log = next(c for c in trainer.callback_handler.callbacks if hasattr(c, "last_loss"))
    start_epoch = _checkpoint_state(resumed_from).get("epoch", 0.0) if resumed_from else 0.0
    tokens_run = data.tokens * ((trainer.state.epoch or 0.0) - start_epoch)
    summary = {
        "steps": trainer.state.global_step,
        "final_loss": log.last_loss if log.last_loss is not None else result.training_loss,
        "mean_loss": result.training_loss,
        "examples": data.examples,
        "rows": len(data.train_rows),
        "tokens_per_epoch": data.tokens,
        "supervised_tokens_per_epoch": data.supervised,
        "tokens_per_s": round(tokens_run / runtime, 1) if runtime else None,
        "runtime_s": round(runtime, 2),
        "world_size": trainer.args.world_size,
        "truncated": data.fit.truncated,
        "dropped": data.fit.dropped,
        "data": data.stats.as_dict(),
        "resumed_from": resumed_from,
        "outputs": paths,
    }
    if data.eval_rows:
        summary["eval_loss"] = trainer.evaluate().get("eval_loss")
    return summary


def _checkpoint_state(path: str) -> dict[str, Any]:
    state = Path(path) / "trainer_state.json"
    return json.loads(state.read_text()) if state.is_file() else {}


def main(argv: list[str] | None = None) -> int:
    """``python -m fireact.train.sft CONFIG.yaml [--key value ...]`` (also under accelerate)."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0].startswith("--"):
        print("usage: python -m fireact.train.sft CONFIG.yaml [--key value ...]", file=sys.stderr)
        return 2
    try:
        summary = train(load_config(argv[0], argv[1:]))
    except FireactError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", 0)) == 0:
        print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

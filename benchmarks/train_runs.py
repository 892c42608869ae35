"""P3's two systems, each a transformers `Trainer` run timed by the same callback.

Owns `step_probe` (the `TrainerCallback` that times optimiser steps, keeps what each micro-batch
fed the model and the peak GPU memory), `run_ours` (``fireact train`` itself:
`fireact.train.train` on a config read by `load_config`, the probe added through its
``callbacks`` seam) and `run_baseline` (FireAct's ``finetune/llama_lora/finetune.py`` settings on
transformers' `Trainer` + PEFT: one example per row, every token supervised
(``train_on_inputs``), ``group_by_length``, `DataCollatorForSeq2Seq(pad_to_multiple_of=8)`, left
padding, LoRA r 8 / alpha 16 / dropout 0.05 on q_proj/v_proj, micro-batch 4 x accumulation 32,
gradient checkpointing of every layer (what its ``prepare_model_for_int8_training`` turns on),
warm-up 100 steps, lr 3e-4; bf16 instead of its 8-bit base + fp16, which would only be slower).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from benchmarks.models import Device

BASELINE_MICRO = 4
PAD_MULTIPLE = 8  # FireAct's DataCollatorForSeq2Seq(pad_to_multiple_of=8)
KEPT = ("labels", "position_ids", "attention_mask")


def step_probe(warmup: int, dev: Device) -> Any:
    """The `TrainerCallback` both systems run with (see `StepProbe`)."""
    from transformers import TrainerCallback

    class StepProbe(TrainerCallback):
        """Times a trainer's optimiser steps and keeps what it fed the model.

        ``on_train_begin``: keeps the model, hooks its forward, resets the peak-memory counter.
        Each optimiser step: a device marker at ``on_step_begin`` and ``on_step_end`` (CUDA
        events, no sync); a sync and the wall clock at the end of the last warm-up step and of
        the last step. The forward pre-hook keeps each training micro-batch's labels, position
        ids and 2D padding mask, tagged with its step. Removes its hook at ``on_train_end``.
        """

        def __init__(self) -> None:
            self.model: Any = None
            self.batches: list[tuple[int, dict[str, Any]]] = []
            self.marks: list[tuple[Any, Any]] = []
            self.wall_start = self.wall = 0.0
            self.peak_gb: float | None = None
            self.step = 0
            self._begin: Any = None
            self._hook: Any = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.model = kw["model"]
            self._hook = self.model.register_forward_pre_hook(self._see, with_kwargs=True)
            dev.sync()
            dev.reset_peak(empty_cache=True)
            self.wall_start = time.perf_counter()

        def _see(self, module: Any, args: Any, kwargs: dict[str, Any]) -> None:
            if module.training:
                kept = {k: kwargs[k] for k in KEPT if kwargs.get(k) is not None}
                if "attention_mask" in kept and kept["attention_mask"].dim() != 2:
                    del kept["attention_mask"]  # an explicit 4D block mask: positions tell
                self.batches.append((self.step, kept))

        def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.step = state.global_step
            self._begin = dev.marker()

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.marks.append((self._begin, dev.marker()))
            if state.global_step == warmup:
                dev.sync()
                self.wall_start = time.perf_counter()
            if state.global_step == state.max_steps:
                dev.sync()
                self.wall = time.perf_counter() - self.wall_start
                if dev.cuda:
                    self.peak_gb = round(dev.torch.cuda.max_memory_allocated() / 1e9, 2)

        def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if self._hook is not None:
                self._hook.remove()
                self._hook = None

        def timed(self) -> tuple[list[float], list[dict[str, Any]]]:
            """Seconds of each timed step, and the micro-batches those steps fed."""
            seconds = [dev.seconds(a, b) for a, b in self.marks][warmup:]
            return seconds, [batch for step, batch in self.batches if step >= warmup]

    return StepProbe()


def run_ours(config: Any, dev: Device, warmup: int) -> tuple[Any, dict[str, Any]]:
    """``fireact train``: `fireact.train.train` with the probe; (probe, what the trainer says)."""
    from fireact import train as fireact_train
    from fireact.train.sft import LOG_FILE
    from fireact.train.speed import checkpointed_layers

    probe = step_probe(warmup, dev)
    summary = fireact_train.train(config, callbacks=[probe])
    if not probe.wall:
        raise RuntimeError(f"the trainer ran {summary['steps']} steps, not {config.max_steps}")
    log_path = Path(config.output_dir) / LOG_FILE
    log = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    layers = len(probe.model.base_model.model.model.layers)
    trainer = {
        "entry_point": f"{fireact_train.train.__module__}.{fireact_train.train.__qualname__}",
        "summary": {k: summary.get(k) for k in ("steps", "final_loss", "examples", "rows")},
        "train_log_steps": [line["step"] for line in log if "loss" in line],
        "losses": [float(line["loss"]) for line in log if "loss" in line],
        "checkpointed_layers": len(checkpointed_layers(probe.model)),
        "decoder_layers": layers,
    }
    return probe, trainer


def version_arguments() -> dict[str, Any]:
    """Gradient checkpointing on and group_by_length, under their names in this transformers
    (5.2x: ``activation_checkpointing``; 5.17, the GPU image's: ``gradient_checkpointing``; both
    ``train_sampling_strategy="group_by_length"``, older ones ``group_by_length=True``)."""
    from transformers import TrainingArguments

    fields = TrainingArguments.__dataclass_fields__
    ckpt = (
        "activation_checkpointing"
        if "activation_checkpointing" in fields
        else "gradient_checkpointing"
    )
    grouping: dict[str, Any] = (
        {"train_sampling_strategy": "group_by_length"}
        if "train_sampling_strategy" in fields
        else {"group_by_length": True}
    )
    return {ckpt: True, f"{ckpt}_kwargs": {"use_reentrant": False}, **grouping}


def run_baseline(
    base: Path,
    examples: list[Any],
    *,
    pad_id: int,
    tokenizer: Any,
    dtype: Any,
    precision: str,
    batch_size: int,
    max_steps: int,
    warmup: int,
    dev: Device,
    output_dir: Path,
    seed: int,
) -> tuple[Any, dict[str, Any]]:
    """FireAct's finetune.py settings on the same examples (same token ids); (probe, facts)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import (
        AutoModelForCausalLM,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainingArguments,
    )

    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=dtype, attn_implementation="sdpa")
    model.config.use_cache = False
    lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "v_proj"],
                      bias="none", task_type="CAUSAL_LM")  # fmt: skip
    model = get_peft_model(model, lora)
    tokenizer.pad_token_id = pad_id
    tokenizer.padding_side = "left"  # finetune.py: "Allow batched inference"
    data = [
        {
            "input_ids": list(e.input_ids),
            "attention_mask": [1] * len(e.input_ids),
            "labels": list(e.input_ids),
        }  # fmt: skip
        for e in examples
    ]
    args = TrainingArguments(
        **version_arguments(),
        output_dir=str(output_dir),
        per_device_train_batch_size=BASELINE_MICRO,
        gradient_accumulation_steps=batch_size // BASELINE_MICRO,
        warmup_steps=100,
        learning_rate=3e-4,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        logging_steps=1,
        save_strategy="no",
        eval_strategy="no",
        max_steps=max_steps,
        report_to=[],
        seed=seed,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
    )
    probe = step_probe(warmup, dev)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=data,
        data_collator=DataCollatorForSeq2Seq(
            tokenizer, pad_to_multiple_of=PAD_MULTIPLE, return_tensors="pt", padding=True
        ),
        callbacks=[probe],
    )
    trainer.train()
    losses = [float(x["loss"]) for x in trainer.state.log_history if "loss" in x]
    facts = {
        "entry_point": "transformers.Trainer.train (FireAct finetune.py settings)",
        "losses": losses,
        "checkpointed_layers": len(model.base_model.model.model.layers),
        "decoder_layers": len(model.base_model.model.model.layers),
    }
    return probe, facts


def isolation_check(model: Any, rows: list[list[Any]], mode: str, pad_id: int, device: str) -> Any:
    """Logits of an example packed after another (collator `mode`, as the trainer fed it) vs
    alone, and vs the row run as one causal sequence (the contamination packing prevents)."""
    import torch

    from fireact.train.packing import PackedCollator

    pairs = [(r[0], r[1]) for r in rows if len(r) >= 2]
    if not pairs:
        return {"checked": False}
    first, second = min(pairs, key=lambda p: len(p[0].input_ids) + len(p[1].input_ids))
    n = len(second.input_ids)
    collate = PackedCollator(pad_id, mode)
    was_training = model.training
    model.eval()
    with torch.no_grad():

        def logits(batch: dict[str, Any]) -> Any:
            batch = {k: v.to(device) for k, v in batch.items() if k != "labels"}
            return model(**batch, use_cache=False).logits.float()

        alone = logits(PackedCollator(pad_id, "padded")([{"row": [second]}]))[0, :n]
        packed_batch = collate([{"row": [first, second]}])
        packed = logits(packed_batch)[0, -n:]
        as_one = logits({"input_ids": packed_batch["input_ids"]})[0, -n:]
    model.train(was_training)
    return {
        "checked": True,
        "mode": mode,
        "lengths": [len(first.input_ids), n],
        "max_abs_diff_packed_vs_alone": float((packed - alone).abs().max()),
        "max_abs_diff_as_one_sequence": float((as_one - alone).abs().max()),
    }

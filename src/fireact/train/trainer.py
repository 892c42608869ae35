"""The transformers `Trainer` of a training run: its arguments, its callbacks, the guarded trainer.

Owns `training_arguments` (the config as ``TrainingArguments``; gradient accumulation = batch /
(micro batch × processes); Liger kernels and ``torch.compile`` as `fireact.train.speed` resolves
them), `make_trainer` (a ``Trainer`` over the packed rows that stops at the
first step whose loss or gradients are not finite), and the callbacks: `jsonl_log_callback`
(one JSON line per log in ``train_log.jsonl``) and `finite_guard` (a NaN or infinite loss or
gradient stops the run with a `FireactError` naming the step and the last checkpoint,
`diverged_message`).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fireact.errors import FireactError
from fireact.train.config import SFTConfig
from fireact.train.output_dir import last_complete_checkpoint
from fireact.train.packing import PackedCollator, RowDataset
from fireact.train.precision import resolve_precision
from fireact.train.speed import liger_enabled

if TYPE_CHECKING:
    from fireact.train.sft import TrainData


def make_trainer(
    args: Any,
    model: Any,
    tokenizer: Any,
    data: TrainData,
    collate: str,
    log_path: Path,
    pad_to: int | None = None,
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
        data_collator=PackedCollator(tokenizer.pad_token_id, collate, pad_to),
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
    # gradient checkpointing is not the Trainer's: `speed.enable_checkpointing` turns it on for
    # the layers the config names before the Trainer exists (the Trainer only knows all or none)
    return TrainingArguments(
        use_liger_kernel=liger_enabled(config),
        torch_compile=config.torch_compile,
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

"""What a finished training run leaves: the saved model, the merged model, the summary.

Owns `save_outputs` (the adapter (LoRA) or model (full) and the tokenizer in ``output_dir``, and
on request the merged model in ``output_dir/merged``), `merge_adapter` (base + adapter → one
model) and `make_summary` (steps, losses, tokens, tokens/s, data oddities, output paths: what
``train_summary.json`` holds).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fireact.train.config import SFTConfig
from fireact.train.output_dir import CONFIG_FILE, LOG_FILE
from fireact.train.precision import resolve_precision, torch_dtype

if TYPE_CHECKING:
    from fireact.train.sft import TrainData


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
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(
        base,
        dtype=torch_dtype(resolve_precision(config)),
        trust_remote_code=config.trust_remote_code,
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

"""A training run's output folder: its files, and claiming it before training starts.

Owns the names of what training writes (`CONFIG_FILE`, `LOG_FILE`, `SUMMARY_FILE`, and
`TRAIN_FILES`, everything ``overwrite`` may remove), `claim_output_dir` (following
`fireact.outputs`: locked until training returns, refused if it holds an earlier run unless
``resume`` or ``overwrite``, refused if it is or holds an input, marked as a training output
``.fireact-train``, and ``fireact_config.yaml`` — the exact config — written into it),
`prepare_output_dir` (the claim on the main process, its refusal told to every rank) and
`last_complete_checkpoint`.
"""

from __future__ import annotations

import contextlib
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
from fireact.train.config import SFTConfig

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

    Refused in one line: an input (dataset, eval dataset, adapter to continue, local model or
    tokenizer folder) that is ``output_dir``, contains it, or (with ``overwrite``) lies in it;
    another training writing to it; an earlier run in it without ``resume`` or ``overwrite``; and, to
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
    paths = [config.dataset, config.eval_dataset, config.init_adapter]
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

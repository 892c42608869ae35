"""A training run's output folder: its files, and claiming it before training starts.

Owns the names of what training writes (`CONFIG_FILE`, `LOG_FILE`, `SUMMARY_FILE`, and
`TRAIN_FILES`, everything ``overwrite`` may remove), `claim_output_dir` (following
`fireact.outputs`: locked until training returns, refused if it holds an earlier run unless
``resume`` or ``overwrite``, refused if it is or holds an input, marked as a training output
``.fireact-train``, and ``fireact_config.yaml`` — the exact config — written into it),
`Claim` (a run that fails before it trained leaves the folder as it found it, so the same
command can be rerun), `prepare_output_dir` (the claim on the main process, its refusal told to
every rank) and `last_complete_checkpoint`.
"""

from __future__ import annotations

import contextlib
import fnmatch
from pathlib import Path
from typing import Any

from fireact.errors import FireactError
from fireact.outputs import (
    LOCK_NAME,
    FolderLock,
    atomic_write_bytes,
    atomic_write_text,
    check_owned,
    clean_leftovers,
    clear_owned,
    mark_owned,
    refuse_overlap,
    remove,
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


def prepare_output_dir(config: SFTConfig, state: Any) -> Claim:
    """Claim the output folder on the main process (`claim_output_dir`); every rank raises its
    one-line refusal. Returns the `Claim`, held until it is left as a context manager (an empty
    one on the other ranks)."""
    claim = Claim(config.output_dir)
    failure: Exception | None = None
    if state.is_main_process:
        try:
            claim = claim_output_dir(config)
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
    return claim


def claim_output_dir(config: SFTConfig) -> Claim:
    """Lock, check and mark ``output_dir``; write the exact config. Returns the held `Claim`.

    Refused in one line: an input (dataset, eval dataset, adapter to continue, local model or
    tokenizer folder) that is ``output_dir``, contains it, or (with ``overwrite``) lies in it;
    another training writing to it; an earlier run in it without ``resume`` or ``overwrite``; and, to
    ``overwrite``, a folder holding files that fireact train did not write. ``overwrite``
    removes the earlier run (but keeps a tiny model's ``base/``) when training begins
    (`Claim.begin`). A folder holding only the config of a run that never trained (killed while
    loading) is no earlier run.
    """
    out = config.output_dir
    inputs = training_inputs(config)
    replacing = bool(config.overwrite and not config.resume)
    refuse_overlap([out], inputs, what="output_dir", replacing=replacing)
    made = _first_missing(out)
    lock = FolderLock(out, "training").acquire()
    try:
        clean_leftovers(out)
        earlier = holds_run(out)
        if earlier and not (config.resume or config.overwrite):
            raise FireactError(
                f"output_dir {out} holds an earlier run: set resume: true to continue it, "
                "overwrite: true to replace it, or choose another output_dir"
            )
        # a run written before markers existed is recognised by its config file
        legacy = (out / CONFIG_FILE).exists()
        rules: dict[str, Any] | None = None
        if earlier and replacing:
            rules = {
                "keep": [out / "base", out / CONFIG_FILE],
                "inputs": inputs,
                "owns": TRAIN_FILES,
                "legacy_markers": [CONFIG_FILE],
            }
            check_owned(out, MARKER_KIND, **rules)  # refused now, before anything is written
        claim = Claim(out, lock, rules, made)
        mark_owned(out, MARKER_KIND, adopt=legacy)
        atomic_write_text(out / CONFIG_FILE, config.to_yaml())
    except BaseException:
        lock.release()
        raise
    return claim


def holds_run(out: Path) -> bool:
    """Whether `out` holds an earlier run: its config or a checkpoint, with something training
    writes besides the config and a tiny ``base/`` (a log, a checkpoint, weights, a summary)."""
    if not ((out / CONFIG_FILE).exists() or any(out.glob("checkpoint-*"))):
        return False
    return any(
        e.name not in (CONFIG_FILE, "base") and any(fnmatch.fnmatch(e.name, p) for p in TRAIN_FILES)
        for e in out.iterdir()
    )


class Claim:
    """A claimed output folder, from `claim_output_dir` until training returns or raises.

    Leaving it releases the lock. Leaving on an error before this run trained (no new
    ``checkpoint-*``, no new line in ``train_log.jsonl``) puts the folder back as it was found,
    so the same command can be rerun: what this run created is removed (the folder too, if it
    made it) and an earlier ``fireact_config.yaml`` is restored; nothing else is touched.
    ``overwrite``'s removal of an earlier run waits for `begin` (right before training), so a run
    that cannot load its model or data leaves the earlier run in place. The other ranks of a
    multi-process run hold an empty claim (``lock`` None) that does nothing.
    """

    def __init__(
        self,
        out: Path,
        lock: FolderLock | None = None,
        replace: dict[str, Any] | None = None,
        made: Path | None = None,
    ) -> None:
        self.out = out
        self.lock = lock
        self._replace = replace  # clear_owned's rules, applied by `begin`
        self._made = made  # the outermost folder the claim created, removed again by `undo`
        self._before: set[str] = set()
        self._config: bytes | None = None
        self._log_size = -1
        if lock is not None:
            self._before = {e.name for e in out.iterdir()}
            self._config = _read_bytes(out / CONFIG_FILE)
            self._log_size = _size(out / LOG_FILE)

    def begin(self) -> None:
        """Training starts: ``overwrite`` removes the earlier run now (its config is gone too,
        so a failure from here on leaves the marker and a tiny ``base/``, not a half run)."""
        if self.lock is None or self._replace is None:
            return
        clear_owned(self.out, MARKER_KIND, **self._replace)
        self._replace = None
        self._before = {e.name for e in self.out.iterdir()} - {CONFIG_FILE}
        self._config = None

    def trained(self) -> bool:
        """Whether this run wrote a checkpoint or a log line (then a failure keeps the folder)."""
        new = {e.name for e in self.out.iterdir()} - self._before
        return _size(self.out / LOG_FILE) > self._log_size or any(
            n.startswith("checkpoint-") for n in new
        )

    def undo(self) -> None:
        """Remove what this run created in the folder and restore the config it replaced."""
        for name in sorted({e.name for e in self.out.iterdir()} - self._before):
            if name != LOCK_NAME:
                with contextlib.suppress(FireactError):  # the run's own error is the one told
                    remove(self.out / name)
        if self._config is not None:
            with contextlib.suppress(FireactError):
                atomic_write_bytes(self.out / CONFIG_FILE, self._config)

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: Any) -> None:
        if self.lock is None:
            return
        undone = False
        try:
            if kind is not None and self.out.is_dir() and not self.trained():
                self.undo()
                undone = True
        finally:
            self.lock.release()
        if undone and self._made is not None:  # the folders the claim made, if still empty
            for folder in (self.out, *self.out.parents):
                with contextlib.suppress(OSError):
                    folder.rmdir()
                if folder == self._made:
                    break


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


def _first_missing(folder: Path) -> Path | None:
    """The outermost of `folder` and its parents that does not exist yet (None: it exists)."""
    missing = None
    for path in (folder, *folder.parents):
        if path.exists():
            return missing
        missing = path
    return missing


def _read_bytes(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else -1

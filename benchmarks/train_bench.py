"""Training benchmark (P3): one epoch of LoRA SFT, ``fireact train`` vs FireAct's own trainer.

Workload: FireAct's ``multitask_multimethod`` alpaca set (2,063 ReAct / CoT / Reflexion records),
cutoff 512, on a Llama with RANDOM weights built in this process from a `LlamaConfig`:
``--model-size 7b`` is Llama-2-7B's shape (hidden 4096, 32 layers, vocab 32,000) in bf16 on the
GPU; ``tiny`` (the default without CUDA) hidden 256, 4 layers, vocab 32,000, fp32 on the CPU;
``--quick`` a micro model on 48 records (the smoke test). The tokenizer is a byte-level BPE with
Llama-2's vocabulary size trained here on the text shipped in ``fireact/resources``. The model
is saved with it into a scratch folder and every configuration loads it from there.

Configurations, each measured in turn, the results JSON rewritten after each (a timeout keeps
what was done):

* ``baseline``: FireAct's ``finetune/llama_lora/finetune.py`` settings on transformers' `Trainer`
  + PEFT (`benchmarks.train_runs.run_baseline`): micro-batch 4 x accumulation 32 (batch 128),
  group_by_length, every token supervised (train_on_inputs), one example per row padded to a
  multiple of 8, LoRA r 8 on q_proj/v_proj, gradient checkpointing of every layer; bf16 where the
  paper loaded an 8-bit base (int8 matmuls dequantise on the fly: only slower).
* ``ours``: ``fireact train`` itself, `fireact.train.train` on
  ``configs/llama2-7b-lora-multitask-multimethod.yaml`` read by `load_config` with this
  benchmark's overrides (the saved model, batch, steps, no checkpoint saves) plus the speed
  settings of ``SPEED[model size]`` (packing; on 7b partial gradient checkpointing and Liger where
  installed). ``ours-*``: the same with one setting changed (`VARIANTS`), to choose the defaults
  by measurement.

Each configuration runs ``--warmup-steps`` untimed optimiser steps then ``--steps`` timed ones (a
step = 32 micro-batches at batch 128); the same examples (ours: their packed rows). ``--steps 0``
runs whole epochs (no extrapolation). Metric: the wall time of one epoch, extrapolated as the
epoch's padded tokens (each system's own batching of all its examples) / the padded tokens per
second measured over the timed steps; MFU (formula in the JSON's ``flops``: 4 N_base + 6 N_lora
per token plus attention, recompute not counted) over the H100's dense bf16 peak; peak GPU
memory (``max_memory_allocated``, GB = 1e9 bytes) from the start of training. Targets (7b on one
H100): epoch >= 2.5x faster than the baseline, MFU >= 50 %, peak <= 20 GB.

Run from the repository root: ``python -m benchmarks.train_bench --model-size 7b --out FILE``
(``bash benchmarks/run_gpu.sh p3``) or, on the CPU, ``.venv/bin/python -m benchmarks.train_bench``
(tiny). It needs pydantic (fireact's config): the GPU image has none (see ``run_gpu.sh``).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

if not __package__:  # run as `python benchmarks/train_bench.py`: the package's root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import REPO, device_wheels, load_average, run_info, write_results  # noqa: E402
from benchmarks.models import PACKAGES, SIZES, Device, build_model, train_tokenizer  # noqa: E402
from benchmarks.train_configs import (  # noqa: E402
    DATASET,
    DEFAULT_CONFIGS,
    RECIPE,
    VARIANTS,
    overrides,
)
from benchmarks.train_figures import (  # noqa: E402
    FLOP_FORMULA,
    epoch_summary,
    flop_model,
    length_stats,
    peak_tflops,
    system_row,
    tables,
)
from benchmarks.train_runs import (  # noqa: E402
    PAD_MULTIPLE,
    isolation_check,
    run_baseline,
    run_ours,
)

NAME = "train"
TARGETS = {"epoch_speedup": 2.5, "mfu_pct": 50.0, "peak_gpu_mem_gb": 20.0}


def require_trainer() -> None:
    """Exit in one line when fireact's trainer cannot be imported for want of pydantic (the GPU
    image has none; ``run_gpu.sh`` installs it from carried wheels)."""
    try:
        from fireact.train import sft  # noqa: F401
    except ModuleNotFoundError as err:
        if err.name is None or err.name.split(".")[0] not in {"pydantic", "pydantic_core"}:
            raise
        raise SystemExit(
            f"train_bench: fireact's trainer needs {err.name} (its config is pydantic), not "
            f"installed here; install {', '.join(device_wheels())} or, on the lent GPU machine, "
            "carry their wheels (bash benchmarks/gpu_wheels.sh, then run(..., carry=['.whl']); "
            "run_gpu.sh installs them)"
        ) from None


class Bench:
    """The scratch folder, the saved model, the data and the results so far."""

    def __init__(self, args: argparse.Namespace, workdir: Path, info: dict[str, Any]) -> None:
        self.args, self.workdir, self.info = args, workdir, info
        self.dev = Device(args.device)
        self.results: dict[str, Any] = {"rows": [], "comparison": {}}
        self.flops: Any = None

    def write(self) -> None:
        """The results so far, as one JSON file (atomic)."""
        self.results["configurations_done"] = [r["system"] for r in self.results["rows"]]
        write_results(NAME, self.info, self.results, self.args.out)

    def setup(self) -> None:
        """Tokenizer, random model saved for the trainers, the examples and both epochs."""
        import torch

        from fireact.train import load_config, sft

        args, spec = self.args, SIZES[self.args.spec_name]
        self.base = self.workdir / "base"
        probe_config = load_config(RECIPE, overrides(args, "ours", self.workdir / "x", None))
        self.precision = sft.resolve_precision(probe_config)
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(
            self.precision, torch.float32
        )
        t0 = time.perf_counter()
        tokenizer = train_tokenizer(
            args.vocab_size or spec.vocab, args.corpus_chars, pad_as_eos=True, save_to=self.base
        )
        model = build_model(spec, tokenizer, args.device, self.dtype, seed=args.seed)
        model.save_pretrained(str(self.base))
        del model
        gc.collect()
        self.dev.reset_peak(empty_cache=True)
        build_s = time.perf_counter() - t0
        config = load_config(RECIPE, overrides(args, "ours", self.workdir / "x", self.base))
        self.tokenizer = sft.load_tokenizer(config, str(self.base))
        records, _ = sft.load_records(config)
        data = sft.load_data(config, self.tokenizer, records, [])
        self.rows = data.train_rows
        self.examples = [e for row in data.train_rows for e in row]
        generator = torch.Generator().manual_seed(args.seed)
        rows = [sum(len(e.input_ids) for e in row) for row in data.train_rows]
        lengths = [len(e.input_ids) for e in self.examples]
        from transformers.trainer_pt_utils import get_length_grouped_indices

        grouped = get_length_grouped_indices(lengths, args.batch_size, generator=generator)
        self.epochs = {
            "ours": epoch_summary(rows, torch.randperm(len(rows)).tolist(), 4, 1),
            "baseline": epoch_summary(lengths, list(grouped), 4, PAD_MULTIPLE),
        }
        gpu = torch.cuda.get_device_name() if self.dev.cuda else None
        self.peak, peak_source = peak_tflops(gpu, args.peak_tflops)
        self.results.update(
            settings={
                "model_size": args.spec_name,
                "model": {
                    "hidden": spec.hidden,
                    "intermediate": spec.intermediate,
                    "layers": spec.layers,
                    "heads": spec.heads,
                    "vocab": len(self.tokenizer),
                },  # fmt: skip
                "weights": "random (LlamaConfig), saved and loaded by each configuration",
                "precision": self.precision,
                "device": args.device,
                "gpu": gpu,
                "recipe": str(RECIPE.relative_to(REPO)),
                "ours_command": "fireact train "
                + str(RECIPE.relative_to(REPO))
                + " "
                + " ".join(overrides(args, "ours", Path("OUT"), Path("MODEL"))),
                "variants": VARIANTS,
                "batch_size": args.batch_size,
                "micro_batch": 4,
                "cutoff_len": config.cutoff_len,
                "warmup_steps": args.warmup_steps,
                "timed_steps": args.steps or "whole epoch",
                "baseline": "FireAct finetune/llama_lora/finetune.py settings on transformers "
                "Trainer + PEFT: group_by_length, train_on_inputs, DataCollatorForSeq2Seq("
                "pad_to_multiple_of=8), left padding, LoRA r 8/alpha 16/dropout 0.05 q_proj,v_proj, "
                "gradient checkpointing (all layers, as prepare_model_for_int8_training), warmup "
                f"100, lr 3e-4; {self.precision} instead of its 8-bit base + fp16 (int8 weights "
                "dequantised per matmul would only be slower); its torch.compile(model) comes "
                "after the Trainer holds the model, so it never ran compiled",
                "same_examples": "both train on the examples fireact's data step keeps (same "
                "token ids; ours packs them into rows, the baseline one per row)",
                "epoch_time": "extrapolated: the epoch's padded tokens / padded tokens per second "
                "measured over the timed steps"
                if args.steps
                else "measured: whole epoch",
                "build_s": round(build_s, 1),
            },
            data={
                "dataset": DATASET,
                "records": len(records),
                "examples": data.examples,
                "truncated": data.fit.truncated,
                "dropped": data.fit.dropped,
                "packed_rows": len(data.train_rows),
                "tokens": data.tokens,
                "supervised_tokens_fireact_mask": data.supervised,
                "example_tokens": length_stats(lengths),
                "epoch": self.epochs,
            },
            flops={"formula": FLOP_FORMULA, "peak_tflops": self.peak, "peak_source": peak_source},
            targets=TARGETS,
        )
        print(f"setup: {data.examples} examples, {len(rows)} rows, {build_s:.1f} s", flush=True)

    def measure(self, name: str) -> dict[str, Any]:
        """One configuration's row."""
        from fireact.train import load_config
        from fireact.train.speed import attention_mode, liger_enabled

        args, spec = self.args, SIZES[self.args.spec_name]
        out = self.workdir / name
        if name == "baseline":
            probe, facts = run_baseline(
                self.base, self.examples, pad_id=0, tokenizer=self.tokenizer, dtype=self.dtype,
                precision=self.precision, batch_size=args.batch_size,
                max_steps=args.warmup_steps + args.steps if args.steps else -1,
                warmup=args.warmup_steps, dev=self.dev, output_dir=out, seed=args.seed,
            )  # fmt: skip
            epoch = self.epochs["baseline"]
        else:
            config = load_config(RECIPE, overrides(args, name, out, self.base))
            probe, facts = run_ours(config, self.dev, args.warmup_steps)
            facts["config"] = {k: getattr(config, k) for k in (
                "packing", "packing_mask", "gradient_checkpointing",
                "gradient_checkpointing_layers", "use_liger_kernel", "torch_compile")}  # fmt: skip
            attention, collate = attention_mode(config)
            facts["attention"] = {"implementation": attention, "packing": collate,
                                  "liger_applied": liger_enabled(config)}  # fmt: skip
            epoch = self.epochs["ours"]
            if name == "ours":  # the trained model: are packed examples kept apart here?
                self.results["isolation"] = isolation_check(
                    probe.model, self.rows, collate, self.tokenizer.pad_token_id, args.device
                )
        if self.flops is None:
            self.flops = flop_model(probe.model, spec.hidden, spec.layers)
            self.results["flops"].update(
                n_base_matmul=self.flops.n_base,
                n_lora=self.flops.n_lora,
                per_token_linear=self.flops.per_token(),
            )
        seconds, batches = probe.timed()
        row = system_row(
            name, marks=seconds, wall=probe.wall, batches=batches, flops=self.flops,
            recomputed=facts["checkpointed_layers"] / facts["decoder_layers"],
            peak_gb=probe.peak_gb, peak=self.peak, epoch=epoch, losses=facts.pop("losses"),
        )  # fmt: skip
        return row | {"trainer": facts}

    def run(self, name: str) -> None:
        """Measure `name`, keep its row (or its error), compare, write the JSON."""
        import torch

        print(f"== {name}", flush=True)
        if name == "ours-no-liger" and not self.liger_applied():
            self.results["rows"].append({"system": name, "skipped": "no Liger in ours: the same"})
            self.write()
            return
        before = torch.cuda.memory_allocated() / 1e9 if self.dev.cuda else None
        try:
            row = self.measure(name)
        except Exception as err:  # one configuration failing (OOM, a kernel) keeps the others
            traceback.print_exc()
            row = {"system": name, "error": f"{type(err).__name__}: {str(err).splitlines()[0]}"}
        row["gpu_mem_allocated_before_gb"] = before
        row["load_average_after"] = load_average()  # other work on the machine shows here
        self.results["rows"].append(row)
        gc.collect()
        self.dev.reset_peak(empty_cache=True)
        torch._dynamo.reset()
        self.compare()
        self.write()

    def liger_applied(self) -> bool:
        """Whether the ``ours`` row ran with Liger kernels."""
        rows = [r for r in self.results["rows"] if r["system"] == "ours" and "trainer" in r]
        return any(r["trainer"]["attention"]["liger_applied"] for r in rows)

    def compare(self) -> None:
        """Each ours row against the baseline, and the target check of ``ours``."""
        rows = {r["system"]: r for r in self.results["rows"] if "wall_s" in r}
        if "baseline" not in rows:
            return
        base = rows["baseline"]["epoch_s_extrapolated"]
        for name, row in rows.items():
            if name != "baseline":
                self.results["comparison"][name] = {
                    "epoch_speedup": base / row["epoch_s_extrapolated"],
                    "mfu_pct": row["mfu_pct"],
                    "peak_gpu_mem_gb": row["peak_gpu_mem_gb"],
                }
        ours = self.results["comparison"].get("ours")
        if ours:
            evaluated = self.dev.cuda and self.args.spec_name == "7b"
            self.results["target_check"] = {
                "evaluated": evaluated,
                "why_not": None if evaluated else "targets are for --model-size 7b on a GPU",
                **ours,
                "epoch_met": ours["epoch_speedup"] >= TARGETS["epoch_speedup"],
                "mfu_met": (ours["mfu_pct"] or 0) >= TARGETS["mfu_pct"],
                "mem_met": ours["peak_gpu_mem_gb"] is not None
                and ours["peak_gpu_mem_gb"] <= TARGETS["peak_gpu_mem_gb"],
            }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    import torch

    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--model-size", choices=["tiny", "7b"], default="7b" if cuda else "tiny")
    p.add_argument("--device", default="cuda" if cuda else "cpu")
    p.add_argument("--configs", default=None, help="comma-separated: baseline, ours, "
                   f"{', '.join(VARIANTS)} (default: by model size)")  # fmt: skip
    p.add_argument("--steps", type=int, default=3, help="timed optimiser steps (0: whole epoch)")
    p.add_argument("--warmup-steps", type=int, default=1, help="untimed steps before them")
    p.add_argument("--batch-size", type=int, default=128, help="examples per optimiser step")
    p.add_argument("--max-records", type=int, default=None, help="use only the first N records")
    p.add_argument("--vocab-size", type=int, default=None, help="tokenizer vocab (default 32000)")
    p.add_argument("--corpus-chars", type=int, default=20_000_000, help="tokenizer training text")
    p.add_argument("--peak-tflops", type=float, default=None, help="override the GPU's peak")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", type=Path, default=None, help="results JSON path")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: micro model, 48 records, batch 8, 1 + 1 steps")  # fmt: skip
    args = p.parse_args(argv)
    args.spec_name = "micro" if args.quick else args.model_size
    if args.quick:
        args.steps, args.warmup_steps = min(args.steps, 1), min(args.warmup_steps, 1)
        args.batch_size = min(args.batch_size, 8)
        args.max_records = args.max_records or 48
        args.corpus_chars = min(args.corpus_chars, 300_000)
    if args.model_size == "7b" and not args.device.startswith("cuda"):
        p.error("--model-size 7b needs a CUDA device")
    if args.steps < 0 or args.warmup_steps < 0 or args.batch_size % 4:
        p.error("--steps and --warmup-steps must be >= 0, --batch-size a multiple of 4")
    args.configs = (args.configs or DEFAULT_CONFIGS[args.spec_name]).split(",")
    unknown = set(args.configs) - {"ours", "baseline", *VARIANTS}
    if unknown:
        p.error(f"unknown --configs: {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark (the JSON rewritten after each configuration); return the document."""
    import tempfile

    args = parse_args(argv)
    require_trainer()
    info = run_info(PACKAGES)
    with tempfile.TemporaryDirectory(prefix="fireact-train-") as tmp:
        bench = Bench(args, Path(tmp), info)
        bench.setup()
        bench.write()
        for name in args.configs:
            bench.run(name)
    print(tables(bench.results))
    print(f"target check: {bench.results.get('target_check')}")
    return {**info, **bench.results}


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()

"""The P2 figures: the results document, the episode runs' comparisons, the sweep, the roofline.

Owns `Results` (the results JSON, rewritten atomically after every measured configuration, with
the ratios against the baseline and the target check), `equality` (whether two systems wrote the
same greedy text, call by call) and `mean_by_step`, one sweep point (`sweep_point`: a batch of
concurrent calls timed with ``gen`` new tokens and with 1, so prefill ≈ the 1-token time and
decode tokens/s = batch × (gen − 1) / (t_gen − t_1)), the roofline (`roofline`: decoding one
token at batch 1 reads every weight once, so tokens/s ≤ bandwidth / (bytes per parameter ×
parameters); the bandwidth is the GPU's datasheet HBM figure, `HBM_GBS`, or ``--hbm-gbs``, and a
device-to-device copy measured in the same run), `sweep`, every point in turn, and `tables`, the
text the benchmark prints (the ``ours-runner`` row's runner figures on a line of their own).
"""

from __future__ import annotations

import argparse
import asyncio
import resource as rusage
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import format_table, latency_stats, run_info, write_results
from benchmarks.inference_work import (
    PreloadedHFLLM,
    forced_length,
    gather_completions,
    in_worker,
    plain_generate,
)
from benchmarks.models import PACKAGES, Device
from fireact.llm.base import Completion

NAME = "inference"
TARGETS = {"x_episodes_per_s": 10.0, "pct_of_hbm_roofline_batch1": 60.0}
SWEEP_SYSTEMS = ("hfllm-compiled", "hfllm-eager", "generate")

# Datasheet HBM bandwidth (GB/s) by a substring of `torch.cuda.get_device_name()`; first match wins.
HBM_GBS = [
    ("H100 80GB HBM3", 3350.0),  # H100 SXM5
    ("H100 SXM", 3350.0),
    ("H100 NVL", 3900.0),
    ("H100 PCIe", 2000.0),
    ("H200", 4800.0),
    ("A100-SXM4-80GB", 2039.0),
    ("A100 80GB PCIe", 1935.0),
    ("A100-SXM4-40GB", 1555.0),
]


class Results:
    """The results document, rewritten (atomically) after every measured configuration."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.info = run_info(PACKAGES)
        self.doc: dict[str, Any] = {"progress": {"done": [], "complete": False}, "rows": []}
        self.doc |= {"equality": {}, "sweep": [], "roofline": None, "targets": TARGETS}
        self.path: Path | None = None

    def done(self, what: str) -> None:
        self.doc["progress"]["done"].append(what)
        self.save()

    def save(self) -> None:
        self.doc["target_check"] = self.target_check()
        self.doc["peak_rss_gib"] = round(rusage.getrusage(rusage.RUSAGE_SELF).ru_maxrss / 2**20, 2)
        self.path = write_results(NAME, self.info, self.doc, self.args.out)

    def row(self, system: str) -> dict[str, Any] | None:
        return next((r for r in self.doc["rows"] if r["system"] == system), None)

    def target_check(self) -> dict[str, Any]:
        """x episodes/s and % of the roofline of the shipped CUDA default (compiled)."""
        args, shipped = self.args, self.row("ours-compiled")
        x = shipped.get("x_vs_baseline_episodes") if shipped else None
        roof = self.doc["roofline"] or {}
        pct = roof.get("pct_of_roofline_hfllm-compiled")
        evaluated = args.device.startswith("cuda") and args.model_size == "7b" and not args.quick
        return {
            "evaluated": evaluated,
            "why_not": None if evaluated else "targets are for --model-size 7b on a GPU",
            "system": "ours-compiled / hfllm-compiled (the hf backend's default on CUDA)",
            "x_episodes_per_s": x,
            "x_met": x is not None and x >= TARGETS["x_episodes_per_s"],
            "pct_of_hbm_roofline_batch1": pct,
            "pct_met": pct is not None and pct >= TARGETS["pct_of_hbm_roofline_batch1"],
        }

    def add_row(self, row: dict[str, Any]) -> None:
        """Append an episode row; ratios against the baseline once it is measured."""
        self.doc["rows"].append(row)
        base = self.row("baseline")
        for r in self.doc["rows"] if base else []:
            if "error" in r:  # a failed system: its error, no figures
                continue
            r["x_vs_baseline_episodes"] = r["episodes_per_s"] / base["episodes_per_s"]
            r["x_vs_baseline_tokens"] = r["generated_tokens_per_s"] / base["generated_tokens_per_s"]


def mean_by_step(lengths: Sequence[Sequence[int]]) -> list[float]:
    """Mean prompt tokens of each step over the episodes."""
    return [round(statistics.fmean(col), 1) for col in zip(*lengths, strict=True)]


def equality(
    ours: Sequence[Sequence[Completion]], texts: Sequence[Sequence[str]], n: int, steps: int
) -> dict[str, Any]:
    """Whether ours and the baseline wrote the same greedy text, call by call."""
    pairs = [(ours[i][k].text, texts[i][k]) for i in range(n) for k in range(steps)]
    same = sum(a == b for a, b in pairs)
    first_diff = next(
        ((i, k) for i in range(n) for k in range(steps) if ours[i][k].text != texts[i][k]), None
    )
    return {
        "compared_calls": len(pairs),
        "same_text": same,
        "all_same": same == len(pairs),
        "first_difference": list(first_diff) if first_diff else None,
        "note": "a difference changes every later prompt of that episode",
    }


def sweep_point(
    system: str,
    fn: Callable[[int], Any],
    batch_ids: list[list[int]],
    gen: int,
    repeats: int,
    dev: Device,
) -> dict[str, Any]:
    """Decode and prefill figures of `fn(new_tokens)` (one batch of ``len(batch_ids)`` rows)."""
    b = len(batch_ids)
    print(f"sweep: {system} at batch {b} ...", flush=True)
    warm_s, _ = dev.time(lambda: fn(2))  # warm-up at this shape (compiles, on the compiled path)
    dev.reset_peak()
    full, first = [], []
    for _ in range(repeats):
        full.append(dev.time(lambda: fn(gen))[0])
        first.append(dev.time(lambda: fn(1))[0])
    t_full, t_first = statistics.median(full), statistics.median(first)
    decode_s = t_full - t_first
    return {
        "system": system,
        "batch": b,
        "prompt_tokens": round(statistics.fmean(len(x) for x in batch_ids), 1),
        "new_tokens": gen,
        "warmup_s": round(warm_s, 3),
        "full_s": round(t_full, 4),
        "prefill_s": round(t_first, 4),
        "tokens_per_s": b * gen / t_full,
        "decode_tokens_per_s": b * (gen - 1) / decode_s if decode_s > 0 else None,
        "prefill_tokens_per_s": b * len(batch_ids[0]) / t_first,
        "decode_ms_per_step": 1000 * decode_s / (gen - 1) if gen > 1 else None,
        "peak_gpu_mem_gib": dev.peak_gib(),
        "full_runs_s": [round(t, 4) for t in full],
        "prefill_runs_s": [round(t, 4) for t in first],
        "full_latency": latency_stats(full),
    }


def sweep(args: Any, s: Any, res: Any, compiled: PreloadedHFLLM | None, sizes: list[int]) -> None:
    """The decode sweep of `args.systems` at `sizes`, each point saved as it is done, then the
    roofline (`res`: `inference_bench.Results`; `s`: its `Setup`)."""
    model, dev, tokenizer = s.model, s.dev, s.eager.tokenizer
    llms = {"hfllm-eager": s.eager, "hfllm-compiled": compiled, "generate": None}
    prompts = s.workload.sweep_prompts
    ids = [s.eager.encode(p) for p in prompts]
    for b in sizes:
        batch_ids = [ids[i % len(ids)] for i in range(b)]
        batch_prompts = [prompts[i % len(prompts)] for i in range(b)]
        for system in args.systems:
            llm = llms[system]
            if system != "generate" and llm is None:
                continue  # --no-compiled

            def fn(
                new: int, llm: Any = llm, ids: Any = batch_ids, texts: Any = batch_prompts
            ) -> Any:
                if llm is None:
                    return in_worker(lambda: plain_generate(model, tokenizer, ids, new))
                forced_length(model, new)
                return asyncio.run(gather_completions(llm, texts, new))

            calls = llm.generate_calls if llm else 0
            if llm is not None:
                llm.max_batch_size = b
            row = sweep_point(system, fn, batch_ids, args.gen_tokens, args.repeats, dev)
            forced_length(model, args.gen_tokens)
            if llm is not None:
                llm.max_batch_size = args.max_batch_size
                row["generate_calls"] = llm.generate_calls - calls - 1  # less the warm-up
                row["cache_len"] = llm.static.cache_len if llm.static else None
            res.doc["sweep"].append(row)
            res.done(f"sweep {system} x{b}")
    res.doc["roofline"] = roofline(model, dev, res.doc["sweep"], args.hbm_gbs)
    res.save()


def datasheet_gbs(gpu_name: str | None) -> float | None:
    """The HBM bandwidth of a known GPU (GB/s), else None."""
    if not gpu_name:
        return None
    return next((gbs for key, gbs in HBM_GBS if key.lower() in gpu_name.lower()), None)


def roofline(
    model: Any, dev: Device, rows: list[dict[str, Any]], hbm_gbs: float | None
) -> dict[str, Any]:
    """Batch-1 decode tokens/s of each sweep system against bandwidth / weight bytes per token."""
    params = sum(p.numel() for p in model.parameters())
    elem = next(model.parameters()).element_size()
    bytes_per_token = elem * params
    gpu_name = dev.torch.cuda.get_device_name() if dev.cuda else None
    datasheet = hbm_gbs or datasheet_gbs(gpu_name)
    measured = dev.copy_gbs()
    result: dict[str, Any] = {
        "formula": "roofline tokens/s = bandwidth / (bytes per parameter x parameters)",
        "params": params,
        "embedding_params": model.get_input_embeddings().weight.numel(),
        "bytes_per_param": elem,
        "bytes_per_token": bytes_per_token,
        "gpu": gpu_name,
        "bandwidth_gbs": datasheet,
        "bandwidth_source": ("--hbm-gbs" if hbm_gbs else "datasheet") if datasheet else None,
        "measured_copy_gbs": measured,
        "roofline_tokens_per_s": datasheet * 1e9 / bytes_per_token if datasheet else None,
        "roofline_measured_tokens_per_s": measured * 1e9 / bytes_per_token,
        "note": "the KV cache read per token (batch 1: ~0.5 MB per cached token on 7B) is left "
        "out of the bound, so it is a little above what any decoder can reach",
    }
    for row in rows:
        if row["batch"] != 1:
            continue
        system, tps = row["system"], row["decode_tokens_per_s"]
        bound = result["roofline_tokens_per_s"]
        result[f"batch1_decode_tokens_per_s_{system}"] = tps
        result[f"pct_of_roofline_{system}"] = 100 * tps / bound if tps and bound else None
        result[f"pct_of_measured_roofline_{system}"] = (
            100 * tps / result["roofline_measured_tokens_per_s"] if tps else None
        )
    return result


def tables(results: dict[str, Any]) -> str:
    """The episode table, the sweep table and the roofline lines."""
    header = ["system", "episodes", "calls", "generates", "wall s", "episodes/s", "gen tok/s",
              "x episodes/s", "peak GiB"]  # fmt: skip
    keys = ["system", "episodes", "llm_calls", "generate_calls", "wall_s", "episodes_per_s",
            "generated_tokens_per_s", "x_vs_baseline_episodes", "peak_gpu_mem_gib"]  # fmt: skip
    rows = results.get("rows", [])
    out = [format_table([[r.get(k) for k in keys] for r in rows], header)] if rows else []
    if results.get("sweep"):
        header = ["sweep", "batch", "prompt", "new", "warm-up s", "full s", "prefill s", "tok/s",
                  "decode tok/s", "ms/step", "peak GiB"]  # fmt: skip
        keys = ["system", "batch", "prompt_tokens", "new_tokens", "warmup_s", "full_s",
                "prefill_s", "tokens_per_s", "decode_tokens_per_s", "decode_ms_per_step",
                "peak_gpu_mem_gib"]  # fmt: skip
        out.append(format_table([[r[k] for k in keys] for r in results["sweep"]], header))
    roof = results.get("roofline")
    if roof:
        bw = roof["bandwidth_gbs"]
        line = (
            f"roofline: {roof['params'] / 1e9:.3f} B params x {roof['bytes_per_param']} B ="
            f" {roof['bytes_per_token'] / 1e9:.2f} GB/token; measured copy"
            f" {roof['measured_copy_gbs']} GB/s -> {roof['roofline_measured_tokens_per_s']:.1f} tok/s"
        )
        if bw:
            line += f"; {bw:.0f} GB/s ({roof['bandwidth_source']}) -> "
            line += f"{roof['roofline_tokens_per_s']:.1f} tok/s"
        for system in SWEEP_SYSTEMS:
            tps = roof.get(f"batch1_decode_tokens_per_s_{system}")
            if tps:
                pct = roof.get(f"pct_of_roofline_{system}")
                line += f"\n  batch-1 decode {system}: {tps:.1f} tok/s"
                line += f" = {pct:.1f}% of roofline" if pct else ""
                line += f", {roof[f'pct_of_measured_roofline_{system}']:.1f}% of the copy roofline"
        out.append(line)
    for name, eq in results.get("equality", {}).items():
        out.append(f"same greedy text, {name}: {eq['same_text']}/{eq['compared_calls']}")
    out += [runner_line(r) for r in rows if r["system"] == "ours-runner" and "error" not in r]
    out += [f"{r['system']}: failed: {r['error']}" for r in rows if "error" in r]
    out += [f"{name}: skipped: {why}" for name, why in results.get("skipped", {}).items()]
    return "\n\n".join(out)


def runner_line(row: dict[str, Any]) -> str:
    """What the ``ours-runner`` row's episodes did, in one line."""
    return (
        f"ours-runner (fireact run's runner): {row['records_written']} records, mean steps "
        f"{row['mean_steps']:.2f} (of {row['steps']}), {row['llm_calls']} calls, "
        f"{row['prompt_tokens_per_call']} prompt tokens per call, {row['invalid_actions']} "
        f"invalid actions, {row['tool_calls']} tool calls, {row['finished']} finished; "
        "its own observations, so no text equality is claimed"
    )

"""Local inference benchmark (P2): ReAct episodes through the `hf` backend, batched vs one at a time.

Model: a Llama with RANDOM weights built from a `LlamaConfig` in this process (no hub, no
checkpoint): ``--model-size 7b`` is Llama-2-7B's shape (hidden 4096, intermediate 11008, 32 layers,
32 heads, vocab 32,000, untied head: 6.74 B parameters) in bf16, built directly on the GPU;
``--model-size tiny`` (the default without CUDA) is hidden 256, intermediate 688, 4 layers, 4 heads,
vocab 32,000 in fp32 on the CPU. Attention is PyTorch SDPA (``attn_implementation="sdpa"``; no
flash-attn). The tokenizer is a byte-level BPE trained here (vocab 32,000, a few seconds) on the
text shipped in ``fireact/resources`` (FireAct trajectories, HotpotQA, StrategyQA, MMLU).

Workload: ``--episodes`` (64) ReAct-length episodes of ``--steps`` (4) model calls each. Step 0's
prompt is ``--prompt-tokens`` (400) tokens: the head of FireAct's HotpotQA ReAct prompt plus
``Question: <a HotpotQA question>``; each later prompt is the previous prompt + the generated text +
an observation of ~``--obs-tokens`` (40) tokens (a real ``Observation:`` line of FireAct's HotpotQA
trajectories followed by ``Thought:``), i.e. ~400, 500, 600, 700 tokens. Every call asks for
``--gen-tokens`` (60) new tokens, greedy. Random weights never write FireAct's stop string
``"\\nObservation:"``, so the length is forced: ``max_tokens=60``, the stop string kept (it is
checked every step, as in real runs, and never matches), and ``min_new_tokens=60`` so that the eos
token cannot end a row early. The JSON records how every completion ended (all ``length``).

Systems, in one run on one model:

* ``ours``: `fireact.llm.hf.HFLLM` with all episodes running concurrently in an asyncio loop shaped
  like the runner (each episode awaits its own ``complete``; the backend gathers the concurrent
  calls into one left-padded ``generate`` with per-row stop strings). ``max_batch_size`` is
  ``--max-batch-size`` (64, so that one step of 64 episodes is one ``generate``; HFLLM's default is
  32). Only model loading differs from the shipped class: a subclass overrides ``_load`` to adopt
  the in-memory model (reading a 13.5 GB random checkpoint would only cost time); everything from
  ``complete`` to ``generate`` is the shipped code.
* ``baseline``: one prompt at a time (FireAct's llama backend pattern): a plain Python loop that
  tokenizes the prompt, calls ``model.generate`` on it (same greedy settings and forced length, no
  per-step stop check: it could only slow the baseline down, and the text is cut at the stop string
  afterwards) and appends the observation, in a worker thread as HFLLM's ``generate``. It runs
  the first ``--baseline-episodes`` episodes (all on tiny, 8 on 7b): one at a time, its
  episodes/s does not depend on how many episodes run.
  Its texts are compared with ours step by step (same greedy text = batching changes nothing).

Also measured (``--batch-sizes``, default 1,8,32,64): a decode throughput sweep at a fixed prompt
length (``--prompt-tokens``) through HFLLM (``hfllm``: batch of concurrent ``complete`` calls, one
``generate``) and through a plain ``model.generate`` on the same ids (``generate``: no stop
criteria; the difference is the cost of HFLLM's per-row stop checks). Each point is timed with
``--gen-tokens`` new tokens and with 1 new token (median of ``--repeats``, after a warm-up call);
prefill ≈ the 1-token time, decode tokens/s = batch × (gen − 1) / (t_gen − t_1).

Roofline (batch 1): decoding one token reads every weight once, so tokens/s ≤ bandwidth / (bytes
per parameter × parameters) = 3.35 TB/s / (2 × 6.74e9 B) = 249 tokens/s for 7B in bf16 on an H100
SXM (HBM3 datasheet figure; looked up from the GPU's name, ``--hbm-gbs`` overrides). The JSON also
gives the roofline from a device-to-device copy measured in the same run (read + write bytes).
Timings use ``torch.cuda.synchronize()`` around every timed region and start after warm-up calls;
peak GPU memory is ``torch.cuda.max_memory_allocated`` per phase.

Run from the repository root: ``.venv/bin/python benchmarks/inference_bench.py`` (or ``python -m
benchmarks.inference_bench``; tiny on CPU, a few minutes on 2 cores) or ``bash
benchmarks/run_gpu.sh`` on a GPU machine (7b); results go to
``benchmarks/results/inference-<host kind>.json``. Nothing it imports needs pydantic, tantivy or
openai (the GPU image has none of them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource as rusage
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

if not __package__:  # run as `python benchmarks/inference_bench.py`: the package's root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import format_table, latency_stats  # noqa: E402
from benchmarks.models import (  # noqa: E402
    SIZES,
    Device,
    ModelSpec,
    build_model,
    run_benchmark,
    train_tokenizer,
)
from fireact.llm.base import Completion, cut_at_stop  # noqa: E402
from fireact.llm.hf import HFLLM  # noqa: E402
from fireact.resources import resource  # noqa: E402

NAME = "inference"
STOP = ["\nObservation:"]
TARGETS = {"x_episodes_per_s": 10.0, "pct_of_hbm_roofline_batch1": 50.0}
SWEEP_OFFSET = 17  # sweep prompt i starts this many tokens after prompt i - 1 in the head

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


# ---------------------------------------------------------------- tokenizer and model


class PreloadedHFLLM(HFLLM):
    """`HFLLM` around a model already in memory: only loading differs from the shipped class.

    `_load` adopts the model (in eval mode) and loads the tokenizer through the shipped
    `_load_tokenizer` (left padding, pad = eos); it skips `check_weights`, the dtype choice, the
    ``.to(device)`` and the sampling seed, all of which only concern loading (the benchmark is
    greedy). Everything from `complete` to `generate` is the shipped code.
    """

    def __init__(self, model: Any, tokenizer_dir: Path, **options: Any) -> None:
        self._preloaded = model
        super().__init__(str(tokenizer_dir), device=str(model.device), **options)

    def _load(self, *args: Any, **kwargs: Any) -> None:
        from transformers import AutoTokenizer

        self.model = self._preloaded.eval()
        self.tokenizer = self._load_tokenizer(AutoTokenizer, False)


# ---------------------------------------------------------------- the workload


@dataclass
class Workload:
    """Step-0 prompts (exactly `prompt_tokens` tokens where possible) and each step's observation."""

    prompts: list[str]
    observations: list[list[str]]
    sweep_prompts: list[str]  # exactly `prompt_tokens` tokens each: the head at different offsets


def exact_text(tokenizer: Any, head_ids: list[int], tail: str, tokens: int) -> str:
    """`head_ids` cut so that ``decode(cut) + tail`` encodes (with bos) to `tokens` tokens."""
    n = max(0, tokens - len(tokenizer(tail).input_ids))
    text = tokenizer.decode(head_ids[:n]) + tail
    for _ in range(8):
        diff = tokens - len(tokenizer(text).input_ids)
        if diff == 0 or not 0 <= n + diff <= len(head_ids):
            break
        n += diff
        text = tokenizer.decode(head_ids[:n]) + tail
    return text


def build_workload(
    tokenizer: Any, episodes: int, steps: int, prompt_tokens: int, obs_tokens: int, sweep_max: int
) -> Workload:
    """Episode prompts from FireAct's ReAct prompt and HotpotQA questions; real observations."""
    head = resource("prompts", "fireact", "react_hotpotqa_google.txt").read_text("utf-8")
    head_ids = tokenizer(head, add_special_tokens=False).input_ids
    while len(head_ids) < prompt_tokens + SWEEP_OFFSET * sweep_max:
        head_ids = head_ids + head_ids
    records = json.loads(
        resource("finetune", "alpaca_format", "hotpotqa.json").read_text(encoding="utf-8")
    )
    questions = [r["instruction"].strip() for r in records]
    passages = [
        line.removeprefix("Observation:").strip()
        for r in records
        for line in r["output"].splitlines()
        if line.startswith("Observation:") and "Episode finished" not in line
    ]
    prompts = [
        exact_text(
            tokenizer, head_ids, f"\nQuestion: {questions[i % len(questions)]}\n", prompt_tokens
        )
        for i in range(episodes)
    ]
    observations = []
    for i in range(episodes):
        row = []
        for s in range(steps):
            passage = " ".join(passages[(i * steps + s + k) % len(passages)] for k in range(3))
            ids = tokenizer(f"\nObservation: {passage}", add_special_tokens=False).input_ids
            row.append(tokenizer.decode(ids[: max(1, obs_tokens - 3)]) + "\nThought:")
        observations.append(row)
    sweep_prompts = [
        exact_text(tokenizer, head_ids[SWEEP_OFFSET * i :], "", prompt_tokens)
        for i in range(sweep_max)
    ]
    return Workload(prompts, observations, sweep_prompts)


# ---------------------------------------------------------------- measuring


def in_worker(fn: Callable[[], Any]) -> Any:
    """Run `fn` in a fresh worker thread, as HFLLM runs `generate` (``asyncio.to_thread``).

    The baseline's torch calls run off the main thread too, so that both systems call torch the
    same way: on a busy 2-core machine, the same `generate` from the main thread was measured 2-5x
    slower than from a worker thread.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn).result()


def forced_length(model: Any, tokens: int) -> None:
    """Make `generate` produce exactly `tokens` new tokens: eos is masked until then."""
    model.generation_config.min_new_tokens = tokens


async def run_ours_async(llm: HFLLM, wl: Workload, steps: int, gen: int) -> list[list[Completion]]:
    """Every episode concurrently, each awaiting its own `complete` (the runner's shape)."""

    async def episode(i: int) -> list[Completion]:
        prompt, done = wl.prompts[i], []
        for s in range(steps):
            completion = await llm.complete(prompt, stop=STOP, max_tokens=gen, temperature=0.0)
            done.append(completion)
            prompt = prompt + completion.text + wl.observations[i][s]
        return done

    try:
        return list(await asyncio.gather(*(episode(i) for i in range(len(wl.prompts)))))
    finally:
        await llm.aclose()


async def gather_completions(llm: HFLLM, prompts: Sequence[str], gen: int) -> list[Completion]:
    """All `prompts` as concurrent `complete` calls (one batch when the max batch allows)."""
    try:
        return list(
            await asyncio.gather(
                *(llm.complete(p, stop=STOP, max_tokens=gen, temperature=0.0) for p in prompts)
            )
        )
    finally:
        await llm.aclose()


def plain_generate(model: Any, tokenizer: Any, batch: list[list[int]], gen: int) -> list[list[int]]:
    """One plain `model.generate` on left-padded `batch`, greedy, exactly `gen` new tokens."""
    import torch
    from transformers import GenerationConfig

    width = max(len(ids) for ids in batch)
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in batch])
    attention = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch])
    config = GenerationConfig(
        max_new_tokens=gen,
        min_new_tokens=gen,
        do_sample=False,
        pad_token_id=pad,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    with torch.inference_mode():
        out = model.generate(
            input_ids=input_ids.to(model.device),
            attention_mask=attention.to(model.device),
            generation_config=config,
        )
    return out[:, width:].tolist()


def run_baseline(model: Any, tokenizer: Any, wl: Workload, n: int, steps: int, gen: int):
    """FireAct's llama pattern: one prompt at a time through `model.generate`; texts and counts."""
    texts: list[list[str]] = []
    prompt_tokens: list[list[int]] = []
    generated = 0
    for i in range(n):
        prompt, row, lengths = wl.prompts[i], [], []
        for s in range(steps):
            ids = tokenizer(prompt).input_ids
            new = plain_generate(model, tokenizer, [ids], gen)[0]
            generated += len(new)
            text, _ = cut_at_stop(tokenizer.decode(new, skip_special_tokens=True), STOP)
            row.append(text)
            lengths.append(len(ids))
            prompt = prompt + text + wl.observations[i][s]
        texts.append(row)
        prompt_tokens.append(lengths)
    return texts, prompt_tokens, generated


def episode_row(
    system: str, episodes: int, steps: int, wall: float, generated: int, **extra: Any
) -> dict[str, Any]:
    """The figures of one system's episode run."""
    return {
        "system": system,
        "episodes": episodes,
        "steps": steps,
        "llm_calls": episodes * steps,
        "wall_s": round(wall, 3),
        "episodes_per_s": episodes / wall,
        "generated_tokens": generated,
        "generated_tokens_per_s": generated / wall,
        **extra,
    }


def mean_by_step(lengths: Sequence[Sequence[int]]) -> list[float]:
    """Mean prompt tokens of each step over the episodes."""
    return [round(statistics.fmean(col), 1) for col in zip(*lengths, strict=True)]


def sweep(
    llm: HFLLM, dev: Device, ids: list[list[int]], prompts: list[str], sizes: list[int], args: Any
) -> list[dict[str, Any]]:
    """Decode throughput at each batch size: HFLLM's batched path and a plain `generate`."""
    model, tokenizer, gen = llm.model, llm.tokenizer, args.gen_tokens
    rows = []
    for b in sizes:
        batch_ids = [ids[i % len(ids)] for i in range(b)]
        batch_prompts = [prompts[i % len(prompts)] for i in range(b)]
        llm.max_batch_size = b

        def hfllm(new: int, batch: list[str] = batch_prompts) -> Any:
            forced_length(model, new)
            return asyncio.run(gather_completions(llm, batch, new))

        def plain(new: int, batch: list[list[int]] = batch_ids) -> Any:
            return in_worker(lambda: plain_generate(model, tokenizer, batch, new))

        for system, fn in (("hfllm", hfllm), ("generate", plain)):
            print(f"sweep: {system} at batch {b} ...", flush=True)
            fn(2)  # warm-up at this shape
            calls_before = llm.generate_calls
            dev.reset_peak()
            full, first = [], []
            for _ in range(args.repeats):
                full.append(dev.time(lambda fn=fn: fn(gen))[0])
                first.append(dev.time(lambda fn=fn: fn(1))[0])
            t_full, t_first = statistics.median(full), statistics.median(first)
            decode_s = t_full - t_first
            rows.append(
                {
                    "system": system,
                    "batch": b,
                    "prompt_tokens": round(statistics.fmean(len(x) for x in batch_ids), 1),
                    "new_tokens": gen,
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
                    "generate_calls": llm.generate_calls - calls_before
                    if system == "hfllm"
                    else None,
                }
            )
    forced_length(model, gen)
    llm.max_batch_size = args.max_batch_size
    return rows


def datasheet_gbs(gpu_name: str | None) -> float | None:
    """The HBM bandwidth of a known GPU (GB/s), else None."""
    if not gpu_name:
        return None
    return next((gbs for key, gbs in HBM_GBS if key.lower() in gpu_name.lower()), None)


def roofline(
    model: Any, dev: Device, rows: list[dict[str, Any]], hbm_gbs: float | None
) -> dict[str, Any]:
    """Batch-1 decode tokens/s against bandwidth / weight bytes per token."""
    params = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight.numel()
    elem = next(model.parameters()).element_size()
    bytes_per_token = elem * params
    gpu_name = dev.torch.cuda.get_device_name() if dev.cuda else None
    datasheet = hbm_gbs or datasheet_gbs(gpu_name)
    measured = dev.copy_gbs()
    one = {r["system"]: r for r in rows if r["batch"] == 1}
    result: dict[str, Any] = {
        "formula": "roofline tokens/s = bandwidth / (bytes per parameter x parameters)",
        "params": params,
        "embedding_params": embedding,
        "bytes_per_param": elem,
        "bytes_per_token": bytes_per_token,
        "gpu": gpu_name,
        "bandwidth_gbs": datasheet,
        "bandwidth_source": ("--hbm-gbs" if hbm_gbs else "datasheet") if datasheet else None,
        "measured_copy_gbs": measured,
        "roofline_tokens_per_s": datasheet * 1e9 / bytes_per_token if datasheet else None,
        "roofline_measured_tokens_per_s": measured * 1e9 / bytes_per_token,
    }
    for system, row in one.items():
        tps = row["decode_tokens_per_s"]
        result[f"batch1_decode_tokens_per_s_{system}"] = tps
        result[f"pct_of_roofline_{system}"] = (
            100 * tps / result["roofline_tokens_per_s"]
            if tps and result["roofline_tokens_per_s"]
            else None
        )
        result[f"pct_of_measured_roofline_{system}"] = (
            100 * tps / result["roofline_measured_tokens_per_s"] if tps else None
        )
    return result


# ---------------------------------------------------------------- the run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    import torch

    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--model-size", choices=["tiny", "7b"], default="7b" if cuda else "tiny")
    p.add_argument("--device", default="cuda" if cuda else "cpu")
    p.add_argument("--episodes", type=int, default=64)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--prompt-tokens", type=int, default=400)
    p.add_argument("--gen-tokens", type=int, default=60, help="new tokens per call (forced)")
    p.add_argument("--obs-tokens", type=int, default=40)
    p.add_argument("--batch-sizes", default="1,8,32,64", help="decode sweep; empty to skip")
    p.add_argument("--baseline-episodes", type=int, default=None,
                   help="episodes run one at a time (default: all on tiny, 8 on 7b)")  # fmt: skip
    p.add_argument("--max-batch-size", type=int, default=64, help="HFLLM max_batch_size")
    p.add_argument("--batch-window-s", type=float, default=0.005, help="HFLLM batch_window_s")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per sweep point")
    p.add_argument("--hbm-gbs", type=float, default=None, help="override the GPU's bandwidth")
    p.add_argument("--vocab-size", type=int, default=None, help="tokenizer vocab (default 32000)")
    p.add_argument("--corpus-chars", type=int, default=20_000_000, help="tokenizer training text")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="results JSON path")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: micro model, 4 episodes x 2 steps, short prompts")  # fmt: skip
    args = p.parse_args(argv)
    args.spec_name = args.model_size
    if args.quick:
        args.spec_name = "micro"
        args.episodes, args.steps, args.prompt_tokens = 4, 2, 128
        args.gen_tokens, args.obs_tokens, args.batch_sizes = 8, 12, "1,4"
        args.repeats, args.corpus_chars = 1, 300_000
    if args.baseline_episodes is None:
        args.baseline_episodes = 8 if args.model_size == "7b" else args.episodes
    args.baseline_episodes = min(args.baseline_episodes, args.episodes)
    return args


@dataclass
class Setup:
    """What the measured runs use: the model behind the shipped `HFLLM`, the workload, the clock."""

    spec: ModelSpec
    dev: Device
    dtype: Any
    tokenizer: Any
    model: Any
    llm: PreloadedHFLLM
    workload: Workload
    sweep_sizes: list[int]
    step0_tokens: list[int]
    tokenizer_s: float
    build_s: float


@dataclass
class Measured:
    """Every system's figures, before the ratios and the target check."""

    ours: dict[str, Any]
    baseline: dict[str, Any]
    equality: dict[str, Any]
    sweep: list[dict[str, Any]]
    roofline: dict[str, Any]


def setup(args: argparse.Namespace, workdir: Path) -> Setup:
    """Train the tokenizer, build the random model and the `HFLLM` around it, and the workload."""
    import torch

    spec = SIZES[args.spec_name]
    vocab = args.vocab_size or spec.vocab
    dev = Device(args.device)
    dtype = torch.bfloat16 if dev.cuda else torch.float32

    start = time.perf_counter()
    # saved to `workdir`, where PreloadedHFLLM loads it from (no pad token: HFLLM sets one)
    tokenizer = train_tokenizer(vocab, args.corpus_chars, save_to=workdir)
    tokenizer_s = time.perf_counter() - start
    print(f"tokenizer: vocab {len(tokenizer)} in {tokenizer_s:.1f} s", flush=True)
    build_s, model = dev.time(
        lambda: build_model(spec, tokenizer, args.device, dtype, seed=args.seed).eval()
    )
    print(f"model {args.spec_name}: built on {args.device} in {build_s:.1f} s", flush=True)
    forced_length(model, args.gen_tokens)
    llm = PreloadedHFLLM(
        model, workdir, max_batch_size=args.max_batch_size, batch_window_s=args.batch_window_s
    )
    sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    wl = build_workload(
        tokenizer, args.episodes, args.steps, args.prompt_tokens, args.obs_tokens, max(sizes or [0])
    )
    step0 = [len(tokenizer(p).input_ids) for p in wl.prompts]
    return Setup(spec, dev, dtype, tokenizer, model, llm, wl, sizes, step0, tokenizer_s, build_s)


def measure(args: argparse.Namespace, s: Setup) -> Measured:
    """Warm up, then run ours, the baseline, the decode sweep and the roofline's copy."""
    model, llm, wl, dev = s.model, s.llm, s.workload, s.dev

    # warm-up: one batched call at full width and one single call, untimed
    print("warm-up ...", flush=True)
    forced_length(model, 2)
    asyncio.run(gather_completions(llm, wl.prompts[: args.max_batch_size], 2))
    in_worker(lambda: plain_generate(model, llm.tokenizer, [llm.encode(wl.prompts[0])], 2))
    forced_length(model, args.gen_tokens)

    print(f"ours: {args.episodes} episodes concurrently ...", flush=True)
    calls_before, sizes_before = llm.generate_calls, len(llm.batch_sizes)
    dev.reset_peak()
    wall, episodes = dev.time(
        lambda: asyncio.run(run_ours_async(llm, wl, args.steps, args.gen_tokens))
    )
    completions = [c for ep in episodes for c in ep]
    ours = episode_row(
        "ours",
        args.episodes,
        args.steps,
        wall,
        sum(c.completion_tokens for c in completions),
        generate_calls=llm.generate_calls - calls_before,
        batch_sizes=dict(Counter(llm.batch_sizes[sizes_before:])),
        finish_reasons=dict(Counter(c.finish_reason for c in completions)),
        completion_tokens=dict(Counter(c.completion_tokens for c in completions)),
        prompt_tokens_by_step=mean_by_step([[c.prompt_tokens for c in ep] for ep in episodes]),
        peak_gpu_mem_gib=dev.peak_gib(),
        what=f"HFLLM(max_batch_size={args.max_batch_size}, batch_window_s={args.batch_window_s}),"
        " every episode concurrently in one asyncio loop",
    )

    n = args.baseline_episodes
    print(f"baseline: {n} episodes one prompt at a time ...", flush=True)
    dev.reset_peak()
    wall, (texts, lengths, generated) = dev.time(
        lambda: in_worker(
            lambda: run_baseline(model, llm.tokenizer, wl, n, args.steps, args.gen_tokens)
        )
    )
    baseline = episode_row(
        "baseline",
        n,
        args.steps,
        wall,
        generated,
        generate_calls=n * args.steps,
        prompt_tokens_by_step=mean_by_step(lengths),
        peak_gpu_mem_gib=dev.peak_gib(),
        what="plain loop: tokenizer(prompt) -> model.generate(one prompt) -> append observation",
    )
    pairs = [
        (episodes[i][k].text, texts[i][k]) for i in range(n) for k in range(args.steps)
    ]  # fmt: skip
    same = sum(a == b for a, b in pairs)
    first_diff = next(
        ((i, k) for i in range(n) for k in range(args.steps) if episodes[i][k].text != texts[i][k]),
        None,
    )
    equality = {
        "compared_calls": len(pairs),
        "same_text": same,
        "all_same": same == len(pairs),
        "first_difference": list(first_diff) if first_diff else None,
        "note": "a difference changes every later prompt of that episode",
    }

    ids = [llm.encode(p) for p in wl.sweep_prompts]
    sweep_rows = (
        sweep(llm, dev, ids, wl.sweep_prompts, s.sweep_sizes, args) if s.sweep_sizes else []
    )
    roof = roofline(model, dev, sweep_rows, args.hbm_gbs)
    return Measured(ours, baseline, equality, sweep_rows, roof)


def report(args: argparse.Namespace, s: Setup, m: Measured) -> dict[str, Any]:
    """The results document: settings, rows with their ratios, the target check."""
    ours, baseline = m.ours, m.baseline
    for row in (ours, baseline):
        row["x_vs_baseline_episodes"] = row["episodes_per_s"] / baseline["episodes_per_s"]
        row["x_vs_baseline_tokens"] = (
            row["generated_tokens_per_s"] / baseline["generated_tokens_per_s"]
        )
    x = ours["x_vs_baseline_episodes"]
    pct = m.roofline.get("pct_of_roofline_hfllm")
    evaluated = s.dev.cuda and args.model_size == "7b" and not args.quick
    return {
        "settings": {
            "model_size": args.model_size if not args.quick else "micro (--quick)",
            "model": asdict(s.spec) | {"vocab": s.model.config.vocab_size},
            "dtype": str(s.dtype).removeprefix("torch."),
            "device": args.device,
            "attn_implementation": s.model.config._attn_implementation,
            "weights": "random (LlamaConfig, initialised on the device); no checkpoint",
            "tokenizer": f"byte-level BPE trained here on fireact/resources text, vocab {len(s.tokenizer)}",
            "tokenizer_train_s": round(s.tokenizer_s, 2),
            "model_build_s": round(s.build_s, 2),
            "episodes": args.episodes,
            "steps": args.steps,
            "prompt_tokens_step0": {"min": min(s.step0_tokens), "max": max(s.step0_tokens)},
            "gen_tokens": args.gen_tokens,
            "obs_tokens": args.obs_tokens,
            "stop": STOP,
            "forced_length": f"max_tokens={args.gen_tokens} and min_new_tokens={args.gen_tokens}"
            " (eos masked); the stop string is checked but random weights never write it",
            "greedy": True,
            "max_batch_size": args.max_batch_size,
            "batch_window_s": args.batch_window_s,
            "baseline_episodes": args.baseline_episodes,
            "baseline": "plain model.generate per prompt, one at a time (not HFLLM)",
            "ours": "fireact.llm.hf.HFLLM as shipped; only loading differs (PreloadedHFLLM"
            " adopts the in-memory model in _load)",
            "sweep_repeats": args.repeats,
            "seed": args.seed,
        },
        "rows": [ours, baseline],
        "equality": m.equality,
        "sweep": m.sweep,
        "roofline": m.roofline,
        "targets": TARGETS,
        "target_check": {
            "evaluated": evaluated,
            "why_not": None if evaluated else "targets are for --model-size 7b on a GPU",
            "x_episodes_per_s": x,
            "x_met": x >= TARGETS["x_episodes_per_s"],
            "pct_of_hbm_roofline_batch1": pct,
            "pct_met": pct is not None and pct >= TARGETS["pct_of_hbm_roofline_batch1"],
        },
        "peak_rss_gib": round(rusage.getrusage(rusage.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }


def bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Set up, measure, report (what `run_benchmark` calls)."""
    s = setup(args, workdir)
    return report(args, s, measure(args, s))


def tables(results: dict[str, Any]) -> str:
    """The episode table, the sweep table and the roofline line."""
    header = ["system", "episodes", "calls", "generates", "wall s", "episodes/s", "gen tok/s",
              "x episodes/s", "peak GiB"]  # fmt: skip
    keys = ["system", "episodes", "llm_calls", "generate_calls", "wall_s", "episodes_per_s",
            "generated_tokens_per_s", "x_vs_baseline_episodes", "peak_gpu_mem_gib"]  # fmt: skip
    out = [format_table([[r[k] for k in keys] for r in results["rows"]], header)]
    if results["sweep"]:
        header = ["sweep", "batch", "prompt", "new", "full s", "prefill s", "tok/s",
                  "decode tok/s", "prefill tok/s", "ms/step", "peak GiB"]  # fmt: skip
        keys = ["system", "batch", "prompt_tokens", "new_tokens", "full_s", "prefill_s",
                "tokens_per_s", "decode_tokens_per_s", "prefill_tokens_per_s",
                "decode_ms_per_step", "peak_gpu_mem_gib"]  # fmt: skip
        out.append(format_table([[r[k] for k in keys] for r in results["sweep"]], header))
    roof = results["roofline"]
    bw = roof["bandwidth_gbs"]
    line = (
        f"roofline: {roof['params'] / 1e9:.3f} B params x {roof['bytes_per_param']} B = "
        f"{roof['bytes_per_token'] / 1e9:.2f} GB/token; measured copy {roof['measured_copy_gbs']} GB/s"
        f" -> {roof['roofline_measured_tokens_per_s']:.1f} tok/s"
    )
    if bw:
        line += f"; {bw:.0f} GB/s ({roof['bandwidth_source']}) -> {roof['roofline_tokens_per_s']:.1f} tok/s"
    for system in ("hfllm", "generate"):
        tps = roof.get(f"batch1_decode_tokens_per_s_{system}")
        if tps:
            pct = roof.get(f"pct_of_roofline_{system}")
            pct_m = roof[f"pct_of_measured_roofline_{system}"]
            line += f"\n  batch-1 decode {system}: {tps:.1f} tok/s"
            line += f" = {pct:.1f}% of roofline" if pct else ""
            line += f", {pct_m:.1f}% of the measured-copy roofline"
    out.append(line)
    eq = results["equality"]
    out.append(
        f"same greedy text batched vs one at a time: {eq['same_text']}/{eq['compared_calls']}"
    )
    return "\n\n".join(out)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the tables, write the results file; return the document."""
    return run_benchmark(NAME, parse_args(argv), bench, tables)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()

"""Local inference benchmark (P2): ReAct episodes through the `hf` backend, batched vs one at a time.

Model: a Llama with RANDOM weights built from a `LlamaConfig` in this process (no hub, no
checkpoint): ``--model-size 7b`` is Llama-2-7B's shape (hidden 4096, intermediate 11008, 32 layers,
32 heads, vocab 32,000, untied head: 6.74 B parameters) in bf16, built directly on the GPU;
``--model-size tiny`` (the default without CUDA) is hidden 256, intermediate 688, 4 layers, 4 heads,
vocab 32,000 in fp32 on the CPU. Attention is PyTorch SDPA (``attn_implementation="sdpa"``; no
flash-attn). The tokenizer is a byte-level BPE trained here (vocab 32,000, a few seconds) on the
text shipped in ``fireact/resources`` (FireAct trajectories, HotpotQA, StrategyQA, MMLU).

Workload (`inference_work`): ``--episodes`` (64) ReAct-length episodes of ``--steps`` (4) model
calls each. Step 0's prompt is ``--prompt-tokens`` (400) tokens: the head of FireAct's HotpotQA
ReAct prompt plus ``Question: <a HotpotQA question>``; each later prompt is the previous prompt +
the generated text + an observation of ~``--obs-tokens`` (40) tokens (a real ``Observation:`` line
of FireAct's HotpotQA trajectories followed by ``Thought:``), i.e. ~400, 500, 600, 700 tokens.
Every call asks for ``--gen-tokens`` (60) new tokens, greedy. Random weights never write FireAct's
stop string ``"\\nObservation:"``, so the length is forced: ``max_tokens=60``, the stop string kept
(checked every step, as in real runs, never matching), and ``min_new_tokens=60`` so that the eos
token cannot end a row early. The JSON records how every completion ended (all ``length``).

Systems, in one run on one model, in this order (the results file is rewritten after each, so a
timeout keeps what was measured; ``progress`` says what is done):

* ``ours`` (eager): `fireact.llm.hf.HFLLM` with ``compile="off"`` (dynamic KV cache, stop strings
  checked on the host: the CPU default) and all episodes running concurrently in an asyncio loop
  shaped like the runner (each episode awaits its own ``complete``; the backend gathers the
  concurrent calls into one left-padded ``generate`` with per-row stop strings).
  ``max_batch_size`` is ``--max-batch-size`` (64: one step of 64 episodes is one ``generate``;
  the runner passes ``--concurrency``, 64 by default). The episodes get fixed observations
  instead of the runner's, so that the baseline sees the same prompts and the texts can be
  compared (``ours-runner`` below is the runner itself). Only model loading differs from the
  shipped class (`PreloadedHFLLM` adopts the in-memory model).
* ``baseline``: one prompt at a time (FireAct's llama backend pattern): tokenize, a plain
  ``model.generate`` (same greedy settings and forced length, no per-step stop check; the text is
  cut at the stop string afterwards), append the observation. It runs the first
  ``--baseline-episodes`` episodes (all on tiny, 4 on 7b: one at a time, episodes/s does not
  depend on how many run). Texts are compared with ours step by step (``equality``).
* ``ours-compiled``: the same HFLLM with ``compile="on"`` (static KV cache, ``torch.compile``,
  bucketed shapes, stop strings checked on the device: the CUDA default, `fireact.llm.hf_static`).
  It runs the episodes twice: ``ours-compiled-first`` (cold: includes compiling its shapes) and
  ``ours-compiled`` (warm), whose texts are compared with the baseline's too.
* ``ours-runner``: the same episodes' questions as one ``fireact run``, i.e.
  `fireact.agent.runner.arun` (`RunOptions`: task hotpotqa, method react, FireAct's ReAct prompt
  cut as the workload's, ``max_steps`` = ``--steps``, ``max_tokens`` = ``--gen-tokens`` (forced
  as above), ``concurrency`` = ``--episodes``, no re-asks, progress off, out in the scratch
  folder) with the compiled HFLLM above (the eager one with ``--no-compiled``) and a search tool
  answering the workload's real observations (`inference_work.run_runner`). The observations are
  the runner's own: a random model's actions are mostly ``Invalid action: ...``, and a turn without
  an ``Action:`` line gets one more call ending in ``Action:`` (ReAct's rule), so its prompts and
  calls differ from the baseline's and no text equality is claimed. The row gives episodes/s,
  calls, generated tokens, mean steps, prompt tokens per call and the records written. It is
  timed warm: one untimed full-width call at the longest prompt the run can reach first compiles
  that shape and raises the cache to it (``warmup_s``; ``shapes_first_seen`` names any shape
  compiled inside the timed run), and the cache mark is put back after. The runner's options need
  pydantic (carried to the GPU machine as a wheel, ``device_wheels.txt``); without it the row is
  skipped, saying why (``skipped``).
* the decode sweep (``--batch-sizes``, default 1,8,32,64; ``--sweep-systems``): ``hfllm-compiled``
  and ``hfllm-eager`` (a batch of concurrent ``complete`` calls, one ``generate``) and ``generate``
  (a plain ``model.generate`` on the same ids), at a fixed prompt length (``--prompt-tokens``).
  Its batch-1 points and the roofline (`inference_report`) are measured right after the
  baseline, before ``ours-compiled`` (so the roofline figure compiles one shape, and its cache is
  sized for a 400 + 60 token call, not grown by the episodes); the other sizes come next, with the
  compiled cache length ``ours-compiled`` left. ``ours-runner`` runs last: its longer prompts
  compile one more shape (64 x 1536 on a 7b), which must not cost the sweep its figures when a
  device call runs out of time.

Roofline (batch 1): tokens/s ≤ bandwidth / (bytes per parameter × parameters) = 3.35 TB/s /
(2 × 6.74e9 B) = 249 tokens/s for 7B in bf16 on an H100 SXM, 4.8 TB/s → 356 tokens/s on an H200
(datasheet figures; looked up from the GPU's name, ``--hbm-gbs`` overrides); the JSON also gives the bound from a device-to-device
copy measured in the same run. Timings use ``torch.cuda.synchronize()`` around every timed region;
peak GPU memory is ``torch.cuda.max_memory_allocated`` per phase.

Run from the repository root: ``.venv/bin/python benchmarks/inference_bench.py`` (or ``python -m
benchmarks.inference_bench``; tiny on CPU) or ``bash benchmarks/run_gpu.sh`` on a GPU machine (7b);
results go to ``benchmarks/results/inference-<host kind>.json`` (``--out``). Only ``ours-runner``
needs pydantic (see above); nothing needs tantivy or openai (the GPU image has none of them).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

if not __package__:  # run as `python benchmarks/inference_bench.py`: the package's root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.inference_report import (  # noqa: E402
    NAME,
    SWEEP_SYSTEMS,
    Results,
    equality,
    mean_by_step,
    sweep,
    tables,
)
from benchmarks.inference_work import (  # noqa: E402
    STOP,
    PreloadedHFLLM,
    Workload,
    build_workload,
    episode_row,
    forced_length,
    gather_completions,
    in_worker,
    llm_counters,
    llm_figures,
    plain_generate,
    run_baseline,
    run_ours_async,
    run_runner,
)
from benchmarks.models import SIZES, Device, build_model, train_tokenizer  # noqa: E402


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
    p.add_argument("--sweep-systems", default=",".join(SWEEP_SYSTEMS),
                   help="decode sweep systems, in order")  # fmt: skip
    p.add_argument("--no-compiled", action="store_true", help="skip the compiled HFLLM")
    p.add_argument("--baseline-episodes", type=int, default=None,
                   help="episodes run one at a time (default: all on tiny, 4 on 7b)")  # fmt: skip
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
        args.repeats, args.corpus_chars = 3, 300_000  # 3: a median that one busy moment cannot flip
    if args.baseline_episodes is None:
        args.baseline_episodes = 4 if args.model_size == "7b" else args.episodes
    args.baseline_episodes = min(args.baseline_episodes, args.episodes)
    args.sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    args.systems = [s for s in args.sweep_systems.split(",") if s.strip()]
    if args.model_size == "7b" and not args.device.startswith("cuda"):
        p.error("--model-size 7b needs a CUDA device (13.5 GB of bf16 weights per copy)")
    if args.no_compiled:
        args.systems = [s for s in args.systems if s != "hfllm-compiled"]
    unknown = sorted(set(args.systems) - set(SWEEP_SYSTEMS))
    if unknown:
        p.error(
            f"--sweep-systems: unknown {', '.join(unknown)} (known: {', '.join(SWEEP_SYSTEMS)})"
        )
    return args


@dataclass
class Setup:
    """What the measured runs use: the model, the shipped `HFLLM` around it, the workload."""

    dev: Device
    model: Any
    tokenizer_dir: Path
    eager: PreloadedHFLLM
    workload: Workload
    settings: dict[str, Any]


def setup(args: argparse.Namespace, workdir: Path) -> Setup:
    """Train the tokenizer, build the random model and the eager `HFLLM`, and the workload."""
    import torch

    spec = SIZES[args.spec_name]
    dev = Device(args.device)
    dtype = torch.bfloat16 if dev.cuda else torch.float32
    start = time.perf_counter()
    # saved to `workdir`, where PreloadedHFLLM loads it from (no pad token: HFLLM sets one)
    tokenizer = train_tokenizer(args.vocab_size or spec.vocab, args.corpus_chars, save_to=workdir)
    tokenizer_s = time.perf_counter() - start
    print(f"tokenizer: vocab {len(tokenizer)} in {tokenizer_s:.1f} s", flush=True)
    build_s, model = dev.time(
        lambda: build_model(spec, tokenizer, args.device, dtype, seed=args.seed).eval()
    )
    print(f"model {args.spec_name}: built on {args.device} in {build_s:.1f} s", flush=True)
    forced_length(model, args.gen_tokens)
    eager = PreloadedHFLLM(model, workdir, compile="off", **llm_options(args))
    wl = build_workload(
        tokenizer, args.episodes, args.steps, args.prompt_tokens, args.obs_tokens,
        max(args.sizes or [0]),
    )  # fmt: skip
    step0 = [len(tokenizer(p).input_ids) for p in wl.prompts]
    settings = {
        "model_size": args.model_size if not args.quick else "micro (--quick)",
        "model": asdict(spec) | {"vocab": model.config.vocab_size},
        "dtype": str(dtype).removeprefix("torch."),
        "device": args.device,
        "attn_implementation": model.config._attn_implementation,
        "weights": "random (LlamaConfig, initialised on the device); no checkpoint",
        "tokenizer": f"byte-level BPE trained here on fireact/resources text, vocab {len(tokenizer)}",
        "tokenizer_train_s": round(tokenizer_s, 2),
        "model_build_s": round(build_s, 2),
        "episodes": args.episodes,
        "steps": args.steps,
        "prompt_tokens_step0": {"min": min(step0), "max": max(step0)},
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
        "ours": "fireact.llm.hf.HFLLM as shipped, compile='off' (ours) and 'on' (ours-compiled);"
        " only loading differs (PreloadedHFLLM adopts the in-memory model in _load)",
        "ours-runner": "the same questions through fireact.agent.runner.arun (fireact run's"
        " runner: method react, max_steps=steps, concurrency=episodes, no re-asks) with the"
        " compiled HFLLM (eager with --no-compiled); the runner's own observations, so no text"
        " equality with the baseline",
        "sweep_systems": args.systems,
        "torchinductor_cache_dir": os.environ.get("TORCHINDUCTOR_CACHE_DIR"),
        "compile_note": "ours-compiled-first includes compiling its shapes, less what inductor's"
        " on-disk cache (TORCHINDUCTOR_CACHE_DIR, default /tmp/torchinductor_$USER) already held",
        "sweep_repeats": args.repeats,
        "seed": args.seed,
    }
    return Setup(dev, model, workdir, eager, wl, settings)


def runner_missing() -> str | None:
    """Why `fireact run`'s runner cannot be imported here (None: it can)."""
    try:
        import fireact.agent.runner  # noqa: F401
    except ModuleNotFoundError as err:
        return (
            f"fireact's runner needs {err.name}, not on this machine (the GPU machine: "
            "bash benchmarks/gpu_wheels.sh, then carry=['.whl'])"
        )
    return None


def one_line(err: BaseException) -> str:
    """The first line of an error's message."""
    text = str(err).strip()
    return text.splitlines()[0] if text else ""


def llm_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"max_batch_size": args.max_batch_size, "batch_window_s": args.batch_window_s}


def run_episodes(
    system: str, llm: PreloadedHFLLM, s: Setup, args: argparse.Namespace
) -> tuple[dict[str, Any], list[list[Any]]]:
    """Every episode concurrently through `llm`: its row and its completions."""
    print(f"{system}: {args.episodes} episodes concurrently ...", flush=True)
    before = llm_counters(llm)
    s.dev.reset_peak()
    wall, episodes = s.dev.time(
        lambda: asyncio.run(run_ours_async(llm, s.workload, args.steps, args.gen_tokens))
    )
    completions = [c for ep in episodes for c in ep]
    row = episode_row(
        system,
        args.episodes,
        args.steps,
        wall,
        sum(c.completion_tokens for c in completions),
        **llm_figures(llm, before),
        finish_reasons=dict(Counter(c.finish_reason for c in completions)),
        completion_tokens=dict(Counter(c.completion_tokens for c in completions)),
        prompt_tokens_by_step=mean_by_step([[c.prompt_tokens for c in ep] for ep in episodes]),
        peak_gpu_mem_gib=s.dev.peak_gib(),
        what=f"HFLLM(max_batch_size={args.max_batch_size}, batch_window_s={args.batch_window_s},"
        f" compile={'on' if llm.static else 'off'}), every episode concurrently in one asyncio loop",
    )
    return row, episodes


def measure(args: argparse.Namespace, s: Setup, res: Results) -> None:
    """Every configuration in turn, the results file rewritten after each."""
    model, llm, wl, dev = s.model, s.eager, s.workload, s.dev
    print("warm-up ...", flush=True)  # one batched call at full width and one single, untimed
    forced_length(model, 2)
    asyncio.run(gather_completions(llm, wl.prompts[: args.max_batch_size], 2))
    in_worker(lambda: plain_generate(model, llm.tokenizer, [llm.encode(wl.prompts[0])], 2))
    forced_length(model, args.gen_tokens)
    row, ours = run_episodes("ours", llm, s, args)
    res.add_row(row)
    res.done("ours")

    n = args.baseline_episodes
    print(f"baseline: {n} episodes one prompt at a time ...", flush=True)
    dev.reset_peak()
    wall, (texts, lengths, generated) = dev.time(
        lambda: in_worker(
            lambda: run_baseline(model, llm.tokenizer, wl, n, args.steps, args.gen_tokens)
        )
    )
    res.add_row(
        episode_row(
            "baseline", n, args.steps, wall, generated,
            generate_calls=n * args.steps,
            prompt_tokens_by_step=mean_by_step(lengths),
            peak_gpu_mem_gib=dev.peak_gib(),
            what="plain loop: tokenizer(prompt) -> model.generate(one prompt) -> append observation",
        )
    )  # fmt: skip
    res.doc["equality"]["ours vs baseline"] = equality(ours, texts, n, args.steps)
    res.done("baseline")

    compiled = None
    if not args.no_compiled:
        compiled = PreloadedHFLLM(model, s.tokenizer_dir, compile="on", **llm_options(args))
    # batch 1 first: the roofline figure, compiling one shape (a 400 + 60 token cache)
    sweep(args, s, res, compiled, [b for b in args.sizes if b == 1])
    if compiled is not None:
        for system in ("ours-compiled-first", "ours-compiled"):
            row, episodes = run_episodes(system, compiled, s, args)
            res.add_row(row)
            res.done(system)
        res.doc["equality"]["ours-compiled vs baseline"] = equality(episodes, texts, n, args.steps)
        res.save()
    sweep(args, s, res, compiled, [b for b in args.sizes if b != 1])
    # last: the runner's longer prompts compile one more shape (64 x 1536 on a 7b), which must
    # not cost the sweep its figures when a device call runs out of time
    missing = runner_missing()  # fireact's runner: its options need pydantic (carried as a wheel)
    if missing is None:
        forced_length(model, args.gen_tokens)
        try:
            row = run_runner(compiled or llm, wl, dev, args, s.tokenizer_dir / "ours-runner")
        except Exception as err:  # noqa: BLE001 - a failure here (OOM) keeps the rows before it
            traceback.print_exc()
            row = {"system": "ours-runner", "error": f"{type(err).__name__}: {one_line(err)}"}
        res.add_row(row)
        res.done("ours-runner")
    else:
        print(f"ours-runner: skipped: {missing}", flush=True)
        res.doc["skipped"] = {"ours-runner": missing}
        res.save()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the tables, write the results file; return the document."""
    args = parse_args(argv)
    res = Results(args)
    with tempfile.TemporaryDirectory(prefix=f"fireact-{NAME}-") as tmp:
        s = setup(args, Path(tmp))
        res.doc["settings"] = s.settings
        res.save()
        measure(args, s, res)
    res.doc["progress"]["complete"] = True
    res.save()
    print(tables(res.doc))
    print(res.doc["target_check"])
    print(f"results: {res.path}")
    return {"path": str(res.path), **res.info, **res.doc}


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()

"""The P2 workload and the systems it runs: HFLLM as shipped (eager and compiled) and the baseline.

Owns the ReAct-shaped workload (`Workload`, `build_workload`: FireAct's HotpotQA ReAct prompt and
questions, real observations, prompts of an exact token count), `PreloadedHFLLM` (the shipped
`HFLLM` around a model already in memory), the runner-shaped episode loop (`run_ours_async`),
the one-prompt-at-a-time baseline (`run_baseline`, FireAct's llama pattern), the same episodes'
questions through `fireact run`'s own runner (``ours-runner``: `run_runner`, with `WorkloadTool`
and the files `runner_inputs` writes), and the figures of an episode run (`episode_row`,
`llm_counters` / `llm_figures`, `equality`). `inference_bench` orchestrates them.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fireact.llm.base import Completion, cut_at_stop
from fireact.llm.hf import HFLLM
from fireact.llm.hf_static import left_pad
from fireact.resources import resource
from fireact.trajectory import parse

STOP = ["\nObservation:"]
SWEEP_OFFSET = 17  # sweep prompt i starts this many tokens after prompt i - 1 in the head


class PreloadedHFLLM(HFLLM):
    """`HFLLM` around a model already in memory: only loading differs from the shipped class.

    `_load` adopts the model (in eval mode) and loads the tokenizer through the shipped
    `_load_tokenizer` (left padding, pad = eos); it skips `check_weights`, the dtype choice, the
    ``.to(device)`` and the sampling seed, all of which only concern loading (the benchmark is
    greedy). Everything from `complete` to `generate` is the shipped code, the decode path
    (`compile`: "off" eager, "on" static cache + torch.compile) included. Several of them may
    share one model.
    """

    def __init__(self, model: Any, tokenizer_dir: Path, **options: Any) -> None:
        self._preloaded = model
        super().__init__(str(tokenizer_dir), device=str(model.device), **options)

    def _load(self, *args: Any, **kwargs: Any) -> None:
        from transformers import AutoTokenizer

        self.model = self._preloaded.eval()
        self.tokenizer = self._load_tokenizer(AutoTokenizer, False)


@dataclass
class Workload:
    """Step-0 prompts (exactly `prompt_tokens` tokens where possible) and each step's observation."""

    prompts: list[str]
    observations: list[list[str]]
    sweep_prompts: list[str]  # exactly `prompt_tokens` tokens each: the head at different offsets
    questions: list[str]  # each episode's HotpotQA question
    answers: list[str]  # ... and the answer its FireAct trajectory finished with
    passages: list[str]  # the observations' text (no "Observation:" label, no "Thought:")
    head_ids: list[int]  # the ReAct prompt's tokens (repeated to the longest cut needed)


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
    answers = [(re.findall(r"Action: finish\[(.*)\]", r["output"]) or [""])[-1] for r in records]
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
    observations, cut = [], []
    for i in range(episodes):
        row = []
        for s in range(steps):
            passage = " ".join(passages[(i * steps + s + k) % len(passages)] for k in range(3))
            ids = tokenizer(f"\nObservation: {passage}", add_special_tokens=False).input_ids
            text = tokenizer.decode(ids[: max(1, obs_tokens - 3)])
            row.append(text + "\nThought:")
            cut.append(text.removeprefix("\nObservation:").strip())
        observations.append(row)
    sweep_prompts = [
        exact_text(tokenizer, head_ids[SWEEP_OFFSET * i :], "", prompt_tokens)
        for i in range(sweep_max)
    ]
    chosen = [i % len(questions) for i in range(episodes)]
    return Workload(
        prompts, observations, sweep_prompts, [questions[i] for i in chosen],
        [answers[i] for i in chosen], cut, head_ids,
    )  # fmt: skip


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

    pad = tokenizer.pad_token_id
    input_ids, attention = left_pad(batch, pad)
    width = input_ids.shape[1]
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
    system: str,
    episodes: int,
    steps: int,
    wall: float,
    generated: int,
    llm_calls: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The figures of one system's episode run (`llm_calls`: ``episodes × steps`` unless given)."""
    calls = episodes * steps if llm_calls is None else llm_calls
    return {
        "system": system,
        "episodes": episodes,
        "steps": steps,
        "llm_calls": calls,
        "wall_s": round(wall, 3),
        "episodes_per_s": episodes / wall,
        "llm_calls_per_s": calls / wall,
        "generated_tokens": generated,
        "generated_tokens_per_s": generated / wall,
        **extra,
    }


def llm_counters(llm: HFLLM) -> tuple[int, int, Counter]:
    """What `llm_figures` subtracts: generate calls, batches, compiled shapes so far."""
    return (
        llm.generate_calls,
        len(llm.batch_sizes),
        Counter(llm.static.shapes if llm.static else {}),
    )


def llm_figures(llm: HFLLM, before: tuple[int, int, Counter]) -> dict[str, Any]:
    """The backend's side of a run since `before` (`llm_counters`): its ``generate`` calls and
    batch sizes, and on the compiled path the (batch, cache length) shapes it ran, those met for
    the first time (each one compile), and the KV caches made so far."""
    calls, sizes, shapes = before
    figures: dict[str, Any] = {
        "generate_calls": llm.generate_calls - calls,
        "batch_sizes": dict(Counter(llm.batch_sizes[sizes:])),
    }
    if llm.static is not None:
        ran = llm.static.shapes - shapes
        figures["static_shapes"] = {f"{b}x{n}": k for (b, n), k in sorted(ran.items())}
        figures["shapes_first_seen"] = [f"{b}x{n}" for b, n in sorted(ran) if (b, n) not in shapes]
        figures["kv_caches_made"] = llm.static.caches.made  # so far: one per shape, then reused
    return figures


# ------------------------------------------------------------------ ours-runner: `fireact run`

RUNNER_NOTE = (
    "the runner's own episodes: its observations (a random model's actions are mostly invalid: "
    "'Invalid action: ...') and calls (a turn without an Action line gets one more call ending "
    "in 'Action:', stop newline), so its prompts and calls differ from the baseline's and no "
    "text equality is claimed"
)


class WorkloadTool:
    """The runner's ``search`` tool here: each call answers the next of the workload's real
    FireAct observations (`calls` counts them; a random model seldom writes a valid action)."""

    name, actions = "search", frozenset({"search"})

    def __init__(self, passages: Sequence[str]) -> None:
        self.passages, self.calls = list(passages), 0

    async def __call__(self, action: str, argument: str, state: Any) -> str:
        self.calls += 1
        return self.passages[(self.calls - 1) % len(self.passages)]

    async def aclose(self) -> None:
        return None


def runner_inputs(
    tokenizer: Any, wl: Workload, prompt_tokens: int, folder: Path
) -> tuple[Path, Path]:
    """The run's questions file (HotpotQA JSON: the workload's questions and answers) and its
    few-shot prompt file: the head of FireAct's ReAct prompt, cut so that episode 0's first prompt
    (head, question, ``"\\nThought:"``) is `prompt_tokens` tokens long, as the workload's are."""
    folder.mkdir(parents=True, exist_ok=True)
    data, prompt = folder / "questions.json", folder / "prompt.txt"
    pairs = zip(wl.questions, wl.answers, strict=True)
    rows = [{"_id": f"bench-{i}", "question": q, "answer": a} for i, (q, a) in enumerate(pairs)]
    data.write_text(json.dumps(rows), encoding="utf-8")
    tail = f"\n\n{wl.questions[0]}\nThought:"
    head = exact_text(tokenizer, wl.head_ids, tail, prompt_tokens).removesuffix(tail)
    prompt.write_text(head, encoding="utf-8")
    return data, prompt


def warm_runner_shape(llm: HFLLM, wl: Workload, dev: Any, args: Any) -> float:
    """Compiled path only: one untimed full-width call at the longest the run can reach (prompt
    and question, then per step at most a thought, an action and its echo in the observation of
    ``--gen-tokens`` each plus labels, then the answer), so that its (batch, cache length) shape
    is compiled and the cache at its high-water mark before the clock starts, as in a long run's
    steady state; its seconds."""
    if llm.static is None:
        return 0.0
    longest = args.prompt_tokens + 64 + args.steps * (3 * args.gen_tokens + 40) + args.gen_tokens
    ids = wl.head_ids * (longest // len(wl.head_ids) + 1)
    prompt = llm.tokenizer.decode(ids[: longest - 2])
    forced_length(llm.model, 2)
    rows = [prompt] * min(args.episodes, args.max_batch_size)
    warm_s, _ = dev.time(lambda: asyncio.run(gather_completions(llm, rows, 2)))
    forced_length(llm.model, args.gen_tokens)
    return warm_s


def run_runner(llm: HFLLM, wl: Workload, dev: Any, args: Any, folder: Path) -> dict[str, Any]:
    """The workload's questions as one `fireact run` (`fireact.agent.runner.arun`) through `llm`:
    method react, FireAct's ReAct prompt cut as the workload's (`runner_inputs`), `WorkloadTool`,
    ``max_steps`` = the workload's steps, every episode in flight, no re-asks (the runner's rule 3,
    one more call ending in ``Action:``, as FireAct's ReAct loop does, still applies); its row.

    The compiled path is warmed first (`warm_runner_shape`). It runs last (`inference_bench`), so
    the cache high-water mark it raises is left as it is.
    """
    from fireact.agent.runner import RunOptions, arun
    from fireact.runs import EPISODES, read_records

    data, prompt = runner_inputs(llm.tokenizer, wl, args.prompt_tokens, folder)
    options = RunOptions(
        task="hotpotqa", data=data, method="react", prompt=prompt, model="hf:random-llama",
        max_steps=args.steps, max_tokens=args.gen_tokens, temperature=0.0, max_reasks=0,
        concurrency=args.episodes, progress=False, out=folder / "run",
    )  # fmt: skip
    print(f"ours-runner: {args.episodes} episodes through fireact's runner ...", flush=True)
    tool = WorkloadTool(wl.passages)

    async def run() -> dict[str, Any]:
        try:
            return await arun(options, llm=llm, tool=tool)
        finally:
            await llm.aclose()

    warmup_s = warm_runner_shape(llm, wl, dev, args)
    before = llm_counters(llm)
    dev.reset_peak()
    wall, summary = dev.time(lambda: asyncio.run(run()))
    figures = llm_figures(llm, before)  # shapes_first_seen: compiles inside the timed run
    if llm.static is not None:
        figures["cache_len"] = llm.static.cache_len  # the high-water mark it reached
    records = read_records(options.out / EPISODES)
    observations = [s.observation or "" for r in records for s in parse(r.trajectory)]
    return episode_row(
        "ours-runner", len(records), args.steps, wall, summary["completion_tokens"],
        llm_calls=summary["llm_calls"],
        records_written=len(records),
        mean_steps=summary["mean_steps"],
        steps_taken=dict(Counter(str(r.steps) for r in records)),
        finished=summary["finished"],
        errors=summary["errors"],
        invalid_actions=sum(o.startswith("Invalid action:") for o in observations),
        tool_calls=tool.calls,
        prompt_tokens_per_call=round(summary["prompt_tokens"] / max(summary["llm_calls"], 1), 1),
        runner_wall_s=round(summary["wall_s"], 3),
        warmup_s=round(warmup_s, 3),
        peak_gpu_mem_gib=dev.peak_gib(),
        **figures,
        what=f"fireact.agent.runner.arun(RunOptions(task=hotpotqa, method=react, max_steps="
        f"{args.steps}, max_tokens={args.gen_tokens}, max_reasks=0, concurrency={args.episodes}), "
        f"llm=HFLLM(compile={'on' if llm.static else 'off'}), tool=WorkloadTool)",
        note=RUNNER_NOTE,
    )  # fmt: skip

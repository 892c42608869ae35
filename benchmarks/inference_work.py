"""The P2 workload and the systems it runs: HFLLM as shipped (eager and compiled) and the baseline.

Owns the ReAct-shaped workload (`Workload`, `build_workload`: FireAct's HotpotQA ReAct prompt and
questions, real observations, prompts of an exact token count), `PreloadedHFLLM` (the shipped
`HFLLM` around a model already in memory), the runner-shaped episode loop (`run_ours_async`),
the one-prompt-at-a-time baseline (`run_baseline`, FireAct's llama pattern), and the figures of
an episode run (`episode_row`, `equality`). `inference_bench` orchestrates them.
"""

from __future__ import annotations

import asyncio
import json
import statistics
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fireact.llm.base import Completion, cut_at_stop
from fireact.llm.hf import HFLLM
from fireact.llm.hf_static import left_pad
from fireact.resources import resource

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

"""NoisyTool: validation, determinism independent of interleaving, replacement rates, and
random-mode answers that are the inner tool's answers for pool queries."""

from __future__ import annotations

import asyncio
import random

import pytest

from fireact.errors import FireactError
from fireact.tools.base import Tool, ToolState, lookup, open_page
from fireact.tools.noisy import NoisyTool


class DictSearch:
    """A real (tiny) tool: ``search[q]`` opens the one-sentence page ``answer to q``."""

    name = "dict"
    actions = frozenset({"search", "lookup"})

    def __init__(self) -> None:
        self.queries: list[str] = []

    async def __call__(self, action: str, argument: str, state: ToolState) -> str:
        if action == "lookup":
            return lookup(state, argument)
        self.queries.append(argument)
        await asyncio.sleep(random.random() / 1000)  # let concurrent episodes interleave
        return open_page(state, [f"answer to {argument}."])

    async def aclose(self) -> None:
        pass


POOL = [f"pool question {i}" for i in range(20)]


def run_episodes(noisy: NoisyTool, episodes: int, steps: int) -> dict[str, list[str]]:
    """Run episodes concurrently; each searches ``e{k} step {j}`` `steps` times."""

    async def episode(k: int) -> tuple[str, list[str]]:
        state = ToolState(episode_id=f"e{k}")
        out = [await noisy("search", f"e{k} step {j}", state) for j in range(steps)]
        assert state.calls == steps
        return state.episode_id, out

    async def go() -> dict[str, list[str]]:
        return dict(await asyncio.gather(*(episode(k) for k in range(episodes))))

    return asyncio.run(go())


def replaced(results: dict[str, list[str]]) -> list[tuple[str, int]]:
    return [
        (eid, j)
        for eid, outs in results.items()
        for j, out in enumerate(outs)
        if out != f"answer to {eid} step {j}."
    ]


def test_validation() -> None:
    inner = DictSearch()
    for p in (-0.1, 1.5, float("nan"), "0.5", True):
        with pytest.raises(FireactError, match="probability"):
            NoisyTool(inner, p=p)  # type: ignore[arg-type]
    with pytest.raises(FireactError, match="unknown"):
        NoisyTool(inner, mode="shuffle")
    with pytest.raises(FireactError, match="pool"):
        NoisyTool(inner, mode="random", pool=[])
    tool = NoisyTool(inner, p=1, mode="random", pool=POOL)
    assert isinstance(tool, Tool)
    assert tool.name == "dict" and tool.actions == inner.actions


def test_p_zero_is_a_no_op() -> None:
    results = run_episodes(NoisyTool(DictSearch(), p=0.0, mode="none"), 10, 10)
    assert replaced(results) == []


def test_p_one_none_mode_always_none_without_calling_inner() -> None:
    inner = DictSearch()
    results = run_episodes(NoisyTool(inner, p=1.0, mode="none"), 5, 4)
    assert all(out == ["None"] * 4 for out in results.values())
    assert inner.queries == []


def test_deterministic_regardless_of_interleaving() -> None:
    first = run_episodes(NoisyTool(DictSearch(), p=0.5, seed=7), 30, 10)
    second = run_episodes(NoisyTool(DictSearch(), p=0.5, seed=7), 30, 10)
    assert first == second
    # one episode alone sees the same replacements as inside the crowd
    alone = run_episodes(NoisyTool(DictSearch(), p=0.5, seed=7), 1, 10)
    assert alone["e0"] == first["e0"]
    other_seed = run_episodes(NoisyTool(DictSearch(), p=0.5, seed=8), 30, 10)
    assert replaced(other_seed) != replaced(first)


def test_rate_close_to_p() -> None:
    for p in (0.2, 0.5, 0.9):
        noisy = NoisyTool(DictSearch(), p=p, mode="none", seed=1)
        results = run_episodes(noisy, 40, 50)  # 2,000 calls: sd of the rate <= 0.012
        rate = len(replaced(results)) / 2000
        assert abs(rate - p) < 0.05, (p, rate)
        assert noisy.replaced / noisy.calls == rate


def test_random_mode_answers_a_pool_query() -> None:
    inner = DictSearch()
    results = run_episodes(NoisyTool(inner, p=0.5, mode="random", pool=POOL, seed=3), 20, 10)
    swaps = replaced(results)
    assert 50 < len(swaps) < 150
    answers = {f"answer to {q}." for q in POOL}
    for eid, j in swaps:
        assert results[eid][j] in answers
    assert {f"answer to {q}." for q in inner.queries if q in POOL} == {
        results[eid][j] for eid, j in swaps
    }


def test_random_mode_page_follows_the_replacement_and_lookup_counts() -> None:
    noisy = NoisyTool(DictSearch(), p=1.0, mode="random", pool=["only question", "x"], seed=0)

    async def go() -> tuple[list[str], ToolState]:
        state = ToolState(episode_id="e")
        outs = [await noisy("search", "x", state), await noisy("lookup", "answer", state)]
        return outs, state

    outs, state = asyncio.run(go())
    assert outs == ["answer to only question.", "(Result 1 / 1) answer to only question."]
    assert state.calls == 2  # lookups count as calls too
    assert noisy.calls == 1 and noisy.replaced == 1

"""Rollouts: each one a real fireact episode (`fireact.agent.episode.run_episode`) with the
policy as its model and fireact's tool; returned in the shape TRL's ``rollout_func`` wants."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from fireact.agent.episode import Agent, run_episode
from fireact.rl.config import RLConfig
from fireact.rl.policy import PolicyLLM
from fireact.tasks.base import Example, Task
from fireact.tools.base import Tool


def episode_reward(em: bool, finished: bool, format_penalty: float) -> float:
    """The task's score (1 / 0), less `format_penalty` for an episode that never finished."""
    return float(em) - (0.0 if finished else format_penalty)


async def run_group(
    policy: PolicyLLM, agent: Agent, examples: Sequence[Example], format_penalty: float
) -> dict[str, list[Any]]:
    """Run `examples` as concurrent episodes (one key each); TRL's rollout fields."""
    policy.episodes.clear()
    policy.live = len(examples)
    keys = [f"rollout-{i}" for i in range(len(examples))]

    async def one(key: str, example: Example) -> float:
        try:
            ep = await run_episode(Example(key, example.question, example.answer), agent)
            return episode_reward(ep.em, ep.finished, format_penalty)
        finally:
            policy.episode_ended()

    rewards = await asyncio.gather(*(one(k, e) for k, e in zip(keys, examples, strict=True)))
    tokens = [policy.episodes[k] for k in keys]
    return {
        "prompt_ids": [t.prompt_ids for t in tokens],
        "completion_ids": [t.ids for t in tokens],
        "logprobs": [t.logprobs for t in tokens],
        "env_mask": [t.mask for t in tokens],
        "env_reward": list(rewards),
    }


def rollout_func(
    policy: PolicyLLM, agent: Agent, by_question: dict[str, Example], format_penalty: float
) -> Callable[[list[Any], Any], dict[str, list[Any]]]:
    """TRL's hook: the prompts of this process (each question already repeated per group
    member by TRL's sampler) → one fireact episode each."""

    def rollouts(prompts: list[Any], trainer: Any) -> dict[str, list[Any]]:
        from trl.models.utils import unwrap_model_for_generation

        examples = [by_question[p] for p in prompts]
        # as TRL generates: DeepSpeed ZeRO-3's partitioned weights gathered for the rollouts
        with unwrap_model_for_generation(
            trainer.model_wrapped, trainer.accelerator,
            gather_deepspeed3_params=trainer.args.ds3_gather_for_generation,
        ) as model:  # fmt: skip
            policy.model = model
            return asyncio.run(run_group(policy, agent, examples, format_penalty))

    return rollouts


def env_reward(
    prompts: list[Any], completions: list[Any], env_reward: list[float], **_: Any
) -> list[float]:
    """TRL's reward function: the reward each rollout's episode earned."""
    return list(env_reward)


def group_examples(task: Task, start: int, end: int | None) -> list[Example]:
    """The prompts' questions: the split's range, in order (TRL's sampler shuffles, seeded)."""
    return task.select(start, end)


def agent_for(
    policy: PolicyLLM, task: Task, tool: Tool | None, head: str, config: RLConfig
) -> Agent:
    """The episodes' shared part: ReAct in the recipe's format (few-shot: with the task's own
    prompt as `head`; alpaca: as fine-tuned), sampling, no re-asks."""
    return Agent(
        llm=policy, tool=tool, task=task, method="react", format=config.prompt_format,
        head=head, max_steps=config.max_episode_steps, max_reasks=0,
        max_tokens=policy.max_tokens, temperature=policy.temperature,
    )  # fmt: skip

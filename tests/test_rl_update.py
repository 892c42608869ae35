"""One GRPO step through TRL on fireact episodes moves the policy the way the rewards say: the
episodes with a positive advantage become more likely, those with a negative one less, measured
on the policy's own tokens (the mask) of the very rollouts TRL trained on."""

from __future__ import annotations

import pytest

pytest.importorskip("trl")


def own_logprob(model, prompt_ids, ids, mask, temperature):
    """Sum of log p(token) over the policy's own tokens (mask 1), logits / temperature as TRL."""
    import torch

    with torch.no_grad():
        logits = model(torch.tensor([prompt_ids + ids])).logits[0, len(prompt_ids) - 1 : -1]
    logps = (logits.float() / temperature).log_softmax(-1)
    chosen = logps.gather(-1, torch.tensor(ids).unsqueeze(-1)).squeeze(-1)
    return chosen, float(sum(lp for lp, m in zip(chosen.tolist(), mask, strict=True) if m))


def test_a_grpo_step_favours_the_rewarded_episodes(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    from fireact.rl.config import RLConfig, WarmStart
    from fireact.rl.train import build_trainer

    warm = WarmStart(end=64, sft_overrides={"model.build_tiny.hidden_size": 64})
    config = RLConfig(
        end=8, warm_start=warm, format_penalty=0.5, prompts_per_step=8, num_generations=4,
        max_steps=1, max_episode_steps=3, learning_rate=1e-4, output_dir=tmp_path / "rl",
    )  # fmt: skip
    trainer, _ = build_trainer(config)
    rollouts = []
    rollout = trainer.rollout_func
    trainer.rollout_func = lambda prompts, t: rollouts.append(rollout(prompts, t)) or rollouts[-1]
    trainer.train()
    trainer.save_model(str(tmp_path / "after"))
    # both policies as saved (the warm start's model, the trained one), read back the same way
    before_model = AutoModelForCausalLM.from_pretrained(tmp_path / "rl" / "warm" / "model").eval()
    after_model = AutoModelForCausalLM.from_pretrained(tmp_path / "after").eval()
    out = rollouts[0]
    rewards = torch.tensor(out["env_reward"]).view(-1, config.num_generations)
    advantages = (rewards - rewards.mean(1, keepdim=True)) / (rewards.std(1, keepdim=True) + 1e-4)
    assert (advantages != 0).any()  # some groups disagree: there is something to learn
    moved = 0.0
    for i, advantage in enumerate(advantages.flatten().tolist()):
        row = (out["prompt_ids"][i], out["completion_ids"][i], out["env_mask"][i])
        sampled, before = own_logprob(before_model, *row, config.temperature)
        _, after = own_logprob(after_model, *row, config.temperature)
        recorded = [lp for lp, m in zip(out["logprobs"][i], row[2], strict=True) if m]
        own = [lp for lp, m in zip(sampled.tolist(), row[2], strict=True) if m]
        assert own == pytest.approx(recorded, abs=1e-3)  # the rollout's logprobs are the policy's
        moved += advantage * (after - before)
    assert moved > 0

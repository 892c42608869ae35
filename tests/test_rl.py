"""`fireact rl`: the recipe, the reward, and TRL's GRPO over real fireact episodes with the
masks TRL's loss receives (observations carry no loss)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fireact.errors import FireactError

pytest.importorskip("trl")


def test_recipe_errors_name_the_key(tmp_path):
    from fireact.rl import load_rl_config

    recipe = tmp_path / "r.yaml"
    recipe.write_text("num_generation: 4\n")
    with pytest.raises(FireactError, match=r"r.yaml: key 'num_generation': Extra inputs"):
        load_rl_config(recipe)
    recipe.write_text("num_generations: 1\n")
    with pytest.raises(FireactError, match=r"key 'num_generations': Input should be greater"):
        load_rl_config(recipe)


def test_shipped_recipe_loads_with_its_warm_start_beside_it():
    from fireact.home import resource
    from fireact.rl import load_rl_config

    recipe = resource("configs", "rl", "tiny-arith.yaml")
    config = load_rl_config(recipe)
    assert config.warm_start is not None
    assert config.warm_start.sft == recipe.parent / "tiny-arith-sft.yaml"
    assert (config.prompt_format, config.num_generations, config.prompts_per_step) == (
        "alpaca", 4, 8,
    )  # fmt: skip


def test_a_warm_start_with_its_own_model_key_is_refused(tmp_path):
    from fireact.rl import load_rl_config

    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: /models/x\nwarm_start: {end: 8}\n")
    with pytest.raises(
        FireactError,
        match=r"r.yaml: key 'model': a warm start trains the SFT recipe's model; leave it out$",
    ):
        load_rl_config(recipe)


@pytest.mark.parametrize(
    ("em", "finished", "reward"), [(True, True, 1.0), (False, True, 0.0), (False, False, -0.25)]
)
def test_reward_is_the_score_less_the_format_penalty(em, finished, reward):
    from fireact.rl.rollout import episode_reward

    assert episode_reward(em, finished, format_penalty=0.25) == reward


def test_an_output_dir_with_a_run_is_not_overwritten(tmp_path):
    from fireact.rl.config import RLConfig
    from fireact.rl.train import build_trainer

    (tmp_path / "rl").mkdir()
    (tmp_path / "rl" / "rewards.jsonl").write_text('{"step": 1, "reward": 0.5}\n')
    with pytest.raises(FireactError, match="already holds an rl run: choose another output_dir"):
        build_trainer(RLConfig(end=4, output_dir=tmp_path / "rl"))
    assert (tmp_path / "rl" / "rewards.jsonl").read_text() == '{"step": 1, "reward": 0.5}\n'


def test_grpo_step_masks_every_observation(tmp_path):
    """One GRPO step through TRL: what its loss receives masks exactly the environment's
    tokens (prompt rendering and observations) and keeps every token the policy sampled."""
    from fireact.rl.config import RLConfig
    from fireact.rl.train import build_trainer

    config = RLConfig(end=4, max_steps=1, output_dir=tmp_path / "rl", seed=3)
    trainer, tokenizer = build_trainer(config)
    rollouts, received = [], []
    rollout = trainer.rollout_func
    trainer.rollout_func = lambda prompts, t: rollouts.append(rollout(prompts, t)) or rollouts[-1]
    compute_loss = trainer.compute_loss

    def seen(model, inputs, *args, **kwargs):
        received.append(
            {k: inputs[k].tolist() for k in ("completion_ids", "completion_mask", "tool_mask")}
        )
        return compute_loss(model, inputs, *args, **kwargs)

    trainer.compute_loss = seen
    trainer.train()
    out = rollouts[0]
    assert len(out["completion_ids"]) == config.prompts_per_step * config.num_generations
    got = received[0]
    env_segments = 0
    unmatched = list(range(len(got["completion_ids"])))  # TRL may shuffle the batch's rows
    for i, (ids, mask) in enumerate(zip(out["completion_ids"], out["env_mask"], strict=True)):
        row = next(r for r in unmatched if got["completion_ids"][r][: len(ids)] == ids)
        unmatched.remove(row)
        assert got["tool_mask"][row][: len(mask)] == mask
        loss_mask = [
            c * t for c, t in zip(got["completion_mask"][row], got["tool_mask"][row], strict=True)
        ]
        assert sum(loss_mask) == sum(mask)  # the model's own tokens, all of them, nothing else
        sampled = [lp for lp, m in zip(out["logprobs"][i], mask, strict=True) if m]
        assert all(lp < 0 for lp in sampled)  # each one sampled by the policy
        runs, start = [], 0
        for j in range(1, len(mask) + 1):
            if j == len(mask) or mask[j] != mask[start]:
                runs.append((mask[start], tokenizer.decode(ids[start:j])))
                start = j
        for kind, text in runs:
            if kind == 0:  # the environment: rendering, observations, the next "Thought:"
                env_segments += "Observation: " in text
                assert text.rstrip().endswith(("Thought:", "Action:")), text
            else:  # the policy's own text never holds what only the environment writes
                assert "Use one of:" not in text and "Episode finished" not in text, text
    assert env_segments > 0
    rows = [
        json.loads(line)
        for line in (Path(config.output_dir) / "rewards.jsonl").read_text().splitlines()
    ]
    assert [r["step"] for r in rows] == [1]


def old_cut(decode, eos, ids, stop):
    """The cut rule as first written (one decode per prefix): the reference for `_cut`."""
    for n in range(1, len(ids) + 1):
        if ids[n - 1] == eos:
            return decode(ids[: n - 1]), n
        text = decode(ids[:n])
        for s in stop or ():
            if s in text:
                return text[: text.index(s)], n
    return decode(ids), len(ids)


@pytest.fixture(scope="module")
def arith_tokenizer():
    from fireact.tasks import load_task
    from fireact.train.tiny import train_bpe_tokenizer

    task = load_task("arith", "train")
    texts = [f"Thought: {e.question}\nAction: calculate[{e.answer}]\n" for e in task.select(0, 64)]
    return train_bpe_tokenizer(texts + ["Observation: Episode finished, reward = 1 é 🙂"], 300)


def test_cut_keeps_the_one_decode_per_prefix_rule(arith_tokenizer):
    """`_cut` (one decode and a binary search) gives the old rule's text and kept count on
    random sampled rows: stops found in the row, listed stops, EOS anywhere, no stop at all."""
    import random

    from fireact.rl.policy import PolicyLLM

    tok = arith_tokenizer
    policy = PolicyLLM(None, tok, max_tokens=24, temperature=1.0)
    rng, outcomes = random.Random(7), {"stop": 0, "eos": 0, "neither": 0}
    for _ in range(600):
        ids = [rng.randrange(len(tok)) for _ in range(rng.randrange(0, 30))]
        if ids and rng.random() < 0.3:  # an EOS at a random place
            ids[rng.randrange(len(ids))] = tok.eos_token_id
        text = policy._decode(ids)
        stop = rng.choice([None, [], [""], ["\nObservation:"], ["\n", "Action:"]])
        if text and rng.random() < 0.6:  # a stop the row holds, at a random place
            at = rng.randrange(len(text))
            stop = (stop or []) + [text[at : at + rng.randrange(1, 4)]]
        expected = old_cut(policy._decode, tok.eos_token_id, ids, stop)
        assert policy._cut(ids, stop) == expected, (ids, stop)
        kept = expected[1]
        outcomes[
            "eos" if kept and ids[kept - 1] == tok.eos_token_id
            else "stop" if kept < len(ids) or expected[0] != text else "neither"
        ] += 1  # fmt: skip
    assert min(outcomes.values()) >= 30, outcomes  # every kind of row was compared, many times


def test_a_batch_whose_rows_all_stop_early_ends_early(arith_tokenizer):
    """One batched `generate` of four episodes' turns with a real (random) model: every row meets
    a stop string within a few tokens, and the decoding loop ends at the last row's stop, not at
    max_tokens; each row keeps its tokens and their logprobs up to its stop."""
    import asyncio
    import string

    from fireact.rl.policy import PolicyLLM
    from fireact.train.tiny import build_llama

    model = build_llama(arith_tokenizer, seed=2, hidden_size=32, layers=1, heads=2)
    policy = PolicyLLM(model, arith_tokenizer, max_tokens=16, temperature=1.0)
    stop = list(string.ascii_letters + string.digits)
    policy.live = 4

    async def turns():
        calls = [
            policy.complete(f"Question {i}\nThought:", stop=stop, max_tokens=16, key=f"e{i}")
            for i in range(4)
        ]
        return await asyncio.gather(*calls)

    done = asyncio.run(turns())
    kept = [c.completion_tokens for c in done]
    assert policy.generate_calls == 1
    assert policy.generate_steps == max(kept) < 16
    assert [c.finish_reason for c in done] == ["stop"] * 4
    for i, completion in enumerate(done):
        ep = policy.episodes[f"e{i}"]
        assert ep.mask[-completion.completion_tokens :] == [1] * completion.completion_tokens
        assert all(lp < 0 for lp in ep.logprobs[-completion.completion_tokens :])

"""`fireact rl`: the arith environment, the recipe, and TRL's GRPO over real fireact episodes
with the masks TRL's loss receives (observations carry no loss)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fireact.errors import FireactError
from fireact.tasks import load_task
from fireact.tasks.arith import HERE, SIZES, generate, score_number

pytest.importorskip("trl")


def test_arith_splits_are_the_generators_output():
    for split in SIZES:
        assert json.loads((HERE / f"{split}.json").read_text()) == generate(split)
    dev = load_task("arith", "dev")
    assert (len(dev.examples), dev.examples[1].question, dev.examples[1].answer) == (
        200, "What is 12 minus 49?", "-37",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("prediction", "em"),
    [("-37", True), ("-37.", True), ("37", False), ("- 37", True), ("-38", False)],
)
def test_arith_score_keeps_the_sign(prediction, em):
    assert score_number(prediction, "-37").em is em


def test_recipe_errors_name_the_key(tmp_path):
    from fireact.rl import load_rl_config

    recipe = tmp_path / "r.yaml"
    recipe.write_text("num_generation: 4\n")
    with pytest.raises(FireactError, match=r"r.yaml: key 'num_generation': Extra inputs"):
        load_rl_config(recipe)
    recipe.write_text("num_generations: 1\n")
    with pytest.raises(FireactError, match=r"key 'num_generations': Input should be greater"):
        load_rl_config(recipe)


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

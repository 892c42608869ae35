"""Learning is shown, not assumed: `fireact rl configs/rl/tiny-arith.yaml` as shipped (a tiny
random Llama, its SFT warm start on the scripted teacher's episodes, then 120 GRPO steps through
TRL on real arith episodes with the calculator), on a CPU in about 90 s."""

from __future__ import annotations

import json

import pytest

from fireact.home import resource
from tests.helpers.clirun import run_cli

pytest.importorskip("trl")


def test_fireact_rl_raises_the_mean_reward_of_the_shipped_recipe(tmp_path):
    out = tmp_path / "rl"
    done = run_cli("rl", str(resource("configs", "rl", "tiny-arith.yaml")), "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "rewards.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 121))
    rewards = [r["reward"] for r in rows]
    first, last = sum(rewards[:20]) / 20, sum(rewards[-20:]) / 20
    # seeded: 0.461 -> 0.594 on the 2-core CI machine (benchmarks/results/rl-learning-cpu2.json)
    assert last > first + 0.1, (first, last)
    teacher = json.loads((out / "warm" / "teacher" / "summary.json").read_text())
    assert (teacher["n"], teacher["kept"], teacher["em"]) == (512, 512, 1.0)
    warm = json.loads((out / "warm" / "model" / "train_summary.json").read_text())
    assert warm["examples"] == 498  # the distinct questions among them (convert dedupes)
    assert (out / "model" / "model.safetensors").is_file()

"""`fireact rl` in two processes (gloo on CPU), launched as the README says: `accelerate launch`
with `configs/accelerate/multi_cpu_gloo.yaml` running ``-m fireact.rl.train RECIPE``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.launch import launch_gloo

pytest.importorskip("trl")

REPO = Path(__file__).resolve().parents[1]
RECIPE = """task: arith
end: 4
tiny_hidden: 32
num_generations: 2
prompts_per_step: 1
max_steps: 2
max_episode_steps: 2
max_tokens: 8
seed: 1
"""


def test_two_gloo_processes_run_grpo_steps_and_save_once(tmp_path):
    out = tmp_path / "rl"
    recipe = tmp_path / "rl.yaml"
    recipe.write_text(RECIPE + f"output_dir: {out}\n")
    done = launch_gloo("fireact.rl.train", recipe, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    summaries = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"')]
    assert sorted((s["process_index"], s["processes"], s["steps"]) for s in summaries) == [
        (0, 2, 2), (1, 2, 2),
    ]  # fmt: skip
    steps = [json.loads(line) for line in (out / "rewards.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == [1, 2]  # logged once, by the main process
    assert (out / "model" / "model.safetensors").is_file()

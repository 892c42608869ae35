"""`fireact rl` in two processes (gloo on CPU), launched as the README says: `accelerate launch`
with `configs/accelerate/multi_cpu_gloo.yaml` running ``-m fireact.rl.train RECIPE``."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")

REPO = Path(__file__).resolve().parents[1]
RENDEZVOUS_ERRORS = re.compile(
    r"Address already in use|EADDRINUSE|DistNetworkError|Connection refused|timed out", re.I
)
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_run_grpo_steps_and_save_once(tmp_path):
    out = tmp_path / "rl"
    recipe = tmp_path / "rl.yaml"
    recipe.write_text(RECIPE + f"output_dir: {out}\n")
    accelerate = Path(sys.executable).with_name("accelerate")
    gloo = REPO / "configs" / "accelerate" / "multi_cpu_gloo.yaml"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    for _attempt in range(2):  # a fresh port once more if the rendezvous itself failed
        command = [str(accelerate), "launch", "--config_file", str(gloo)]
        command += ["--main_process_port", str(free_port()), "-m", "fireact.rl.train"]
        done = subprocess.run(
            [*command, str(recipe)], capture_output=True, text=True, env=env, timeout=240
        )
        if done.returncode == 0 or not RENDEZVOUS_ERRORS.search(done.stderr):
            break
    assert done.returncode == 0, done.stderr[-3000:]
    summaries = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"')]
    assert sorted((s["process_index"], s["processes"], s["steps"]) for s in summaries) == [
        (0, 2, 2), (1, 2, 2),
    ]  # fmt: skip
    steps = [json.loads(line) for line in (out / "rewards.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == [1, 2]  # logged once, by the main process
    assert (out / "model" / "model.safetensors").is_file()

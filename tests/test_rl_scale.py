"""`fireact rl` in two processes (gloo on CPU), launched as the README says: `accelerate launch`
with `configs/accelerate/multi_cpu_gloo.yaml` running ``-m fireact.rl.train RECIPE``.

`launch_gloo` tries a launch once more when its rendezvous failed; that retry must start from an
empty output folder (a first try that got as far as writing ``rewards.jsonl`` would make the
retry refuse the folder and hide why the first one failed), and a failure must show every try's
worker tracebacks, not only the launcher's summary at the end of stderr.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers.launch import RENDEZVOUS_ERRORS, launch_gloo

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


def worker_errors(done: subprocess.CompletedProcess) -> str:
    """What a failed launch says: exit code, every exception line of the workers, the tails."""
    errors = dict.fromkeys(re.findall(r"^[\w.]*(?:Error|Exception)\b.*$", done.stderr, re.M))
    return (
        f"exit {done.returncode}\n" + "\n".join(errors)
        + f"\nstderr tail: {done.stderr[-1500:]}\nstdout tail: {done.stdout[-500:]}"
    )  # fmt: skip


def test_two_gloo_processes_run_grpo_steps_and_save_once(tmp_path):
    out = tmp_path / "rl"
    recipe = tmp_path / "rl.yaml"
    recipe.write_text(RECIPE + f"output_dir: {out}\n")
    tries: list[subprocess.CompletedProcess] = []

    def settled(done: subprocess.CompletedProcess) -> bool:
        tries.append(done)
        if done.returncode != 0 and RENDEZVOUS_ERRORS.search(done.stderr):
            shutil.rmtree(out, ignore_errors=True)  # launch_gloo retries: from an empty folder
        return done.returncode == 0

    done = launch_gloo("fireact.rl.train", recipe, timeout=240, settled=settled)
    assert done.returncode == 0, "\n=== next try ===\n".join(map(worker_errors, tries))
    summaries = [json.loads(s) for s in re.findall(r'\{"steps": [^{}]*\}', done.stdout)]
    assert sorted((s["process_index"], s["processes"], s["steps"]) for s in summaries) == [
        (0, 2, 2), (1, 2, 2),
    ], done.stdout  # fmt: skip
    steps = [json.loads(line) for line in (out / "rewards.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == [1, 2]  # logged once, by the main process
    assert (out / "model" / "model.safetensors").is_file()

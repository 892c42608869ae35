"""`fireact rl` in two processes (gloo on CPU), launched as the README says: `accelerate launch`
with `configs/accelerate/multi_cpu_gloo.yaml` running ``-m fireact.rl.train RECIPE``, with the
shipped recipe's SFT warm start (`configs/rl/tiny-arith-sft.yaml`, made cheap by overrides).

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
import yaml

from fireact.home import resource
from tests.helpers.clirun import run_cli
from tests.helpers.launch import RENDEZVOUS_ERRORS, launch_gloo

pytest.importorskip("trl")

SFT = resource("configs", "rl", "tiny-arith-sft.yaml")  # batch_size 4, micro_batch_size 4
RECIPE = """task: arith
end: 4
num_generations: 2
prompts_per_step: 1
max_steps: 2
max_episode_steps: 2
max_tokens: 8
seed: 1
"""


def warm_recipe(tmp_path: Path, out: Path, **sft_overrides: object) -> Path:
    """The small rl recipe in `tmp_path` whose warm start is the shipped SFT recipe on 8 teacher
    questions (8 examples: one epoch is 2 optimiser steps of 4)."""
    warm = {"end": 8, "sft": str(SFT), "sft_overrides": {"epochs": 1, **sft_overrides}}
    recipe = tmp_path / "rl.yaml"
    recipe.write_text(RECIPE + yaml.safe_dump({"warm_start": warm, "output_dir": str(out)}))
    return recipe


def worker_errors(done: subprocess.CompletedProcess) -> str:
    """What a failed launch says: exit code, every exception line of the workers, the tails."""
    errors = dict.fromkeys(re.findall(r"^[\w.]*(?:Error|Exception)\b.*$", done.stderr, re.M))
    return (
        f"exit {done.returncode}\n" + "\n".join(errors)
        + f"\nstderr tail: {done.stderr[-1500:]}\nstdout tail: {done.stdout[-500:]}"
    )  # fmt: skip


def test_two_gloo_processes_warm_start_then_run_grpo_steps_and_save_once(tmp_path):
    out = tmp_path / "rl"
    recipe = warm_recipe(tmp_path, out)
    tries: list[subprocess.CompletedProcess] = []

    def settled(done: subprocess.CompletedProcess) -> bool:
        tries.append(done)
        if done.returncode != 0 and RENDEZVOUS_ERRORS.search(done.stderr):
            shutil.rmtree(out, ignore_errors=True)  # launch_gloo retries: from an empty folder
        return done.returncode == 0

    done = launch_gloo("fireact.rl.train", recipe, timeout=240, settled=settled)
    assert done.returncode == 0, "\n=== next try ===\n".join(map(worker_errors, tries))
    # the warm start: the recipe's batch of 4 kept, 2 per process, said once (the main rank)
    line = "fireact rl: warm start on 2 processes: micro_batch_size 4 -> 2 per process"
    assert done.stderr.count(line + " (batch_size 4 kept)") == 1, done.stderr[-2000:]
    warm = json.loads((out / "warm" / "model" / "train_summary.json").read_text())
    assert (warm["world_size"], warm["examples"], warm["steps"]) == (2, 8, 2)
    assert done.stderr.count("fireact.train: rank 0/2 finished 2 steps") == 1
    assert done.stderr.count("fireact.train: rank 1/2 finished 2 steps") == 1
    saved = yaml.safe_load((out / "warm" / "model" / "fireact_config.yaml").read_text())
    assert (saved["batch_size"], saved["micro_batch_size"]) == (4, 2)
    # GRPO on the warm model: 2 steps on both processes, logged and saved by the main one
    summaries = [json.loads(s) for s in re.findall(r'\{"steps": [^{}]*\}', done.stdout)]
    assert sorted((s["process_index"], s["processes"], s["steps"]) for s in summaries) == [
        (0, 2, 2), (1, 2, 2),
    ], done.stdout  # fmt: skip
    steps = [json.loads(line) for line in (out / "rewards.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == [1, 2]  # logged once, by the main process
    assert (out / "model" / "model.safetensors").is_file()


def test_a_fireact_error_under_accelerate_is_one_line_per_rank_and_exit_2(tmp_path):
    """The user's own micro_batch_size is kept, so the SFT's error stands: each rank prints it
    as one line and exits 2 (the launcher's summary names the exit code); no worker traceback."""
    recipe = warm_recipe(tmp_path, tmp_path / "rl", micro_batch_size=4)
    done = launch_gloo("fireact.rl.train", recipe, timeout=240, settled=lambda d: True)
    error = "error: batch_size 4 is smaller than micro_batch_size 4 × 2 processes"
    lines = [line for line in done.stderr.splitlines() if "error:" in line]
    # the launcher stops the other rank when the first exits: it may be stopped before it prints
    assert lines in ([error], [error, error]), worker_errors(done)
    assert done.returncode != 0
    assert re.search(r"exitcode\s*: 2 ", done.stderr), done.stderr[-2000:]
    assert not re.search(r'File ".*fireact', done.stderr), done.stderr[-3000:]
    assert "FireactError" not in done.stderr


def test_fireact_rl_on_an_existing_run_names_the_out_flag_and_the_recipe_key(tmp_path):
    out = tmp_path / "rl"
    out.mkdir()
    (out / "rewards.jsonl").write_text('{"step": 1, "reward": 0.5}\n')
    recipe = tmp_path / "rl.yaml"
    recipe.write_text(RECIPE)
    done = run_cli("rl", str(recipe), "--out", str(out))
    assert (done.returncode, done.stderr) == (
        2, f"error: {out} already holds an rl run: choose another --out (output_dir)\n",
    )  # fmt: skip
    assert (out / "rewards.jsonl").read_text() == '{"step": 1, "reward": 0.5}\n'


@pytest.mark.parametrize(
    ("batch", "micro", "processes", "fitted"),
    [(4, 4, 1, 4), (4, 4, 2, 2), (4, 1, 2, 1), (8, 4, 2, 4), (6, 6, 4, 1), (12, 12, 5, 2)],
)
def test_the_warm_start_micro_batch_fits_the_batch_across_processes(
    batch, micro, processes, fitted
):
    from fireact.rl.warm import per_process_micro_batch

    assert per_process_micro_batch(batch, micro, processes) == fitted

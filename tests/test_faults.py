"""Faults end to end through the CLI: a flaky model server, Ctrl-C, kill -9 — nothing is lost,
nothing is duplicated, and results equal a fault-free run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.clirun import run_cli
from tests.helpers.openai_server import FAULT_KINDS, OpenAIServer
from tests.helpers.teachers import (
    N,
    cli_args,
    records,
    records_in,
    start_slow_run,
    teacher,
    wait_for_lines,
)


@pytest.mark.parametrize("command", ["run", "generate"])
def test_twenty_percent_faults_change_nothing(tmp_path, command):
    with OpenAIServer(teacher) as clean:
        ok = run_cli(command, *cli_args(clean.base_url, tmp_path / "clean"))
    assert ok.returncode == 0, ok.stderr
    with OpenAIServer(teacher, fault_rate=0.2, fault_kinds=FAULT_KINDS, hang_s=1.5, seed=7) as bad:
        flaky = run_cli(command, *cli_args(bad.base_url, tmp_path / "flaky"))
        faults = len(bad.faults)
    assert flaky.returncode == 0, flaky.stderr
    assert faults >= 3  # the server really misbehaved
    assert records(tmp_path / "flaky") == records(tmp_path / "clean")
    assert len(records(tmp_path / "clean")) == N
    if command == "generate":
        kept = [records_in(tmp_path / name / "trajectories.jsonl") for name in ("clean", "flaky")]
        assert kept[0] == kept[1] and len(kept[0]) == N // 2


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_interrupted_run_resumes_without_loss_or_duplicates(tmp_path, sig):
    out = tmp_path / "run"
    # 16 episodes x 2 calls x 0.25 s at concurrency 2: about 4 s, so the signal lands midway
    # even when this machine is busy and the polling below is slow
    with OpenAIServer(teacher, latency=0.25) as server:
        proc = start_slow_run(server.base_url, out)
        wait_for_lines(out / "episodes.jsonl", 3)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
        if sig == signal.SIGINT:
            assert proc.returncode == 130, stderr
            assert "Traceback" not in stderr and "--resume" in stderr
        else:
            assert proc.returncode == -signal.SIGKILL
        before = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
        assert 3 <= len(before) < N
        resumed = run_cli("run", *cli_args(server.base_url, out, "--resume"))
    assert resumed.returncode == 0, resumed.stderr
    ids = [r["id"] for r in records(out)]
    assert len(ids) == N and len(set(ids)) == N
    assert json.loads((out / "summary.json").read_text())["n"] == N


TRAIN_RECIPE = """\
model: {{build_tiny: {{hidden_size: 32, layers: 1, heads: 2, vocab_size: 300, seed: 0}}}}
dataset: fireact:finetune/alpaca_format/hotpotqa.json
max_examples: 8
method: full
precision: fp32
cpu_threads: 1
learning_rate: 3.0e-3
epochs: 12
batch_size: 2
micro_batch_size: 2
packing: false
logging_steps: 1
save_steps: 2
seed: 7
output_dir: {out}
"""


def losses(out: Path) -> dict[int, float]:
    """The training loss per step (the last entry wins: a resumed run repeats some steps)."""
    by_step = {}
    for line in (out / "train_log.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if "loss" in entry:
            by_step[entry["step"]] = entry["loss"]
    return by_step


def test_training_killed_with_sigkill_resumes_on_the_same_loss_curve(tmp_path):
    straight = tmp_path / "straight.yaml"
    straight.write_text(TRAIN_RECIPE.format(out=tmp_path / "a"))
    assert run_cli("train", str(straight)).returncode == 0
    killed = tmp_path / "killed.yaml"
    killed.write_text(TRAIN_RECIPE.format(out=tmp_path / "b"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "fireact", "train", str(killed)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not list((tmp_path / "b").glob("checkpoint-4/trainer_state.json")):
        assert proc.poll() is None, "training ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = run_cli("train", str(killed), "--resume", "true")
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["steps"] == max(losses(tmp_path / "a"))
    a, b = losses(tmp_path / "a"), losses(tmp_path / "b")
    assert a.keys() == b.keys()
    assert all(abs(a[step] - b[step]) < 1e-4 for step in a)

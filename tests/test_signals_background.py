"""SIGTERM stops fireact the same way when it runs as a background job of a non-interactive
shell, where SIGINT is ignored; a SIGINT there is still ignored. Real bash, real processes, the
local OpenAI server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.helpers.clirun import run_cli
from tests.helpers.openai_server import OpenAIServer
from tests.helpers.teachers import N, cli_args, records, teacher, wait_for_lines

# `fireact ARGS` as `cmd &` in `bash -c`: bash ignores SIGINT in the job, as in a script
BACKGROUND = '"$PYTHON" -m fireact "$@" & echo "$!"; wait "$!"; echo "rc=$?"'
TERMINATED = "terminated: finished work is saved; rerun with --resume to continue"


class BackgroundJob:
    """``fireact ARGS &`` started by a non-interactive bash, which waits for it and prints its
    exit status; `pid` is fireact's own process."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHON": sys.executable}
        self.shell = subprocess.Popen(
            ["bash", "-c", BACKGROUND, "bash", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.shell.stdout is not None
        self.pid = int(self.shell.stdout.readline())

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        """Fireact's exit status (as bash's `wait` reports it) and its stderr."""
        stdout, stderr = self.shell.communicate(timeout=timeout)
        return int(stdout.strip().splitlines()[-1].removeprefix("rc=")), stderr


def sigint_ignored(pid: int) -> bool:
    """Whether process `pid` ignores SIGINT (its SigIgn mask in /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    raise AssertionError(f"no SigIgn line for pid {pid}")


def slow_run_args(base_url: str, out: Path, *extra: str) -> list[str]:
    """16 episodes x 2 calls x 0.25 s at concurrency 2: about 4 s."""
    args = cli_args(base_url, out, *extra)
    args[args.index("8")] = "2"
    return ["run", *args]


def test_sigterm_stops_a_background_run_saves_it_and_exits_143(tmp_path):
    out = tmp_path / "run"
    with OpenAIServer(teacher, latency=0.25) as server:
        job = BackgroundJob(*slow_run_args(server.base_url, out))
        wait_for_lines(out / "episodes.jsonl", 3)
        assert sigint_ignored(job.pid)  # the case that used to run on to the end
        os.kill(job.pid, signal.SIGTERM)
        rc, stderr = job.finish()
        kept = (out / "episodes.jsonl").read_text().splitlines()
        assert rc == 143, stderr
        assert stderr.strip().splitlines()[-1] == TERMINATED
        assert "Traceback" not in stderr
        assert 3 <= len(kept) < N  # stopped, not run on to the end
        resumed = run_cli(*slow_run_args(server.base_url, out, "--resume", "--concurrency", "8"))
    assert resumed.returncode == 0, resumed.stderr
    final = (out / "episodes.jsonl").read_text().splitlines()
    assert final[: len(kept)] == kept  # the episodes finished before SIGTERM, untouched
    ids = [r["id"] for r in records(out)]
    assert sorted(ids) == sorted(f"q{i}" for i in range(N))  # each episode exactly once
    assert json.loads((out / "summary.json").read_text())["done"] == N


def test_sigint_does_not_stop_a_background_run(tmp_path):
    out = tmp_path / "run"
    with OpenAIServer(teacher, latency=0.25) as server:
        job = BackgroundJob(*slow_run_args(server.base_url, out))
        assert wait_for_lines(out / "episodes.jsonl", 3) < N  # still running
        assert sigint_ignored(job.pid)
        os.kill(job.pid, signal.SIGINT)
        rc, stderr = job.finish()
    assert rc == 0, stderr
    assert "interrupted" not in stderr
    assert sorted(r["id"] for r in records(out)) == sorted(f"q{i}" for i in range(N))

"""Two gloo processes on this CPU through ``accelerate launch`` (the multi-process tests).

    done = launch_gloo("fireact.train.sft", config_path, timeout=180)

A rendezvous that fails on its own (a port taken between choosing it and binding it, a slow
start) is retried once on a fresh port; any other outcome is returned as it is. The launcher
runs in its own process group, so a run past its timeout is killed with its workers.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GLOO = REPO / "configs" / "accelerate" / "multi_cpu_gloo.yaml"
RENDEZVOUS_ERRORS = re.compile(
    r"Address already in use|EADDRINUSE|DistNetworkError|Connection refused|timed out", re.I
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_gloo(
    module: str,
    argument: Path,
    *,
    timeout: float,
    settled: Callable[[subprocess.CompletedProcess], bool] = lambda done: done.returncode == 0,
) -> subprocess.CompletedProcess:
    """``accelerate launch`` of ``python -m MODULE ARGUMENT`` on 2 gloo processes; a run that
    did not `settle` (default: exit 0) because the rendezvous failed is tried once more."""
    accelerate = Path(sys.executable).with_name("accelerate")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    for _attempt in range(2):
        command = [str(accelerate), "launch", "--config_file", str(GLOO)]
        command += ["--main_process_port", str(free_port()), "-m", module, str(argument)]
        done = run_group(command, env, timeout)
        if settled(done) or not RENDEZVOUS_ERRORS.search(done.stderr):
            break
    return done


def run_group(
    command: list[str], env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess:
    """`command` in a new process group, output captured; past `timeout` the whole group (the
    launcher and the workers it started) is killed and TimeoutExpired raised."""
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True,
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(command, proc.returncode, out, err)

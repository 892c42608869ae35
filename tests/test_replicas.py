"""Replicas: ``--base-url A,B,C`` spreads the calls over three real servers; one stopped midway
costs nothing: every episode completes, with the records of a one-server run."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from fireact.errors import FireactError
from fireact.llm import load_llm
from fireact.llm.replicas import ReplicatedLLM
from tests.helpers.clirun import run_cli
from tests.helpers.openai_server import OpenAIServer
from tests.helpers.teachers import N, cli_args, records, teacher


def test_the_least_busy_replica_that_is_up_is_picked():
    llm = ReplicatedLLM("tiny", ["http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1"])
    llm.in_flight = [3, 1]
    assert llm.pick() == (1, 0.0)
    llm._mark_down(1)
    assert llm.pick() == (0, 0.0)
    llm._mark_down(0)
    replica, wait = llm.pick()
    assert replica == 1 and 0 < wait <= 2.0  # both out: the first to come back
    assert llm.down_until[0] > llm.down_until[1]


def test_base_urls_must_be_two_different_ones():
    with pytest.raises(FireactError, match="two or more different URLs"):
        load_llm("openai:tiny", base_url="http://a/v1,http://a/v1")


def test_calls_spread_over_the_replicas():
    servers = [OpenAIServer(teacher, latency=0.02) for _ in range(3)]
    for server in servers:
        server.start()
    try:
        llm = load_llm("openai:tiny", base_url=",".join(s.base_url for s in servers))

        async def go() -> None:
            try:
                prompts = [f"Who is answer{i} here?" for i in range(30)]
                await asyncio.gather(*(llm.complete(p, key=p) for p in prompts))
            finally:
                await llm.aclose()

        asyncio.run(go())
    finally:
        for server in servers:
            server.stop()
    assert sum(llm.calls) == 30 and all(n >= 5 for n in llm.calls)


def test_a_replica_stopped_midway_changes_no_record(tmp_path):
    with OpenAIServer(teacher) as one:
        single = run_cli("run", *cli_args(one.base_url, tmp_path / "single"))
    assert single.returncode == 0, single.stderr
    answered = 0

    def dying(request) -> str:  # replica 1: stops itself after its fifth answer
        nonlocal answered
        answered += 1
        if answered == 5:
            threading.Timer(0.01, servers[1].stop).start()
        return teacher(request)

    servers = [OpenAIServer(f, latency=0.05) for f in (teacher, dying, teacher)]
    for server in servers:
        server.start()
    urls = ",".join(s.base_url for s in servers)
    try:
        result = run_cli("run", *cli_args(urls, tmp_path / "replicas"))
    finally:
        for server in servers:
            server.stop()
    assert result.returncode == 0, result.stderr
    served = [len([r for r in s.requests if r.path != "/v1/models"]) for s in servers]
    assert served[0] > 0 and served[2] > 0 and 5 <= answered < 2 * N  # replica 1 died midway
    assert records(tmp_path / "replicas") == records(tmp_path / "single")
    assert len(records(tmp_path / "replicas")) == N


REPO = Path(__file__).resolve().parents[1]
SERVE = textwrap.dedent(
    """
    import threading
    from tests.helpers.openai_server import OpenAIServer
    from tests.helpers.teachers import teacher

    def answer(request):
        print("answered", flush=True)  # the other calls are still waiting out their latency
        return teacher(request)

    server = OpenAIServer(answer, latency=0.2)
    server.start()
    print(server.base_url, flush=True)
    threading.Event().wait()
    """
)


def test_a_replica_killed_with_calls_in_flight_changes_no_record(tmp_path):
    with OpenAIServer(teacher) as one:
        single = run_cli("run", *cli_args(one.base_url, tmp_path / "single"))
    assert single.returncode == 0, single.stderr
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "src")])}
    doomed = subprocess.Popen(
        [sys.executable, "-c", SERVE], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True
    )
    assert doomed.stdout is not None
    answered = 0

    def kill_after_five() -> None:  # SIGKILL: its open connections drop mid-request
        nonlocal answered
        for line in doomed.stdout:
            answered += line.strip() == "answered"
            if answered == 5:
                doomed.send_signal(signal.SIGKILL)
                return

    servers = [OpenAIServer(teacher, latency=0.05) for _ in range(2)]
    try:
        doomed_url = doomed.stdout.readline().strip()
        watcher = threading.Thread(target=kill_after_five)
        watcher.start()
        for server in servers:
            server.start()
        urls = ",".join([servers[0].base_url, doomed_url, servers[1].base_url])
        result = run_cli("run", *cli_args(urls, tmp_path / "replicas"))
        watcher.join(timeout=10)
    finally:
        doomed.kill()
        doomed.wait()
        for server in servers:
            server.stop()
    assert result.returncode == 0, result.stderr
    assert answered == 5 and doomed.returncode == -signal.SIGKILL
    assert records(tmp_path / "replicas") == records(tmp_path / "single")
    assert len(records(tmp_path / "replicas")) == N


def test_a_slow_replicas_calls_are_hedged_on_another_one():
    import time

    servers = [OpenAIServer(teacher, latency=lat) for lat in (1.5, 0.02, 0.02)]
    for server in servers:
        server.start()
    try:
        urls = ",".join(s.base_url for s in servers)
        llm = load_llm("openai:tiny", base_url=urls, hedge_after_s=0.3)

        async def timed(prompt: str) -> float:
            start = time.perf_counter()
            await llm.complete(prompt, key=prompt)
            return time.perf_counter() - start

        async def go() -> list[float]:
            try:
                return await asyncio.gather(*(timed(f"Who is answer{i}?") for i in range(12)))
            finally:
                await llm.aclose()

        seconds = asyncio.run(go())
    finally:
        for server in servers:
            server.stop()
    sent_to_slow = len([r for r in servers[0].requests if r.path != "/v1/models"])
    assert sent_to_slow >= 1  # it had its share of the calls ...
    assert llm.calls[0] == 0 and sum(llm.calls) == 12  # ... all answered by the other two
    assert llm.hedges == llm.hedge_wins == sent_to_slow
    assert max(seconds) < 1.0  # none waited for the slow server (1.5 s)

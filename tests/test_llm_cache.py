"""CachedLLM: a real OpenAILLM against the real local server (tests/helpers/openai_server.py), a real
SQLite file: replays with no request, the occurrence rule, what makes a request different, cost
saved, failures, no secret in the file, and the file's safety under concurrent episodes, two
processes, and a writer killed with SIGKILL; resolve_llm_cache's values."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fireact.agent import RunOptions, arun
from fireact.agent.runner import TIMING_FIELDS
from fireact.errors import FireactError
from fireact.llm import LLM, Completion, LLMError
from fireact.llm.cache import CachedLLM, llm_identity, request_key, resolve_llm_cache
from fireact.llm.openai_backend import OpenAILLM
from tests.helpers.agents import DictTool
from tests.helpers.openai_server import OpenAIServer, ScriptRequest

SRC = str(Path(__file__).resolve().parents[1] / "src")
SECRET = "sk-test-SECRET-cache-42"
STOP = ["\nObservation:"]
PRICES = {"tiny": [1_000_000.0, 2_000_000.0]}  # $1 a prompt token, $2 a completion token


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def echo(request: ScriptRequest) -> str:
    """The server's answer: names the request, so that a wrong replay shows."""
    return f"{request.model} says {request.text}"


def cached_llm(server: OpenAIServer, path: Path, model: str = "tiny", **options) -> CachedLLM:
    llm = OpenAILLM(model, base_url=server.base_url, prices=PRICES, **options)
    return CachedLLM(llm, path, identity=llm_identity(llm))


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": text}]


def rows(path: Path) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT request, occurrence, text FROM llm_cache ORDER BY text, occurrence"
        ).fetchall()
    finally:
        conn.close()


async def calls(llm: CachedLLM, requests: list[tuple[str, str | None]]) -> list[Completion]:
    """Each (question, episode) in order, then close."""
    try:
        return [await llm.complete(ask(q), stop=STOP, key=episode) for q, episode in requests]
    finally:
        await llm.aclose()


def test_a_second_run_makes_no_request_and_returns_the_same_completions(tmp_path: Path) -> None:
    path = tmp_path / "llm.sqlite"
    requests = [("Capital of France?", "e1"), ("Capital of Italy?", "e2"), ("Who?", None)]
    with OpenAIServer(echo) as server:
        first = cached_llm(server, path)
        assert isinstance(first, LLM) and first.name == "openai:tiny"
        one = asyncio.run(calls(first, requests))
        assert len(server.requests) == 3
        assert first.stats() == {"path": str(path), "hits": 0, "misses": 3, "saved_usd": 0.0}

        second = cached_llm(server, path)  # a new process would see the same file
        two = asyncio.run(calls(second, requests))
        assert len(server.requests) == 3  # no new request
    assert [c.text for c in one] == [  # the server joins the message contents by "\n"
        "tiny says Answer briefly.\nCapital of France?",
        "tiny says Answer briefly.\nCapital of Italy?",
        "tiny says Answer briefly.\nWho?",
    ]
    same = ("text", "prompt_tokens", "completion_tokens", "cost_usd", "finish_reason")
    for a, b in zip(one, two, strict=True):
        assert {f: getattr(a, f) for f in same} == {f: getattr(b, f) for f in same}
        assert b.latency_s > 0
    # "Answer briefly.\nCapital of France?": 5 prompt tokens ($1 each), 7 in the answer ($2)
    assert (one[0].prompt_tokens, one[0].completion_tokens, one[0].cost_usd) == (5, 7, 19.0)
    assert [c.cost_usd for c in two] == [19.0, 19.0, 3 + 2 * 5]
    assert second.stats() == {"path": str(path), "hits": 3, "misses": 0, "saved_usd": 51.0}


def test_an_episode_that_re_asks_replays_its_answers_in_order(tmp_path: Path) -> None:
    path = tmp_path / "llm.sqlite"
    script = {"Think": ["answer 1", "answer 2", "answer 3"]}

    async def episode(llm: CachedLLM, key: str, times: int) -> list[str]:
        return [(await llm.complete(ask("Think"), key=key)).text for _ in range(times)]

    async def go(llm: CachedLLM) -> tuple[list[str], list[str]]:
        try:
            return await episode(llm, "e1", 3), await episode(llm, "e2", 2)
        finally:
            await llm.aclose()

    with OpenAIServer(script) as server:
        first = cached_llm(server, path)
        assert asyncio.run(go(first)) == (
            ["answer 1", "answer 2", "answer 3"],
            ["answer 1", "answer 2"],
        )
        assert len(server.requests) == 3  # e2 shared e1's entries
        assert (first.hits, first.misses) == (2, 3)

        again = cached_llm(server, path)
        assert asyncio.run(go(again)) == (
            ["answer 1", "answer 2", "answer 3"],
            ["answer 1", "answer 2"],
        )
        assert len(server.requests) == 3 and (again.hits, again.misses) == (5, 0)
    request = request_key(llm_identity(first.inner), ask("Think"), None, 256, 0.0)
    assert rows(path) == [
        (request, 0, "answer 1"),
        (request, 1, "answer 2"),
        (request, 2, "answer 3"),
    ]


def test_any_difference_in_the_request_is_a_miss(tmp_path: Path) -> None:
    path = tmp_path / "llm.sqlite"
    base = {"stop": ["\n"], "max_tokens": 50, "temperature": 0.0}
    variants = [  # (model, api, options): each differs from the first in one thing
        ("tiny", "auto", base),
        ("tiny", "auto", base | {"temperature": 0.7}),
        ("tiny", "auto", base | {"stop": ["\nObservation:"]}),
        ("tiny", "auto", base | {"stop": None}),
        ("tiny", "auto", base | {"max_tokens": 51}),
        ("gpt-4o-mini", "auto", base),
        ("tiny", "completions", base),  # a text prompt to the completions API, not chat
    ]

    async def go(servers: list[OpenAIServer]) -> list[str]:
        texts = []
        for server in servers:
            for model, api, options in variants:
                llm = cached_llm(server, path, model, api=api)
                try:
                    if api != "completions":
                        texts.append((await llm.complete(ask("Hi"), key="e", **options)).text)
                    texts.append((await llm.complete("Hi", key="e", **options)).text)
                finally:
                    await llm.aclose()
        return texts

    with OpenAIServer(echo) as a, OpenAIServer(echo) as b:  # b: another endpoint
        first = asyncio.run(go([a, b]))
        assert (len(a.requests), len(b.requests)) == (13, 13)
        assert a.requests[-1].path == "/v1/completions"
        assert asyncio.run(go([a, b])) == first  # all 26 are stored, apart
        assert (len(a.requests), len(b.requests)) == (13, 13)
    assert len(rows(path)) == 26
    cut, uncut = "tiny says Answer briefly.", "tiny says Answer briefly.\nHi"
    per_server = [cut, "tiny says Hi"] * 2 + [uncut, "tiny says Hi"] * 2 + [cut, "tiny says Hi"]
    per_server += ["gpt-4o-mini says Answer briefly.", "gpt-4o-mini says Hi", "tiny says Hi"]
    assert first == per_server * 2
    identity = llm_identity(OpenAILLM("tiny", base_url="http://127.0.0.1:1/v1"))
    assert identity == {
        "name": "openai:tiny",
        "base_url": "http://127.0.0.1:1/v1",
        "model": "tiny",
        "api": "auto",
        "text_api": "chat",
    }
    completions = OpenAILLM("tiny", base_url="http://127.0.0.1:1/v1", api="completions")
    assert llm_identity(completions) | {"api": "auto", "text_api": "chat"} == identity
    assert request_key(identity, "Hi", None, 5, 0) == request_key(identity, "Hi", [], 5, 0.0)


def test_cost_saved_is_the_sum_of_the_stored_costs(tmp_path: Path) -> None:
    path = tmp_path / "llm.sqlite"
    questions = ["one", "one two", "one two three"]  # prompts of 3, 4, 5 tokens

    async def go(llm: CachedLLM) -> list[float]:
        try:
            return [(await llm.complete(ask(q), key=q)).cost_usd for q in questions]
        finally:
            await llm.aclose()

    with OpenAIServer(echo) as server:
        paid = asyncio.run(go(cached_llm(server, path)))
        again = cached_llm(server, path)
        assert asyncio.run(go(again)) == paid
    # the echo repeats the prompt after 2 words: n prompt tokens ($1) and n + 2 answer tokens ($2)
    assert paid == [3 + 2 * 5, 4 + 2 * 6, 5 + 2 * 7]
    assert again.saved_cost_usd == 13 + 16 + 19 == again.stats()["saved_usd"]


def test_a_failed_call_is_not_stored(tmp_path: Path) -> None:
    path = tmp_path / "llm.sqlite"

    async def go(llm: CachedLLM) -> str:
        try:
            with pytest.raises(LLMError, match="HTTP 500"):
                await llm.complete(ask("Hi"), key="e")
            return (await llm.complete(ask("Hi"), key="e")).text  # the same occurrence again
        finally:
            await llm.aclose()

    with OpenAIServer(echo, fault_schedule=["500"]) as server:
        llm = cached_llm(server, path, max_retries=0)
        assert asyncio.run(go(llm)) == "tiny says Answer briefly.\nHi"
        assert [r.outcome for r in server.requests] == ["500", "ok"]
    assert [(occurrence, text) for _, occurrence, text in rows(path)] == [
        (0, "tiny says Answer briefly.\nHi")
    ]
    assert (llm.hits, llm.misses) == (0, 2)


def test_the_api_key_is_never_stored(tmp_path: Path) -> None:
    path = tmp_path / "llm.sqlite"
    with OpenAIServer(echo, api_key=SECRET) as server:
        llm = OpenAILLM("tiny", base_url=server.base_url, api_key=SECRET)
        assert SECRET not in json.dumps(llm_identity(llm))
        cached = CachedLLM(llm, path, identity=llm_identity(llm))
        asyncio.run(calls(cached, [("Hi", "e")]))
        assert len(server.requests) == 1
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("llm"))
    assert SECRET.encode() not in stored and len(rows(path)) == 1
    for name in ("api_key", "Authorization", "token"):
        with pytest.raises(FireactError, match="must not hold secrets"):
            CachedLLM(llm, path, identity={"model": "tiny", name: SECRET})


def test_check_is_passed_through_only_when_the_inner_model_has_one(tmp_path: Path) -> None:
    class NoCheck:
        name = "plain"

        async def complete(self, prompt, **kwargs) -> Completion:
            return Completion("x")

        async def aclose(self) -> None:
            pass

    assert getattr(CachedLLM(NoCheck(), tmp_path / "a.sqlite", identity={}), "check", None) is None
    with OpenAIServer(echo) as server:
        llm = cached_llm(server, tmp_path / "b.sqlite")

        async def go() -> list[str]:
            try:
                return await llm.check()
            finally:
                await llm.aclose()

        assert asyncio.run(go()) == ["gpt-4", "gpt-3.5-turbo", "gpt-4o-mini", "tiny"]


def test_many_concurrent_episodes_in_one_process(tmp_path: Path) -> None:
    path = tmp_path / "llm.sqlite"

    async def episode(llm: CachedLLM, k: int) -> list[str]:
        return [(await llm.complete(ask(f"q{(k + j) % 50}"), key=f"e{k}")).text for j in range(5)]

    async def go(llm: CachedLLM) -> list[list[str]]:
        try:
            return await asyncio.gather(*(episode(llm, k) for k in range(200)))
        finally:
            await llm.aclose()

    with OpenAIServer(echo) as server:
        llm = cached_llm(server, path, max_concurrency=16)
        results = asyncio.run(go(llm))
        assert len(server.requests) == llm.misses  # concurrent identical misses may both call
    for k, out in enumerate(results):
        assert out == [f"tiny says Answer briefly.\nq{(k + j) % 50}" for j in range(5)]
    assert llm.hits + llm.misses == 1000 and len(rows(path)) == 50


def test_a_rerun_of_a_run_makes_no_model_call_and_writes_the_same_records(
    tmp_path: Path,
) -> None:
    questions = [
        {"_id": f"e{i}", "question": f"Question {i}?", "answer": f"answer {i}"} for i in range(6)
    ]
    data = tmp_path / "questions.json"
    data.write_text(json.dumps(questions))
    right = [" Search.\nAction: search[topic {i}]", " Done.\nAction: finish[answer {i}]"]
    script = {  # odd episodes first answer without an action: the agent re-asks the same prompt
        f"Question {i}?": [line.format(i=i) for line in ([" Hmm."] + right if i % 2 else right[1:])]
        for i in range(6)
    }
    pages = {f"topic {i}": [f"Topic {i} is answer {i}."] for i in range(6)}

    def go(server: OpenAIServer, out: str) -> tuple[dict, list[dict], dict]:
        opts = RunOptions(
            task="hotpotqa",
            data=data,
            format="chat",
            model="openai:tiny",
            out=tmp_path / out,
            concurrency=4,
            progress=False,
        )
        llm = cached_llm(server, tmp_path / "llm.sqlite")
        try:
            summary = asyncio.run(arun(opts, llm=llm, tool=DictTool(pages)))
        finally:
            asyncio.run(llm.aclose())
        lines = (tmp_path / out / "episodes.jsonl").read_text().splitlines()
        records = sorted((json.loads(line) for line in lines), key=lambda r: r["id"])
        for r in records:
            for field in TIMING_FIELDS:
                r.pop(field, None)
            for step in r["step_stats"]:
                for field in TIMING_FIELDS:
                    step.pop(field, None)
            for call in r["tool_calls"]:
                call.pop("latency_s", None)
        return summary, records, llm.stats()

    with OpenAIServer(script) as server:
        summary, records, stats = go(server, "first")
        assert len(server.requests) == 12
        summary2, records2, stats2 = go(server, "second")
        assert len(server.requests) == 12
    assert records2 == records
    assert [r["reasks"] for r in records] == [0, 1, 0, 1, 0, 1]
    assert (summary["em"], summary["llm_calls"], summary2["llm_calls"]) == (1.0, 12, 12)
    assert stats["misses"] == 12 and stats2 == {
        "path": str(tmp_path / "llm.sqlite"),
        "hits": 12,
        "misses": 0,
        "saved_usd": summary["cost_usd"],
    }


# --- several OS processes on one file -----------------------------------------------------


def _writer(path: str, base_url: str, lo: int, hi: int) -> None:
    """A second process: questions lo..hi-1, 20 episodes at a time."""

    async def main() -> None:
        llm = OpenAILLM("tiny", base_url=base_url, prices=PRICES)
        cached = CachedLLM(llm, path, identity=llm_identity(llm))
        try:
            for start in range(lo, hi, 20):
                batch = range(start, min(start + 20, hi))
                outs = await asyncio.gather(
                    *(cached.complete(ask(f"q{i}"), key=f"e{i}") for i in batch)
                )
                for i, out in zip(batch, outs, strict=True):
                    assert out.text == f"tiny says Answer briefly.\nq{i}", out
        finally:
            await cached.aclose()

    asyncio.run(main())


def _check_file(path: Path, base_url: str, expected: set[int]) -> None:
    """Every expected question is stored once, right; the file is intact."""
    identity = llm_identity(OpenAILLM("tiny", base_url=base_url))
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    stored = dict(conn.execute("SELECT request, text FROM llm_cache WHERE occurrence=0"))
    (total,) = conn.execute("SELECT count(*) FROM llm_cache").fetchone()
    conn.close()
    assert total == len(stored)
    for i in expected:
        request = request_key(identity, ask(f"q{i}"), None, 256, 0.0)
        assert stored.get(request) == f"tiny says Answer briefly.\nq{i}", i


def test_two_processes_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    spawn = multiprocessing.get_context("spawn")
    with OpenAIServer(echo) as server:
        ranges = [(0, 400), (200, 600)]  # overlapping: same entries, racing misses
        procs = [
            spawn.Process(target=_writer, args=(str(path), server.base_url, lo, hi))
            for lo, hi in ranges
        ]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(timeout=120)
            assert proc.exitcode == 0
        assert 600 <= len(server.requests) <= 800
        _check_file(path, server.base_url, set(range(600)))
        assert len(rows(path)) == 600

        replay = cached_llm(server, path)  # and everything replays without a request
        before = len(server.requests)

        async def go() -> list[str]:
            try:
                return [
                    (await replay.complete(ask(f"q{i}"), key="x")).text for i in range(0, 600, 7)
                ]
            finally:
                await replay.aclose()

        assert asyncio.run(go()) == [f"tiny says Answer briefly.\nq{i}" for i in range(0, 600, 7)]
        assert len(server.requests) == before


KILLED = textwrap.dedent(
    """
    import asyncio, sys
    from fireact.llm.cache import CachedLLM, llm_identity
    from fireact.llm.openai_backend import OpenAILLM

    path, base_url = sys.argv[1], sys.argv[2]

    async def one(cached, i):
        messages = [{"role": "system", "content": "Answer briefly."},
                    {"role": "user", "content": f"q{i}"}]
        out = await cached.complete(messages, key=f"e{i}")
        assert out.text == f"tiny says Answer briefly.\\nq{i}", out
        print(i, flush=True)  # returned: the entry is committed

    async def main():
        llm = OpenAILLM("tiny", base_url=base_url)
        cached = CachedLLM(llm, path, identity=llm_identity(llm))
        for lo in range(0, 1_000_000, 8):
            await asyncio.gather(*(one(cached, i) for i in range(lo, lo + 8)))

    asyncio.run(main())
    """
)


def test_a_run_killed_with_sigkill_keeps_every_answer_it_had(tmp_path: Path) -> None:
    path = tmp_path / "killed.sqlite"
    script = tmp_path / "killed.py"
    script.write_text(KILLED)
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with OpenAIServer(echo) as server:
        proc = subprocess.Popen(
            [sys.executable, str(script), str(path), server.base_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stdout is not None
        answered: set[int] = set()
        while len(answered) < 300:
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else "the writer exited early"
            answered.add(int(line))
        os.kill(proc.pid, signal.SIGKILL)
        rest, _ = proc.communicate(timeout=10)
        answered |= {int(line) for line in rest.split()}  # printed before the kill: stored too
        assert proc.returncode == -signal.SIGKILL
        _check_file(path, server.base_url, answered)

        resumed = cached_llm(server, path)  # the file keeps working after the kill
        before = settled_request_count(server)  # a request the killed writer sent may still land

        # the last answered entry: the batch it was in may have been cut short by the kill
        picked = (0, max(answered))

        async def go() -> list[str]:
            try:
                return [(await resumed.complete(ask(f"q{i}"), key="r")).text for i in picked]
            finally:
                await resumed.aclose()

        assert asyncio.run(go()) == [f"tiny says Answer briefly.\nq{i}" for i in picked]
        assert len(server.requests) == before


def settled_request_count(server: OpenAIServer, quiet_s: float = 0.3) -> int:
    """The server's request count once nothing has arrived for `quiet_s` seconds."""
    count, since = len(server.requests), time.monotonic()
    while time.monotonic() - since < quiet_s:
        time.sleep(0.02)
        if len(server.requests) != count:
            count, since = len(server.requests), time.monotonic()
    return count


# --- --llm-cache values -------------------------------------------------------------------


def test_resolve_llm_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    assert resolve_llm_cache("none", 0.0, home) is None
    assert resolve_llm_cache("auto", 0.0, home) == home / "cache" / "llm.sqlite"
    assert resolve_llm_cache("auto", 0.7, home) is None  # sampled runs are not replayed
    assert resolve_llm_cache(str(tmp_path / "my.sqlite"), 0.7, home) == tmp_path / "my.sqlite"
    monkeypatch.setenv("FIREACT_HOME", str(tmp_path / "env-home"))
    assert resolve_llm_cache("auto", 0, None) == tmp_path / "env-home" / "cache" / "llm.sqlite"
    with pytest.raises(FireactError, match="is a folder") as error:
        resolve_llm_cache(str(tmp_path), 0.0, home)
    assert "\n" not in str(error.value)


def test_an_unusable_file_is_a_user_error(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-db.sqlite"
    bad.write_bytes(b"this is not a sqlite database, just some text " * 100)
    with (
        OpenAIServer(echo) as server,
        pytest.raises(FireactError, match="LLM cache .* cannot be opened"),
    ):
        cached_llm(server, bad)

"""Failures are loud and countable, signals end cleanly, torn files are named (issue 13, items
4, 5 and 7): real servers on 127.0.0.1, real processes, real run folders."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from fireact.agent import run
from fireact.errors import FireactError
from tests.helpers.clirun import run_cli
from tests.helpers.openai_server import OpenAIServer
from tests.helpers.runs import options, tool
from tests.helpers.teachers import cli_args, records, start_slow_run, teacher, wait_for_lines


class BrokenTool:
    """A search tool whose backend is down: every call raises."""

    name = "broken"
    actions = frozenset({"search", "lookup"})

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, action: str, argument: str, state: object) -> str:
        self.calls += 1
        raise ConnectionError("search backend unreachable")

    async def aclose(self) -> None:
        pass


def test_a_tool_that_fails_on_every_call_stops_the_run_early(tmp_path):
    broken = BrokenTool()
    with pytest.raises(FireactError) as info:
        run(options(tmp_path, concurrency=1), tool=broken)
    assert str(info.value) == (
        "the broken tool failed on each of its first 10 calls (ConnectionError: search backend "
        "unreachable); stopping the run: fix the tool, then rerun with --resume"
    )
    assert broken.calls == 10  # not 40 episodes' worth of error observations


def test_a_tool_that_fails_sometimes_does_not_stop_the_run(tmp_path):
    summary = run(options(tmp_path), tool=tool())  # "boom" fails, other searches answer
    assert summary["done"] == 40 and summary["errors"] == 0


def test_generate_keeps_no_episode_whose_tool_calls_failed(tmp_path):
    summary = run(options(tmp_path, keep="all"), tool=tool(), generate=True)
    kept = (tmp_path / "out" / "trajectories.jsonl").read_text().splitlines()
    # every fifth episode searched "boom" and saw "Tool error: RuntimeError: backend down"
    assert (summary["kept"], summary["dropped_tool_errors"]) == (32, 8)
    assert all("Tool error" not in line for line in kept)


def test_generate_keeps_them_when_asked(tmp_path):
    opts = options(tmp_path, keep="all", keep_tool_errors=True)
    summary = run(opts, tool=tool(), generate=True)
    assert (summary["kept"], summary["dropped_tool_errors"]) == (40, 0)


def test_episodes_that_fail_are_counted_and_exit_3(tmp_path):
    # the server knows no answer for questions 1, 3, 5, ...: those calls fail (HTTP 400)
    def half(request) -> str | None:
        tail = request.text.rsplit("\n\n", 1)[-1]
        number = int(tail.split()[2].removeprefix("answer"))
        return teacher(request) if number % 2 == 0 else None

    with OpenAIServer(half) as server:
        result = run_cli("run", *cli_args(server.base_url, tmp_path / "run", "--llm-retries", "0"))
    assert result.returncode == 3, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(
        "error: 8 of 16 episodes failed: LLMError: openai:gpt-4 failed: HTTP 400"
    )
    assert line.endswith("; rerun with --resume to retry them")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert (summary["errors"], summary["done"]) == (8, 16)
    assert summary["first_error"].startswith("LLMError: openai:gpt-4 failed: HTTP 400")


def test_sigterm_saves_says_how_to_resume_and_exits_143(tmp_path):
    out = tmp_path / "run"
    with OpenAIServer(teacher, latency=0.25) as server:
        proc = start_slow_run(server.base_url, out)
        wait_for_lines(out / "episodes.jsonl", 3)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 143, stderr
        assert stderr.strip().splitlines()[-1] == (
            "terminated: finished work is saved; rerun with --resume to continue"
        )
        assert "Traceback" not in stderr
        resumed = run_cli("run", *cli_args(server.base_url, out, "--resume"))
    assert resumed.returncode == 0, resumed.stderr
    ids = [r["id"] for r in records(out)]
    assert len(ids) == 16 and len(set(ids)) == 16


@pytest.fixture
def torn_run(tmp_path) -> Path:
    """A finished run whose last line was cut by a kill in the middle of its write."""
    run(options(tmp_path, n=4), tool=tool())
    path = tmp_path / "out" / "episodes.jsonl"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])
    return tmp_path / "out"


@pytest.mark.parametrize(
    "command",
    [
        ["score", "{run}/episodes.jsonl"],
        ["view", "{run}", "--out", "{tmp}/v.html"],
        ["convert", "{run}", "--out", "{tmp}/c.json"],
        ["report", "{run}", "--out", "{tmp}/rep"],
    ],
    ids=["score", "view", "convert", "report"],
)
def test_readers_name_a_torn_last_line_and_point_to_resume(torn_run, command):
    args = [a.format(run=torn_run, tmp=torn_run.parent) for a in command]
    result = run_cli(*args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        f"error: {torn_run / 'episodes.jsonl'}:4: the last line is cut short (the run was killed "
        "while writing it); rerun that run with --resume to finish it, which also repairs the file"
    )


def test_a_proxy_answering_html_is_one_line_naming_the_endpoint(tmp_path):
    from aiohttp import web

    async def html(request: web.Request) -> web.Response:
        return web.Response(
            text="<html><body>Sign in to the proxy</body></html>", content_type="text/html"
        )

    class HtmlProxy(OpenAIServer):
        def routes(self) -> list[web.RouteDef]:
            return [web.get("/v1/models", self._models), web.post("/v1/chat/completions", html)]

    with HtmlProxy() as proxy:
        result = run_cli("run", *cli_args(proxy.base_url, tmp_path / "run", "--llm-retries", "0"))
    assert result.returncode == 3
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: 16 of 16 episodes failed: LLMError: {proxy.base_url}/chat/completions answered "
        "200 without a completion: '<html><body>Sign in to the proxy</body></html>'; rerun with "
        "--resume to retry them"
    )
    assert "Traceback" not in result.stderr

"""What the search tools share: one sentence splitter and one "not found" text for the local
index and Wikipedia (`fireact.tools.text`), and one HTTP GET with its error type, retries and
key redaction for SerpAPI and Wikipedia (`fireact.tools.http`). Offline: 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import json
import traceback
from pathlib import Path

import httpx
import pytest

from fireact.tools import local_index, wikipedia
from fireact.tools.base import ToolState
from fireact.tools.http import ToolHTTPError, get, retryable_status
from fireact.tools.local import LocalSearch
from fireact.tools.serpapi import SerpAPIError, SerpAPISearch
from fireact.tools.text import not_found, split_sentences
from fireact.tools.wikipedia import WikipediaError, WikipediaSearch
from tests.helpers.httpserver import Reply, serve

ARMY = "He served in the U.S. Army in 1944. Then he went home."


def test_us_army_stays_one_sentence_in_both_tools() -> None:
    expected = ["He served in the U.S. Army in 1944.", "Then he went home."]
    assert split_sentences(ARMY) == expected
    assert local_index.split_sentences(ARMY) == expected  # the index's JSONL "text"
    assert wikipedia.split_sentences(f"== Life ==\n{ARMY}\n") == expected  # a page, by line


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("Born c. 1500 in Rome. He died.", ["Born c. 1500 in Rome.", "He died."]),
        ("Rostker v. Goldberg was decided.", ["Rostker v. Goldberg was decided."]),
        ("He joined Apple Inc. It grew.", ["He joined Apple Inc.", "It grew."]),
        ("Powell Jr. State Office Building.", ["Powell Jr. State Office Building."]),
        ("It is No. 1 there. Yes.", ["It is No. 1 there.", "Yes."]),
        ("Made in the U.S.\nNext line.", ["Made in the U.S. Next line."]),  # one paragraph
    ],
)
def test_abbreviations_end_a_sentence_only_before_an_opening_word(
    text: str, sentences: list[str]
) -> None:
    assert split_sentences(text) == sentences


def test_both_tools_answer_not_found_alike(tmp_path: Path) -> None:
    source = tmp_path / "p.jsonl"
    source.write_text(json.dumps({"title": "Alpha", "text": "Alpha is a letter."}) + "\n")
    local_index.build_index([source], tmp_path / "ix")
    answer = LocalSearch(tmp_path / "ix").call("search", "zzqx", ToolState())
    assert answer == not_found("zzqx", []) == "Could not find [zzqx]. Similar: []."
    assert wikipedia.not_found is not_found
    assert not_found("X", [f"T{i}" for i in range(9)]).endswith("'T3', 'T4'].")  # 5 at most


def test_tool_errors_are_one_type() -> None:
    assert issubclass(SerpAPIError, ToolHTTPError) and issubclass(WikipediaError, ToolHTTPError)
    assert [retryable_status(s) for s in (200, 404, 429, 500, 503)] == [
        False,
        False,
        True,
        True,
        True,
    ]


def _get(url: str, *, retries: int, secret: str = "") -> object:
    async def go() -> object:
        async with httpx.AsyncClient(timeout=2.0) as client:
            return await get(
                client,
                url,
                {"q": "x", "api_key": secret},
                _decode,
                service="Svc",
                what="query 'x'",
                timeout=2.0,
                secret=secret,
                retries=retries,
                backoff_s=0.001,
            )

    return asyncio.run(go())


def _decode(reply: httpx.Response) -> object:
    status = reply.status_code
    if status != 200:
        raise ToolHTTPError(f"HTTP {status}", status=status, retryable=retryable_status(status))
    return reply.json()


def test_get_retries_retryable_failures_with_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    replies = [Reply(status=503, body={}), Reply(status=429, body={}), Reply(body={"ok": 1})]
    with serve(lambda path, q: replies.pop(0)) as server:
        answer = _get(server.url, retries=3)
    assert answer == {"ok": 1} and len(server.requests) == 3
    assert slept == [0.001, 0.002]  # doubled each time


def test_get_gives_up_and_never_retries_a_final_answer() -> None:
    with (
        serve(lambda path, q: Reply(status=500, body={})) as server,
        pytest.raises(ToolHTTPError, match="HTTP 500") as info,
    ):
        _get(server.url, retries=2)
    assert len(server.requests) == 3 and info.value.status == 500
    with (
        serve(lambda path, q: Reply(status=404, body={})) as server,
        pytest.raises(ToolHTTPError, match="HTTP 404"),
    ):
        _get(server.url, retries=2)
    assert len(server.requests) == 1


def test_get_connection_failure_is_retryable_and_hides_the_key() -> None:
    with serve(lambda path, q: Reply(body={})) as server:
        url = server.url  # nothing listens there once the block is left
    key = "serp-SECRET-123456"
    with pytest.raises(ToolHTTPError) as info:
        _get(url, retries=0, secret=key)
    assert info.value.retryable and "Svc request failed for query 'x'" in str(info.value)
    assert key not in "".join(traceback.format_exception(info.value))


def test_tools_pass_their_retries_on() -> None:
    calls: list[str] = []

    def flaky(path: str, query: dict[str, str]) -> Reply:
        calls.append(path)
        if len(calls) == 1:
            return Reply(status=503, body="busy", content_type="text/plain")
        return Reply(body={"organic_results": [{"snippet": "found"}]})

    with serve(flaky) as server:
        tool = SerpAPISearch(api_key="k", base_url=server.url, retries=1)

        async def go() -> str:
            try:
                return await tool("search", "q", ToolState())
            finally:
                await tool.aclose()

        assert asyncio.run(go()) == "found"
    assert len(calls) == 2
    assert WikipediaSearch(retries=2).retries == 2 and WikipediaSearch().retries == 0

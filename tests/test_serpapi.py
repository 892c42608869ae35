"""SerpAPI search: observation extraction on each branch, requests and failures against a local
server. Offline: the server runs on 127.0.0.1 and answers with saved responses."""

from __future__ import annotations

import asyncio
import logging
import traceback

import pytest

from fireact.errors import FireactError
from fireact.tools.base import Tool, ToolState
from fireact.tools.serpapi import SerpAPIError, SerpAPISearch, extract_observation
from tests.helpers.httpserver import Reply, fixture, serve

KEY = "sk-test-SECRET-0123456789abcdef"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("serpapi_answer.json", "Paris"),
        (
            "serpapi_snippet.json",
            "Hamlet is a tragedy written by William Shakespeare sometime between 1599 and 1601.",
        ),
        ("serpapi_highlighted.json", "Mount Everest"),
        ("serpapi_organic.json", "First organic snippet."),
        ("serpapi_no_results.json", "None"),
    ],
)
def test_extract_observation_saved_responses(name: str, expected: str) -> None:
    assert extract_observation(fixture(name)) == expected


def test_extract_observation_edge_cases() -> None:
    assert extract_observation({}) == "None"
    assert extract_observation({"organic_results": []}) == "None"
    assert extract_observation({"organic_results": [{"title": "no snippet"}]}) == "None"
    assert extract_observation({"answer_box": {"answer": ""}, "organic_results": []}) == "None"
    box = {"answer": "", "snippet": "s", "snippet_highlighted_words": ["w"]}
    assert extract_observation({"answer_box": box}) == "s"
    assert extract_observation({"answer_box": {"snippet_highlighted_words": []}}) == "None"
    assert extract_observation({"answer_box": {"answer": 1969}}) == "1969"
    only_box_title = {"answer_box": {"title": "t"}, "organic_results": [{"snippet": "o"}]}
    assert extract_observation(only_box_title) == "o"


def test_missing_key_is_a_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SERPAPI_API_KEY", raising=False)
    with pytest.raises(FireactError, match="SERPAPI_API_KEY is not set"):
        SerpAPISearch()
    monkeypatch.setenv("SERPAPI_API_KEY", KEY)
    tool = SerpAPISearch()
    assert isinstance(tool, Tool)
    assert tool.name == "serpapi" and tool.actions == frozenset({"search"})
    assert KEY not in repr(tool)


def _run(tool: SerpAPISearch, query: str) -> str:
    async def go() -> str:
        try:
            return await tool("search", query, ToolState())
        finally:
            await tool.aclose()

    return asyncio.run(go())


def test_search_sends_google_params_and_extracts() -> None:
    with serve(lambda path, q: Reply(body=fixture("serpapi_answer.json"))) as server:
        tool = SerpAPISearch(api_key=KEY, base_url=server.url + "/search.json")
        assert _run(tool, "capital of france") == "Paris"
    (request,) = server.requests
    assert request.path == "/search.json"
    assert request.query == {
        "engine": "google",
        "q": "capital of france",
        "api_key": KEY,
        "google_domain": "google.com",
        "hl": "en",
        "gl": "us",
    }


def test_no_results_is_an_observation_not_an_error() -> None:
    with serve(lambda path, q: Reply(body=fixture("serpapi_no_results.json"))) as server:
        assert _run(SerpAPISearch(api_key=KEY, base_url=server.url), "zzqqxxnothing") == "None"


def _failure(reply: Reply, timeout: float = 5.0) -> BaseException:
    with serve(lambda path, q: reply) as server:
        tool = SerpAPISearch(api_key=KEY, base_url=server.url, timeout=timeout)
        with pytest.raises((SerpAPIError, FireactError)) as info:
            _run(tool, "some query")
    return info.value


def _assert_key_hidden(exc: BaseException) -> None:
    text = "".join(traceback.format_exception(exc))
    assert KEY not in text
    assert KEY not in repr(exc)


def test_invalid_key_is_readable_and_hides_key() -> None:
    exc = _failure(Reply(status=401, body=fixture("serpapi_invalid_key.json")))
    assert isinstance(exc, FireactError)
    assert "Invalid API key" in str(exc) and "SERPAPI_API_KEY" in str(exc)
    _assert_key_hidden(exc)


def test_error_field_echoing_key_is_redacted() -> None:
    exc = _failure(Reply(status=429, body={"error": f"Rate limit for key {KEY} exceeded."}))
    assert isinstance(exc, SerpAPIError) and exc.retryable and exc.status == 429
    assert "Rate limit" in str(exc)
    _assert_key_hidden(exc)


def test_non_json_body_is_readable() -> None:
    html = f"<html><body>502 Bad Gateway {KEY}</body></html>"
    exc = _failure(Reply(status=502, body=html, content_type="text/html"))
    assert isinstance(exc, SerpAPIError) and exc.retryable
    assert "non-JSON" in str(exc) and "HTTP 502" in str(exc)
    _assert_key_hidden(exc)


def test_http_error_without_error_field() -> None:
    exc = _failure(Reply(status=500, body={"status": "oops"}))
    assert isinstance(exc, SerpAPIError) and "HTTP 500" in str(exc)
    _assert_key_hidden(exc)


def test_timeout_is_retryable_and_hides_key() -> None:
    exc = _failure(Reply(body=fixture("serpapi_answer.json"), delay=2.0), timeout=0.2)
    assert isinstance(exc, SerpAPIError) and exc.retryable and "timed out" in str(exc)
    _assert_key_hidden(exc)


def test_connection_refused_hides_key() -> None:
    with serve(lambda path, q: Reply(body={})) as server:
        url = server.url  # closed after the block: nothing listens there any more
    tool = SerpAPISearch(api_key=KEY, base_url=url, timeout=2.0)
    with pytest.raises(SerpAPIError) as info:
        _run(tool, "q")
    assert info.value.retryable
    _assert_key_hidden(info.value)


def test_httpx_request_log_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with serve(lambda path, q: Reply(body=fixture("serpapi_organic.json"))) as server:
        assert _run(SerpAPISearch(api_key=KEY, base_url=server.url), "x") == (
            "First organic snippet."
        )
    assert "HTTP Request" in caplog.text  # httpx did log the request ...
    assert KEY not in caplog.text  # ... without the key
    assert "api_key=***" in caplog.text

"""Wikipedia tool: request building, parsing of saved MediaWiki replies, and ReAct's
search/lookup semantics against a local 127.0.0.1 server (never the real Wikipedia)."""

from __future__ import annotations

import asyncio

import pytest

from fireact.tools.base import Tool, ToolState
from fireact.tools.wikipedia import (
    WikipediaError,
    WikipediaSearch,
    not_found,
    page_params,
    parse_page,
    parse_search,
    search_params,
    split_sentences,
)
from tests.helpers.httpserver import Reply, fixture, serve

PAGES = {
    "Adam Clayton Powell (documentary)": "wiki_page_redirect.json",
    "Adam Clayton Powell (film)": "wiki_page_redirect.json",
    "Adam Clayton Powell": "wiki_page_missing.json",
    "adam clayton powell (FILM)": "wiki_page_missing.json",
    "Mercury": "wiki_page_disambiguation.json",
    "Zzqx": "wiki_page_missing.json",
    "Lagged": "wiki_error_maxlag.json",
}
SEARCHES = {
    "Adam Clayton Powell": "wiki_search_adam.json",
    "adam clayton powell (FILM)": "wiki_search_case.json",
    "Mercury": "wiki_search_mercury.json",
    "Zzqx": "wiki_search_empty.json",
}

FIRST_FIVE = (
    "Adam Clayton Powell is a 1989 American documentary film directed by Richard Kilberg. "
    "The film is about the rise and fall of influential African-American politician Adam "
    "Clayton Powell Jr. It was later aired as part of the PBS series The American Experience. "
    "The film was nominated for the Academy Award for Best Documentary Feature. "
    "Kilberg spent three years gathering archival footage."
)


def fake_wiki(path: str, query: dict[str, str]) -> Reply:
    if query.get("list") == "search":
        return Reply(body=fixture(SEARCHES[query["srsearch"]]))
    return Reply(body=fixture(PAGES[query["titles"]]))


def run_actions(actions: list[tuple[str, str]], base_url: str) -> tuple[list[str], ToolState]:
    tool = WikipediaSearch(base_url=base_url, timeout=5.0)
    state = ToolState(episode_id="e1")

    async def go() -> list[str]:
        try:
            return [await tool(action, arg, state) for action, arg in actions]
        finally:
            await tool.aclose()

    return asyncio.run(go()), state


# --- pure functions -----------------------------------------------------------------------


def test_request_building() -> None:
    assert page_params("Adam Clayton Powell") == {
        "action": "query",
        "prop": "extracts|pageprops",
        "ppprop": "disambiguation",
        "explaintext": "1",
        "exsectionformat": "wiki",
        "redirects": "1",
        "titles": "Adam Clayton Powell",
        "format": "json",
        "formatversion": "2",
    }
    params = search_params("Adam Clayton Powell")
    assert params["list"] == "search" and params["srsearch"] == "Adam Clayton Powell"
    assert params["srlimit"] == "5" and params["format"] == "json"


def test_parse_page_shapes() -> None:
    page = parse_page(fixture("wiki_page_redirect.json"))
    assert page is not None and page.title == "Adam Clayton Powell (film)"
    assert not page.disambiguation and page.text.startswith("Adam Clayton Powell is a 1989")
    assert parse_page(fixture("wiki_page_v1.json")) == page  # old formatversion=1 shape
    assert parse_page(fixture("wiki_page_missing.json")) is None
    assert parse_page(fixture("wiki_page_missing_v1.json")) is None
    assert parse_page(fixture("wiki_page_invalid.json")) is None
    assert parse_page({"batchcomplete": True}) is None
    mercury = parse_page(fixture("wiki_page_disambiguation.json"))
    assert mercury is not None and mercury.disambiguation
    text_only = {"query": {"pages": [{"title": "X", "extract": "X may refer to:\nX (a)"}]}}
    assert parse_page(text_only).disambiguation  # type: ignore[union-attr]


def test_parse_search_and_errors() -> None:
    assert parse_search(fixture("wiki_search_adam.json"))[:2] == [
        "Adam Clayton Powell III",
        "Seventh Avenue (Manhattan)",
    ]
    assert parse_search(fixture("wiki_search_empty.json")) == []
    with pytest.raises(WikipediaError, match="maxlag") as info:
        parse_search(fixture("wiki_error_maxlag.json"))
    assert info.value.retryable


def test_split_sentences_drops_headings_and_blank_lines() -> None:
    page = parse_page(fixture("wiki_page_redirect.json"))
    assert page is not None
    sentences = split_sentences(page.text)
    assert not any(s.startswith("=") for s in sentences)
    assert "" not in sentences
    assert sentences[0] == (
        "Adam Clayton Powell is a 1989 American documentary film directed by Richard Kilberg."
    )
    assert sentences[-1] == "Adam Clayton Powell at IMDb"
    assert len(sentences) == 9
    assert split_sentences('A b e.g. the c. Then 3.5 m! Why? "Quoted." Next.') == [
        "A b e.g. the c.",
        "Then 3.5 m!",
        "Why?",
        '"Quoted."',
        "Next.",
    ]
    assert split_sentences(page.text) == sentences  # deterministic


def test_not_found_is_reacts_text() -> None:
    assert not_found("Adam Clayton Powell", ["A", "B's"]) == (
        "Could not find [Adam Clayton Powell]. Similar: ['A', \"B's\"]."
    )


# --- against the local server -------------------------------------------------------------


def test_search_opens_page_following_redirect_then_lookup() -> None:
    with serve(fake_wiki) as server:
        observations, state = run_actions(
            [
                ("search", "Adam Clayton Powell (documentary)"),
                ("lookup", "Kilberg"),
                ("lookup", "Kilberg"),
                ("lookup", "Kilberg"),
                ("lookup", "Kilberg"),
            ],
            server.url + "/w/api.php",
        )
    assert observations[0] == FIRST_FIVE
    assert observations[1] == (
        "(Result 1 / 3) Adam Clayton Powell is a 1989 American documentary film directed by "
        "Richard Kilberg."
    )
    assert observations[2] == "(Result 2 / 3) Kilberg spent three years gathering archival footage."
    assert (
        observations[3] == "(Result 3 / 3) The narration was written by Kilberg and Yvonne Smith."
    )
    assert observations[4] == "No more results."
    assert state.page is not None and len(state.page) == 9
    (request,) = server.requests
    assert request.path == "/w/api.php"
    assert request.query == page_params("Adam Clayton Powell (documentary)")
    assert request.headers["User-Agent"].startswith("fireact/")


def test_missing_page_lists_similar_and_keeps_open_page() -> None:
    with serve(fake_wiki) as server:
        observations, state = run_actions(
            [("search", "Adam Clayton Powell (film)"), ("search", "Adam Clayton Powell")],
            server.url,
        )
    assert observations[1] == (
        "Could not find [Adam Clayton Powell]. Similar: ['Adam Clayton Powell III', "
        "'Seventh Avenue (Manhattan)', 'Adam Clayton Powell Jr. State Office Building', "
        "'Isabel Washington Powell', 'Adam Powell']."
    )
    assert state.page is not None and state.page[0].startswith("Adam Clayton Powell is")
    assert [r.query.get("list", "page") for r in server.requests] == ["page", "page", "search"]
    assert server.requests[2].query == search_params("Adam Clayton Powell")


def test_case_insensitive_title_opens_like_the_search_box() -> None:
    with serve(fake_wiki) as server:
        observations, _ = run_actions([("search", " adam clayton powell (FILM) ")], server.url)
    assert observations == [FIRST_FIVE]
    assert [r.query.get("titles") or r.query["srsearch"] for r in server.requests] == [
        "adam clayton powell (FILM)",
        "adam clayton powell (FILM)",
        "Adam Clayton Powell (film)",
    ]


def test_disambiguation_answers_with_similar_titles() -> None:
    with serve(fake_wiki) as server:
        observations, state = run_actions([("search", "Mercury")], server.url)
    assert observations == [
        "Could not find [Mercury]. Similar: ['Mercury (planet)', 'Mercury (element)', "
        "'Freddie Mercury', 'Mercury (mythology)', 'Mercury program']."
    ]
    assert state.page is None


def test_no_similar_titles_and_empty_entity() -> None:
    with serve(fake_wiki) as server:
        observations, _ = run_actions([("search", "Zzqx"), ("search", "  ")], server.url)
    assert observations == [
        "Could not find [Zzqx]. Similar: [].",
        "Could not find []. Similar: [].",
    ]
    assert len(server.requests) == 2  # the empty entity asked nothing


def test_lookup_without_page() -> None:
    observations, _ = run_actions([("lookup", "anything")], "http://127.0.0.1:9/unused")
    assert observations == ["No more results."]


def test_api_and_http_errors_are_readable() -> None:
    def broken(path: str, query: dict[str, str]) -> Reply:
        if query.get("titles") == "Html":
            return Reply(status=200, body="<html>maintenance</html>", content_type="text/html")
        if query.get("titles") == "Down":
            return Reply(status=503, body="Service Unavailable", content_type="text/plain")
        return fake_wiki(path, query)

    with serve(broken) as server:
        for title, pattern in [("Lagged", "maxlag"), ("Html", "non-JSON"), ("Down", "HTTP 503")]:
            with pytest.raises(WikipediaError, match=pattern):
                run_actions([("search", title)], server.url)


def test_is_a_tool() -> None:
    tool = WikipediaSearch()
    assert isinstance(tool, Tool)
    assert tool.name == "wikipedia" and tool.actions == frozenset({"search", "lookup"})

"""ReAct's Wikipedia tool over the live MediaWiki API: ``search[entity]`` and ``lookup[keyword]``.

This module owns the MediaWiki requests (`page_params`, `search_params`), the parsing of their
JSON replies (`parse_page`, `parse_search`) and the page-to-sentences split (`split_sentences`:
paragraphs and headings here, sentences by `fireact.tools.text.split_sentences`). The requests
go through `fireact.tools.http.get`; the "not found" text is `fireact.tools.text.not_found`;
lookup itself is `fireact.tools.base.lookup`.

Semantics, following ReAct's ``wikienv.py``:

- ``search[entity]`` opens the page titled ``entity`` (redirects followed) and returns its first
  5 sentences; the page's sentences become the episode's page for ``lookup``.
- When no page has that title, the full-text search's top 5 titles are returned as
  ``Could not find [entity]. Similar: ['T1', 'T2', ...].`` and the open page is left as it
  was. ReAct went through Wikipedia's search box, which jumps to a title that differs only in
  case; we do the same when a search hit equals the entity case-insensitively.
- A disambiguation page ("X may refer to:") is answered like a missing page, with the similar
  titles, which is what ReAct's re-search of ``[entity]`` produced.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import httpx

from fireact import __version__
from fireact.tools.base import ToolState, lookup, open_page
from fireact.tools.http import ToolHTTPError, WebTool, retryable_status
from fireact.tools.text import not_found as not_found  # re-exported: ReAct's text
from fireact.tools.text import split_sentences as split_paragraph

DEFAULT_URL = "https://en.wikipedia.org/w/api.php"
USER_AGENT = (
    f"fireact/{__version__} (ReAct-style Wikipedia search for language-agent research; "
    f"python-httpx/{httpx.__version__})"
)

_HEADING = re.compile(r"^=+[^=].*?=+$")


class WikipediaError(ToolHTTPError):
    """A MediaWiki API call failed. `retryable` says whether trying again later may help."""


@dataclass(frozen=True)
class Page:
    """A page the API returned: its (post-redirect) title and plain text."""

    title: str
    text: str
    disambiguation: bool = False


def page_params(title: str) -> dict[str, str]:
    """Query parameters fetching one page's plain text, following redirects."""
    return {
        "action": "query",
        "prop": "extracts|pageprops",
        "ppprop": "disambiguation",
        "explaintext": "1",
        "exsectionformat": "wiki",
        "redirects": "1",
        "titles": title,
        "format": "json",
        "formatversion": "2",
    }


def search_params(query: str, limit: int = 5) -> dict[str, str]:
    """Query parameters of a full-text search for the titles most similar to ``query``."""
    return {
        "action": "query",
        "list": "search",
        "srsearch": query,
        "srlimit": str(limit),
        "srprop": "",
        "format": "json",
        "formatversion": "2",
    }


def _check_api_error(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise WikipediaError("MediaWiki API returned JSON that is not an object")
    error = data.get("error")
    if isinstance(error, dict):
        code = error.get("code", "unknown")
        raise WikipediaError(
            f"MediaWiki API error {code}: {error.get('info', '')}".strip(),
            retryable=code in ("maxlag", "ratelimited", "readonly", "internal_api_error"),
        )
    return data


def parse_page(data: Any) -> Page | None:
    """The page in a ``prop=extracts`` reply, or None when it is missing or the title invalid.

    Accepts both the ``formatversion=2`` shape (``pages`` is a list) and the older one (a dict
    keyed by page id, ``-1`` for a missing page).
    """
    pages = _check_api_error(data).get("query", {}).get("pages", [])
    if isinstance(pages, dict):
        pages = list(pages.values())
    if not pages:
        return None
    page = pages[0]
    if "missing" in page or "invalid" in page:
        return None
    text = page.get("extract") or ""
    props = page.get("pageprops") or {}
    first = next((line for line in text.splitlines() if line.strip()), "")
    disambiguation = "disambiguation" in props or first.rstrip().endswith("may refer to:")
    return Page(title=page.get("title", ""), text=text, disambiguation=disambiguation)


def parse_search(data: Any) -> list[str]:
    """The result titles of a ``list=search`` reply, best first."""
    hits = _check_api_error(data).get("query", {}).get("search", [])
    return [hit["title"] for hit in hits if isinstance(hit, dict) and "title" in hit]


def split_sentences(text: str) -> list[str]:
    """Split plain page text into sentences: one paragraph per line, empty lines and
    ``== Section ==`` headings dropped, then each paragraph split by
    `fireact.tools.text.split_sentences` (which keeps "U.S. Army" or "J. R. R. Tolkien" whole)."""
    sentences: list[str] = []
    for line in text.splitlines():
        paragraph = line.strip()
        if paragraph and not _HEADING.match(paragraph):
            sentences += split_paragraph(paragraph)
    return sentences


def _decode(reply: httpx.Response, what: str) -> Any:
    """The JSON of a 200 reply; any other status or a body that is not JSON: `WikipediaError`."""
    status = reply.status_code
    if status != 200:
        raise WikipediaError(
            f"Wikipedia returned HTTP {status} for {what}",
            status=status,
            retryable=retryable_status(status),
        )
    try:
        return json.loads(reply.content)
    except ValueError:
        raise WikipediaError(
            f"Wikipedia returned a non-JSON body for {what}: {reply.text[:120]!r}"
        ) from None


class WikipediaSearch(WebTool):
    """ReAct's ``search[entity]`` / ``lookup[keyword]`` over the MediaWiki API."""

    name = "wikipedia"
    actions = frozenset({"search", "lookup"})

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        timeout: float = 30.0,
        user_agent: str = USER_AGENT,
        retries: int = 0,
    ) -> None:
        headers = {"User-Agent": user_agent}
        super().__init__(base_url, timeout=timeout, retries=retries, headers=headers)
        self.user_agent = user_agent

    async def _get(self, params: dict[str, str]) -> Any:
        what = repr(params.get("titles") or params.get("srsearch"))
        return await self._fetch(
            params,
            lambda reply: _decode(reply, what),
            service="Wikipedia",
            what=what,
            error=WikipediaError,
        )

    async def fetch_page(self, title: str) -> Page | None:
        """The page titled ``title`` (after redirects), or None when there is none."""
        return parse_page(await self._get(page_params(title)))

    async def similar_titles(self, query: str, limit: int = 5) -> list[str]:
        """The titles a full-text search ranks best for ``query``."""
        return parse_search(await self._get(search_params(query, limit)))

    async def search(self, entity: str, state: ToolState) -> str:
        """ReAct's ``search[entity]`` (see the module docstring)."""
        entity = entity.strip()
        if not entity:
            return not_found(entity, [])
        page = await self.fetch_page(entity)
        if page is not None and not page.disambiguation:
            return open_page(state, split_sentences(page.text))
        similar = await self.similar_titles(entity)
        if page is None:  # Wikipedia's search box jumps to a title differing only in case
            same = next((t for t in similar if t.casefold() == entity.casefold()), None)
            if same is not None and same != entity:
                page = await self.fetch_page(same)
                if page is not None and not page.disambiguation:
                    return open_page(state, split_sentences(page.text))
        return not_found(entity, similar)

    async def __call__(self, action: str, argument: str, state: ToolState) -> str:
        if action == "search":
            return await self.search(argument, state)
        if action == "lookup":
            return lookup(state, argument)
        raise ValueError(f"wikipedia answers search[...] and lookup[...], not {action}[...]")

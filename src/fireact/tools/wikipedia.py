"""ReAct's Wikipedia tool over the live MediaWiki API: ``search[entity]`` and ``lookup[keyword]``.

This module owns the MediaWiki requests (`page_params`, `search_params`), the parsing of their
JSON replies (`parse_page`, `parse_search`), the page-to-sentences split (`split_sentences`)
and the ReAct observation texts. Lookup itself is `fireact.tools.base.lookup`.

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

DEFAULT_URL = "https://en.wikipedia.org/w/api.php"
USER_AGENT = (
    f"fireact/{__version__} (ReAct-style Wikipedia search for language-agent research; "
    f"python-httpx/{httpx.__version__})"
)

_HEADING = re.compile(r"^=+[^=].*?=+$")
# A sentence ends at . ! or ? (optionally closed by a quote or bracket) followed by whitespace
# and something that can start a sentence; "e.g. the" and "3.5 m" stay whole.
_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+(?=[A-Z0-9\"'(\[])")


class WikipediaError(RuntimeError):
    """A MediaWiki API call failed. `retryable` says whether trying again later may help."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False):
        super().__init__(message)
        self.status = status
        self.retryable = retryable


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
    ``== Section ==`` headings dropped, then each paragraph split after ``.``, ``!`` or ``?``
    followed by whitespace and a capital letter, digit, quote or bracket. Simple and
    deterministic (ReAct split on ``". "``); abbreviations like "U.S. Army" still split."""
    sentences: list[str] = []
    for line in text.splitlines():
        paragraph = line.strip()
        if not paragraph or _HEADING.match(paragraph):
            continue
        sentences += [s.strip() for s in _SENTENCE_END.split(paragraph) if s.strip()]
    return sentences


def not_found(entity: str, similar: list[str]) -> str:
    """ReAct's observation for an entity with no page of that title."""
    return f"Could not find [{entity}]. Similar: {similar[:5]}."


class WikipediaSearch:
    """ReAct's ``search[entity]`` / ``lookup[keyword]`` over the MediaWiki API."""

    name = "wikipedia"
    actions = frozenset({"search", "lookup"})

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        timeout: float = 30.0,
        user_agent: str = USER_AGENT,
    ) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.user_agent = user_agent
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.timeout, headers={"User-Agent": self.user_agent}
            )
        return self._client

    async def _get(self, params: dict[str, str]) -> Any:
        what = params.get("titles") or params.get("srsearch")
        try:
            reply = await self._http().get(self.base_url, params=params)
        except httpx.TimeoutException:
            raise WikipediaError(
                f"Wikipedia timed out after {self.timeout:g}s for {what!r}", retryable=True
            ) from None
        except httpx.HTTPError as exc:
            raise WikipediaError(
                f"Wikipedia request failed for {what!r}: {exc or type(exc).__name__}",
                retryable=True,
            ) from None
        status = reply.status_code
        if status != 200:
            raise WikipediaError(
                f"Wikipedia returned HTTP {status} for {what!r}",
                status=status,
                retryable=status >= 500 or status == 429,
            )
        try:
            return json.loads(reply.content)
        except ValueError:
            raise WikipediaError(
                f"Wikipedia returned a non-JSON body for {what!r}: {reply.text[:120]!r}"
            ) from None

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

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

"""FireAct's ``search`` tool: Google through SerpAPI.

This module owns the SerpAPI request (Google engine, en/us), the reduction of a SerpAPI response
to one observation string in FireAct's order of preference (`extract_observation`), and the
translation of SerpAPI's answers into readable exceptions (`SerpAPIError`, a
`fireact.tools.http.ToolHTTPError`). The request itself goes through `fireact.tools.http.get`
(no retries unless `retries` is given); caching is `fireact.tools.cache.CachedTool`'s.

The API key travels only in the request's query string. It never appears in an observation or
an exception message, and httpx's own request log lines are redacted (`fireact.tools.http`).
"""

from __future__ import annotations

import json
import os
from typing import Any

from fireact.errors import FireactError
from fireact.tools.base import ToolState
from fireact.tools.http import ToolHTTPError, WebTool, redact, retryable_status

DEFAULT_URL = "https://serpapi.com/search.json"
NO_RESULTS = "Google hasn't returned any results"  # SerpAPI's "error" for an empty result page


class SerpAPIError(ToolHTTPError):
    """A SerpAPI call failed. `retryable` says whether trying again later may help."""


def build_params(query: str, api_key: str, hl: str = "en", gl: str = "us") -> dict[str, str]:
    """The query parameters of one Google search through SerpAPI (as FireAct sends them)."""
    return {
        "engine": "google",
        "q": query,
        "api_key": api_key,
        "google_domain": "google.com",
        "hl": hl,
        "gl": gl,
    }


def _text(value: Any) -> str | None:
    """A non-empty observation from a response field, or None when the field is empty."""
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def extract_observation(response: dict[str, Any]) -> str:
    """FireAct's observation: the first present of answer_box.answer, answer_box.snippet,
    answer_box.snippet_highlighted_words[0], organic_results[0].snippet; else ``"None"``.

    FireAct tests key presence; we also skip empty values so a blank field falls through.
    """
    box = response.get("answer_box")
    if isinstance(box, dict):
        for key in ("answer", "snippet"):
            if text := _text(box.get(key)):
                return text
        words = box.get("snippet_highlighted_words")
        if isinstance(words, list) and words and (text := _text(words[0])):
            return text
    organic = response.get("organic_results")
    first = organic[0] if isinstance(organic, list) and organic else None
    if isinstance(first, dict) and (text := _text(first.get("snippet"))):
        return text
    return "None"


def parse_response(status: int, body: bytes, api_key: str, query: str) -> dict[str, Any]:
    """Decode a SerpAPI reply into its JSON object, or raise `SerpAPIError`/`FireactError`.

    An ``error`` field saying Google found nothing is an empty result, not a failure; a bad key
    (HTTP 401/403) is the user's to fix, so it is a `FireactError`.
    """
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        snippet = redact(body[:120].decode("utf-8", "replace"), api_key).replace("\n", " ")
        raise SerpAPIError(
            f"SerpAPI returned HTTP {status} with a non-JSON body for query {query!r}: {snippet!r}",
            status=status,
            retryable=retryable_status(status),
        )
    error = data.get("error")
    if error and not (status == 200 and NO_RESULTS in str(error)):
        message = redact(str(error), api_key)
        if status in (401, 403) or "api key" in message.lower():
            raise FireactError(
                f"SerpAPI rejected the API key (HTTP {status}: {message}): "
                "check SERPAPI_API_KEY or use --tool local"
            )
        raise SerpAPIError(
            f"SerpAPI error (HTTP {status}) for query {query!r}: {message}",
            status=status,
            retryable=retryable_status(status),
        )
    if status != 200:
        raise SerpAPIError(
            f"SerpAPI returned HTTP {status} for query {query!r}",
            status=status,
            retryable=retryable_status(status),
        )
    return data


class SerpAPISearch(WebTool):
    """``search[query]`` → the FireAct observation of a Google search through SerpAPI."""

    name = "serpapi"
    actions = frozenset({"search"})

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 30.0,
        hl: str = "en",
        gl: str = "us",
        retries: int = 0,
    ) -> None:
        key = api_key or os.environ.get("SERPAPI_API_KEY", "")
        if not key.strip():
            raise FireactError(
                "SERPAPI_API_KEY is not set: export your SerpAPI key or use --tool local"
            )
        self._api_key = key.strip()
        # $SERPAPI_BASE_URL: a proxy or a compatible service (and the contract-faithful fake)
        url = base_url or os.environ.get("SERPAPI_BASE_URL") or DEFAULT_URL
        super().__init__(url, timeout=timeout, retries=retries)
        self.hl, self.gl = hl, gl

    def __repr__(self) -> str:  # never show the key
        return f"SerpAPISearch(base_url={self.base_url!r}, timeout={self.timeout})"

    async def search(self, query: str) -> dict[str, Any]:
        """The decoded SerpAPI response for one query."""
        return await self._fetch(
            build_params(query, self._api_key, self.hl, self.gl),
            lambda reply: parse_response(reply.status_code, reply.content, self._api_key, query),
            service="SerpAPI",
            what=f"query {query!r}",
            error=SerpAPIError,
            secret=self._api_key,
        )

    async def __call__(self, action: str, argument: str, state: ToolState) -> str:
        if action != "search":
            raise ValueError(f"serpapi answers only search[...], not {action}[...]")
        return extract_observation(await self.search(argument))

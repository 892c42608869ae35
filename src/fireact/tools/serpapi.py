"""FireAct's ``search`` tool: Google through SerpAPI.

This module owns the SerpAPI request (Google engine, en/us), the reduction of a SerpAPI response
to one observation string in FireAct's order of preference (`extract_observation`), and the
translation of HTTP failures into readable exceptions. It does not retry or cache: retries are
the caller's business and caching is `fireact.tools.cache.CachedTool`'s.

The API key travels only in the request's query string. It never appears in an observation or
an exception message, and httpx's own request log lines are redacted (see `_RedactApiKey`).
"""

from __future__ import annotations

import json
import logging
import os
import re
from typing import Any

import httpx

from fireact.errors import FireactError
from fireact.tools.base import ToolState

DEFAULT_URL = "https://serpapi.com/search.json"
NO_RESULTS = "Google hasn't returned any results"  # SerpAPI's "error" for an empty result page


class SerpAPIError(RuntimeError):
    """A SerpAPI call failed. `retryable` says whether trying again later may help."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False):
        super().__init__(message)
        self.status = status
        self.retryable = retryable


class _RedactApiKey(logging.Filter):
    """Hide ``api_key=...`` in the request URLs that httpx logs at INFO level."""

    _pattern = re.compile(r"(api_key=)[^&\s\"']+")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        record.msg = self._pattern.sub(r"\1***", str(record.msg))
        return True


def _install_log_redaction() -> None:
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactApiKey) for f in logger.filters):
        logger.addFilter(_RedactApiKey())


_install_log_redaction()


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


def _redact(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text


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
        snippet = _redact(body[:120].decode("utf-8", "replace"), api_key).replace("\n", " ")
        raise SerpAPIError(
            f"SerpAPI returned HTTP {status} with a non-JSON body for query {query!r}: {snippet!r}",
            status=status,
            retryable=status >= 500 or status == 429,
        )
    error = data.get("error")
    if error and not (status == 200 and NO_RESULTS in str(error)):
        message = _redact(str(error), api_key)
        if status in (401, 403) or "api key" in message.lower():
            raise FireactError(
                f"SerpAPI rejected the API key (HTTP {status}: {message}): "
                "check SERPAPI_API_KEY or use --tool local"
            )
        raise SerpAPIError(
            f"SerpAPI error (HTTP {status}) for query {query!r}: {message}",
            status=status,
            retryable=status >= 500 or status == 429,
        )
    if status != 200:
        raise SerpAPIError(
            f"SerpAPI returned HTTP {status} for query {query!r}",
            status=status,
            retryable=status >= 500 or status == 429,
        )
    return data


class SerpAPISearch:
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
    ) -> None:
        key = api_key or os.environ.get("SERPAPI_API_KEY", "")
        if not key.strip():
            raise FireactError(
                "SERPAPI_API_KEY is not set: export your SerpAPI key or use --tool local"
            )
        self._api_key = key.strip()
        # $SERPAPI_BASE_URL: a proxy or a compatible service (and the contract-faithful fake)
        self.base_url = base_url or os.environ.get("SERPAPI_BASE_URL") or DEFAULT_URL
        self.timeout = timeout
        self.hl, self.gl = hl, gl
        self._client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:  # never show the key
        return f"SerpAPISearch(base_url={self.base_url!r}, timeout={self.timeout})"

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        return self._client

    async def search(self, query: str) -> dict[str, Any]:
        """The decoded SerpAPI response for one query."""
        params = build_params(query, self._api_key, self.hl, self.gl)
        try:
            reply = await self._http().get(self.base_url, params=params)
        except httpx.TimeoutException:
            raise SerpAPIError(
                f"SerpAPI timed out after {self.timeout:g}s for query {query!r}", retryable=True
            ) from None
        except httpx.HTTPError as exc:
            reason = _redact(str(exc) or type(exc).__name__, self._api_key)
            raise SerpAPIError(
                f"SerpAPI request failed for query {query!r}: {reason}", retryable=True
            ) from None
        return parse_response(reply.status_code, reply.content, self._api_key, query)

    async def __call__(self, action: str, argument: str, state: ToolState) -> str:
        if action != "search":
            raise ValueError(f"serpapi answers only search[...], not {action}[...]")
        return extract_observation(await self.search(argument))

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

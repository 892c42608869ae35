"""HTTP for the tools that call web services (SerpAPI, MediaWiki): one error type, one GET.

Owns `ToolHTTPError` (a failed call: its HTTP `status`, and whether trying again later may
help), which statuses are worth another try (`retryable_status`), `get` (one GET through the
tool's httpx client; a timeout or a failed connection becomes a retryable `ToolHTTPError`,
and retryable failures are tried again `retries` times with exponential backoff), `WebTool`
(what such a tool keeps: base URL, timeout, retries, one lazily opened client), and keeping
API keys out of text: `redact` for messages, and a filter on httpx's logger that masks
``api_key=...`` in the request lines it logs (installed on import).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import httpx

T = TypeVar("T")
MAX_BACKOFF_S = 30.0


class ToolHTTPError(RuntimeError):
    """A web service call failed. `retryable` says whether trying again later may help."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False):
        super().__init__(message)
        self.status = status
        self.retryable = retryable


def retryable_status(status: int) -> bool:
    """Whether an HTTP status is worth another try: 429 (rate limited) and any 5xx."""
    return status >= 500 or status == 429


def redact(text: str, secret: str | None) -> str:
    """`text` with every occurrence of `secret` replaced by ``***``."""
    return text.replace(secret, "***") if secret else text


class _RedactApiKey(logging.Filter):
    """Hide ``api_key=...`` in the request URLs that httpx logs at INFO level."""

    _pattern = re.compile(r"(api_key=)[^&\s\"']+")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        record.msg = self._pattern.sub(r"\1***", str(record.msg))
        return True


def install_log_redaction() -> None:
    """Mask ``api_key=...`` in httpx's log lines (idempotent)."""
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactApiKey) for f in logger.filters):
        logger.addFilter(_RedactApiKey())


install_log_redaction()


async def get(
    client: httpx.AsyncClient,
    url: str,
    params: Mapping[str, str],
    decode: Callable[[httpx.Response], T],
    *,
    service: str,
    what: str,
    timeout: float,
    error: type[ToolHTTPError] = ToolHTTPError,
    secret: str = "",
    retries: int = 0,
    backoff_s: float = 1.0,
) -> T:
    """``decode(reply)`` of a GET of `url` with `params`.

    A timeout or a failed connection raises `error` (retryable), its message naming `service`
    and `what` was asked (``query 'x'``), with `secret` masked; `decode` raises `error` for an
    answer it cannot use. A retryable `error` is tried again up to `retries` times, after
    `backoff_s`, then twice that, and so on (at most `MAX_BACKOFF_S`); the last one is raised.
    """
    for attempt in range(retries + 1):
        try:
            reply = await client.get(url, params=params)
        except httpx.TimeoutException:
            failure = error(f"{service} timed out after {timeout:g}s for {what}", retryable=True)
        except httpx.HTTPError as exc:
            reason = redact(str(exc) or type(exc).__name__, secret)
            failure = error(f"{service} request failed for {what}: {reason}", retryable=True)
        else:
            try:
                return decode(reply)
            except ToolHTTPError as exc:
                failure = exc
        if not failure.retryable or attempt == retries:
            raise failure  # outside the except blocks: no chained httpx error (it has the URL)
        await asyncio.sleep(min(MAX_BACKOFF_S, backoff_s * 2**attempt))
    raise AssertionError("unreachable")


class WebTool:
    """Base of the tools over a web service: `base_url`, `timeout` (seconds per request),
    `retries` (more tries of a retryable failure, see `get`) and one httpx client, opened on
    first use (with `headers`) and closed by `aclose`."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        retries: int = 0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.retries = retries
        self._headers = dict(headers or {})
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout, headers=self._headers)
        return self._client

    async def _fetch(
        self,
        params: Mapping[str, str],
        decode: Callable[[httpx.Response], T],
        **how: Any,
    ) -> T:
        """`get` of `base_url` with this tool's client, timeout and retries; `how`: the rest
        of `get`'s options (`service`, `what`, `error`, `secret`)."""
        return await get(
            self._http(),
            self.base_url,
            params,
            decode,
            timeout=self.timeout,
            retries=self.retries,
            **how,
        )

    async def aclose(self) -> None:
        """Close the HTTP client (a later call opens a new one)."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

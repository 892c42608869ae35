"""Connecting to an OpenAI-compatible API, for the `openai` LLM backend and OpenAI fine-tuning.

Owns the facts both share: the default base URL (``$OPENAI_BASE_URL``, else OpenAI's), the API
key (``$OPENAI_API_KEY``; a dummy one for a local server where the caller allows it), the SDK
clients (`async_client` over the SDK's aiohttp transport when installed, `sync_client`), the
key scrubber for every message that may quote a server's text (`scrub`), and the short reason
of a failed connection (`connection_reason`).
"""

from __future__ import annotations

import ipaddress
import os
import re
from typing import Any
from urllib.parse import urlparse

import openai

from fireact.errors import FireactError

OPENAI_BASE_URL = "https://api.openai.com/v1"
LOCAL_DUMMY_KEY = "EMPTY"
_KEYLIKE = re.compile(r"\b(sk-[A-Za-z0-9*_\-]{3})[A-Za-z0-9*_\-]+")


def base_url(url: str | None = None) -> str:
    """The API's base URL: `url`, else ``$OPENAI_BASE_URL``, else OpenAI's."""
    return url or os.environ.get("OPENAI_BASE_URL") or OPENAI_BASE_URL


def is_local_url(url: str) -> bool:
    """True for a loopback or private-network host (a local server that needs no real key)."""
    host = urlparse(url).hostname or ""
    if host in {"localhost", "host.docker.internal"} or host.endswith(".local"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_unspecified


def api_key(key: str | None, url: str, *, local_dummy: bool = False) -> str:
    """The key to send: `key`, else ``$OPENAI_API_KEY``, else (with `local_dummy`) a dummy key
    for a local server; none at all is a `FireactError`."""
    key = key or os.environ.get("OPENAI_API_KEY")
    if key:
        return key
    if local_dummy and is_local_url(url):
        return LOCAL_DUMMY_KEY
    raise FireactError(
        f"OPENAI_API_KEY is not set (needed for {url}): export your OpenAI API key as OPENAI_API_KEY"
    )


def async_client(url: str, key: str, *, timeout: float, max_retries: int = 0) -> openai.AsyncOpenAI:
    """An async SDK client, over the SDK's aiohttp transport when it is installed."""
    return openai.AsyncOpenAI(
        base_url=url,
        api_key=key,
        max_retries=max_retries,
        timeout=timeout,
        http_client=_aiohttp_client(),
    )


def sync_client(url: str, key: str, *, timeout: float, max_retries: int) -> openai.OpenAI:
    """A sync SDK client."""
    return openai.OpenAI(api_key=key, base_url=url, timeout=timeout, max_retries=max_retries)


def _aiohttp_client() -> Any | None:
    """The SDK's aiohttp transport (cheaper per call), or None to use its default httpx one."""
    try:
        return openai.DefaultAioHttpClient()
    except (RuntimeError, ImportError):
        return None


def scrub(text: str, key: str | None) -> str:
    """`text` on one line with the key (and anything that looks like an sk- key) masked."""
    if key:
        text = text.replace(key, "***")
    return " ".join(_KEYLIKE.sub(r"\1***", text).split())


def connection_reason(exc: BaseException) -> str:
    """A short human reason ("connection refused", "timed out") from an exception chain."""
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    for e in seen:
        if isinstance(e, ConnectionRefusedError) or "refused" in str(e).lower():
            return "connection refused"
    for e in seen:
        if isinstance(e, TimeoutError | openai.APITimeoutError):
            return "timed out"
    return str(seen[-1]) or type(seen[-1]).__name__

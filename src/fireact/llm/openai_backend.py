"""The `openai` backend: any OpenAI-compatible endpoint (OpenAI, vLLM, a local test server).

Owns the client set-up (the official SDK over its aiohttp transport when installed, httpx
otherwise), the choice of API (a string prompt -> completions, a message list -> chat), bounded
concurrency, our own retries (the SDK's are switched off so that they are visible and testable),
token usage and cost, and the start-up `check()` that the server is reachable and serves the
model. The API key never appears in an exception or a log line.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import openai

from fireact.errors import FireactError
from fireact.llm.base import Completion, LLMError, Prompt, cut_at_stop
from fireact.llm.prices import cost_usd, price_table

log = logging.getLogger(__name__)

T = TypeVar("T")

OPENAI_BASE_URL = "https://api.openai.com/v1"
LOCAL_DUMMY_KEY = "EMPTY"
MAX_API_STOPS = 4  # OpenAI accepts at most 4 stop strings; the rest are applied locally.
RETRY_STATUS = {408, 409, 429}


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


def resolve_api_key(api_key: str | None, base_url: str) -> str:
    """The key to send: the option, else $OPENAI_API_KEY, else a dummy key for local servers."""
    key = api_key or os.environ.get("OPENAI_API_KEY")
    if key:
        return key
    if is_local_url(base_url):
        return LOCAL_DUMMY_KEY
    raise FireactError(
        f"OPENAI_API_KEY is not set (needed for {base_url}): export it or pass api_key"
    )


def make_http_client() -> Any | None:
    """The SDK's aiohttp transport (cheaper per call), or None to use its default httpx one."""
    try:
        return openai.DefaultAioHttpClient()
    except (RuntimeError, ImportError):
        return None


def retry_after_s(exc: BaseException) -> float | None:
    """Seconds asked for by a Retry-After / retry-after-ms header of an error response."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def is_retryable(exc: BaseException) -> bool:
    """429, 408/409, 5xx, timeouts and connection errors are worth another try."""
    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in RETRY_STATUS or exc.status_code >= 500
    return False


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


class OpenAILLM:
    """An OpenAI-compatible model behind the `LLM` protocol.

    Options: `base_url` (default $OPENAI_BASE_URL or OpenAI's), `api_key` (default
    $OPENAI_API_KEY; any dummy for a local server), `max_concurrency` requests in flight,
    `max_retries` and `retry_base_delay` / `retry_max_delay` (seconds, exponential backoff with
    jitter; a Retry-After header wins), `timeout` per request (seconds), `prices` (a dict or a
    YAML/JSON file, USD per 1M tokens) and `seed` for the jitter.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        max_concurrency: int = 64,
        max_retries: int = 6,
        retry_base_delay: float = 1.0,
        retry_max_delay: float = 60.0,
        timeout: float = 120.0,
        prices: Mapping[str, Any] | str | Path | None = None,
        seed: int | None = None,
    ) -> None:
        if not model:
            raise FireactError("openai backend needs a model name: use openai:MODEL")
        self.model = model
        self.name = f"openai:{model}"
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_BASE_URL).rstrip(
            "/"
        )
        self._api_key = resolve_api_key(api_key, self.base_url)
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.retry_base_delay = retry_base_delay
        self.retry_max_delay = retry_max_delay
        self.timeout = timeout
        self.prices = price_table(prices)
        self.retries = 0  # retries done so far (for reports and tests)
        self._rng = random.Random(seed)
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._client: openai.AsyncOpenAI | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"OpenAILLM(model={self.model!r}, base_url={self.base_url!r})"

    @property
    def client(self) -> openai.AsyncOpenAI:
        """The SDK client, created on first use in each event loop (it is bound to its loop)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            self._client = None
            self._semaphore = asyncio.Semaphore(self.max_concurrency)
        if self._client is None:
            self._client = openai.AsyncOpenAI(
                base_url=self.base_url,
                api_key=self._api_key,
                max_retries=0,
                timeout=self.timeout,
                http_client=make_http_client(),
            )
        return self._client

    async def complete(
        self,
        prompt: Prompt,
        *,
        stop: list[str] | None = None,
        max_tokens: int = 256,
        temperature: float = 0.0,
        key: str | None = None,
    ) -> Completion:
        """One call: completions API for a string prompt, chat API for a message list."""
        start = time.perf_counter()
        if isinstance(prompt, str):
            text, usage, reason = await self._with_retries(
                lambda: self._completions(prompt, stop, max_tokens, temperature)
            )
        else:
            text, usage, reason = await self._with_retries(
                lambda: self._chat(prompt, stop, max_tokens, temperature)
            )
        text, stopped = cut_at_stop(text, stop)
        prompt_tokens = getattr(usage, "prompt_tokens", 0) or 0
        completion_tokens = getattr(usage, "completion_tokens", 0) or 0
        return Completion(
            text=text,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=cost_usd(self.model, prompt_tokens, completion_tokens, self.prices),
            finish_reason="stop" if stopped else (reason or "stop"),
            latency_s=time.perf_counter() - start,
        )

    async def _chat(
        self, messages: list[dict[str, str]], stop: list[str] | None, max_tokens: int, temp: float
    ) -> tuple[str, Any, str | None]:
        client = self.client  # first: it resets the semaphore in a new event loop
        async with self._semaphore:
            response = await client.chat.completions.create(
                model=self.model,
                messages=messages,  # type: ignore[arg-type]
                stop=stop[:MAX_API_STOPS] if stop else None,
                max_tokens=max_tokens,
                temperature=temp,
            )
        if not response.choices:
            raise LLMError(f"{self.name}: the server returned no choices")
        choice = response.choices[0]
        return choice.message.content or "", response.usage, choice.finish_reason

    async def _completions(
        self, prompt: str, stop: list[str] | None, max_tokens: int, temp: float
    ) -> tuple[str, Any, str | None]:
        client = self.client
        async with self._semaphore:
            response = await client.completions.create(
                model=self.model,
                prompt=prompt,
                stop=stop[:MAX_API_STOPS] if stop else None,
                max_tokens=max_tokens,
                temperature=temp,
            )
        if not response.choices:
            raise LLMError(f"{self.name}: the server returned no choices")
        choice = response.choices[0]
        return choice.text or "", response.usage, choice.finish_reason

    async def _with_retries(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run `call`, retrying retryable failures with backoff; raise a clean error at the end."""
        for attempt in range(self.max_retries + 1):
            try:
                return await call()
            except openai.OpenAIError as exc:
                if not is_retryable(exc) or attempt == self.max_retries:
                    raise self._final_error(exc, attempt) from None
                delay = self.backoff_s(attempt, exc)
                self.retries += 1
                log.debug(
                    "%s: %s, retry %d in %.2fs", self.name, self._describe(exc), attempt, delay
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    def backoff_s(self, attempt: int, exc: BaseException | None = None) -> float:
        """Delay before retry number `attempt + 1`: Retry-After if given, else jittered backoff."""
        asked = retry_after_s(exc) if exc is not None else None
        if asked is not None:
            return min(asked, self.retry_max_delay)
        ceiling = min(self.retry_max_delay, self.retry_base_delay * 2**attempt)
        return ceiling * (0.5 + 0.5 * self._rng.random())

    def _describe(self, exc: BaseException) -> str:
        """A one-line description of an SDK error, scrubbed of the API key."""
        if isinstance(exc, openai.APIStatusError):
            text = f"HTTP {exc.status_code}: {exc.message}"
        elif isinstance(exc, openai.APIConnectionError):
            text = f"cannot reach {self.base_url}: {connection_reason(exc)}"
        else:
            text = f"{type(exc).__name__}: {exc}"
        return text.replace(self._api_key, "***") if self._api_key else text

    def _final_error(self, exc: BaseException, attempt: int) -> Exception:
        """Map an SDK error to FireactError (user-fixable) or LLMError (a failed call)."""
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            return FireactError(
                f"{self.base_url} rejected the API key (HTTP {exc.status_code}): check "
                "OPENAI_API_KEY or the api_key option"
            )
        if isinstance(exc, openai.NotFoundError):
            return FireactError(
                f"model {self.model!r} was not found at {self.base_url}: check the model name"
            )
        tries = f" after {attempt} retries" if attempt else ""
        return LLMError(f"{self.name} failed{tries}: {self._describe(exc)}")

    async def check(self) -> list[str]:
        """Start-up check: the server answers `GET /models` and lists our model; return the ids."""
        try:
            page = await self.client.models.list(timeout=min(self.timeout, 30.0))
        except openai.APIConnectionError as exc:
            raise FireactError(
                f"cannot reach {self.base_url}: {connection_reason(exc)}; start the server or "
                "fix base_url"
            ) from None
        except openai.APIStatusError as exc:
            raise self._final_error(exc, 0) from None
        ids = [m.id for m in page.data]
        if self.model not in ids:
            shown = ", ".join(ids[:10]) + (" ..." if len(ids) > 10 else "")
            raise FireactError(
                f"model {self.model!r} is not served by {self.base_url} (it lists: {shown or 'none'})"
                ": pick one of those"
            )
        return ids

    async def aclose(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            await self._client.close()
            self._client = None

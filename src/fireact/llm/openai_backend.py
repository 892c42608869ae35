"""The `openai` backend: any OpenAI-compatible endpoint (OpenAI, vLLM, a local test server).

Owns `OpenAILLM`: bounded concurrency, the two APIs' requests and answers, our own retries (the
SDK's are switched off so that they are visible and testable), token usage and cost, and the
start-up `check()` that the server is reachable and serves the model. The client and key come
from `fireact.openai_client`; which API a text prompt goes to and what a failure means from
`fireact.llm.openai_errors` (`resolve_api`: a chat model gets a text prompt as ONE user
message, as FireAct sends it); optional hedged requests (a duplicate of a call that is slower
than usual) from `fireact.llm.hedging`. The API key never appears in an exception or a log line.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import openai

from fireact import openai_client
from fireact.errors import FireactError
from fireact.llm.base import Completion, LLMError, Prompt, cut_at_stop
from fireact.llm.hedging import HEDGE_HEADER, HedgeAfter, Hedging, Send, quantile
from fireact.llm.openai_errors import (
    Api,
    describe,
    excerpt,
    final_error,
    is_completion_model,
    is_retryable,
    model_ids,
    resolve_api,
    retry_after_s,
)
from fireact.llm.prices import cost_usd, price_table
from fireact.openai_client import connection_reason

__all__ = [  # the names callers import from here (some live in the modules above)
    "HEDGE_HEADER",
    "OpenAILLM",
    "is_completion_model",
    "quantile",
    "resolve_api",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_API_STOPS = 4  # OpenAI accepts at most 4 stop strings; the rest are applied locally.
RETRY_AFTER_NOTICE_S = 10.0  # a Retry-After this long is said on stderr, not waited silently


class OpenAILLM(Hedging):
    """An OpenAI-compatible model behind the `LLM` protocol.

    Options: `base_url` (default $OPENAI_BASE_URL or OpenAI's), `api_key` (default
    $OPENAI_API_KEY; any dummy for a local server), `max_concurrency` requests in flight,
    `max_retries` and `retry_base_delay` / `retry_max_delay` (seconds, exponential backoff with
    jitter; a Retry-After header wins), `timeout` per request (seconds), `prices` (a dict or a
    YAML/JSON file, USD per 1M tokens), `seed` for the jitter, `hedge_after_s`, and `api`: where
    a text prompt goes (`resolve_api`; message lists always go to the chat API).

    Hedged requests (`hedge_after_s`, default None = off; seconds or "auto", see
    `fireact.llm.hedging`) cut tail latency: a request outstanding that long gets ONE duplicate
    and the first of the two to succeed wins; only when both fail does the error reach the
    retry/backoff logic (which then retries as usual, each retry hedged again). Good fixed
    values are about the p90 of the API's latency: a duplicate for ~10% of calls.

    Concurrency: a duplicate does NOT take a `max_concurrency` slot: it rides in its original's
    slot, so it cannot deadlock, and at most `max_concurrency` duplicates are in flight (one per
    slot): the server may see up to 2 x `max_concurrency` requests, which counts against its
    rate limits. Usage and cost count only the winning response; the provider may still bill
    the cancelled one (its tokens are unknown here). `hedges` counts the duplicates started
    (one cancelled at once may never reach the server) and `hedge_wins` those whose answer was
    used (they succeeded first).
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
        hedge_after_s: HedgeAfter = None,
        api: Api = "auto",
    ) -> None:
        if not model:
            raise FireactError("openai backend needs a model name: use openai:MODEL")
        self.model = model
        self.api = api
        self.text_api = resolve_api(api, model)
        self.name = f"openai:{model}"
        self.base_url = openai_client.base_url(base_url).rstrip("/")
        self._api_key = openai_client.api_key(api_key, self.base_url, local_dummy=True)
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.retry_base_delay = retry_base_delay
        self.retry_max_delay = retry_max_delay
        self.timeout = timeout
        self.prices = price_table(prices)
        self._init_hedging(hedge_after_s)
        self.warnings: list[str] = []  # from `check()`: odd but not fatal answers
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
            self._client = openai_client.async_client(
                self.base_url, self._api_key, timeout=self.timeout
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
        """One call: a message list, or a text prompt under the chat API, as chat (the text as one
        user message); a text prompt under the completions API as completions."""
        start = time.perf_counter()
        if isinstance(prompt, str) and self.text_api == "chat":
            prompt = [{"role": "user", "content": prompt}]
        elif not isinstance(prompt, str) and self.api == "completions":
            raise FireactError(
                f"{self.name}: a chat conversation cannot go to the completions API; use --api "
                "chat (or auto) with format chat"
            )
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

    def _sender(
        self, create: Callable[..., Awaitable[Any]], stop: list[str] | None, **request: Any
    ) -> Send[Any]:
        """One request to `create` (the chat or completions endpoint), with extra headers."""

        def send(headers: dict[str, str] | None) -> Awaitable[Any]:
            return create(
                model=self.model,
                stop=stop[:MAX_API_STOPS] if stop else None,
                extra_headers=headers,
                **request,
            )

        return send

    async def _chat(
        self, messages: list[dict[str, str]], stop: list[str] | None, max_tokens: int, temp: float
    ) -> tuple[str, Any, str | None]:
        client = self.client  # first: it resets the semaphore in a new event loop
        send = self._sender(
            client.chat.completions.create,
            stop,
            messages=messages,
            max_tokens=max_tokens,
            temperature=temp,
        )
        response = await self._request(send)
        choice = self._first_choice(response, "chat/completions")
        message = getattr(choice, "message", None)
        if message is None:
            raise LLMError(f"{self.base_url}/chat/completions answered a choice without a message")
        return message.content or "", getattr(response, "usage", None), choice.finish_reason

    async def _completions(
        self, prompt: str, stop: list[str] | None, max_tokens: int, temp: float
    ) -> tuple[str, Any, str | None]:
        client = self.client
        send = self._sender(
            client.completions.create, stop, prompt=prompt, max_tokens=max_tokens, temperature=temp
        )
        response = await self._request(send)
        choice = self._first_choice(response, "completions")
        return (
            getattr(choice, "text", None) or "",
            getattr(response, "usage", None),
            getattr(choice, "finish_reason", None),
        )

    def _first_choice(self, response: Any, path: str) -> Any:
        """The first choice of a response, or an LLMError naming the endpoint and what came
        back (a proxy's HTML page, a 200 without ``choices``)."""
        if isinstance(response, str | bytes):
            text = response.decode(errors="replace") if isinstance(response, bytes) else response
            raise LLMError(
                f"{self.base_url}/{path} answered 200 without a completion: {excerpt(text)}"
            )
        choices = getattr(response, "choices", None)
        if choices is None:
            raise LLMError(f"{self.base_url}/{path} answered 200 without 'choices'")
        if not choices:
            raise LLMError(f"{self.base_url}/{path} answered 200 with no choices")
        return choices[0]

    # -- one attempt, maybe hedged ----------------------------------------------------------
    async def _request(self, send: Send[T]) -> T:
        """One attempt inside a concurrency slot: `send(None)`, hedged when it is slow."""
        async with self._semaphore:
            return await self._send_maybe_hedged(send)

    async def _with_retries(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run `call`, retrying retryable failures with backoff; raise a clean error at the end."""
        for attempt in range(self.max_retries + 1):
            try:
                return await call()
            except openai.OpenAIError as exc:
                if not is_retryable(exc) or attempt == self.max_retries:
                    raise self._final_error(exc, attempt) from None
                delay = self.backoff_s(attempt, exc)
                asked = retry_after_s(exc)
                if asked is not None and asked >= RETRY_AFTER_NOTICE_S:
                    print(
                        f"warning: {self.name}: {self._describe(exc)}; the server asks to wait "
                        f"{asked:.0f} s (Retry-After), waiting {delay:.0f} s before retry "
                        f"{attempt + 1} of {self.max_retries}",
                        file=sys.stderr,
                    )
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
        return describe(exc, self.base_url, self._api_key)

    def _final_error(self, exc: BaseException, attempt: int) -> Exception:
        """Map an SDK error to FireactError (user-fixable) or LLMError (a failed call)."""
        return final_error(
            exc,
            attempt,
            name=self.name,
            model=self.model,
            base_url=self.base_url,
            key=self._api_key,
        )

    async def check(self) -> list[str]:
        """Start-up check that never blocks a working server; returns the listed model ids.

        An unreachable server or a rejected key stops the run (FireactError). Anything else odd
        about ``GET /models`` — a 404 (gateways often do not serve it), a 200 that is HTML or has
        no ``data``, a list without our model — only adds a one-line warning to `warnings`: the
        first real call decides.
        """
        self.warnings = []
        endpoint = f"{self.base_url}/models"
        try:
            raw = await self.client.models.with_raw_response.list(timeout=min(self.timeout, 30.0))
            text = raw.http_response.text
        except openai.APIConnectionError as exc:
            raise FireactError(
                f"cannot reach {self.base_url}: {connection_reason(exc)}; start the server or "
                "fix the base URL (--base-url)"
            ) from None
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise self._final_error(exc, 0) from None
        except openai.APIStatusError as exc:
            self.warnings.append(
                f"{endpoint} answered HTTP {exc.status_code}; cannot check that it serves "
                f"{self.model!r}, going on"
            )
            return []
        ids = model_ids(text)
        if ids is None:
            self.warnings.append(
                f"{endpoint} did not answer a model list ({excerpt(text)}); cannot check that it "
                f"serves {self.model!r}, going on"
            )
            return []
        if self.model not in ids:
            shown = ", ".join(ids[:10]) + (" ..." if len(ids) > 10 else "")
            self.warnings.append(
                f"{endpoint} does not list {self.model!r} (it lists: {shown or 'none'}); going "
                "on, the first call will tell"
            )
        return ids

    async def aclose(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            await self._client.close()
            self._client = None

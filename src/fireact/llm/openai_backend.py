"""The `openai` backend: any OpenAI-compatible endpoint (OpenAI, vLLM, a local test server).

Owns the client set-up (the official SDK over its aiohttp transport when installed, httpx
otherwise), the choice of API (see `resolve_api`: OpenAI serves its chat models — gpt-4, gpt-4o,
gpt-3.5-turbo — only on the chat API, so a text prompt goes there as ONE user message, as
FireAct sends it; the completions API is for completion models and fine-tuned base models
behind vLLM), bounded concurrency, optional hedged requests (a duplicate of a call that is slower than usual; see
`OpenAILLM`), our own retries (the SDK's are switched off so that they are visible and testable),
token usage and cost, and the start-up `check()` that the server is reachable and serves the
model. The API key never appears in an exception or a log line.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import json
import logging
import math
import os
import random
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar
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
RETRY_AFTER_NOTICE_S = 10.0  # a Retry-After this long is said on stderr, not waited silently
HEDGE_HEADER = "X-Fireact-Hedge"  # sent (value "1") on hedged duplicate requests
HEDGE_AUTO_QUANTILE = 0.9  # "auto" hedging: hedge after this quantile of recent latencies ...
HEDGE_AUTO_MIN_SAMPLES = 50  # ... once this many latencies were seen (no hedging before)
HEDGE_AUTO_WINDOW = 1000  # ... over at most this many of the most recent ones
HEDGE_AUTO_REFRESH = 10  # recompute the "auto" threshold every this many new latencies

HedgeAfter = float | Literal["auto"] | None
Api = Literal["auto", "chat", "completions"]
APIS = ("auto", "chat", "completions")
# OpenAI's completion-only models: every other OpenAI model is served on the chat API only.
COMPLETION_MODELS = ("gpt-3.5-turbo-instruct", "davinci-002", "babbage-002")
CHAT_ONLY_REFUSAL = "not supported in the v1/completions endpoint"  # OpenAI's 404 message
NOT_CHAT_REFUSAL = "not a chat model"  # ... and the reverse
NO_CHAT_TEMPLATE = "chat template"  # vLLM: a base model without a chat template


def is_completion_model(model: str) -> bool:
    """True for OpenAI's completion-only models, dated versions (``gpt-3.5-turbo-instruct-0914``)
    and fine-tunes of them (``ft:davinci-002:...``)."""
    name = model.removeprefix("ft:")
    return any(name == m or name.startswith((m + ":", m + "-")) for m in COMPLETION_MODELS)


def resolve_api(
    api: str, model: str, text_format: str = "fewshot"
) -> Literal["chat", "completions"]:
    """Which API a text prompt goes to: ``auto`` picks chat for every model (the prompt as one
    user message, as FireAct sends it) unless the format is ``alpaca`` (a fine-tuned base model,
    e.g. behind vLLM) or the model is a known completion model; then completions."""
    if api not in APIS:
        raise FireactError(f"api {api!r}: use one of {', '.join(APIS)}")
    if api != "auto":
        return api  # type: ignore[return-value]
    if text_format == "alpaca" or is_completion_model(model):
        return "completions"
    return "chat"


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


def check_hedge_after(value: Any) -> HedgeAfter:
    """Validate the `hedge_after_s` option: None, a number of seconds > 0, or "auto"."""
    if value is None or value == "auto":
        return value  # type: ignore[no-any-return]
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    raise FireactError(
        f"hedge_after_s must be a number of seconds > 0, 'auto' or None, not {value!r}"
    )


def quantile(values: list[float], q: float) -> float:
    """Nearest-rank `q`-quantile (0 < q <= 1) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q * len(ordered))))
    return ordered[rank - 1]


def _model_ids(text: str) -> list[str] | None:
    """The ids of an OpenAI model list body, or None when it is not one."""
    try:
        body = json.loads(text)
    except ValueError:
        return None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        return None
    return [str(m["id"]) for m in data if isinstance(m, dict) and "id" in m]


def _excerpt(text: str, limit: int = 60) -> str:
    """The start of a response body on one line, for messages."""
    flat = " ".join(text.split())
    if not flat:
        return "an empty body"
    return repr(flat[:limit] + ("..." if len(flat) > limit else ""))


def _error_code(exc: openai.APIStatusError) -> str | None:
    """The ``error.code`` of an OpenAI-style error body, if any."""
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("code"), str):
            return inner["code"]
    return None


def _request_path(exc: openai.APIStatusError) -> str:
    """The URL path a failed request went to."""
    request = getattr(exc, "request", None)
    url = getattr(request, "url", None)
    return str(getattr(url, "path", "")) or "the request"


def _consume_outcome(task: asyncio.Future[Any]) -> None:
    """Done callback of an abandoned request: fetch its outcome so that asyncio does not log it."""
    if not task.cancelled():
        task.exception()


class OpenAILLM:
    """An OpenAI-compatible model behind the `LLM` protocol.

    Options: `base_url` (default $OPENAI_BASE_URL or OpenAI's), `api_key` (default
    $OPENAI_API_KEY; any dummy for a local server), `max_concurrency` requests in flight,
    `max_retries` and `retry_base_delay` / `retry_max_delay` (seconds, exponential backoff with
    jitter; a Retry-After header wins), `timeout` per request (seconds), `prices` (a dict or a
    YAML/JSON file, USD per 1M tokens), `seed` for the jitter, `hedge_after_s`, and `api`: where
    a text prompt goes (`resolve_api`; message lists always go to the chat API).

    Hedged requests (`hedge_after_s`, default None = off) cut tail latency: when a request has
    been outstanding for `hedge_after_s` seconds, ONE duplicate is sent (marked with the
    `X-Fireact-Hedge: 1` header) and the first of the two to succeed wins; the other is
    cancelled. If the first to finish fails, the other is awaited instead; only when both fail
    does the error reach the retry/backoff logic (which then retries as usual, each retry
    hedged again). With `"auto"`, the threshold is the running p90 of the latencies of recent
    requests (the last 1,000; a request cancelled because its hedge won counts with the time it
    had been outstanding, a lower bound, which keeps the estimate from drifting down), and
    nothing is hedged until 50 latencies have been seen. Good fixed values are about the p90 of
    the API's latency: a duplicate for ~10% of calls.

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
        self.hedge_after_s = check_hedge_after(hedge_after_s)
        self.warnings: list[str] = []  # from `check()`: odd but not fatal answers
        self.retries = 0  # retries done so far (for reports and tests)
        self.hedges = 0  # hedged duplicates sent so far
        self.hedge_wins = 0  # of those, the ones that answered before their original
        self._latencies: deque[float] = deque(maxlen=HEDGE_AUTO_WINDOW)
        self._new_latencies = 0
        self._auto_hedge_s: float | None = None
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

    async def _chat(
        self, messages: list[dict[str, str]], stop: list[str] | None, max_tokens: int, temp: float
    ) -> tuple[str, Any, str | None]:
        client = self.client  # first: it resets the semaphore in a new event loop

        def send(headers: dict[str, str] | None) -> Awaitable[Any]:
            return client.chat.completions.create(
                model=self.model,
                messages=messages,  # type: ignore[arg-type]
                stop=stop[:MAX_API_STOPS] if stop else None,
                max_tokens=max_tokens,
                temperature=temp,
                extra_headers=headers,
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

        def send(headers: dict[str, str] | None) -> Awaitable[Any]:
            return client.completions.create(
                model=self.model,
                prompt=prompt,
                stop=stop[:MAX_API_STOPS] if stop else None,
                max_tokens=max_tokens,
                temperature=temp,
                extra_headers=headers,
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
                f"{self.base_url}/{path} answered 200 without a completion: {_excerpt(text)}"
            )
        choices = getattr(response, "choices", None)
        if choices is None:
            raise LLMError(f"{self.base_url}/{path} answered 200 without 'choices'")
        if not choices:
            raise LLMError(f"{self.base_url}/{path} answered 200 with no choices")
        return choices[0]

    # -- one attempt, maybe hedged ----------------------------------------------------------
    def hedge_threshold_s(self) -> float | None:
        """Seconds after which a request gets a duplicate now (None: no hedging yet / at all)."""
        if self.hedge_after_s == "auto":
            return self._auto_hedge_s
        return self.hedge_after_s

    def _record_latency(self, seconds: float) -> None:
        """Feed the "auto" hedge threshold with one request's latency."""
        if self.hedge_after_s != "auto":
            return
        self._latencies.append(seconds)
        self._new_latencies += 1
        if len(self._latencies) >= HEDGE_AUTO_MIN_SAMPLES and (
            self._auto_hedge_s is None or self._new_latencies >= HEDGE_AUTO_REFRESH
        ):
            self._auto_hedge_s = quantile(list(self._latencies), HEDGE_AUTO_QUANTILE)
            self._new_latencies = 0

    async def _request(self, send: Callable[[dict[str, str] | None], Awaitable[T]]) -> T:
        """One attempt inside a concurrency slot: `send(None)`, hedged when it is slow."""
        async with self._semaphore:
            threshold = self.hedge_threshold_s()
            start = time.perf_counter()
            if threshold is None:
                response = await send(None)
                self._record_latency(time.perf_counter() - start)
                return response
            return await self._hedged(send, threshold, start)

    async def _hedged(
        self, send: Callable[[dict[str, str] | None], Awaitable[T]], threshold: float, start: float
    ) -> T:
        """`send(None)`; past `threshold` s also a duplicate; the first success wins."""
        first: asyncio.Future[T] = asyncio.ensure_future(send(None))
        tasks = [first]
        try:
            done, _ = await asyncio.wait(tasks, timeout=threshold)
            if done:  # answered (or failed) in time: no hedge; a failure goes to the retries
                response = first.result()
                self._record_latency(time.perf_counter() - start)
                return response
            self.hedges += 1
            tasks.append(asyncio.ensure_future(send({HEDGE_HEADER: "1"})))
            pending: set[asyncio.Future[T]] = set(tasks)
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in tasks:  # in order: the original wins a tie
                    if task in done and task.exception() is None:
                        if task is first:
                            self._record_latency(time.perf_counter() - start)
                        else:
                            self.hedge_wins += 1
                            if not first.done():  # censored: it took at least this long
                                self._record_latency(time.perf_counter() - start)
                        return task.result()
            original, hedge = (task.exception() for task in tasks)
            assert original is not None and hedge is not None  # both failed
            log.debug("%s: the hedge failed too: %s", self.name, self._describe(hedge))
            raise original  # the original's error goes to the retry logic
        finally:  # the loser (or both, when we are cancelled) is cancelled, never awaited
            for task in tasks:
                task.cancel()
                task.add_done_callback(_consume_outcome)

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
        if isinstance(exc, openai.APIStatusError) and (hint := self._api_hint(exc)):
            return FireactError(hint)
        if isinstance(exc, openai.NotFoundError):
            if _error_code(exc) == "model_not_found" or "model" in exc.message.lower():
                return FireactError(
                    f"model {self.model!r} was not found at {self.base_url}: check the model name"
                )
            return FireactError(
                f"{self.base_url} answered 404 Not Found for {_request_path(exc)}: check the base "
                "URL (OpenAI-compatible servers usually serve under .../v1)"
            )
        tries = f" after {attempt} retries" if attempt else ""
        return LLMError(f"{self.name} failed{tries}: {self._describe(exc)}")

    def _api_hint(self, exc: openai.APIStatusError) -> str | None:
        """One line saying which --api to use when the server refused the API we called."""
        text = str(exc.message).lower()
        if CHAT_ONLY_REFUSAL in text:
            return (
                f"{self.base_url} serves {self.model!r} as a chat model only and refused the "
                "completions API: use --api chat (or --api auto)"
            )
        if NOT_CHAT_REFUSAL in text:
            return (
                f"{self.base_url} serves {self.model!r} as a completion model only and refused "
                "the chat API: use --api completions"
            )
        if NO_CHAT_TEMPLATE in text and exc.status_code == 400:
            return (
                f"{self.base_url} cannot run {self.model!r} on the chat API (it has no chat "
                "template): use --api completions (e.g. with --format alpaca)"
            )
        return None

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
                "fix base_url"
            ) from None
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise self._final_error(exc, 0) from None
        except openai.APIStatusError as exc:
            self.warnings.append(
                f"{endpoint} answered HTTP {exc.status_code}; cannot check that it serves "
                f"{self.model!r}, going on"
            )
            return []
        ids = _model_ids(text)
        if ids is None:
            self.warnings.append(
                f"{endpoint} did not answer a model list ({_excerpt(text)}); cannot check that it "
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

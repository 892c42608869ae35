"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests and benchmarks.

It serves `/v1/models`, `/v1/chat/completions` and `/v1/completions` from an aiohttp app running
in a background thread, answers with scripted outputs, applies `stop` and `max_tokens`, reports
usage as whitespace-token counts, and can misbehave on purpose: a seeded share of requests (and first, any faults
listed in `fault_schedule`) gets a 429 (with Retry-After), a 500, a 503, a hang past the
client's timeout, or a dropped connection.
Optional latency is fixed, lognormal, or per request (a callable given the `ScriptRequest`, whose
`index` and `headers` tell requests apart). Every request is recorded, and the maximum number of
requests in flight is tracked.

    with OpenAIServer({"Paris": ["Thought: ...\\nAction: finish[Paris]"]}) as server:
        llm = OpenAILLM("gpt-4", base_url=server.base_url)

Outputs are a mapping or a callable. With a mapping `key -> list of outputs` (or one string),
the first key found in the request text (the prompt, or all message contents joined) picks the
list, and the key's n-th successful answer is its n-th output. A callable gets the
`ScriptRequest` and returns the output text. To host more endpoints (files, fine-tuning jobs),
subclass and extend `routes()`, or pass `extra_routes`.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

FAULT_KINDS = ("429", "500", "503", "timeout", "drop")


@dataclass
class ScriptRequest:
    """What a scripted-output callable sees of one request."""

    api: str  # "chat" or "completions"
    model: str
    text: str  # the prompt, or the message contents joined by newlines
    body: dict[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)  # HTTP headers (case-insensitive)
    index: int = 0  # arrival order of the request (0 for the first one the server saw)


@dataclass
class RecordedRequest:
    """One request as the server saw it (the Authorization header is not kept)."""

    path: str
    body: dict[str, Any]
    arrived: float  # time.monotonic() on arrival
    outcome: str = ""  # "ok", a fault kind, or "error"
    index: int = 0  # arrival order (0 for the first request the server saw)


def whitespace_tokens(text: str) -> int:
    return len(text.split())


def apply_stop(text: str, stop: Iterable[str]) -> tuple[str, bool]:
    cuts = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return (text[: min(cuts)], True) if cuts else (text, False)


def apply_max_tokens(text: str, max_tokens: int | None) -> tuple[str, bool]:
    if max_tokens is None:
        return text, False
    words = list(_words(text))
    if len(words) <= max_tokens:
        return text, False
    return text[: words[max_tokens][0]].rstrip(), True


def _words(text: str) -> Iterable[tuple[int, int]]:
    import re

    return ((m.start(), m.end()) for m in re.finditer(r"\S+", text))


@dataclass
class OpenAIServer:
    """The server; use as a context manager (or `start()` / `stop()`); `base_url` ends in /v1."""

    outputs: Mapping[str, list[str] | str] | Callable[[ScriptRequest], str] | None = None
    models: tuple[str, ...] = ("gpt-4", "gpt-3.5-turbo", "gpt-4o-mini", "tiny")
    default: str | None = None  # output when no key matches (else HTTP 400)
    api_key: str | None = None  # when set, requests must carry "Bearer <api_key>"
    fault_rate: float = 0.0
    fault_schedule: list[str] = field(default_factory=list)  # faults for the next requests, first
    fault_kinds: tuple[str, ...] = FAULT_KINDS
    seed: int = 0
    retry_after: float | None = 0.01  # seconds sent with 429s (None: no header)
    hang_s: float = 2.0  # how long a "timeout" fault hangs (make it > the client timeout)
    # seconds, (median_s, sigma) lognormal, or a callable: seconds for this request
    latency: float | tuple[float, float] | Callable[[ScriptRequest], float] | None = None
    extra_routes: list[web.RouteDef] = field(default_factory=list)

    requests: list[RecordedRequest] = field(default_factory=list, init=False)
    faults: Counter[str] = field(default_factory=Counter, init=False)
    in_flight: int = field(default=0, init=False)
    max_in_flight: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._served: Counter[str] = Counter()
        self._arrivals = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- life cycle -------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> OpenAIServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(sock), self._loop).result(timeout=10)

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
        self._loop = self._thread = self._runner = None

    async def _serve(self, sock: socket.socket) -> None:
        app = web.Application()
        app.add_routes(self.routes())
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=0.2
        )
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    def routes(self) -> list[web.RouteDef]:
        """The served endpoints; subclasses extend this list."""
        return [
            web.get("/v1/models", self._models),
            web.post("/v1/chat/completions", self._chat),
            web.post("/v1/completions", self._completions),
            *self.extra_routes,
        ]

    # -- handlers ---------------------------------------------------------------------------
    async def _models(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._check_auth(request)) is not None:
            return denied
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "test"} for m in self.models]
        return web.json_response({"object": "list", "data": data})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, "chat")

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, "completions")

    async def _generate(self, request: web.Request, api: str) -> web.StreamResponse:
        body = await request.json()
        record = RecordedRequest(request.path, body, time.monotonic(), index=self._arrivals)
        self._arrivals += 1
        self.requests.append(record)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            response = await self._answer(request, api, body, record)
        finally:
            self.in_flight -= 1
        return response

    async def _answer(
        self, request: web.Request, api: str, body: dict[str, Any], record: RecordedRequest
    ) -> web.StreamResponse:
        if (denied := self._check_auth(request)) is not None:
            record.outcome = "error"
            return denied
        model = body.get("model", "")
        text = _request_text(api, body)
        script = ScriptRequest(api, model, text, body, request.headers, record.index)
        await self._sleep_latency(script)
        fault = self._draw_fault()
        if fault is not None:
            record.outcome = fault
            self.faults[fault] += 1
            return await self._fault_response(request, fault)
        if model not in self.models:
            record.outcome = "error"
            return _error(404, f"The model `{model}` does not exist", "model_not_found")
        output = self._script(script)
        if output is None:
            record.outcome = "error"
            return _error(400, "no scripted output for this request", "script_missing")
        record.outcome = "ok"
        return web.json_response(_completion_body(api, model, text, output, body))

    def _check_auth(self, request: web.Request) -> web.Response | None:
        if self.api_key is None:
            return None
        if request.headers.get("Authorization") == f"Bearer {self.api_key}":
            return None
        return _error(401, "Incorrect API key provided", "invalid_api_key")

    async def _sleep_latency(self, request: ScriptRequest | None = None) -> None:
        if self.latency is None:
            return
        if callable(self.latency):
            delay = self.latency(request) if request is not None else 0.0
        elif isinstance(self.latency, tuple):
            median, sigma = self.latency
            delay = self._rng.lognormvariate(math.log(median), sigma)
        else:
            delay = self.latency
        await asyncio.sleep(delay)

    def _draw_fault(self) -> str | None:
        if self.fault_schedule:
            return self.fault_schedule.pop(0)
        if self.fault_rate <= 0 or self._rng.random() >= self.fault_rate:
            return None
        return self._rng.choice(self.fault_kinds)

    async def _fault_response(self, request: web.Request, fault: str) -> web.StreamResponse:
        if fault == "429":
            headers = {} if self.retry_after is None else {"Retry-After": f"{self.retry_after:g}"}
            return _error(429, "Rate limit reached", "rate_limit_exceeded", headers)
        if fault in ("500", "503"):
            return _error(int(fault), "The server had an error", "server_error")
        if fault == "timeout":
            await asyncio.sleep(self.hang_s)
            return _error(504, "Gateway timeout", "timeout")
        if fault == "drop":
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)
        raise ValueError(f"unknown fault kind {fault!r}")

    def _script(self, request: ScriptRequest) -> str | None:
        if self.outputs is None:
            return self.default
        if callable(self.outputs):
            return self.outputs(request)
        for key, outputs in self.outputs.items():
            if key in request.text:
                if isinstance(outputs, str):
                    return outputs
                n = self._served[key]
                if n >= len(outputs):
                    return None
                self._served[key] += 1
                return outputs[n]
        return self.default


def _request_text(api: str, body: dict[str, Any]) -> str:
    if api == "chat":
        return "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
    prompt = body.get("prompt", "")
    return prompt if isinstance(prompt, str) else "\n".join(prompt)


def _completion_body(
    api: str, model: str, prompt: str, output: str, body: dict[str, Any]
) -> dict[str, Any]:
    stop = body.get("stop") or []
    stop = [stop] if isinstance(stop, str) else stop
    text, stopped = apply_stop(output, stop)
    text, cut = apply_max_tokens(text, body.get("max_tokens") or body.get("max_completion_tokens"))
    finish = "length" if cut else "stop"
    usage = {
        "prompt_tokens": whitespace_tokens(prompt),
        "completion_tokens": whitespace_tokens(text),
    }
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    if api == "chat":
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": finish,
            "logprobs": None,
        }
        kind = "chat.completion"
    else:
        choice = {"index": 0, "text": text, "finish_reason": finish, "logprobs": None}
        kind = "text_completion"
    return {
        "id": f"cmpl-{time.monotonic_ns()}",
        "object": kind,
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": usage,
    }


def _error(
    status: int, message: str, code: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    payload = {"error": {"message": message, "type": "test_error", "code": code, "param": None}}
    return web.Response(
        status=status, text=json.dumps(payload), content_type="application/json", headers=headers
    )

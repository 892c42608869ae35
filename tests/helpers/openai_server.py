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

The server also owns OpenAI's request contract, so that a client that would fail against the real
API fails here too, with OpenAI's status codes and error bodies
(``{"error": {"message", "type", "param", "code"}}``):

- which endpoints serve a model (`endpoints_for`: OpenAI's chat models only
  `/v1/chat/completions`, its completion models only `/v1/completions`, any other name, as
  vLLM serves it, both; `endpoints=` overrides it per model), and unknown models (404);
- each endpoint's documented body parameters (anything else is "Unrecognized request argument"),
  the required ones, their JSON types and ranges, at most 4 `stop` strings, and a JSON body.

A rejected request is still recorded, with outcome "error", its HTTP `status` and the error
message as `reason`. Rejections happen before latency and faults: a bad request is answered at
once and never uses up a scheduled fault.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

FAULT_KINDS = ("429", "500", "503", "timeout", "drop")

CHAT = "chat"  # POST /v1/chat/completions
COMPLETIONS = "completions"  # POST /v1/completions
BOTH = frozenset({CHAT, COMPLETIONS})
MODEL_CREATED = 1_686_935_002  # the `created` time listed for every model (fixed, like a fixture)

# OpenAI's completion models (the legacy /v1/completions endpoint only) ...
_COMPLETION_MODELS = re.compile(r"(gpt-3\.5-turbo-instruct(-\d{4})?|davinci-002|babbage-002)")
# ... and its chat models (/v1/chat/completions only): gpt-4, gpt-4-*, gpt-4o, gpt-4o-*,
# gpt-3.5-turbo and its dated variants, and the newer chat families (gpt-4.1, gpt-5, o1, o3, ...).
_CHAT_MODELS = re.compile(
    r"(gpt-4|gpt-4o|gpt-4\.\d+|gpt-5(\.\d+)?|gpt-3\.5-turbo|o[134](-mini|-pro)?|chatgpt-4o)"
    r"(-.*)?"
)


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# The documented body parameters of each endpoint (anything else is an unrecognized argument).
_CHAT_PARAMETERS = _names(
    "model messages temperature top_p n stop max_tokens max_completion_tokens presence_penalty "
    "frequency_penalty logit_bias logprobs top_logprobs user seed stream stream_options "
    "response_format tools tool_choice parallel_tool_calls service_tier store metadata "
    "reasoning_effort modalities audio prediction functions function_call web_search_options "
    "verbosity prompt_cache_key safety_identifier"
)
_COMPLETION_PARAMETERS = _names(
    "model prompt suffix max_tokens temperature top_p n stream stream_options logprobs echo stop "
    "presence_penalty frequency_penalty best_of logit_bias user seed"
)
PARAMETERS: dict[str, frozenset[str]] = {
    CHAT: _CHAT_PARAMETERS,
    COMPLETIONS: _COMPLETION_PARAMETERS,
}
MESSAGE_ROLES = ("system", "assistant", "user", "function", "tool", "developer")
MAX_STOP = 4

UNPARSABLE_BODY = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
    "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was "
    "not valid JSON. If you have trouble figuring out how to fix this, please contact us through "
    "our help center at help.openai.com.)"
)
NO_API_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with "
    "blank username) if you're accessing the API from your browser and are prompted for a "
    "username and password. You can obtain an API key from "
    "https://platform.openai.com/account/api-keys."
)
WRONG_API_KEY = (  # OpenAI shows the key masked; we leave it out (tests look for leaked keys)
    "Incorrect API key provided. You can find your API key at "
    "https://platform.openai.com/account/api-keys."
)


def _ft_base(model: str) -> str | None:
    """The base model of an OpenAI fine-tune (``ft:BASE:ORG:SUFFIX:ID``), else None."""
    return model.split(":")[1] if model.startswith("ft:") else None


def endpoints_for(model: str) -> frozenset[str]:
    """The endpoints (`CHAT`, `COMPLETIONS`) that serve `model`, by OpenAI's rules.

    OpenAI's chat models (gpt-4, gpt-4-*, gpt-4o, gpt-4o-*, gpt-3.5-turbo and its dated
    variants, the newer gpt-4.x / gpt-5 / o-series, and any ``ft:gpt-...`` fine-tune of them)
    are served on the chat endpoint only; its completion models (gpt-3.5-turbo-instruct,
    davinci-002, babbage-002 and their ``ft:`` fine-tunes) on the completions endpoint only.
    Any other name (a local or vLLM-served model) is served on both, as vLLM does.
    """
    base = _ft_base(model) or model
    if _COMPLETION_MODELS.fullmatch(base):
        return frozenset({COMPLETIONS})
    if _CHAT_MODELS.fullmatch(base) or (base != model and base.startswith("gpt-")):
        return frozenset({CHAT})
    return BOTH


def owner_of(model: str) -> str:
    """`owned_by` in the model list: "openai" for OpenAI's models, the organization of a
    fine-tune (``ft:BASE:ORG:...``), "system" for any other name."""
    if _ft_base(model) is not None:
        parts = model.split(":")
        return parts[2] if len(parts) > 2 and parts[2] else "user"
    return "openai" if endpoints_for(model) != BOTH else "system"


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
    body: dict[str, Any]  # {} when the body was not a JSON object
    arrived: float  # time.monotonic() on arrival
    outcome: str = ""  # "ok", a fault kind, or "error"
    index: int = 0  # arrival order (0 for the first request the server saw)
    status: int = 0  # the HTTP status answered (0 while in flight or for a dropped connection)
    reason: str = ""  # for outcome "error": the error message the client got


class Rejection(Exception):
    """A request OpenAI would refuse: the HTTP status and the error object's fields."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type_: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status, self.message = status, message
        self.param, self.code, self.type = param, code, type_

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def response(self, headers: Mapping[str, str] | None = None) -> web.Response:
        return web.Response(
            status=self.status,
            text=json.dumps(self.body()),
            content_type="application/json",
            headers=headers,
        )


# -- the request contract -------------------------------------------------------------------


def _json_type(value: Any) -> str:
    """How OpenAI's validator names the JSON type of `value` in its messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _number(value: float) -> str:
    return json.dumps(value)


def _quoted(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else json.dumps(value)


def _invalid_type(name: str, expected: str, value: Any) -> Rejection:
    return Rejection(
        400,
        f"Invalid type for '{name}': expected {expected}, but got {_json_type(value)} instead.",
        param=name,
        code="invalid_type",
    )


def _missing(name: str) -> Rejection:
    return Rejection(
        400,
        f"Missing required parameter: '{name}'.",
        param=name,
        code="missing_required_parameter",
    )


@dataclass(frozen=True)
class Spec:
    """The JSON type of one body parameter and, for numbers, its documented range."""

    kind: str  # integer, number, string, boolean, object, array, string|object, stop, prompt, messages
    minimum: float | None = None
    maximum: float | None = None


_SPECS: dict[str, Spec] = {
    "model": Spec("string"),
    "messages": Spec("messages"),
    "prompt": Spec("prompt"),
    "suffix": Spec("string"),
    "temperature": Spec("number", 0, 2),
    "top_p": Spec("number", 0, 1),
    "n": Spec("integer", 1, 128),
    "stop": Spec("stop"),
    "max_tokens": Spec("integer", 1),
    "max_completion_tokens": Spec("integer", 1),
    "presence_penalty": Spec("number", -2, 2),
    "frequency_penalty": Spec("number", -2, 2),
    "logit_bias": Spec("object"),
    "top_logprobs": Spec("integer", 0, 20),
    "user": Spec("string"),
    "seed": Spec("integer"),
    "stream": Spec("boolean"),
    "stream_options": Spec("object"),
    "response_format": Spec("object"),
    "tools": Spec("array"),
    "tool_choice": Spec("string|object"),
    "parallel_tool_calls": Spec("boolean"),
    "service_tier": Spec("string"),
    "store": Spec("boolean"),
    "metadata": Spec("object"),
    "reasoning_effort": Spec("string"),
    "modalities": Spec("array"),
    "audio": Spec("object"),
    "prediction": Spec("object"),
    "functions": Spec("array"),
    "function_call": Spec("string|object"),
    "web_search_options": Spec("object"),
    "verbosity": Spec("string"),
    "prompt_cache_key": Spec("string"),
    "safety_identifier": Spec("string"),
    "echo": Spec("boolean"),
    "best_of": Spec("integer", 0, 20),
}
# `logprobs` differs: a boolean in chat, the number of top tokens (0-5) in completions.
_LOGPROBS = {CHAT: Spec("boolean"), COMPLETIONS: Spec("integer", 0, 5)}


def _check_range(name: str, spec: Spec, value: float) -> None:
    word = "integer" if spec.kind == "integer" else "decimal"
    if spec.minimum is not None and value < spec.minimum:
        raise Rejection(
            400,
            f"Invalid '{name}': {word} below minimum value. Expected a value >= "
            f"{spec.minimum:g}, but got {_number(value)} instead.",
            param=name,
            code=f"{word}_below_min_value",
        )
    if spec.maximum is not None and value > spec.maximum:
        raise Rejection(
            400,
            f"Invalid '{name}': {word} above maximum value. Expected a value <= "
            f"{spec.maximum:g}, but got {_number(value)} instead.",
            param=name,
            code=f"{word}_above_max_value",
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_stop(value: Any) -> None:
    if isinstance(value, str):
        return
    if not isinstance(value, list):
        raise _invalid_type("stop", "one of a string or array of strings", value)
    if len(value) > MAX_STOP:
        raise Rejection(
            400,
            f"Invalid 'stop': array too long. Expected an array with maximum length {MAX_STOP}, "
            f"but got an array with length {len(value)} instead.",
            param="stop",
            code="array_above_max_length",
        )
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise _invalid_type(f"stop[{i}]", "a string", item)


def _check_prompt(value: Any) -> None:
    def tokens(items: Any) -> bool:
        return isinstance(items, list) and all(_is_int(t) for t in items)

    if isinstance(value, str):
        return
    if isinstance(value, list) and (
        all(isinstance(p, str) for p in value) or tokens(value) or all(tokens(p) for p in value)
    ):
        return
    expected = (
        "one of a string, array of strings, array of integers, or array of arrays of integers"
    )
    raise _invalid_type("prompt", expected, value)


def _check_messages(value: Any) -> None:
    if not isinstance(value, list):
        raise _invalid_type("messages", "an array", value)
    if not value:
        raise Rejection(400, "[] is too short - 'messages'")
    for i, message in enumerate(value):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise _invalid_type(where, "an object", message)
        role = message.get("role")
        if role is None:
            raise _missing(f"{where}.role")
        if role not in MESSAGE_ROLES:
            supported = ", ".join(f"'{r}'" for r in MESSAGE_ROLES[:-1])
            raise Rejection(
                400,
                f"Invalid value: {_quoted(role)}. Supported values are: {supported}, and "
                f"'{MESSAGE_ROLES[-1]}'.",
                param=f"{where}.role",
                code="invalid_value",
            )
        content = message.get("content")
        calls = message.get("tool_calls") or message.get("function_call")
        if content is None and not (role == "assistant" and calls):
            raise _missing(f"{where}.content")
        if content is not None and not (
            isinstance(content, str)
            or (isinstance(content, list) and all(isinstance(p, dict) for p in content))
        ):
            raise _invalid_type(f"{where}.content", "one of a string or array of objects", content)
        if role == "tool" and "tool_call_id" not in message:
            raise _missing(f"{where}.tool_call_id")


def _check_parameter(name: str, spec: Spec, value: Any) -> None:
    kind = spec.kind
    if kind == "messages":
        _check_messages(value)
    elif kind == "prompt":
        _check_prompt(value)
    elif kind == "stop":
        _check_stop(value)
    elif kind == "integer":
        if not _is_int(value):
            raise _invalid_type(name, "an integer", value)
        _check_range(name, spec, value)
    elif kind == "number":
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise _invalid_type(name, "a decimal", value)
        _check_range(name, spec, value)
    elif kind == "string" and not isinstance(value, str):
        raise _invalid_type(name, "a string", value)
    elif kind == "boolean" and not isinstance(value, bool):
        raise _invalid_type(name, "a boolean", value)
    elif kind == "object" and not isinstance(value, dict):
        raise _invalid_type(name, "an object", value)
    elif kind == "array" and not isinstance(value, list):
        raise _invalid_type(name, "an array", value)
    elif kind == "string|object" and not isinstance(value, str | dict):
        raise _invalid_type(name, "one of a string or object", value)


def check_body(api: str, body: Any) -> None:
    """Raise `Rejection` (HTTP 400) when `body` breaks the documented contract of endpoint
    `api`: not a JSON object, an unrecognized argument, a missing required parameter (model,
    then messages / prompt), or a parameter of the wrong type or out of its range. JSON null
    stands for "not given" (the SDK may send it)."""
    if not isinstance(body, dict):
        raise Rejection(400, UNPARSABLE_BODY)
    for name in body:
        if name not in PARAMETERS[api]:
            raise Rejection(400, f"Unrecognized request argument supplied: {name}")
    model = body.get("model")
    if model is None or model == "":
        raise Rejection(400, "you must provide a model parameter")
    required = "messages" if api == CHAT else "prompt"
    if body.get(required) is None:
        raise _missing(required)
    for name, value in body.items():
        if value is not None:
            spec = _LOGPROBS[api] if name == "logprobs" else _SPECS[name]
            _check_parameter(name, spec, value)


def check_endpoint(api: str, model: str, endpoints: frozenset[str]) -> None:
    """Raise OpenAI's 404 when `model` (served on `endpoints`) is sent to the wrong one."""
    if api in endpoints:
        return
    if api == COMPLETIONS:
        message = (
            "This is a chat model and not supported in the v1/completions endpoint. "
            "Did you mean to use v1/chat/completions?"
        )
    else:
        message = (
            "This is not a chat model and thus not supported in the v1/chat/completions "
            "endpoint. Did you mean to use v1/completions?"
        )
    raise Rejection(404, message, param="model")


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
    # model -> the endpoints ("chat", "completions") serving it, instead of `endpoints_for`
    endpoints: Mapping[str, Iterable[str]] = field(default_factory=dict)
    bind_port: int = 0  # the port to listen on (0: a free one); the fake vllm binds its --port

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
        self._endpoints = {model: frozenset(apis) for model, apis in self.endpoints.items()}
        for model, apis in self._endpoints.items():
            if not apis <= BOTH:
                raise ValueError(f"endpoints of {model!r} must be among {sorted(BOTH)}: {apis}")

    def endpoints_of(self, model: str) -> frozenset[str]:
        """The endpoints serving `model` here: the `endpoints` override, else `endpoints_for`."""
        return self._endpoints[model] if model in self._endpoints else endpoints_for(model)

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
        sock.bind(("127.0.0.1", self.bind_port))
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
        data = [
            {"id": m, "object": "model", "created": MODEL_CREATED, "owned_by": owner_of(m)}
            for m in self.models
        ]
        return web.json_response({"object": "list", "data": data})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, CHAT)

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, COMPLETIONS)

    async def _generate(self, request: web.Request, api: str) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = None
        record = RecordedRequest(
            request.path,
            body if isinstance(body, dict) else {},
            time.monotonic(),
            index=self._arrivals,
        )
        self._arrivals += 1
        self.requests.append(record)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            try:
                self._check_request(request, api, body)
            except Rejection as rejection:
                record.outcome, record.reason = "error", rejection.message
                response: web.StreamResponse = rejection.response()
            else:
                response = await self._answer(request, api, body, record)
        finally:
            self.in_flight -= 1
        if record.outcome != "drop":
            record.status = response.status
        return response

    def _check_request(self, request: web.Request, api: str, body: Any) -> None:
        """Raise `Rejection` for a request OpenAI would refuse: auth, body, model, endpoint."""
        if (denied := self._auth_rejection(request)) is not None:
            raise denied
        check_body(api, body)
        model = body["model"]
        if model not in self.models:
            raise Rejection(
                404,
                f"The model `{model}` does not exist or you do not have access to it.",
                code="model_not_found",
            )
        check_endpoint(api, model, self.endpoints_of(model))
        if body.get("stream"):
            raise Rejection(
                400, "stream=true is not supported by this test server", type_="test_error"
            )

    async def _answer(
        self, request: web.Request, api: str, body: dict[str, Any], record: RecordedRequest
    ) -> web.StreamResponse:
        """Answer a request that passed the contract checks: latency, faults, then the script."""
        model = body["model"]
        text = _request_text(api, body)
        script = ScriptRequest(api, model, text, body, request.headers, record.index)
        await self._sleep_latency(script)
        fault = self._draw_fault()
        if fault is not None:
            record.outcome = fault
            self.faults[fault] += 1
            return await self._fault_response(request, fault)
        output = self._script(script)
        if output is None:
            record.outcome = "error"
            record.reason = "no scripted output for this request"
            return _error(400, record.reason, "script_missing", type_="test_error")
        record.outcome = "ok"
        return web.json_response(_completion_body(api, model, text, output, body))

    def _auth_rejection(self, request: web.Request) -> Rejection | None:
        if self.api_key is None:
            return None
        header = request.headers.get("Authorization")
        if header == f"Bearer {self.api_key}":
            return None
        if not header or not header.removeprefix("Bearer").strip():
            return Rejection(401, NO_API_KEY)
        return Rejection(401, WRONG_API_KEY, code="invalid_api_key")

    def _check_auth(self, request: web.Request) -> web.Response | None:
        """The 401 response for a missing or wrong key (None when the key is right)."""
        denied = self._auth_rejection(request)
        return None if denied is None else denied.response()

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
            message = "Rate limit reached for requests. Please try again later."
            return _error(429, message, "rate_limit_exceeded", headers, type_="requests")
        if fault == "500":
            message = "The server had an error while processing your request. Sorry about that!"
            return _error(500, message, None, type_="server_error")
        if fault == "503":
            message = "The engine is currently overloaded, please try again later."
            return _error(503, message, None, type_="server_error")
        if fault == "timeout":
            await asyncio.sleep(self.hang_s)
            return _error(504, "Gateway timeout", "timeout", type_="server_error")
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


def _content_text(content: Any) -> str:
    """A message's text: its string content, or the text of its content parts."""
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def _request_text(api: str, body: dict[str, Any]) -> str:
    if api == CHAT:
        return "\n".join(_content_text(m.get("content")) for m in body.get("messages", []))
    prompt = body.get("prompt", "")
    if isinstance(prompt, str):
        return prompt
    return "\n".join(p if isinstance(p, str) else json.dumps(p) for p in prompt)


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
    if api == CHAT:
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
    status: int,
    message: str,
    code: str | None,
    headers: Mapping[str, str] | None = None,
    *,
    type_: str = "invalid_request_error",
    param: str | None = None,
) -> web.Response:
    """An OpenAI-shaped error response (for handlers here and in subclasses)."""
    return Rejection(status, message, param=param, code=code, type_=type_).response(headers)

"""Which OpenAI API a call goes to, and what its failures mean, for the `openai` backend.

Owns the choice of API (`resolve_api`: OpenAI serves its chat models — gpt-4, gpt-4o,
gpt-3.5-turbo — only on the chat API, so a text prompt goes there as ONE user message, as FireAct
sends it; the completions API is for completion models and fine-tuned base models behind vLLM),
which failures are worth a retry and how long the server asks to wait (`is_retryable`,
`retry_after_s`), and the one line each failure becomes (`describe`, `final_error`: a
`FireactError` for what the user must fix — a rejected key, an unknown model, a wrong base URL,
the wrong API — else an `LLMError`), with the API key scrubbed (`fireact.openai_client.scrub`).
"""

from __future__ import annotations

import email.utils
import json
import time
from typing import Literal

import openai

from fireact.errors import FireactError
from fireact.llm.base import LLMError
from fireact.openai_client import connection_reason, scrub

RETRY_STATUS = {408, 409, 429}
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


def model_ids(text: str) -> list[str] | None:
    """The ids of an OpenAI model list body, or None when it is not one."""
    try:
        body = json.loads(text)
    except ValueError:
        return None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        return None
    return [str(m["id"]) for m in data if isinstance(m, dict) and "id" in m]


def excerpt(text: str, limit: int = 60) -> str:
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


def describe(exc: BaseException, base_url: str, key: str) -> str:
    """A one-line description of an SDK error, scrubbed of the API key."""
    if isinstance(exc, openai.APIStatusError):
        text = f"HTTP {exc.status_code}: {exc.message}"
    elif isinstance(exc, openai.APIConnectionError):
        text = f"cannot reach {base_url}: {connection_reason(exc)}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return scrub(text, key)


def final_error(
    exc: BaseException, retries: int, *, name: str, model: str, base_url: str, key: str
) -> Exception:
    """Map an SDK error (after `retries` retries) to FireactError (user-fixable) or LLMError."""
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return FireactError(
            f"{base_url} rejected the API key (HTTP {exc.status_code}): check "
            "OPENAI_API_KEY or the api_key option"
        )
    if isinstance(exc, openai.APIStatusError) and (hint := api_hint(exc, model, base_url)):
        return FireactError(hint)
    if isinstance(exc, openai.NotFoundError):
        if _error_code(exc) == "model_not_found" or "model" in exc.message.lower():
            return FireactError(
                f"model {model!r} was not found at {base_url}: check the model name"
            )
        return FireactError(
            f"{base_url} answered 404 Not Found for {_request_path(exc)}: check the base "
            "URL (OpenAI-compatible servers usually serve under .../v1)"
        )
    tries = f" after {retries} retries" if retries else ""
    return LLMError(
        f"{name} failed{tries}: {describe(exc, base_url, key)}", retryable=is_retryable(exc)
    )


def api_hint(exc: openai.APIStatusError, model: str, base_url: str) -> str | None:
    """One line saying which --api to use when the server refused the API we called."""
    text = str(exc.message).lower()
    if CHAT_ONLY_REFUSAL in text:
        return (
            f"{base_url} serves {model!r} as a chat model only and refused the "
            "completions API: use --api chat (or --api auto)"
        )
    if NOT_CHAT_REFUSAL in text:
        return (
            f"{base_url} serves {model!r} as a completion model only and refused "
            "the chat API: use --api completions"
        )
    if NO_CHAT_TEMPLATE in text and exc.status_code == 400:
        return (
            f"{base_url} cannot run {model!r} on the chat API (it has no chat "
            "template): use --api completions (e.g. with --format alpaca)"
        )
    return None

"""Talking to OpenAI's files and fine-tuning API for `fireact.train.openai_ft`.

Owns the client (`make_client`, through `fireact.openai_client`), the translation of every SDK
error into a one-line `FireactError` (`api_errors`: a rejected key, an unknown job or file, a
refused connection, an API error with its message), and the check that an answer is what the
API promises (`api_json`: an HTML page from a proxy or a 200 without the job's ``id`` or
``status`` is a one-line error naming the endpoint and a short excerpt of what came back). The
key never appears in a message (`fireact.openai_client.scrub`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import openai

from fireact import openai_client
from fireact.errors import FireactError
from fireact.openai_client import connection_reason, scrub

EXCERPT_CHARS = 80
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def make_client(
    base_url: str | None = None,
    api_key: str | None = None,
    *,
    timeout_s: float = 60.0,
    max_retries: int = 2,
) -> openai.OpenAI:
    """A sync SDK client (`fireact.openai_client`); a missing key is a `FireactError`."""
    url = openai_client.base_url(base_url)
    key = openai_client.api_key(api_key, url)
    return openai_client.sync_client(url, key, timeout=timeout_s, max_retries=max_retries)


@contextmanager
def api_errors(client: openai.OpenAI, action: str) -> Iterator[None]:
    """Turn the SDK's errors raised while doing `action` into one-line `FireactError`s."""
    try:
        yield
    except openai.AuthenticationError:
        raise FireactError(
            f"{action}: the API key was rejected (401); check OPENAI_API_KEY"
        ) from None
    except openai.APIStatusError as err:
        if not isinstance(err.body, dict):  # not the API's JSON error: a proxy's page, say
            raise FireactError(_not_json(client, action, err.response)) from None
        if isinstance(err, openai.PermissionDeniedError):
            raise FireactError(
                f"{action}: permission denied (403): {_message(client, err)}"
            ) from None
        if isinstance(err, openai.NotFoundError):
            raise FireactError(f"{action}: not found (404): {_message(client, err)}") from None
        raise FireactError(
            f"{action}: API error {err.status_code}: {_message(client, err)}"
        ) from None
    except openai.APIConnectionError as err:
        raise FireactError(
            f"{action}: cannot reach {client.base_url} ({connection_reason(err)});"
            " check base_url / OPENAI_BASE_URL"
        ) from None


def _message(client: openai.OpenAI, err: openai.APIStatusError) -> str:
    body = err.body if isinstance(err.body, dict) else {}
    inner = body.get("error") if isinstance(body.get("error"), dict) else body
    text = str(inner.get("message") or err.message)
    return scrub(text, client.api_key)


def excerpt(text: str, key: str | None = None, limit: int = EXCERPT_CHARS) -> str:
    """The start of `text` on one line, key masked, cut to `limit` characters with "…"."""
    text = scrub(text, key)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _endpoint(response: Any) -> str:
    """``POST https://host/v1/files``: the request's method and URL, without its query."""
    request = response.request
    return f"{request.method} {str(request.url).split('?', 1)[0]}"


def _not_json(client: openai.OpenAI, action: str, response: Any) -> str:
    """The one line for an answer that is not JSON (an HTML page, text, nothing)."""
    text, key = response.text, client.api_key
    if not text.strip():
        came = "an empty body"
    elif "html" in response.headers.get("content-type", "") or text.lstrip().startswith("<"):
        title = _TITLE.search(text)
        came = f"an HTML page ({excerpt(title.group(1), key)!r})" if title else "an HTML page"
    else:
        came = f"text ({excerpt(text, key)!r})"
    return (
        f"{action}: {_endpoint(response)} answered {response.status_code} with {came} instead"
        " of the API's JSON; check base_url / OPENAI_BASE_URL (or a proxy in between)"
    )


def api_json(
    client: openai.OpenAI, action: str, raw: Any, fields: Mapping[str, type]
) -> dict[str, Any]:
    """The JSON object of a raw SDK response, holding `fields` (name → type, and a ``data``
    list only objects); anything else is a one-line `FireactError` naming the endpoint."""
    response = raw.http_response
    try:
        body = json.loads(response.text)
    except ValueError:
        raise FireactError(_not_json(client, action, response)) from None
    missing = [
        name for name, kind in fields.items()
        if not isinstance(body, dict) or not isinstance(body.get(name), kind)
    ]  # fmt: skip
    if not missing and "data" in fields and not all(isinstance(x, dict) for x in body["data"]):
        missing = ["data"]
    if missing:
        names = " and ".join(repr(name) for name in missing)
        raise FireactError(
            f"{action}: {_endpoint(response)} answered {response.status_code} without {names}"
            f" (got {excerpt(response.text, client.api_key)}); check base_url / OPENAI_BASE_URL"
        )
    return body

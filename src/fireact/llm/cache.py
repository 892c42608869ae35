"""A persistent cache of model calls: `CachedLLM`, and `resolve_llm_cache` for ``--llm-cache``.

This module owns the SQLite file that remembers what a model answered, so that a rerun of an
identical run (or another process running the same requests) makes no model call, gets the
same answers in the same order, and reports what it did not pay (`CachedLLM.saved_cost_usd`).

Key: ``(request, occurrence)``. ``request`` is the SHA-256 of the backend's `identity` (what
only the backend knows: endpoint, model, API setting; never the API key), the full prompt (a
string or the message list), the stop strings, ``max_tokens`` and ``temperature``.
``occurrence`` numbers the answered identical requests of one episode (the ``key`` argument,
itself not part of ``request``): the n-th time an episode asks the same thing (the agent re-asks
the same prompt after an unusable output) it gets the n-th stored answer. So an episode replays
the same sequence of answers, and two episodes asking the same thing share entries whatever the
scheduling. Calls without a ``key`` count as one episode. A failed call is not stored and does
not use up its occurrence number.

A hit returns the stored `Completion` (text, tokens, cost, finish reason) with ``latency_s`` =
the lookup time. A miss calls the inner model and stores the answer, committed before it is
returned, so a killed run loses no answer it had received. When two callers miss the same entry
at once (two processes, or two episodes in one process), both call the model, the first stored
answer wins, and both return it, so the records always match what a rerun will replay.

The file settings are the tool cache's (`fireact.tools.cache.connect`: WAL journal,
``synchronous=NORMAL``, busy timeout, one connection per thread): reads run inline in the event
loop (WAL readers do not wait for writers), writes run in a worker thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from fireact.errors import FireactError
from fireact.home import fireact_home
from fireact.llm.base import LLM, Completion, Prompt
from fireact.tools.cache import Connections

KEY_FORMAT = 1  # part of every request hash: bump it when the hashed fields change
SECRET_WORDS = ("key", "secret", "token", "password", "authorization")

SCHEMA = """
CREATE TABLE IF NOT EXISTS llm_cache (
    request           TEXT NOT NULL,     -- sha256 of identity, prompt, stop, max_tokens, temp
    occurrence        INTEGER NOT NULL,  -- 0: an episode's first such request, 1: its second ...
    text              TEXT NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cost_usd          REAL NOT NULL,
    finish_reason     TEXT NOT NULL,
    latency_s         REAL NOT NULL,     -- of the call that answered it
    created_at        REAL NOT NULL,
    PRIMARY KEY (request, occurrence)
) WITHOUT ROWID
"""
_COLUMNS = "text, prompt_tokens, completion_tokens, cost_usd, finish_reason"
_SELECT = f"SELECT {_COLUMNS} FROM llm_cache WHERE request=? AND occurrence=?"
_INSERT = "INSERT OR IGNORE INTO llm_cache VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"


def request_key(
    identity: Mapping[str, str],
    prompt: Prompt,
    stop: list[str] | None,
    max_tokens: int,
    temperature: float,
) -> str:
    """The hash that names one request (without its occurrence number)."""
    fields = {
        "format": KEY_FORMAT,
        "identity": dict(identity),
        "prompt": prompt,
        "stop": list(stop or []),  # None and [] send the same request
        "max_tokens": int(max_tokens),
        "temperature": float(temperature),
    }
    text = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def llm_identity(llm: LLM) -> dict[str, str]:
    """What tells `llm`'s answers apart from another backend's: its name, and its ``base_url``,
    ``model``, ``api`` (the setting) and ``text_api`` (where a text prompt goes) attributes when
    it has them (the openai backend)."""
    identity = {"name": llm.name}
    for attribute in ("base_url", "model", "api", "text_api"):
        value = getattr(llm, attribute, None)
        if isinstance(value, str):
            identity[attribute] = value
    return identity


def resolve_llm_cache(setting: str, temperature: float, home: Path | None = None) -> Path | None:
    """The cache file an ``--llm-cache`` value asks for, or None for no cache.

    "none": no cache; "auto": ``HOME/cache/llm.sqlite`` when `temperature` is 0 (a sampled
    run should not replay answers), else none; anything else: that file. `home` defaults to
    `fireact_home()` ($FIREACT_HOME, else ~/.cache/fireact).
    """
    if setting == "none":
        return None
    if setting == "auto":
        if temperature != 0:
            return None
        return (home or fireact_home()) / "cache" / "llm.sqlite"
    path = Path(setting).expanduser()
    if path.is_dir():
        raise FireactError(
            f"llm_cache: {path} is a folder; give a file path for the LLM cache, auto or none"
        )
    return path


class CachedLLM:
    """Wraps a model; answers are served from / stored into a SQLite file (see the module doc).

    `identity` must tell this backend's answers apart from any other's (endpoint, model, API
    setting; see `llm_identity`) and must not hold a secret: a name that looks like one (api_key,
    token, ...) raises `FireactError`. `check()` is passed through when the inner model has one.
    """

    check: Callable[[], Awaitable[Any]]  # set only when the inner model has one

    def __init__(self, inner: LLM, path: Path | str, *, identity: Mapping[str, str]) -> None:
        secrets = [name for name in identity if any(w in name.lower() for w in SECRET_WORDS)]
        if secrets:
            raise FireactError(
                f"LLM cache identity must not hold secrets ({', '.join(secrets)}): it names the "
                "endpoint, model and API only"
            )
        self.inner = inner
        self.name = inner.name
        self.path = Path(path)
        self.identity = {str(k): str(v) for k, v in identity.items()}
        self.hits = 0
        self.misses = 0
        self.saved_cost_usd = 0.0  # the stored cost of the answers served from the file
        self._asked: dict[tuple[str | None, str], int] = {}  # (episode, request) -> answered
        self._db = Connections(self.path, SCHEMA, "LLM cache")
        inner_check = getattr(inner, "check", None)
        if inner_check is not None:
            self.check = inner_check

    def __repr__(self) -> str:
        return f"CachedLLM({self.inner!r}, {str(self.path)!r})"

    def get(self, request: str, occurrence: int) -> Completion | None:
        """The stored answer of (request, occurrence), or None."""
        row = self._db.get().execute(_SELECT, (request, occurrence)).fetchone()
        return None if row is None else _completion(row)

    def put(self, request: str, occurrence: int, answer: Completion) -> Completion:
        """Store `answer` (committed on return) and return what the file now holds for the
        entry: `answer`, or the answer another caller stored first."""
        conn = self._db.get()
        row = (
            request,
            occurrence,
            answer.text,
            answer.prompt_tokens,
            answer.completion_tokens,
            answer.cost_usd,
            answer.finish_reason,
            answer.latency_s,
            time.time(),
        )
        if conn.execute(_INSERT, row).rowcount == 1:
            return answer
        first = conn.execute(_SELECT, (request, occurrence)).fetchone()
        return replace(_completion(first), latency_s=answer.latency_s)

    def count(self) -> int:
        """How many answers the file holds (all identities)."""
        (count,) = self._db.get().execute("SELECT count(*) FROM llm_cache").fetchone()
        return int(count)

    def stats(self) -> dict[str, Any]:
        """What the run summary reports: the file, hits, misses and the cost the hits saved."""
        return {
            "path": str(self.path),
            "hits": self.hits,
            "misses": self.misses,
            "saved_usd": self.saved_cost_usd,
        }

    async def complete(
        self,
        prompt: Prompt,
        *,
        stop: list[str] | None = None,
        max_tokens: int = 256,
        temperature: float = 0.0,
        key: str | None = None,
    ) -> Completion:
        """The stored answer to this request (the episode's n-th such one), else the model's."""
        start = time.perf_counter()
        request = request_key(self.identity, prompt, stop, max_tokens, temperature)
        slot = (key, request)
        occurrence = self._asked.get(slot, 0)
        self._asked[slot] = occurrence + 1  # taken now: the episode's next identical call is n+1
        stored = self.get(request, occurrence)
        if stored is not None:
            self.hits += 1
            self.saved_cost_usd += stored.cost_usd
            return replace(stored, latency_s=time.perf_counter() - start)
        self.misses += 1
        try:
            answer = await self.inner.complete(
                prompt, stop=stop, max_tokens=max_tokens, temperature=temperature, key=key
            )
        except BaseException:
            if self._asked.get(slot) == occurrence + 1:  # give the number back: nothing stored
                self._asked[slot] = occurrence
            raise
        return await asyncio.to_thread(self.put, request, occurrence, answer)

    async def aclose(self) -> None:
        """Close the inner model and the file's connections."""
        try:
            await self.inner.aclose()
        finally:
            self._db.close()


def _completion(row: tuple[Any, ...]) -> Completion:
    text, prompt_tokens, completion_tokens, cost, finish_reason = row
    return Completion(text, prompt_tokens, completion_tokens, cost, finish_reason)

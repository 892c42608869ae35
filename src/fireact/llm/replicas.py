"""Several OpenAI-compatible servers of one model as one backend: ``--base-url A,B,C``.

Owns `ReplicatedLLM`: the replicas (one `OpenAILLM` each, with no retries of its own), the
choice of replica per call — the one with the fewest requests in flight among those that are up
— and what happens when a replica fails a call in a way another server could answer (unreachable,
timed out, 429, 5xx): the replica is taken out for a back-off period (`down_s`, doubling while it
keeps failing, at most `max_down_s`) and the call is retried at once on another replica. When
every replica is out, the call waits for the first to come back. A call no server would answer
(a 400, a bad key) is not retried. After `max_retries` retries the last error stands, so a run
records the episode as failed and ``--resume`` retries it.

Hedging (``hedge_after_s``, see `fireact.llm.hedging`) works across the replicas: a call still
unanswered after the threshold gets one duplicate on another replica that is up (the least
busy), the first answer wins and the other request is cancelled. A duplicate on the same busy
server would wait in the same queue; another replica is where a slow server's calls get out.

Scale-out this way is vLLM's own recipe: one server per GPU (or per machine) and a client that
spreads the requests; vLLM's data / tensor parallel options (``--data-parallel-size``,
``--tensor-parallel-size``) split one server across GPUs instead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Sequence
from typing import Any

from fireact.errors import FireactError
from fireact.llm.base import Completion, LLMError, Prompt
from fireact.llm.hedging import Hedging


class ReplicatedLLM(Hedging):
    """One model behind several OpenAI-compatible base URLs (see the module doc)."""

    def __init__(
        self,
        model: str,
        base_urls: Sequence[str],
        *,
        max_retries: int = 6,
        down_s: float = 2.0,
        max_down_s: float = 60.0,
        **options: Any,
    ) -> None:
        from fireact.llm.openai_backend import OpenAILLM

        urls = [u.strip().rstrip("/") for u in base_urls if u.strip()]
        if len(urls) < 2 or len(set(urls)) != len(urls):
            raise FireactError(f"base_url: give two or more different URLs, not {base_urls!r}")
        options.pop("retry_base_delay", None)
        options.pop("retry_max_delay", None)
        self._init_hedging(options.pop("hedge_after_s", None))  # across replicas, not in one
        self.replicas = [OpenAILLM(model, base_url=u, max_retries=0, **options) for u in urls]
        self.model = model
        self.name = f"openai:{model}"
        self.base_url = ",".join(urls)
        self.api = self.replicas[0].api
        self.text_api = self.replicas[0].text_api
        self.max_retries = max_retries
        self.down_s, self.max_down_s = down_s, max_down_s
        self.in_flight = [0] * len(urls)
        self.down_until = [0.0] * len(urls)
        self.failures = [0] * len(urls)  # consecutive failures (the back-off doubles with them)
        self.calls = [0] * len(urls)  # calls answered, per replica
        self.retries = 0
        self.warnings: list[str] = []

    def __repr__(self) -> str:
        return f"ReplicatedLLM(model={self.model!r}, base_urls={self.base_url!r})"

    def pick(self, besides: int | None = None) -> tuple[int, float]:
        """(replica, seconds to wait): the least busy replica that is up (preferring one other
        than `besides`), else the first back."""
        now = time.monotonic()
        up = [i for i, until in enumerate(self.down_until) if until <= now]
        if up:
            others = [i for i in up if i != besides] or up
            return min(others, key=lambda i: (self.in_flight[i], i)), 0.0
        first = min(range(len(self.replicas)), key=lambda i: self.down_until[i])
        return first, self.down_until[first] - now

    def _mark_down(self, i: int) -> None:
        self.failures[i] += 1
        backoff = min(self.max_down_s, self.down_s * 2 ** (self.failures[i] - 1))
        self.down_until[i] = time.monotonic() + backoff

    async def complete(
        self,
        prompt: Prompt,
        *,
        stop: list[str] | None = None,
        max_tokens: int = 256,
        temperature: float = 0.0,
        key: str | None = None,
    ) -> Completion:
        """One call on the least busy replica that is up; failures move to another replica,
        and a slow call gets a hedge on another one (module doc)."""
        request = {"stop": stop, "max_tokens": max_tokens, "temperature": temperature, "key": key}
        last: LLMError | None = None
        for attempt in range(self.max_retries + 1):
            i, wait = self.pick()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                return await self._attempt(i, prompt, request)
            except LLMError as err:
                if not err.retryable:
                    raise
                last = err
                if attempt < self.max_retries:
                    self.retries += 1
        assert last is not None
        raise last

    async def _attempt(self, i: int, prompt: Prompt, request: dict[str, Any]) -> Completion:
        """One attempt on replica `i`; past the hedge threshold, a duplicate on another."""

        def send(headers: dict[str, str] | None) -> Awaitable[Completion]:
            hedge = headers is not None  # `_hedged` marks the duplicate with a header
            return self._on(self.pick(besides=i)[0] if hedge else i, prompt, request)

        return await self._send_maybe_hedged(send)

    async def _on(self, i: int, prompt: Prompt, request: dict[str, Any]) -> Completion:
        """One call on replica `i`, counted in flight; a retryable failure takes it out."""
        self.in_flight[i] += 1
        try:
            out = await self.replicas[i].complete(prompt, **request)
        except LLMError as err:
            if err.retryable:
                self._mark_down(i)
            raise
        finally:
            self.in_flight[i] -= 1
        self.failures[i] = 0
        self.calls[i] += 1
        return out

    def _describe(self, exc: BaseException) -> str:
        return str(exc)

    async def check(self) -> list[str]:
        """Each replica's start-up check; unreachable ones are warnings while one answers."""
        ids: list[str] = []
        self.warnings = []
        reachable = 0
        for i, replica in enumerate(self.replicas):
            try:
                ids += await replica.check()
            except FireactError as err:
                if "cannot reach" not in str(err):
                    raise
                self.warnings.append(f"{err}; going on with the other replicas")
                self._mark_down(i)
                continue
            reachable += 1
            self.warnings += replica.warnings
        if not reachable:
            raise FireactError(f"cannot reach any of {self.base_url}: start the servers")
        return list(dict.fromkeys(ids))

    async def aclose(self) -> None:
        """Close every replica's HTTP client."""
        for replica in self.replicas:
            await replica.aclose()

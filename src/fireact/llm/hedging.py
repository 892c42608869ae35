"""Hedged requests for the `openai` backend: a duplicate of a call that is slower than usual.

Owns `Hedging`, the part of `fireact.llm.openai_backend.OpenAILLM` that cuts tail latency:
when a request has been outstanding for the hedge threshold, ONE duplicate is sent (marked
with the ``X-Fireact-Hedge: 1`` header) and the first of the two to succeed wins; the other is
cancelled. If the first to finish fails, the other is awaited instead; only when both fail
does the (original's) error reach the caller's retries. The threshold is fixed
(`hedge_after_s` seconds) or ``"auto"``: the running p90 of the latencies of recent requests
(the last 1,000; a request cancelled because its hedge won counts with the time it had been
outstanding, a lower bound, which keeps the estimate from drifting down), with no hedging
until 50 latencies have been seen.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

from fireact.errors import FireactError

log = logging.getLogger("fireact.llm.openai_backend")

T = TypeVar("T")
HEDGE_HEADER = "X-Fireact-Hedge"  # sent (value "1") on hedged duplicate requests
HEDGE_AUTO_QUANTILE = 0.9  # "auto" hedging: hedge after this quantile of recent latencies ...
HEDGE_AUTO_MIN_SAMPLES = 50  # ... once this many latencies were seen (no hedging before)
HEDGE_AUTO_WINDOW = 1000  # ... over at most this many of the most recent ones
HEDGE_AUTO_REFRESH = 10  # recompute the "auto" threshold every this many new latencies

HedgeAfter = float | Literal["auto"] | None
Send = Callable[[dict[str, str] | None], Awaitable[T]]  # one request, with extra headers


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


def _consume_outcome(task: asyncio.Future[Any]) -> None:
    """Done callback of an abandoned request: fetch its outcome so that asyncio does not log it."""
    if not task.cancelled():
        task.exception()


class Hedging:
    """Hedged sending for a backend with a `name` and a `_describe(exc)` for its log lines.

    `hedges` counts the duplicates started (one cancelled at once may never reach the server)
    and `hedge_wins` those whose answer was used (they succeeded first).
    """

    name: str
    _describe: Callable[[BaseException], str]  # the backend's one-line error text

    def _init_hedging(self, hedge_after_s: Any) -> None:
        self.hedge_after_s = check_hedge_after(hedge_after_s)
        self.hedges = 0  # hedged duplicates sent so far
        self.hedge_wins = 0  # of those, the ones that answered before their original
        self._latencies: deque[float] = deque(maxlen=HEDGE_AUTO_WINDOW)
        self._new_latencies = 0
        self._auto_hedge_s: float | None = None

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

    async def _send_maybe_hedged(self, send: Send[T]) -> T:
        """`send(None)`, timed for the "auto" threshold; hedged once it is slower than the
        threshold, when there is one."""
        threshold = self.hedge_threshold_s()
        start = time.perf_counter()
        if threshold is None:
            response = await send(None)
            self._record_latency(time.perf_counter() - start)
            return response
        return await self._hedged(send, threshold, start)

    async def _hedged(self, send: Send[T], threshold: float, start: float) -> T:
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

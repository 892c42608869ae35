"""Worker threads for tools that run their work off the event loop (``sql``, ``calculate``).

Owns `WorkerThreads`: a thread pool started on first use and shut down by the tool's
``aclose`` without waiting for work still running (queued work is cancelled).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor


class WorkerThreads:
    """A lazily started `ThreadPoolExecutor` whose threads are named ``{prefix}_N``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._pool: ThreadPoolExecutor | None = None

    def executor(self, workers: int) -> ThreadPoolExecutor:
        """The pool, started with `workers` threads on first use."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(workers, thread_name_prefix=self.prefix)
        return self._pool

    def shutdown(self) -> None:
        """Cancel queued work and let the threads end (a running job finishes on its own)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

"""The `vllm` backend: a `vllm serve` child process managed for one run, used through `openai`.

``--model vllm:PATH_OR_ID[:ADAPTER]`` starts vLLM's OpenAI-compatible server on a free port of
127.0.0.1 (`fireact.llm.vllm_server.VLLMServer`), waits for its ``/health`` endpoint (a progress
line every few seconds), sends every call through the existing `OpenAILLM` (so retries,
hedging, usage and the API choice are the same as against any server), and stops the server
when the run ends, on Ctrl-C or on SIGTERM (its whole process group: SIGTERM, then SIGKILL after
a grace period). Building `VLLMLLM` starts nothing: the server starts in `check` (the runner's
start-up check, after it has checked and locked the run folder) or at the first call, without
blocking the event loop, so Ctrl-C / SIGTERM during a long model load stop it at once.

What vLLM is asked for (`VLLMServer.command`):

* ``--enable-prefix-caching``: every ReAct call of a run shares the long few-shot (or alpaca)
  prefix, which vLLM then computes once;
* with an adapter: ``--enable-lora --lora-modules fireact-adapter=ADAPTER`` and the calls name
  the adapter (``fireact-adapter``), so the base model is loaded once and the LoRA applied by
  vLLM's kernels; ``--max-lora-rank``: the given one, else the smallest rank vLLM accepts that
  holds the adapter's ``r`` (from a local adapter's ``adapter_config.json``);
* ``--dtype``, ``--max-model-len``, ``--gpu-memory-utilization`` when given (vLLM's defaults
  otherwise), plus any extra arguments, last.

Failures are one line: vLLM not installed (``pip install 'fireact[vllm]'``, needs a CUDA GPU);
the server exiting before it is healthy, or not healthy within ``start_timeout`` seconds; the
server dying mid-run: every request attempt first checks that the child still runs, and a
connection error waits up to `EXIT_GRACE_S` for a dying child, so a crash stops the run within
about a second instead of after every retry. Each message carries the last lines of the
server's log, which is kept in ``log_path`` (the runner puts it in the run folder, so a resumed
run appends to it). A crash mid-run raises `FireactError`, which stops the run with every
finished episode saved: ``--resume`` continues.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import openai

from fireact.errors import FireactError
from fireact.llm.base import Completion, LLMError, Prompt
from fireact.llm.hedging import Send
from fireact.llm.openai_backend import OpenAILLM
from fireact.llm.vllm_server import (
    ADAPTER_NAME,
    FIRST_NOTE_S,
    VLLM_LORA_RANKS,
    VLLMServer,
    adapter_lora_rank,
    free_port,
    log_tail,
)

__all__ = [
    "ADAPTER_NAME",
    "EXIT_GRACE_S",
    "FIRST_NOTE_S",
    "VLLM_LORA_RANKS",
    "VLLMLLM",
    "VLLMServer",
    "adapter_lora_rank",
    "free_port",
    "log_tail",
]

EXIT_GRACE_S = 1.0  # after a connection error, how long to wait for the child's exit code
T = TypeVar("T")


def died_error(server: VLLMServer, code: int) -> FireactError:
    """The one line for a server that exited during the run."""
    return FireactError(
        f"vLLM exited with code {code} during the run (log {server.log_path}): "
        f"{log_tail(server.log_path)}; finished episodes are saved, rerun with --resume"
    )


class ServedOpenAILLM(OpenAILLM):
    """`OpenAILLM` against a managed server: each attempt (the first and every retry) first
    checks the child's exit code, and a connection error waits briefly for a dying child."""

    def __init__(self, server: VLLMServer, **options: Any) -> None:
        super().__init__(server.served_model, base_url=server.base_url, **options)
        self.server = server

    def raise_if_exited(self) -> None:
        """`died_error` when the server's process has exited (nothing while it runs)."""
        code = self.server.exit_code()
        if code is not None:
            raise died_error(self.server, code)

    async def _request(self, send: Send[T]) -> T:
        self.raise_if_exited()
        try:
            return await super()._request(send)
        except openai.APIConnectionError as exc:  # a timeout too: a dead peer can look like one
            slow = isinstance(exc, openai.APITimeoutError)  # a live server's slow answer: no wait
            code = await self.server.wait_exit(0.0 if slow else EXIT_GRACE_S)
            if code is not None:
                raise died_error(self.server, code) from None
            raise


class VLLMLLM:
    """The `LLM` protocol over a managed `VLLMServer` and an `OpenAILLM` pointed at it.

    `server_options` go to `VLLMServer` (dtype, max_model_len, gpu_memory_utilization,
    max_lora_rank, extra_args, log_path, ...); `options` to `OpenAILLM` (max_concurrency,
    timeout, max_retries, api, ...). The server starts in `start` (called by `check` and by the
    first call, once), and stops in `aclose`.
    """

    def __init__(
        self,
        model: str,
        adapter: str | None = None,
        *,
        server_options: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        self.server = VLLMServer(model, adapter, **(server_options or {}))
        self.name = f"vllm:{model}" + (f":{adapter}" if adapter else "")
        options.setdefault("api_key", "EMPTY")
        self.openai = ServedOpenAILLM(self.server, **options)
        self.warnings: list[str] = []
        self._started = False
        self._failed: BaseException | None = None
        self._start_lock = asyncio.Lock()

    async def start(self, progress: Callable[[str], None] | None = None) -> None:
        """Start the server and wait until it is healthy (once; later calls return at once)."""
        if self._started:
            return
        async with self._start_lock:
            if self._failed is not None:
                raise self._failed
            if not self._started:
                try:
                    await self.server.astart(progress)
                except FireactError as err:
                    self._failed = err
                    raise
                self._started = True

    async def complete(
        self,
        prompt: Prompt,
        *,
        stop: list[str] | None = None,
        max_tokens: int = 256,
        temperature: float = 0.0,
        key: str | None = None,
    ) -> Completion:
        """One call through the OpenAI-compatible server; a dead server stops the run."""
        await self.start()
        try:
            return await self.openai.complete(
                prompt, stop=stop, max_tokens=max_tokens, temperature=temperature, key=key
            )
        except LLMError:
            self.openai.raise_if_exited()
            raise

    async def check(self) -> list[str]:
        """Start the server, then the OpenAI start-up check against it."""
        await self.start()
        ids = await self.openai.check()
        self.warnings = list(self.openai.warnings)
        return ids

    async def aclose(self) -> None:
        """Close the HTTP client and stop the server."""
        try:
            await self.openai.aclose()
        finally:
            self.server.stop()

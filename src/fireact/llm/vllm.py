"""The `vllm` backend: a `vllm serve` child process managed for one run, used through `openai`.

``--model vllm:PATH_OR_ID[:ADAPTER]`` starts vLLM's OpenAI-compatible server on a free port of
127.0.0.1 (`VLLMServer`), waits for its ``/health`` endpoint (a progress line every few seconds),
sends every call through the existing `OpenAILLM` (so retries, hedging, usage and the API choice
are the same as against any server), and stops the server when the run ends, on Ctrl-C or on
SIGTERM (its whole process group: SIGTERM, then SIGKILL after a grace period).

What vLLM is asked for (`VLLMServer.command`):

* ``--enable-prefix-caching``: every ReAct call of a run shares the long few-shot (or alpaca)
  prefix, which vLLM then computes once;
* with an adapter: ``--enable-lora --lora-modules fireact-adapter=ADAPTER`` and the calls name
  the adapter (``fireact-adapter``), so the base model is loaded once and the LoRA applied by
  vLLM's kernels; ``--max-lora-rank`` when given;
* ``--dtype``, ``--max-model-len``, ``--gpu-memory-utilization`` when given (vLLM's defaults
  otherwise), plus any extra arguments.

Failures are one line: vLLM not installed (``pip install 'fireact[vllm]'``, needs a CUDA GPU);
the server exiting before it is healthy, or not healthy within ``start_timeout`` seconds; the
server dying mid-run (the next failed call notices the exit). Each message carries the last lines
of the server's log, which is kept in ``log_path`` (the runner puts it in the run folder, so a
resumed run appends to it). A crash mid-run raises `FireactError`, which stops the run with every
finished episode saved: ``--resume`` continues.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fireact.errors import FireactError
from fireact.llm.base import Completion, LLMError, Prompt

ADAPTER_NAME = "fireact-adapter"  # the name calls use for the LoRA adapter
LOG_TAIL_LINES = 8
INSTALL_HINT = "pip install 'fireact[vllm]' (vLLM needs a CUDA GPU)"


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a log file on one line (" | " between lines), or "(empty log)"."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    kept = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    return " | ".join(kept) if kept else "(empty log)"


class VLLMServer:
    """One ``vllm serve`` child process (see the module doc); `start` / `stop`, or ``with``."""

    def __init__(
        self,
        model: str,
        adapter: str | None = None,
        *,
        log_path: Path | str | None = None,
        dtype: str | None = None,
        max_model_len: int | None = None,
        gpu_memory_utilization: float | None = None,
        max_lora_rank: int | None = None,
        extra_args: Sequence[str] = (),
        executable: str = "vllm",
        start_timeout: float = 900.0,
        stop_timeout: float = 15.0,
        port: int | None = None,
    ) -> None:
        if not model:
            raise FireactError("vllm backend needs a model: use vllm:PATH_OR_ID[:ADAPTER]")
        self.model = model
        self.adapter = adapter
        self.dtype = dtype
        self.max_model_len = max_model_len
        self.gpu_memory_utilization = gpu_memory_utilization
        self.max_lora_rank = max_lora_rank
        self.extra_args = list(extra_args)
        self.executable = executable
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.port = port or free_port()
        if log_path is None:
            log_path = Path(tempfile.mkdtemp(prefix="fireact-vllm-")) / "vllm.log"
        self.log_path = Path(log_path)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def served_model(self) -> str:
        """The model name the calls use: the adapter's module name, or the base model's."""
        return ADAPTER_NAME if self.adapter else self.model

    def command(self, executable: str | None = None) -> list[str]:
        """The ``vllm serve`` command line."""
        cmd = [executable or self.executable, "serve", self.model]
        cmd += ["--host", "127.0.0.1", "--port", str(self.port), "--enable-prefix-caching"]
        if self.adapter:
            cmd += ["--enable-lora", "--lora-modules", f"{ADAPTER_NAME}={self.adapter}"]
            if self.max_lora_rank:
                cmd += ["--max-lora-rank", str(self.max_lora_rank)]
        if self.dtype:
            cmd += ["--dtype", self.dtype]
        if self.max_model_len:
            cmd += ["--max-model-len", str(self.max_model_len)]
        if self.gpu_memory_utilization:
            cmd += ["--gpu-memory-utilization", str(self.gpu_memory_utilization)]
        return cmd + self.extra_args

    # -- life cycle -------------------------------------------------------------------------
    def __enter__(self) -> VLLMServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, progress: Callable[[str], None] | None = None) -> None:
        """Start the server and wait until ``/health`` answers 200 (or fail in one line)."""
        executable = shutil.which(self.executable)
        if executable is None:
            raise FireactError(
                f"vllm:{self.model}: the vllm command is not installed: {INSTALL_HINT}"
            )
        with contextlib.suppress(OSError):
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            log = self.log_path.open("ab")
        except OSError as err:
            raise FireactError(
                f"{self.log_path}: cannot write the vLLM log ({err.strerror})"
            ) from None
        with log:
            self.process = subprocess.Popen(
                self.command(executable),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stop() ends its workers too
            )
        self._wait_healthy(progress or _stderr_progress)

    def _wait_healthy(self, progress: Callable[[str], None]) -> None:
        started = time.monotonic()
        next_note = started + 5.0
        while True:
            code = self.process.poll() if self.process is not None else None
            if code is not None:
                raise FireactError(
                    f"vLLM exited with code {code} before it was ready (log {self.log_path}): "
                    f"{log_tail(self.log_path)}"
                )
            if self.healthy():
                return
            now = time.monotonic()
            if now - started > self.start_timeout:
                self.stop()
                raise FireactError(
                    f"vLLM was not ready after {self.start_timeout:.0f} s (log {self.log_path}): "
                    f"{log_tail(self.log_path)}"
                )
            if now >= next_note:
                progress(f"waiting for vLLM to load {self.model} ({now - started:.0f} s)")
                next_note = now + 10.0
            time.sleep(0.2)

    def healthy(self) -> bool:
        """True when ``GET /health`` answers 200."""
        url = f"http://127.0.0.1:{self.port}/health"
        try:
            with urllib.request.urlopen(url, timeout=2.0) as reply:  # noqa: S310 - 127.0.0.1
                return bool(reply.status == 200)
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def exit_code(self) -> int | None:
        """The server's exit code, or None while it runs (or before it started)."""
        return None if self.process is None else self.process.poll()

    def stop(self) -> None:
        """Stop the server's process group: SIGTERM, then SIGKILL after `stop_timeout` s."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, self.stop_timeout), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, sig)
            try:
                process.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue


def _stderr_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class VLLMLLM:
    """The `LLM` protocol over a managed `VLLMServer` and an `OpenAILLM` pointed at it.

    `server_options` go to `VLLMServer` (dtype, max_model_len, gpu_memory_utilization, log_path,
    ...); `options` to `OpenAILLM` (max_concurrency, timeout, max_retries, api, ...). The
    server starts in the constructor (the run's start-up), and stops in `aclose`.
    """

    def __init__(
        self,
        model: str,
        adapter: str | None = None,
        *,
        server_options: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        from fireact.llm.openai_backend import OpenAILLM

        self.server = VLLMServer(model, adapter, **(server_options or {}))
        self.name = f"vllm:{model}" + (f":{adapter}" if adapter else "")
        self.server.start()
        try:
            options.setdefault("api_key", "EMPTY")
            self.openai = OpenAILLM(
                self.server.served_model, base_url=self.server.base_url, **options
            )
        except BaseException:
            self.server.stop()
            raise

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
        try:
            return await self.openai.complete(
                prompt, stop=stop, max_tokens=max_tokens, temperature=temperature, key=key
            )
        except LLMError:
            self._check_alive()
            raise

    def _check_alive(self) -> None:
        code = self.server.exit_code()
        if code is not None:
            raise FireactError(
                f"vLLM exited with code {code} during the run (log {self.server.log_path}): "
                f"{log_tail(self.server.log_path)}; finished episodes are saved, rerun with "
                "--resume"
            )

    async def check(self) -> list[str]:
        """The OpenAI start-up check against the managed server."""
        ids = await self.openai.check()
        self.warnings = list(self.openai.warnings)
        return ids

    async def aclose(self) -> None:
        """Close the HTTP client and stop the server."""
        try:
            await self.openai.aclose()
        finally:
            self.server.stop()

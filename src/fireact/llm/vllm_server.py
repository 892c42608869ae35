"""The managed ``vllm serve`` child process: its command line, start, health wait and stop.

Owns `VLLMServer` (one server on a free port of 127.0.0.1, its log file, its process group),
the LoRA rank it is asked to serve (`adapter_lora_rank`, `VLLM_LORA_RANKS`) and the progress
timing of the health wait (`FIRST_NOTE_S`, `NOTE_EVERY_S`). `fireact.llm.vllm` builds the `LLM`
backend on it.

Start-up is never left half-done: the child runs in its own session (so stopping it ends vLLM's
worker processes too), and ANY exception while it starts or loads (a crash, the start timeout,
Ctrl-C, SIGTERM, an asyncio cancellation) stops its whole process group before the exception
goes on. `astart` waits without blocking the event loop, so a Ctrl-C (asyncio cancels the run)
is acted on within one poll (`POLL_S`); `start` runs it for synchronous callers.
`stop` sends SIGTERM to the group, then SIGKILL after `stop_timeout` seconds, or at once when a
second Ctrl-C interrupts the wait: no server outlives fireact.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

import httpx

from fireact.errors import FireactError
from fireact.files import read_json

ADAPTER_NAME = "fireact-adapter"  # the name calls use for the LoRA adapter
LOG_TAIL_LINES = 8
INSTALL_HINT = "pip install 'fireact[vllm]' (vLLM needs a CUDA GPU)"
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # vLLM's accepted --max-lora-rank
POLL_S = 0.2  # how often the health wait looks at the child and /health
FIRST_NOTE_S = 2.0  # the first "waiting for vLLM to load ..." line comes after this many seconds
NOTE_EVERY_S = 10.0  # then one line every this many seconds
HEALTH_TIMEOUT_S = 2.0  # one GET /health


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
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(kept[-lines:]) if kept else "(empty log)"


def adapter_lora_rank(adapter: str | None) -> int | None:
    """The ``--max-lora-rank`` a local PEFT adapter needs: the smallest rank vLLM accepts that is
    at least the adapter's ``r`` (its ``adapter_config.json``). None without an adapter or for
    one that is not a local folder (a Hub id: vLLM's default rank applies)."""
    if not adapter or not Path(adapter).is_dir():
        return None
    config_path = Path(adapter) / "adapter_config.json"
    config = read_json(config_path)
    rank = config.get("r") if isinstance(config, dict) else None
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise FireactError(f"{config_path}: field r: expected a positive integer, got {rank!r}")
    for accepted in VLLM_LORA_RANKS:
        if accepted >= rank:
            return accepted
    raise FireactError(
        f"{config_path}: field r: rank {rank} is above the largest LoRA rank vLLM serves "
        f"({VLLM_LORA_RANKS[-1]})"
    )


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def _stderr_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class VLLMServer:
    """One ``vllm serve`` child process (see the module doc); `start` / `astart` / `stop`, or
    ``with``. `max_lora_rank` None means the adapter's own rank (`adapter_lora_rank`);
    `extra_args` are appended to the command line last."""

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
        self.max_lora_rank = max_lora_rank or adapter_lora_rank(adapter)
        self.extra_args = list(extra_args)
        self.executable = executable
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.port = port or free_port()
        if log_path is None:
            log_path = Path(tempfile.mkdtemp(prefix="fireact-vllm-")) / "vllm.log"
        self.log_path = Path(log_path)
        self.process: subprocess.Popen[bytes] | None = None
        self._notes = 0  # progress lines printed during this start

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
        """`astart` for synchronous callers (no event loop running)."""
        asyncio.run(self.astart(progress))

    async def astart(self, progress: Callable[[str], None] | None = None) -> None:
        """Start the server and wait until ``/health`` answers 200 (or fail in one line). The
        wait yields to the event loop, so a cancellation (Ctrl-C under ``asyncio.run``) stops
        the server within one poll."""
        started = self._spawn()
        try:
            async with httpx.AsyncClient(timeout=HEALTH_TIMEOUT_S, trust_env=False) as http:
                while not self._ready(
                    started, await self._ahealthy(http), progress or _stderr_progress
                ):
                    await asyncio.sleep(POLL_S)
        except BaseException:
            self.stop()
            raise

    def _spawn(self) -> float:
        """Start the child (its own session and process group); returns the start time."""
        executable = shutil.which(self.executable)
        if executable is None:
            raise FireactError(
                f"vllm:{self.model}: the vllm command is not installed: {INSTALL_HINT}"
            )
        with contextlib.suppress(OSError):
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            log: IO[bytes] = self.log_path.open("ab")
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
        self._notes = 0
        return time.monotonic()

    def _ready(self, started: float, healthy: bool, progress: Callable[[str], None]) -> bool:
        """One look during the wait: True once healthy; FireactError when the child exited or
        the start timeout passed; a progress line now and then."""
        if healthy:
            return True
        code = self.exit_code()
        if code is not None:
            raise FireactError(
                f"vLLM exited with code {code} before it was ready (log {self.log_path}): "
                f"{log_tail(self.log_path)}"
            )
        waited = time.monotonic() - started
        if waited > self.start_timeout:
            raise FireactError(
                f"vLLM was not ready after {self.start_timeout:.0f} s (log {self.log_path}): "
                f"{log_tail(self.log_path)}"
            )
        notes_due = 0 if waited < FIRST_NOTE_S else 1 + int((waited - FIRST_NOTE_S) // NOTE_EVERY_S)
        if notes_due > self._notes:
            self._notes = notes_due
            progress(f"waiting for vLLM to load {self.model} ({waited:.0f} s)")
        return False

    def healthy(self) -> bool:
        """True when ``GET /health`` answers 200."""
        with httpx.Client(timeout=HEALTH_TIMEOUT_S, trust_env=False) as http:  # 127.0.0.1
            try:
                return http.get(self._health_url).status_code == 200
            except httpx.HTTPError:
                return False

    async def _ahealthy(self, http: httpx.AsyncClient) -> bool:
        try:
            return (await http.get(self._health_url)).status_code == 200
        except httpx.HTTPError:
            return False

    @property
    def _health_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/health"

    def exit_code(self) -> int | None:
        """The server's exit code, or None while it runs (or before it started)."""
        return None if self.process is None else self.process.poll()

    async def wait_exit(self, seconds: float) -> int | None:
        """The exit code once the server has exited, waiting up to `seconds` (None: running)."""
        deadline = time.monotonic() + seconds
        while (code := self.exit_code()) is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return code

    def stop(self) -> None:
        """Stop the server's process group: SIGTERM, then SIGKILL after `stop_timeout` s or at
        once when the wait is interrupted (a second Ctrl-C)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=self.stop_timeout)
        except BaseException as exc:  # too slow, or interrupted: no orphan either way
            _signal_group(process, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5.0)
            if not isinstance(exc, subprocess.TimeoutExpired):
                raise

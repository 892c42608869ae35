"""A fake ``vllm`` executable for CPU tests: vLLM's command line in front of our OpenAI server.

``vllm serve MODEL --host H --port P [--enable-lora --lora-modules NAME=PATH] ...`` parses the
flags fireact passes (unknown flags are refused, as vLLM's argument parser does), serves
``/health`` and the OpenAI endpoints of `tests.helpers.openai_server.OpenAIServer` on that port (the
base model and each LoRA module as served models, on both APIs as vLLM does), and answers like
a ReAct teacher: search once, then finish. Environment knobs:

* ``FAKE_VLLM_MODE``: ``ok`` (default), ``crash_at_start`` (log a CUDA error, exit 1 before
  serving), ``crash_after:N`` (exit 1 right after answering N generation requests);
* ``FAKE_VLLM_READY_S``: seconds before ``/health`` answers 200 (model loading);
* ``FAKE_VLLM_ARGS``: a file to which the received command line is written (JSON);
* ``FAKE_VLLM_PID``: a file to which the server's pid is written, first thing;
* ``FAKE_VLLM_TERM_S``: seconds the server takes to exit after SIGTERM (a slow shutdown; only
  SIGKILL ends it sooner).

`install(bin_dir)` writes the executable into a folder to put first on PATH.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

from aiohttp import web

REPO = Path(__file__).resolve().parents[2]


def install(bin_dir: Path) -> Path:
    """Write an executable ``vllm`` running this module into `bin_dir`; returns its path."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / "vllm"
    exe.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from tests.helpers.fake_vllm import main\n"
        "main()\n"
    )
    exe.chmod(0o755)
    return exe


def teacher(request) -> str:  # noqa: ANN001 - a ScriptRequest
    """An alpaca-format student: search once, then answer "done"."""
    if "Observation:" in request.text:
        return " I know it now.\nAction: finish[done]"
    return " I should search.\nAction: search[topic 1]"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vllm")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve")
    serve.add_argument("model")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--enable-prefix-caching", action="store_true")
    serve.add_argument("--enable-lora", action="store_true")
    serve.add_argument("--lora-modules", nargs="+", default=[])
    # vLLM's argument parser takes only these (its own choices lists), and refuses the rest
    serve.add_argument("--max-lora-rank", type=int, choices=(1, 8, 16, 32, 64, 128, 256, 320, 512))
    serve.add_argument(
        "--dtype", choices=("auto", "half", "float16", "bfloat16", "float", "float32")
    )
    serve.add_argument("--max-model-len", type=int)
    serve.add_argument("--gpu-memory-utilization", type=float)
    serve.add_argument("--served-model-name", nargs="+")
    serve.add_argument("--enforce-eager", action="store_true")
    serve.add_argument("--max-num-seqs", type=int)
    return parser.parse_args(argv)


def slow_shutdown(seconds: float) -> None:
    """Exit `seconds` after SIGTERM (as a server draining its engine would)."""

    def on_term(signum: int, frame: object) -> None:
        print(f"INFO: shutting down (takes {seconds:g} s)", flush=True)
        time.sleep(seconds)
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)


def main() -> None:
    if term_s := os.environ.get("FAKE_VLLM_TERM_S"):
        slow_shutdown(float(term_s))
    if path := os.environ.get("FAKE_VLLM_PID"):
        Path(path).write_text(str(os.getpid()))
    from tests.helpers.openai_server import OpenAIServer

    args = parse(sys.argv[1:])
    if path := os.environ.get("FAKE_VLLM_ARGS"):
        Path(path).write_text(json.dumps(sys.argv[1:]))
    mode = os.environ.get("FAKE_VLLM_MODE", "ok")
    print(
        f"INFO: starting vLLM API server for {args.model} on port {args.port} ({mode})", flush=True
    )
    if mode == "crash_at_start":
        print("ERROR: torch.OutOfMemoryError: CUDA out of memory.", flush=True)
        sys.exit(1)
    if args.lora_modules and not args.enable_lora:
        print("ERROR: --lora-modules needs --enable-lora", flush=True)
        sys.exit(2)
    served = tuple(args.served_model_name or [args.model])
    served += tuple(m.split("=", 1)[0] for m in args.lora_modules)
    ready_at = time.monotonic() + float(os.environ.get("FAKE_VLLM_READY_S", "0"))

    async def health(request: web.Request) -> web.Response:
        return web.Response(status=200 if time.monotonic() >= ready_at else 503)

    limit = int(mode.split(":", 1)[1]) if mode.startswith("crash_after:") else None
    lock = threading.Lock()
    answered = 0

    def die() -> None:
        print("ERROR: Engine core died unexpectedly (RuntimeError: CUDA error)", flush=True)
        os._exit(1)

    def script(request) -> str:  # noqa: ANN001
        nonlocal answered
        with lock:
            answered += 1
            if limit is not None and answered > limit:
                die()  # the engine is gone: this request is never answered
            if limit is not None and answered == limit:
                threading.Timer(0.05, die).start()  # after this answer has gone out
        print(f"INFO: request {request.index} ({request.api})", flush=True)
        return teacher(request)

    server = OpenAIServer(
        script,
        models=served,
        endpoints={m: ("chat", "completions") for m in served},
        bind_port=args.port,
        extra_routes=[web.get("/health", health)],
    )
    server.start()
    print("INFO: Application startup complete.", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()

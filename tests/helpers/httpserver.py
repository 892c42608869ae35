"""A tiny threaded HTTP server on 127.0.0.1 for testing HTTP tools against real sockets.

Tests give it a handler ``(path, query) -> Reply`` (`serve`), or one that sees the whole
`Request` with its headers (`serve_requests`), and read back every request it received (path,
query parameters, headers). Nothing here reaches the network.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@dataclass
class Reply:
    """What the server answers: a status, a body (bytes, str or JSON-able) and a content type."""

    status: int = 200
    body: Any = None
    content_type: str = "application/json"
    delay: float = 0.0  # seconds to sleep before answering (for timeout tests)
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


@dataclass
class Request:
    """One request the server received."""

    path: str
    query: dict[str, str]  # single-valued query parameters
    headers: dict[str, str]


@dataclass
class Server:
    """A running server: its base URL and the requests it has received so far."""

    url: str
    requests: list[Request] = field(default_factory=list)


Handler = Callable[[str, dict[str, str]], Reply]
RequestHandler = Callable[[Request], Reply]


def fixture(name: str) -> Any:
    """Load a saved JSON response from tests/fixtures."""
    return json.loads((FIXTURES / name).read_text())


@contextmanager
def serve(handler: Handler) -> Iterator[Server]:
    """Run `handler` behind a local HTTP server for the duration of the ``with`` block."""
    with serve_requests(lambda request: handler(request.path, request.query)) as server:
        yield server


@contextmanager
def serve_requests(handler: RequestHandler) -> Iterator[Server]:
    """Like `serve`, for a handler given the whole `Request` (its headers too)."""
    server = Server(url="")
    stop = threading.Event()

    class _Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            request = Request(parts.path, query, dict(self.headers.items()))
            server.requests.append(request)
            reply = handler(request)
            if reply.delay:
                stop.wait(reply.delay)
            body = reply.encoded()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout tests)

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join()

"""A persistent, concurrency-safe cache of ``search`` results: `CachedTool`.

This module owns the SQLite file that remembers what a search returned, so a rerun (or another
process running the same split) never pays for the same query twice. One entry holds the
observation and, when the search opened a page, that page's sentences, so a hit leaves the
episode's `ToolState` exactly as the miss did and ``lookup`` behaves the same.

Key: ``(namespace, action, argument)``, namespace defaulting to the inner tool's ``namespace``
attribute when it has one (LocalSearch: style and index), else its name. Only
``search`` is cached (its result does not depend on the episode); every other action, e.g.
``lookup``, goes to the inner tool. Exceptions are not cached.

Safety: WAL journal, ``synchronous=NORMAL`` and a busy timeout; each insert is its own
committed transaction (``INSERT OR IGNORE`` on the primary key, so two processes that miss the
same query at once store it once). Each thread has its own connection. Reads run inline in the
event loop (WAL readers do not wait for writers); writes run in a worker thread so a writer
waiting on another process's lock never stalls the loop. A process killed at any point loses at
most the insert in flight; with ``synchronous=NORMAL`` an OS crash or power loss may also roll
back the last few commits, but never corrupts the file.

The connection settings (`connect`) and the per-thread connections (`Connections`) are shared
with the LLM-call cache, `fireact.llm.cache`, which keeps its own table (by default in its own file).

Wrap order: put the cache *inside* `NoisyTool` (``NoisyTool(CachedTool(tool))``) so noise is
never stored; wrapping a `NoisyTool` raises `FireactError`.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from fireact.errors import FireactError
from fireact.tools.base import Tool, ToolState, open_page

CACHED_ACTIONS = frozenset({"search"})
BUSY_TIMEOUT_MS = 30_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tool_cache (
    namespace   TEXT NOT NULL,
    action      TEXT NOT NULL,
    argument    TEXT NOT NULL,
    observation TEXT NOT NULL,
    page        TEXT,            -- JSON list of sentences the search opened; NULL: none opened
    created_at  REAL NOT NULL,
    PRIMARY KEY (namespace, action, argument)
) WITHOUT ROWID
"""
_SELECT = "SELECT observation, page FROM tool_cache WHERE namespace=? AND action=? AND argument=?"
_INSERT = "INSERT OR IGNORE INTO tool_cache VALUES (?, ?, ?, ?, ?, ?)"


def connect(path: Path, schema: str = _SCHEMA, what: str = "tool cache") -> sqlite3.Connection:
    """Open (creating if needed) a cache file with the settings every connection must use.

    `schema` is the ``CREATE TABLE IF NOT EXISTS`` statement of the file's table; `what` names
    the cache in the error a broken file raises. The LLM cache (`fireact.llm.cache`) opens its
    own file through this function too.
    """
    conn = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )
    try:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        _retry_locked(lambda: conn.execute("PRAGMA journal_mode=WAL"))
        conn.execute("PRAGMA synchronous=NORMAL")
        _retry_locked(lambda: conn.execute(schema))
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise FireactError(
            f"{what} {path} cannot be opened ({exc}): delete it or pass another cache path"
        ) from None
    return conn


def _retry_locked(statement: Callable[[], object], attempts: int = 50) -> None:
    """Run a setup statement, retrying the rare "locked" error SQLite raises without waiting
    (switching to WAL while another process holds the file)."""
    for attempt in range(attempts):
        try:
            statement()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.01 * (attempt + 1))


class Connections:
    """One connection per thread to one cache file (see `connect`), all closed by `close`.

    The file and its table are created at construction, so a bad path fails there. After
    `close`, `get` opens fresh connections again.
    """

    def __init__(self, path: Path, schema: str = _SCHEMA, what: str = "tool cache") -> None:
        self.path = path
        self.schema = schema
        self.what = what
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.get()

    def get(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, self.schema, self.what)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            connections, self._all = self._all, []
        for conn in connections:
            conn.close()
        self._local = threading.local()


class CachedTool:
    """Wraps a tool; ``search`` results are served from / stored into a SQLite file."""

    def __init__(self, tool: Tool, path: Path | str, namespace: str | None = None) -> None:
        from fireact.tools.noisy import NoisyTool  # local: noisy needs nothing from here

        if isinstance(tool, NoisyTool):
            raise FireactError(
                "the tool cache must wrap the clean tool, not a noisy one: "
                "build NoisyTool(CachedTool(tool)) instead"
            )
        self.tool = tool
        self.name = tool.name
        self.actions = tool.actions
        self.path = Path(path)
        # a tool may name its own namespace (e.g. LocalSearch: style + index) so that two
        # configurations of one tool never share entries
        self.namespace = namespace or getattr(tool, "namespace", None) or tool.name
        self.hits = 0
        self.misses = 0
        # one connection per thread; the file and schema are created now, so a bad path fails
        # at construction
        self._db = Connections(self.path)
        self._conn = self._db.get

    def get(self, action: str, argument: str) -> tuple[str, list[str] | None] | None:
        """The cached (observation, opened page or None), or None on a miss."""
        row = self._conn().execute(_SELECT, (self.namespace, action, argument)).fetchone()
        if row is None:
            return None
        return row[0], (json.loads(row[1]) if row[1] is not None else None)

    def put(self, action: str, argument: str, observation: str, page: list[str] | None) -> None:
        """Store one entry (committed on return); an existing entry is kept as it is."""
        page_json = json.dumps(page, ensure_ascii=False) if page is not None else None
        row = (self.namespace, action, argument, observation, page_json, time.time())
        self._conn().execute(_INSERT, row)

    def count(self) -> int:
        """How many entries this namespace holds."""
        (count,) = (
            self._conn()
            .execute("SELECT count(*) FROM tool_cache WHERE namespace=?", (self.namespace,))
            .fetchone()
        )
        return count

    @property
    def stats(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses}

    async def __call__(self, action: str, argument: str, state: ToolState) -> str:
        if action not in CACHED_ACTIONS:
            return await self.tool(action, argument, state)
        entry = self.get(action, argument)
        if entry is not None:
            self.hits += 1
            observation, page = entry
            if page is not None:
                open_page(state, page)
            return observation
        self.misses += 1
        before = state.page
        observation = await self.tool(action, argument, state)
        opened = state.page if state.page is not before else None
        await asyncio.to_thread(self.put, action, argument, observation, opened)
        return observation

    async def aclose(self) -> None:
        await self.tool.aclose()
        self._db.close()

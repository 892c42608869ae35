"""The table tools: ``sql[SELECT ...]`` and ``tables[]`` over the current question's tables.

This module owns `SQLTool` (name ``sql``, actions ``sql`` and ``tables``) and re-exports the
parts it is built from: the tables and the way a run hands each episode its tables
(`fireact.tools.sql_tables`), the per-episode DuckDB databases (`fireact.tools.sql_db`) and
the result text (`fireact.tools.sql_render`).

How the tables get in. A table is ``{"name": str, "header": [str, ...], "rows": [[v, ...]]}``
(or any object with those three attributes, e.g. `fireact.tableqa.data.TableData`) with values
``str``, ``int``, ``float``, ``bool`` or ``None``. Two ways, both per episode:

- ``load_tables(state, tables)``: the runner registers the tables of one episode's `ToolState`
  (validated at once; a bad table raises `FireactError` naming table, row and column). Calling it
  again replaces them. The registration lives as long as that state object.
- ``SQLTool(tables_for=...)``: a function from the episode id (``ToolState.episode_id``, the
  example id) to its tables, asked when an episode first uses the tool, e.g.
  ``SQLTool(tables_for={ex.id: ex.tables for ex in examples}.get)``. This also covers a
  Reflexion episode, whose every try starts with a fresh `ToolState`.

Tables registered with ``load_tables`` win over ``tables_for``; with neither, the episode has
an empty database (``tables[]`` says so; ``sql[SELECT 1 + 1]`` still works).

Loading: each episode gets its own in-memory DuckDB database, built on its first call (in a
worker thread) and cached by the identity of its `ToolState` (a dataclass with ``eq``, so not
hashable: the cache is keyed by ``id`` and emptied by `weakref.finalize`). Column types come
from the values: only ``bool`` → BOOLEAN; only ``int`` → BIGINT (HUGEINT / DOUBLE when larger);
numbers → DOUBLE; anything else, or all NULL → VARCHAR, non-text values written as text. Empty
names become ``column_N`` / ``table_N``; repeated names (case-insensitively, as SQL compares
them) get ``_2``, ``_3``. The database is closed when the episode's state is garbage-collected,
or by `SQLTool.aclose`.

Safety rules:

1. Read only: the query must be one statement that DuckDB's own parser types as SELECT (this
   covers ``WITH``, ``VALUES``, ``FROM t``, ``DESCRIBE``, ``SHOW``, ``SUMMARIZE``); anything
   else (CREATE, INSERT, UPDATE, DELETE, ATTACH, COPY, EXPORT, INSTALL, LOAD, PRAGMA, SET, CALL,
   EXPLAIN, PIVOT statements, several statements) is refused before it runs, and the statement
   executed is the very object that was checked.
2. No file or network access, whatever the statement: the database is opened with
   ``enable_external_access=false`` (no ``read_csv('/etc/passwd')``, ``ATTACH``, ``COPY ...
   TO``, ``INSTALL``), extension auto-install/auto-load off, ``python_enable_replacements=false``
   (queries cannot see Python variables), no temp directory (nothing spills to disk), one thread
   and ``memory_limit``; after the tables are loaded, ``lock_configuration=true``, so no setting
   can be changed back.
3. Time: each query has ``timeout`` seconds (5) from the call, queueing included; past it the
   query is interrupted (``conn.interrupt()``, repeated until the worker has stopped) and the
   observation is ``Query timed out after N s``.
4. Size: at most ``max_query_chars`` characters of SQL; at most ``max_rows`` (20) rows shown,
   each cell cut at ``max_cell_chars`` (100), the whole text kept under ``max_chars`` (3000);
   past that ``(showing N of M rows)`` (the total is counted by running the query again as
   ``count(*)``, within the same time limit).
5. Errors are observations: DuckDB's message on one line (without its ``LINE 1: ...`` excerpt).

Result text: one line, the header, each row and the count separated by `` ; `` (the rendering
the table-QA prompt, `fireact.tableqa`, shows the agent), so an episode's one-line observation
is the text itself::

    name | age ; Ann | 30 ; Bob | NULL ; (2 rows)
    i ; 0 ; 1 ; 2 ; (showing 3 of 2000 rows)

NULL is ``NULL``, booleans ``true``/``false``, floats at most 15 significant digits in Python's
shortest form (``30.5``, ``0.3``, ``1e+20``), line breaks in text as spaces, other values as
text. ``tables[]`` gives each table with its columns, their types (``column_types=False``
leaves the types out) and its number of rows, names quoted where SQL needs quotes::

    people: name VARCHAR, age BIGINT, "city id" BIGINT (3 rows) ; cities: id BIGINT, ... (2 rows)

``tables[people]`` gives one table.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import ClassVar

import duckdb

from fireact.tools.base import ToolState
from fireact.tools.sql_db import (
    MEMORY_LIMIT,
    READ_ONLY,
    EpisodeDB,
    _Query,
    _Stopped,
    connect,
    empty_query,
    quote,
    shown_name,
    sql_error,
)
from fireact.tools.sql_render import (
    MAX_CELL_CHARS,
    MAX_CHARS,
    NO_TABLES,
    SEPARATOR,
    describe,
    format_value,
    render,
)
from fireact.tools.sql_tables import (
    LoadedTable,
    StateMap,
    Table,
    load_tables,
    registered_tables,
    table_data,
)
from fireact.tools.threads import WorkerThreads

__all__ = [
    "INTERRUPT_EVERY_S",
    "MAX_CELL_CHARS",
    "MAX_CHARS",
    "MAX_QUERY_CHARS",
    "MAX_ROWS",
    "MEMORY_LIMIT",
    "NO_TABLES",
    "READ_ONLY",
    "SEPARATOR",
    "TIMEOUT_S",
    "EpisodeDB",
    "LoadedTable",
    "SQLTool",
    "StateMap",
    "Table",
    "connect",
    "describe",
    "empty_query",
    "format_value",
    "load_tables",
    "quote",
    "registered_tables",
    "render",
    "shown_name",
    "sql_error",
    "table_data",
]

TIMEOUT_S = 5.0
MAX_ROWS = 20
MAX_QUERY_CHARS = 4000
INTERRUPT_EVERY_S = 0.02


@dataclass(eq=False, repr=False, kw_only=True)
class SQLTool:
    """``sql[SELECT ...]`` and ``tables[]`` over each episode's own tables (module doc)."""

    name: ClassVar[str] = "sql"
    actions: ClassVar[frozenset[str]] = frozenset({"sql", "tables"})

    tables_for: Callable[[str], Sequence[Table] | None] | None = None
    timeout: float = TIMEOUT_S
    max_rows: int = MAX_ROWS
    max_cell_chars: int = MAX_CELL_CHARS
    max_chars: int = MAX_CHARS
    max_query_chars: int = MAX_QUERY_CHARS
    memory_limit: str = MEMORY_LIMIT
    column_types: bool = True
    workers: int = 4
    _dbs: StateMap[EpisodeDB] = field(
        init=False, default_factory=lambda: StateMap(on_drop=EpisodeDB.close)
    )
    _threads: WorkerThreads = field(
        init=False, default_factory=lambda: WorkerThreads("fireact-sql")
    )

    def _executor(self) -> ThreadPoolExecutor:
        return self._threads.executor(self.workers)

    def open_episodes(self) -> int:
        """How many episode databases are open."""
        return len(self._dbs)

    async def database(self, state: ToolState) -> EpisodeDB:
        """The database of this episode, built on first use (or when its tables changed)."""
        registered = registered_tables(state)
        db = self._dbs.get(state)
        if db is not None and not db.closed and (registered is None or db.tables is registered):
            return db
        provided = None
        if registered is None and self.tables_for is not None:
            provided = self.tables_for(state.episode_id)
        db = await asyncio.get_running_loop().run_in_executor(
            self._executor(), self._open, registered, provided
        )
        self._dbs.set(state, db)  # closes the one it replaces
        return db

    def _open(
        self, registered: tuple[LoadedTable, ...] | None, provided: Sequence[Table] | None
    ) -> EpisodeDB:
        """Check the tables (unless registered: checked then) and load them (worker thread)."""
        tables = registered if registered is not None else table_data(provided or ())
        return EpisodeDB(connect(tables, self.memory_limit), tables)

    async def __call__(self, action: str, argument: str, state: ToolState) -> str:
        if action not in self.actions:
            raise ValueError(f"sql answers sql[...] and tables[...], not {action}[...]")
        db = await self.database(state)
        if action == "tables":
            return describe(db.tables, argument, self.column_types)
        text = argument.strip()
        if not text:
            return empty_query()
        if len(text) > self.max_query_chars:
            return f"Query too long ({len(text)} characters; at most {self.max_query_chars})."
        return await self.query(db, text)

    async def query(self, db: EpisodeDB, text: str) -> str:
        """Run one read query within the time limit; the observation text."""
        query = _Query(db, text, self.max_rows)
        job = self._executor().submit(query.run)
        future = asyncio.wrap_future(job)
        try:
            done, _ = await asyncio.wait({future}, timeout=self.timeout)
        except asyncio.CancelledError:  # e.g. the agent's own tool timeout
            self._stop(query, job, future)
            raise
        if not done:
            self._stop(query, job, future)
            await asyncio.wait({future}, timeout=1.0)  # the interrupt lands within milliseconds
            return f"Query timed out after {self.timeout:g} s"
        try:
            result = future.result()
        except _Stopped:
            return f"Query timed out after {self.timeout:g} s"
        except duckdb.InterruptException:
            return f"Query timed out after {self.timeout:g} s"
        except duckdb.Error as exc:
            return sql_error(exc)
        if isinstance(result, str):
            return result
        columns, rows, total = result
        return render(columns, rows, total, self.max_cell_chars, self.max_chars)

    @staticmethod
    def _stop(query: _Query, job: concurrent.futures.Future, future: asyncio.Future) -> None:
        """Stop a query: not started → cancelled; running → interrupted until its worker ends."""
        query.stop.set()
        # its outcome no longer matters: mark it read, or asyncio logs it when collected
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        if job.cancel():
            return

        def keep_interrupting() -> None:
            while True:
                query.db.interrupt(query.token)
                try:
                    job.exception(timeout=INTERRUPT_EVERY_S)
                    return
                except concurrent.futures.TimeoutError:
                    continue
                except concurrent.futures.CancelledError:
                    return

        threading.Thread(target=keep_interrupting, name="fireact-sql-stop", daemon=True).start()

    async def aclose(self) -> None:
        """Close every episode database (a running query's when it ends) and the workers."""
        for db in self._dbs.drain():
            db.close()
        self._threads.shutdown()

"""The table tools: ``sql[SELECT ...]`` and ``tables[]`` over the current question's tables.

This module owns `SQLTool` (name ``sql``, actions ``sql`` and ``tables``), the per-episode
DuckDB databases it queries, and the way a run hands each episode its tables.

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
import math
import re
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import duckdb

from fireact.errors import FireactError
from fireact.tools.base import ToolState

Table = Mapping[str, Any]  # {"name": str, "header": [str, ...], "rows": [[value, ...], ...]}
TIMEOUT_S = 5.0
MAX_ROWS = 20
MAX_CELL_CHARS = 100
MAX_CHARS = 3000
MAX_QUERY_CHARS = 4000
MEMORY_LIMIT = "256MB"
INTERRUPT_EVERY_S = 0.02
READ_ONLY = "SELECT, WITH, VALUES, FROM, DESCRIBE, SHOW, SUMMARIZE"
NO_TABLES = "No tables for this question."
SEPARATOR = " ; "  # between the header, the rows and the count, as the table-QA prompt shows

_INT64 = 2**63
_INT128 = 2**127
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BREAKS = re.compile(r"[\r\n\t\v\f]+")

V = TypeVar("V")


# ------------------------------------------------------------------ the tables


@dataclass(frozen=True)
class LoadedTable:
    """One table, checked and typed, ready to load."""

    name: str
    columns: tuple[str, ...]
    types: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


def _unique(names: Iterable[Any], fallback: str) -> list[str]:
    """Names as SQL can hold them: empty → ``fallback_N``, repeats (any case) → ``_2``..."""
    out: list[str] = []
    seen: set[str] = set()
    for i, raw in enumerate(names, 1):
        name = " ".join(str(raw if raw is not None else "").split()) or f"{fallback}_{i}"
        candidate, n = name, 1
        while candidate.lower() in seen:
            n += 1
            candidate = f"{name}_{n}"
        seen.add(candidate.lower())
        out.append(candidate)
    return out


def _column_type(values: list[Any]) -> str:
    kinds = {type(v) for v in values if v is not None}
    if not kinds or str in kinds:
        return "VARCHAR"
    if kinds == {bool}:
        return "BOOLEAN"
    if kinds == {int}:
        if all(-_INT64 <= v < _INT64 for v in values if v is not None):
            return "BIGINT"
        if all(-_INT128 <= v < _INT128 for v in values if v is not None):
            return "HUGEINT"
    return "DOUBLE"


def _as_text(value: Any) -> str | None:
    return value if value is None or isinstance(value, str) else _text(value)


def _as_double(value: Any) -> float | None:
    return None if value is None else float(value)


def _as_mapping(table: Any) -> Mapping[str, Any] | None:
    """A table given as a mapping, or as an object with ``name``/``header``/``rows``."""
    if isinstance(table, Mapping):
        return table
    if all(hasattr(table, a) for a in ("name", "header", "rows")):
        return {"name": table.name, "header": table.header, "rows": table.rows}
    return None


def table_data(tables: Sequence[Table]) -> tuple[LoadedTable, ...]:
    """Check and type the tables of one question (module doc); a bad one raises FireactError."""
    if isinstance(tables, Mapping) or not isinstance(tables, Sequence):
        raise FireactError("tables must be a list of {name, header, rows} objects")
    given = [_as_mapping(t) for t in tables]
    names = _unique((t.get("name") if t is not None else None for t in given), "table")
    out = []
    for name, table in zip(names, given, strict=True):
        if table is None:
            raise FireactError(f"table {name!r}: expected an object with name, header and rows")
        header, rows = table.get("header"), table.get("rows", [])
        if not isinstance(header, Sequence) or isinstance(header, str) or not header:
            raise FireactError(f"table {name!r}: 'header' must be a non-empty list of names")
        if not isinstance(rows, Sequence) or isinstance(rows, str):
            raise FireactError(f"table {name!r}: 'rows' must be a list of rows")
        columns = _unique(header, "column")
        checked: list[list[Any]] = []
        for r, row in enumerate(rows, 1):
            if not isinstance(row, Sequence) or isinstance(row, str) or len(row) != len(columns):
                raise FireactError(
                    f"table {name!r} row {r}: expected a list of {len(columns)} values "
                    f"(one per column), got {row!r:.80}"
                )
            for c, value in enumerate(row):
                if value is not None and not isinstance(value, str | int | float):
                    raise FireactError(
                        f"table {name!r} row {r} column {columns[c]!r}: {type(value).__name__} "
                        "values are not supported (use str, int, float, bool or None)"
                    )
            checked.append(list(row))
        types = [_column_type([row[c] for row in checked]) for c in range(len(columns))]
        for c, kind in enumerate(types):
            convert = {"VARCHAR": _as_text, "DOUBLE": _as_double}.get(kind)
            if convert is not None:
                for row in checked:
                    row[c] = convert(row[c])
        out.append(LoadedTable(name, tuple(columns), tuple(types), tuple(map(tuple, checked))))
    return tuple(out)


# ------------------------------------------------------------------ per-state registries


class StateMap(Generic[V]):
    """Values keyed by the identity of live `ToolState` objects (which are not hashable).

    An entry goes away when its state is garbage-collected; ``on_drop`` then gets its value.
    """

    def __init__(self, on_drop: Callable[[V], None] | None = None) -> None:
        self._items: dict[int, tuple[weakref.ref[ToolState], V, weakref.finalize]] = {}
        self._lock = threading.RLock()  # a finalizer may run in any thread, even inside a call
        self._on_drop = on_drop

    def get(self, state: ToolState) -> V | None:
        item = self._items.get(id(state))
        return item[1] if item is not None and item[0]() is state else None

    def set(self, state: ToolState, value: V) -> None:
        old = self.pop(state)
        if old is not None and old is not value and self._on_drop is not None:
            self._on_drop(old)
        finalizer = weakref.finalize(state, self._dropped, id(state))
        finalizer.atexit = False
        with self._lock:
            self._items[id(state)] = (weakref.ref(state), value, finalizer)

    def pop(self, state: ToolState) -> V | None:
        with self._lock:
            item = self._items.get(id(state))
            if item is None or item[0]() is not state:
                return None
            del self._items[id(state)]
        item[2].detach()
        return item[1]

    def drain(self) -> list[V]:
        """Every value, the map left empty (no ``on_drop`` calls)."""
        with self._lock:
            items, self._items = list(self._items.values()), {}
        for _, _, finalizer in items:
            finalizer.detach()
        return [value for _, value, _ in items]

    def __len__(self) -> int:
        return len(self._items)

    def _dropped(self, key: int) -> None:
        with self._lock:
            item = self._items.pop(key, None)
        if item is not None and self._on_drop is not None:
            self._on_drop(item[1])


_REGISTERED: StateMap[tuple[LoadedTable, ...]] = StateMap()


def load_tables(state: ToolState, tables: Sequence[Table]) -> None:
    """Give the episode of ``state`` these tables (module doc); replaces earlier ones."""
    _REGISTERED.set(state, table_data(tables))


def registered_tables(state: ToolState) -> tuple[LoadedTable, ...] | None:
    """The tables `load_tables` gave this state, if any."""
    return _REGISTERED.get(state)


# ------------------------------------------------------------------ the database


def quote(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


_KEYWORDS: frozenset[str] | None = None


def shown_name(name: str) -> str:
    """``name`` as a query must write it: quoted unless a plain, non-reserved identifier."""
    global _KEYWORDS
    if _KEYWORDS is None:
        with duckdb.connect(":memory:", config={"enable_external_access": False}) as conn:
            rows = conn.execute(
                "SELECT keyword_name FROM duckdb_keywords() "
                "WHERE keyword_category IN ('reserved', 'type_function')"
            ).fetchall()
        _KEYWORDS = frozenset(r[0].lower() for r in rows)
    if _PLAIN_NAME.fullmatch(name) and name.lower() not in _KEYWORDS:
        return name
    return quote(name)


def connect(
    tables: Sequence[LoadedTable], memory_limit: str = MEMORY_LIMIT
) -> duckdb.DuckDBPyConnection:
    """A locked-down in-memory DuckDB database holding ``tables`` (rule 2 of the module doc)."""
    conn = duckdb.connect(
        ":memory:",
        config={
            "enable_external_access": False,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "allow_community_extensions": False,
            "python_enable_replacements": False,
            "temp_directory": "",
            "threads": 1,
            "memory_limit": memory_limit,
        },
    )
    try:
        for table in tables:
            columns = ", ".join(
                f"{quote(c)} {t}" for c, t in zip(table.columns, table.types, strict=True)
            )
            conn.execute(f"CREATE TABLE {quote(table.name)} ({columns})")
            if table.rows:
                appender = conn.appender(quote(table.name))
                appender.append_rows(table.rows)
                appender.flush()
        conn.execute("SET lock_configuration = true")
    except BaseException:
        conn.close()
        raise
    return conn


@dataclass(eq=False)
class EpisodeDB:
    """One episode's database and what its queries coordinate on."""

    conn: duckdb.DuckDBPyConnection
    tables: tuple[LoadedTable, ...]
    lock: threading.Lock = field(default_factory=threading.Lock)  # one query at a time
    guard: threading.Lock = field(default_factory=threading.Lock)  # `running` and interrupts
    running: object | None = None  # the query whose DuckDB call is in flight
    closed: bool = False  # asked to close: no new query starts
    _conn_closed: bool = False

    def interrupt(self, token: object) -> None:
        """Interrupt the DuckDB call of query ``token``, if that is what runs now."""
        with self.guard:
            if self.running is token and not self.closed:
                self.conn.interrupt()

    def close(self) -> None:
        """Close now, or as soon as the query in flight ends (never under a running query)."""
        if self.lock.acquire(blocking=False):
            try:
                self._close()
            finally:
                self.lock.release()
        else:
            self.closed = True  # the worker closes it when its query ends

    def _close(self) -> None:
        self.closed = True
        if not self._conn_closed:
            self._conn_closed = True
            self.conn.close()


class _Stopped(Exception):
    """The query's time ran out before this step began."""


@dataclass
class _Query:
    """One ``sql[...]`` call as its worker thread sees it."""

    db: EpisodeDB
    text: str
    max_rows: int
    token: object = field(default_factory=object)
    stop: threading.Event = field(default_factory=threading.Event)

    def step(self, call: Callable[[], Any]) -> Any:
        """One DuckDB call, marked as running so that a timeout can interrupt it."""
        with self.db.guard:
            if self.db.closed:
                raise RuntimeError("the SQL tool was closed")
            if self.stop.is_set():
                raise _Stopped
            self.db.running = self.token
        try:
            return call()
        finally:
            with self.db.guard:
                self.db.running = None

    def run(self) -> tuple[list[str], list[tuple[Any, ...]], int | None] | str:
        """(columns, first rows, total rows), or the observation of a refusal."""
        with self.db.lock:
            try:
                return self._run()
            finally:
                if self.db.closed:  # closed while this query ran: now it can be
                    self.db._close()
                else:
                    self.db.conn.abort()  # drop any unread rest of the result

    def _run(self) -> tuple[list[str], list[tuple[Any, ...]], int | None] | str:
        conn = self.db.conn
        statements = self.step(lambda: conn.extract_statements(self.text))
        if not statements:
            return empty_query()
        if len(statements) > 1:
            return f"Refused: one statement at a time ({len(statements)} given)."
        statement = statements[0]
        if statement.type != duckdb.StatementType.SELECT:
            word = (statement.query.split() or [""])[0].upper()  # INSTALL rather than LOAD
            kind = word if word.isalpha() and word != "WITH" else statement.type.name
            return f"Refused: only read queries ({READ_ONLY}) are allowed, not {kind}."
        self.step(lambda: conn.execute(statement))
        columns = [d[0] for d in conn.description or []]
        rows = self.step(lambda: conn.fetchmany(self.max_rows + 1))
        total: int | None = len(rows)
        if len(rows) > self.max_rows:
            conn.abort()
            try:
                counted = self.step(
                    lambda: conn.sql(statement.query).aggregate("count(*)").fetchall()
                )
                total = counted[0][0]
            except duckdb.Error:
                if self.stop.is_set():
                    raise
                total = None  # e.g. out of memory counting: the rows are still worth showing
        return columns, rows[: self.max_rows], total


def empty_query() -> str:
    return "Empty query: write sql[SELECT ...]; tables[] lists the tables."


def sql_error(exc: BaseException) -> str:
    """DuckDB's message on one line: its first paragraph, without the ``LINE n:`` excerpt."""
    message = str(exc).split("\nLINE ")[0].split("\n\n")[0]
    return " ".join(message.split()) or type(exc).__name__


# ------------------------------------------------------------------ text


def _text(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(float(f"{value:.15g}")) if math.isfinite(value) else str(value)
    return _BREAKS.sub(" ", str(value))  # one line: line breaks and tabs become spaces


def format_value(value: Any, max_chars: int = MAX_CELL_CHARS) -> str:
    """One cell as text (module doc), cut at ``max_chars`` with ``…``."""
    text = _text(value)
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def render(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    total: int | None,
    max_cell_chars: int = MAX_CELL_CHARS,
    max_chars: int = MAX_CHARS,
) -> str:
    """A result as the one-line table of the module doc (``total`` None: more, not counted)."""
    parts = [" | ".join(format_value(c, max_cell_chars) for c in columns)]
    size = len(parts[0])
    for row in rows:
        part = " | ".join(format_value(v, max_cell_chars) for v in row)
        if len(parts) > 1 and size + len(SEPARATOR) + len(part) > max_chars:
            break
        parts.append(part)
        size += len(SEPARATOR) + len(part)
    shown = len(parts) - 1
    if total is None:
        parts.append(f"(showing {shown} of more than {len(rows)} rows)")
    elif shown < total:
        parts.append(f"(showing {shown} of {total} rows)")
    else:
        parts.append(f"({total} row{'' if total == 1 else 's'})")
    return SEPARATOR.join(parts)


def describe(tables: Sequence[LoadedTable], which: str = "", types: bool = True) -> str:
    """``tables[]``: each table with its columns (and their types) and its number of rows."""
    if not tables:
        return NO_TABLES
    wanted = which.strip().strip('"').lower()
    chosen = [t for t in tables if not wanted or t.name.lower() == wanted]
    if not chosen:
        names = ", ".join(shown_name(t.name) for t in tables)
        return f"No table named {which.strip()}. Tables: {names}."
    parts = []
    for t in chosen:
        columns = ", ".join(
            f"{shown_name(c)} {kind}" if types else shown_name(c)
            for c, kind in zip(t.columns, t.types, strict=True)
        )
        count = len(t.rows)
        parts.append(f"{shown_name(t.name)}: {columns} ({count} row{'' if count == 1 else 's'})")
    return SEPARATOR.join(parts)


# ------------------------------------------------------------------ the tool


class SQLTool:
    """``sql[SELECT ...]`` and ``tables[]`` over each episode's own tables (module doc)."""

    name = "sql"
    actions = frozenset({"sql", "tables"})

    def __init__(
        self,
        *,
        tables_for: Callable[[str], Sequence[Table] | None] | None = None,
        timeout: float = TIMEOUT_S,
        max_rows: int = MAX_ROWS,
        max_cell_chars: int = MAX_CELL_CHARS,
        max_chars: int = MAX_CHARS,
        max_query_chars: int = MAX_QUERY_CHARS,
        memory_limit: str = MEMORY_LIMIT,
        column_types: bool = True,
        workers: int = 4,
    ) -> None:
        self.tables_for = tables_for
        self.column_types = column_types
        self.timeout = timeout
        self.max_rows = max_rows
        self.max_cell_chars = max_cell_chars
        self.max_chars = max_chars
        self.max_query_chars = max_query_chars
        self.memory_limit = memory_limit
        self.workers = workers
        self._dbs: StateMap[EpisodeDB] = StateMap(on_drop=EpisodeDB.close)
        self._pool: ThreadPoolExecutor | None = None

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="fireact-sql")
        return self._pool

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
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

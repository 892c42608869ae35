"""The database of the ``sql`` tool: one locked-down in-memory DuckDB per episode.

Owns `connect` (rule 2 of `fireact.tools.sql`), `EpisodeDB` (one episode's connection and the
locks its queries coordinate on), the read-only check and row fetching of one query (`_Query`,
rule 1 and 4), quoting of names and DuckDB's error text (rule 5).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import duckdb

if TYPE_CHECKING:
    from fireact.tools.sql_tables import LoadedTable

MEMORY_LIMIT = "256MB"
READ_ONLY = "SELECT, WITH, VALUES, FROM, DESCRIBE, SHOW, SUMMARIZE"

_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


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

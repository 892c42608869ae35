"""The tables of the ``sql`` tool: checking and typing them, and which episode has which.

Owns `table_data` (a question's tables checked and typed, `LoadedTable`), `StateMap` (values
keyed by live `ToolState` objects) and the registry behind `load_tables` / `registered_tables`.
See `fireact.tools.sql` for the rules.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fireact.errors import FireactError
from fireact.tools.base import ToolState
from fireact.tools.sql_render import _text

Table = Mapping[str, Any]  # {"name": str, "header": [str, ...], "rows": [[value, ...], ...]}

_INT64 = 2**63
_INT128 = 2**127

V = TypeVar("V")


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

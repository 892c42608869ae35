"""Registries of named specs: the tasks, tools, LLM backends and methods fireact can use.

Owns `Registry[T]`, one per kind of thing fireact is extended with. A registry holds small spec
objects by name and is filled from two places, both on the first lookup:

* its built-ins, given as specs or as ``"module:attr"`` references (imported then, so that
  importing a package or listing names never imports a heavy backend);
* plug-ins: every entry point an installed distribution declares in the registry's group
  (`GROUPS`: ``fireact.tasks``, ``fireact.tools``, ``fireact.llms``, ``fireact.methods``). An
  entry point names a spec, a list of specs, or a function without arguments returning either.

`Registry.register` checks a spec at once: the wrong type, a bad or duplicate name, or a missing
required part is a one-line `FireactError` naming the spec and where it came from. Looking up an
unknown name is a one-line `FireactError` listing the known names. A plug-in that fails to load
leaves the others working: its one-line error (naming the distribution and the entry point) is
raised when its name is looked up, and listed in `Registry.errors`.
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Generic, TypeVar, overload

from fireact.errors import FireactError

T = TypeVar("T")
V = TypeVar("V")

GROUPS = {
    "task": "fireact.tasks",
    "tool": "fireact.tools",
    "llm": "fireact.llms",
    "method": "fireact.methods",
}
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def resolve(ref: str) -> Any:
    """The object a ``"module:attr"`` (or ``"module:attr.sub"``) reference names."""
    module, sep, attr = ref.partition(":")
    if not sep or not module or not attr:
        raise FireactError(f"bad reference {ref!r}: write it as module:attribute")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _missing(value: Any) -> bool:
    return value is None or (
        isinstance(value, str | tuple | list | dict | set | frozenset) and not value
    )


def _dist_of(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else "an unknown distribution"


class Registry(Generic[T]):
    """Specs of one kind by name: built-ins first, then plug-ins, in registration order.

    ``kind`` names the kind in messages ("task"); ``group`` is the entry-point group of its
    plug-ins; ``spec_type`` the class every spec must be an instance of; ``required`` the
    attributes a spec must set (not None, not empty); ``key`` the attribute holding its name.
    A spec may also define ``problems() -> Iterable[str]`` for checks across its parts.
    """

    def __init__(
        self,
        kind: str,
        group: str,
        *,
        spec_type: type[T] | None = None,
        required: Sequence[str] = (),
        key: str = "name",
        built_in: Iterable[T | str] = (),
    ) -> None:
        self.kind = kind
        self.group = group
        self.spec_type = spec_type
        self.required = tuple(required)
        self.key = key
        self._built_in = tuple(built_in)
        self._specs: dict[str, T] = {}
        self._origins: dict[str, str] = {}
        self._failed: dict[str, str] = {}  # entry-point name -> why it did not load
        self._loaded = False
        self._lock = threading.RLock()

    # ------------------------------------------------------------ registering

    def register(self, spec: T, *, origin: str = "") -> T:
        """Add `spec`; a duplicate name or a missing part is a `FireactError` now."""
        self._load()
        with self._lock:
            name = self._check(spec, origin)
            if name in self._specs:
                first = self._origins[name]
                raise FireactError(
                    f"{self.kind} '{name}' is registered twice ({first or 'first'} and "
                    f"{origin or 'again'}): give one of them another name"
                )
            self._specs[name] = spec
            self._origins[name] = origin
        return spec

    def _check(self, spec: Any, origin: str) -> str:
        where = f" ({origin})" if origin else ""
        if self.spec_type is not None and not isinstance(spec, self.spec_type):
            raise FireactError(
                f"{self.kind}{where}: expected a {self.spec_type.__name__}, got "
                f"{type(spec).__name__}"
            )
        name = getattr(spec, self.key, None)
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise FireactError(
                f"{self.kind}{where}: bad {self.key} {name!r}: use letters, digits, '_', '.', '-'"
            )
        problems = [
            f"missing {part}" for part in self.required if _missing(getattr(spec, part, None))
        ]
        if not problems and callable(getattr(spec, "problems", None)):
            problems = list(spec.problems())
        if problems:
            needs = f" (a {self.kind} needs {', '.join(self.required)})" if self.required else ""
            raise FireactError(f"{self.kind} '{name}'{where}: {'; '.join(problems)}{needs}")
        return name

    def _load(self) -> None:
        """Register the built-ins, then the plug-ins, once (re-entrant: a plug-in module may
        call `register` while it is imported)."""
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            try:
                for item in self._built_in:
                    spec = resolve(item) if isinstance(item, str) else item
                    origin = f"built in, {item}" if isinstance(item, str) else "built in"
                    self.register(spec, origin=origin)
            except BaseException:  # a broken built-in is a bug: fail on every lookup, not once
                self._specs.clear()
                self._origins.clear()
                self._loaded = False
                raise
            for ep in entry_points(group=self.group):
                self._load_plugin(ep)

    def _load_plugin(self, ep: EntryPoint) -> None:
        origin = f"plug-in {_dist_of(ep)}, entry point {self.group}: {ep.name} = {ep.value}"
        try:
            loaded = ep.load()
            if callable(loaded) and not (self.spec_type and isinstance(loaded, self.spec_type)):
                loaded = loaded()
            many = isinstance(loaded, list | tuple)
            specs = list(loaded) if many else [loaded]
            if not many and getattr(loaded, self.key, ep.name) != ep.name:
                raise FireactError(
                    f"it gives {self.kind} {getattr(loaded, self.key)!r}: name the entry point "
                    "after it"
                )
            for spec in specs:
                self.register(spec, origin=origin)
        except Exception as exc:  # whatever third-party code raises is reported, not raised
            detail = str(exc) if isinstance(exc, FireactError) else f"{type(exc).__name__}: {exc}"
            self._failed[ep.name] = " ".join(
                f"{self.kind} {origin} failed to load: {detail}".split()
            )

    # ------------------------------------------------------------ looking up

    def get(self, name: str) -> T:
        """The spec called `name`; a one-line `FireactError` listing the known names if none."""
        spec = self.find(name)
        if spec is None:
            raise FireactError(self.unknown(name))
        return spec

    def find(self, name: str) -> T | None:
        """The spec called `name`, or None; a plug-in of that name that failed to load raises
        its error."""
        self._load()
        spec = self._specs.get(name)
        if spec is None and name in self._failed:
            raise FireactError(self._failed[name])
        return spec

    def unknown(self, name: str) -> str:
        """The message for an unknown name: the known names, and plug-ins that failed."""
        message = f"unknown {self.kind} '{name}': choose one of {', '.join(self.names())}"
        if self._failed:
            message += f" (plug-ins that failed to load: {', '.join(self._failed)})"
        return message

    def names(self) -> tuple[str, ...]:
        """The registered names, built-ins first."""
        self._load()
        return tuple(self._specs)

    def specs(self) -> tuple[T, ...]:
        """The registered specs, built-ins first."""
        self._load()
        return tuple(self._specs.values())

    @property
    def errors(self) -> tuple[str, ...]:
        """One line per plug-in that failed to load."""
        self._load()
        return tuple(self._failed.values())

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._specs

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        state = ", ".join(self._specs) if self._loaded else "not loaded yet"
        return f"Registry({self.kind!r}, {self.group!r}: {state})"

    # ------------------------------------------------------------ live views

    def names_view(self) -> Sequence[str]:
        """The names as a read-only sequence that follows the registry (plug-ins included)."""
        return _Names(self)

    def view(self, part: Callable[[T], V]) -> Mapping[str, V]:
        """``{name: part(spec)}`` as a read-only mapping that follows the registry."""
        return _Parts(self, part)


class _Names(Sequence[str]):
    def __init__(self, registry: Registry[Any]) -> None:
        self._registry = registry

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return self._registry.names()[index]

    def __len__(self) -> int:
        return len(self._registry)

    def __contains__(self, name: object) -> bool:
        return name in self._registry

    def __iter__(self) -> Iterator[str]:
        return iter(self._registry)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and tuple(self) == tuple(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._registry.names())


class _Parts(Mapping[str, V]):
    def __init__(self, registry: Registry[Any], part: Callable[[Any], V]) -> None:
        self._registry = registry
        self._part = part

    def __getitem__(self, name: str) -> V:
        if name not in self._registry:
            raise KeyError(name)
        return self._part(self._registry.get(name))

    def __len__(self) -> int:
        return len(self._registry)

    def __iter__(self) -> Iterator[str]:
        return iter(self._registry)

    def __repr__(self) -> str:
        return repr(dict(self.items()))

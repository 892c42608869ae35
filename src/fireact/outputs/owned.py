"""Replace only what we made: ownership markers (`mark_owned`, `check_owned`, `clear_owned`).

A command writes a marker ``FOLDER/.fireact-<kind>`` when it starts writing a folder; replacing
the folder later (``--overwrite``) removes only the contents of a folder that carries the marker
of the same kind, never a file that was there before fireact wrote into it, never an input, and
refuses, naming the first foreign file, otherwise. An empty folder without a marker is fine.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict, Unpack

from fireact.errors import FireactError
from fireact.outputs.atomic import LEFTOVER, atomic_write_text
from fireact.outputs.lock import LOCK_NAME
from fireact.outputs.oserrors import os_errors, remove
from fireact.outputs.overlap import resolved

MARKER_PREFIX = ".fireact-"
_KIND = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class Ownership(TypedDict, total=False):
    """What `check_owned` / `clear_owned` keep, refuse and accept (see `check_owned`)."""

    keep: Iterable[Path | str]
    inputs: Iterable[Path | str]
    owns: Iterable[str] | None
    legacy_markers: Iterable[str]


def marker_path(folder: Path | str, kind: str) -> Path:
    """Where the marker of `kind` lives: ``folder/.fireact-<kind>``."""
    if not _KIND.match(kind):
        raise ValueError(f"marker kind must be lower-case letters, digits and '-', got {kind!r}")
    return Path(folder) / f"{MARKER_PREFIX}{kind}"


def read_marker(folder: Path | str, kind: str) -> dict[str, Any] | None:
    """The marker of `kind` in `folder` (``{}`` if it is unreadable), or None if there is none."""
    path = marker_path(folder, kind)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _ours(entry: Path) -> bool:
    """Lock files and leftovers of our own writers: never foreign, never a folder's content."""
    return entry.name == LOCK_NAME or LEFTOVER.match(entry.name) is not None


def mark_owned(folder: Path | str, kind: str, *, adopt: bool = False) -> Path:
    """Mark `folder` as written by a fireact command of `kind`; returns the marker's path.

    Writes ``folder/.fireact-<kind>`` (JSON: kind, version, created_at, foreign) unless it is
    there already. Entries already in the folder are recorded as ``foreign``, so that
    `clear_owned` never deletes them; `adopt` records none (the folder holds an output that an
    older fireact wrote before markers existed).
    """
    from fireact import __version__

    folder = Path(folder)
    path = marker_path(folder, kind)
    if path.is_file():
        return path
    with os_errors(folder, "creating"):
        folder.mkdir(parents=True, exist_ok=True)
        before = [] if adopt else sorted(e.name for e in folder.iterdir() if not _ours(e))
    marker = {
        "kind": kind,
        "version": __version__,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "foreign": before,
    }
    atomic_write_text(path, json.dumps(marker, indent=2) + "\n")
    return path


def _covers(entry: Path, paths: list[Path]) -> bool:
    return any(p == entry or p.is_relative_to(entry) for p in paths)


def check_owned(
    folder: Path | str,
    kind: str,
    *,
    keep: Iterable[Path | str] = (),
    inputs: Iterable[Path | str] = (),
    owns: Iterable[str] | None = None,
    legacy_markers: Iterable[str] = (),
) -> list[Path]:
    """The entries of `folder` that `clear_owned` would remove; `FireactError` if it must refuse.

    Refused: an input (a file the command reads) among them; a folder with entries but no
    marker of `kind` (nor one of `legacy_markers`, files that an older fireact's output of this
    kind always held), naming the first entry; an entry recorded as foreign in the marker, or,
    with `owns` (glob patterns of the names `kind` writes), one no pattern matches. `keep`
    entries (and entries containing them) stay and are not checked; so do the marker, lock
    files and leftovers of our own writers. A missing or empty folder gives ``[]``.
    """
    folder = Path(folder)
    if not folder.exists():
        return []
    if not folder.is_dir():
        raise FireactError(f"{folder}: exists and is not a folder; choose another folder")
    kept = [resolved(p) for p in keep]
    marker = marker_path(folder, kind)
    with os_errors(folder, "reading"):
        entries = sorted(e for e in folder.iterdir() if not _ours(e) and e.name != marker.name)
    entries = [e for e in entries if not _covers(resolved(e), kept)]
    for source in map(resolved, inputs):
        if any(source == e or source.is_relative_to(e) for e in map(resolved, entries)):
            raise FireactError(
                f"the input {source} lies in {folder}, which would be emptied; "
                "move the input out or choose another folder"
            )
    if not entries:
        return []
    recorded = read_marker(folder, kind)
    legacy = any((folder / name).exists() for name in legacy_markers)
    if recorded is None and not legacy:
        raise FireactError(
            f"refusing to replace {folder}: it holds {entries[0]}, and no earlier fireact "
            f"{kind} wrote that folder (no {marker.name} marker); move it away or choose "
            "another folder"
        )
    foreign = set((recorded or {}).get("foreign") or [])
    patterns = None if owns is None else list(owns)
    for entry in entries:
        if entry.name in foreign or (
            patterns is not None and not any(fnmatch.fnmatch(entry.name, p) for p in patterns)
        ):
            raise FireactError(
                f"refusing to replace {folder}: it holds {entry}, which fireact {kind} did "
                "not write; move it away or choose another folder"
            )
    return entries


def clear_owned(folder: Path | str, kind: str, **rules: Unpack[Ownership]) -> list[Path]:
    """Remove what an earlier fireact command of `kind` wrote in `folder`; returns the removed.

    Checks first (`check_owned`, same arguments; refusals remove nothing), then removes every
    checked entry. The marker, `keep` entries, lock files and our leftovers stay.
    """
    removed = check_owned(folder, kind, **rules)
    for entry in removed:
        remove(entry)
    return removed

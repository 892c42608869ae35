"""Output safety for every command that writes files: nothing lost, nothing silent.

Owns the rules every writer (`index build`, `train`, `run`, `view`, `report`, `convert`) follows
before and while it writes:

* **No overlap** (`refuse_overlap`): an output may not be one of the command's inputs, lie inside
  an input folder (an input run), or, when the output folder is to be replaced, contain an input.
* **One writer per folder** (`FolderLock`): an exclusive ``fcntl.flock`` on a lock file
  (``FOLDER/.fireact.lock`` by default). The OS drops it when the process dies, even on kill -9,
  so a lock is never stale; a second writer stops with ``"<kind> in progress in FOLDER (pid
  N)"``. `lock_holder` tells a reader whether (and by whom) a folder is being written.
* **Replace only what we made** (`mark_owned`, `check_owned`, `clear_owned`): a command writes
  a marker ``FOLDER/.fireact-<kind>`` when it starts writing a folder; replacing the folder later
  (``--overwrite``) removes only the contents of a folder that carries the marker of the same
  kind, never a file that was there before fireact wrote into it, never an input, and refuses,
  naming the first foreign file, otherwise. An empty folder without a marker is fine.
* **Atomic files** (`atomic_write_text`, `atomic_write_bytes`): write ``.NAME.<pid>.tmp`` in the
  same folder, fsync, ``os.replace``; a reader sees the old file or the new one, never half of
  one. `clean_leftovers` removes the temp files, ``.NAME.<pid>.building`` and ``.NAME.<pid>.old``
  folders that a killed writer (a pid no longer alive) left behind.
* **OS errors in one line** (`describe_os_error`, `os_errors`): a full disk, a read-only file
  system or a missing permission becomes a `FireactError` naming the path.

Typical use by a command that writes the folder ``out`` from the inputs ``inputs``::

    refuse_overlap([out], inputs, what="--out", replacing=overwrite)
    with FolderLock(out, "run"):
        clean_leftovers(out)
        if overwrite:
            clear_owned(out, "run", inputs=inputs)
        mark_owned(out, "run")
        atomic_write_text(out / "summary.json", text)
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import fnmatch
import json
import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from fireact.errors import FireactError

LOCK_NAME = ".fireact.lock"
MARKER_PREFIX = ".fireact-"
# .NAME.<pid>.tmp (atomic writes), .NAME.<pid>.building (a folder being built), .NAME.<pid>.old
# (a folder being replaced): ours, and stale once <pid> is gone
LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.(?P<what>tmp|building|old)$")
_KIND = re.compile(r"^[a-z0-9][a-z0-9-]*$")


# ---------------------------------------------------------------- OS errors


_REASONS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "read-only file system",
    errno.ENOENT: "no such file or folder",
    errno.EISDIR: "is a folder",
    errno.ENOTDIR: "a parent is not a folder",
    errno.ENOTEMPTY: "folder not empty",
    errno.EEXIST: "already exists",
    errno.ENAMETOOLONG: "name too long",
    errno.EIO: "input/output error",
}


def describe_os_error(err: OSError, path: Path | str, verb: str = "writing") -> str:
    """One line for an OS error on `path`: ``"no space left on device writing /x/y"``."""
    reason = _REASONS.get(err.errno or -1) or err.strerror or str(err) or type(err).__name__
    return f"{reason} {verb} {path}"


@contextlib.contextmanager
def os_errors(path: Path | str, verb: str = "writing") -> Iterator[None]:
    """Turn an `OSError` raised inside the block into a one-line `FireactError` naming `path`."""
    try:
        yield
    except OSError as err:
        raise FireactError(describe_os_error(err, path, verb)) from None


# ---------------------------------------------------------------- overlap


def _resolved(path: Path | str) -> Path:
    return Path(path).expanduser().resolve()


def _same(a: Path, b: Path) -> bool:
    if a == b:
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)  # hard links
    except OSError:
        return False


def refuse_overlap(
    outputs: Iterable[Path | str],
    inputs: Iterable[Path | str],
    *,
    what: str,
    replacing: bool = False,
) -> None:
    """Raise `FireactError` when writing `outputs` could destroy one of `inputs`.

    Refused (paths resolved, symbolic and hard links followed): an output that is an input, an
    output inside an input folder, and, when `replacing` (the output folders are emptied or
    replaced, e.g. ``--overwrite``), an input inside an output. `what` names the option that
    chose the output (``"--out"``, ``"output_dir"``); the message names it and both paths.
    """
    ins = [_resolved(p) for p in inputs]
    for output in map(_resolved, outputs):
        for source in ins:
            if _same(output, source):
                raise FireactError(
                    f"{what} {output} is also an input; writing it would destroy the input: "
                    f"choose another {what}"
                )
            if output.is_relative_to(source):
                raise FireactError(
                    f"{what} {output} lies inside the input {source}; choose a {what} outside it"
                )
            if replacing and source.is_relative_to(output):
                raise FireactError(
                    f"the input {source} lies inside {what} {output}, which would be replaced; "
                    f"move the input out or choose another {what}"
                )


# ---------------------------------------------------------------- lock


def _read_pid(fd: int) -> int | None:
    try:
        words = os.pread(fd, 32, 0).decode("ascii", "replace").split()
    except OSError:
        return None
    return int(words[0]) if words and words[0].isdigit() else None


def _holder_pid(fd: int) -> int | None:
    """The pid in a held lock file; waits briefly for a holder that has not written it yet
    (the file may still show a killed earlier holder's pid)."""
    deadline = time.monotonic() + 1.0
    while True:
        pid = _read_pid(fd)
        if (pid is not None and _alive(pid)) or time.monotonic() > deadline:
            return pid
        time.sleep(0.005)


class FolderLock:
    """One writer per folder: an exclusive, non-blocking ``flock`` on a lock file.

    The lock file is ``path/.fireact.lock`` (`path` is created if missing, and removed again on
    release if the lock created it and it is still empty), or `lock_file` when given, e.g. a
    sibling file for a folder that is replaced by a rename. Entering takes the lock or raises
    ``FireactError("<kind> in progress in <path> (pid N); ...")``; leaving releases it and
    removes the lock file. A killed holder's lock is released by the OS; the file it leaves is
    taken over by the next writer. Locks conflict between processes and between two
    `FolderLock` objects of one process alike. Use as ``with FolderLock(out, "run"): ...``, or
    `acquire` / `release` when the lock outlives one block (entering a lock this object already
    holds keeps it, and leaving releases it).
    """

    def __init__(self, path: Path | str, kind: str, *, lock_file: Path | str | None = None):
        self.path = Path(path)
        self.kind = kind
        self.lock_file = Path(lock_file) if lock_file is not None else self.path / LOCK_NAME
        self._fd: int | None = None
        self._created: Path | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None

    def acquire(self) -> FolderLock:
        """Take the lock (FireactError if another writer holds it); returns self."""
        if self._fd is not None:
            return self
        folder = self.lock_file.parent
        if folder == self.path and self.path.exists() and not self.path.is_dir():
            raise FireactError(f"{self.path}: exists and is not a folder; choose another folder")
        for _ in range(50):  # retried only when a releasing holder removed the file under us
            with os_errors(self.lock_file, "creating"):
                if folder == self.path and not folder.exists():
                    with contextlib.suppress(FileExistsError):
                        folder.mkdir(parents=True)
                        self._created = folder
                folder.mkdir(parents=True, exist_ok=True)
                try:
                    fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
                except FileNotFoundError:
                    continue  # the folder was removed by a releasing holder
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = _holder_pid(fd)
                os.close(fd)
                raise FireactError(
                    f"{self.kind} in progress in {self.path} (pid {pid or 'unknown'}); "
                    "wait for it or use another folder"
                ) from None
            except OSError as err:  # e.g. a file system without locks
                os.close(fd)
                raise FireactError(describe_os_error(err, self.lock_file, "locking")) from None
            if self._still_linked(fd):
                self._fd = fd
                line = f"{os.getpid()}\n".encode()
                try:
                    os.pwrite(fd, line, 0)
                    os.ftruncate(fd, len(line))
                except OSError as err:
                    self.release()
                    raise FireactError(describe_os_error(err, self.lock_file)) from None
                return self
            os.close(fd)  # we locked a file its holder had just removed: take the new one
        raise FireactError(f"cannot lock {self.lock_file}: it keeps being removed; try again")

    def _still_linked(self, fd: int) -> bool:
        try:
            linked = os.stat(self.lock_file)
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (linked.st_dev, linked.st_ino) == (mine.st_dev, mine.st_ino)

    def release(self) -> None:
        """Remove the lock file and release the lock (no-op when not held)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            if self._still_linked(fd):  # unlinked while locked, so no one else holds it
                self.lock_file.unlink()
        os.close(fd)
        if self._created is not None:
            with contextlib.suppress(OSError):
                self._created.rmdir()  # only if still empty: a refused command leaves nothing
            self._created = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


def lock_holder(path: Path | str, *, lock_file: Path | str | None = None) -> int | None:
    """The pid of the process writing `path` (holding its `FolderLock`), or None if nobody is
    (0 when held by a process whose pid is not written yet). Never creates anything."""
    lock_file = Path(lock_file) if lock_file is not None else Path(path) / LOCK_NAME
    try:
        fd = os.open(lock_file, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _holder_pid(fd) or 0
    finally:
        os.close(fd)  # also drops the shared lock if we got it
    return None


# ---------------------------------------------------------------- ownership markers


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
    kept = [_resolved(p) for p in keep]
    marker = marker_path(folder, kind)
    with os_errors(folder, "reading"):
        entries = sorted(e for e in folder.iterdir() if not _ours(e) and e.name != marker.name)
    entries = [e for e in entries if not _covers(_resolved(e), kept)]
    for source in map(_resolved, inputs):
        if any(source == e or source.is_relative_to(e) for e in map(_resolved, entries)):
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


def clear_owned(
    folder: Path | str,
    kind: str,
    *,
    keep: Iterable[Path | str] = (),
    inputs: Iterable[Path | str] = (),
    owns: Iterable[str] | None = None,
    legacy_markers: Iterable[str] = (),
) -> list[Path]:
    """Remove what an earlier fireact command of `kind` wrote in `folder`; returns the removed.

    Checks first (`check_owned`, same arguments; refusals remove nothing), then removes every
    checked entry. The marker, `keep` entries, lock files and our leftovers stay.
    """
    removed = check_owned(
        folder, kind, keep=keep, inputs=inputs, owns=owns, legacy_markers=legacy_markers
    )
    for entry in removed:
        with os_errors(entry, "removing"):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    return removed


# ---------------------------------------------------------------- atomic writes


def temp_path(path: Path | str) -> Path:
    """The temp file an atomic write of `path` uses: ``.NAME.<pid>.tmp`` next to it."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Replace `path` by `data` atomically: a reader or a crash sees the old or the new file.

    Writes ``.NAME.<pid>.tmp`` in the same folder, fsyncs it and renames it over `path`; on any
    OS error the temp file is removed and a one-line `FireactError` names `path`. The folder
    must exist. One writer per file (the folder's `FolderLock` sees to that across processes).
    """
    path = Path(path)
    tmp = temp_path(path)
    try:
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise FireactError(describe_os_error(err, path)) from None
    _fsync_folder(path.parent)


def atomic_write_text(path: Path | str, text: str, encoding: str = "utf-8") -> None:
    """`atomic_write_bytes` of `text` encoded (UTF-8 by default)."""
    atomic_write_bytes(path, text.encode(encoding))


def _alive(pid: int) -> bool:
    if pid <= 0:
        return True  # not a pid we wrote: leave it alone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def clean_leftovers(folder: Path | str) -> list[Path]:
    """Remove what killed writers left in `folder`; returns the removed paths.

    Removes ``.NAME.<pid>.tmp`` files and ``.NAME.<pid>.building`` / ``.NAME.<pid>.old``
    folders whose process is no longer alive (a live writer's are never touched). A missing
    folder is fine. Pids are this machine's: do not share a folder between pid namespaces.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for entry in sorted(folder.iterdir()):
        match = LEFTOVER.match(entry.name)
        if match is None or _alive(int(match["pid"])):
            continue
        with os_errors(entry, "removing"):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        removed.append(entry)
    return removed

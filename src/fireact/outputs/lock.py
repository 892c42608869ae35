"""One writer per folder (`FolderLock`), and who holds a folder's lock (`lock_holder`).

The lock is an exclusive ``fcntl.flock`` on a lock file (``FOLDER/.fireact.lock`` by default)
whose one line ``PID KIND`` names the writer (``1234 demo``), so a refused writer is told what
holds the folder; a file of an older fireact holds only ``PID``. The OS drops the lock when the
process dies, even on kill -9, so a lock is never stale.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from fireact.errors import FireactError
from fireact.outputs.oserrors import describe_os_error, os_errors

LOCK_NAME = ".fireact.lock"


UNKNOWN_KIND = "another fireact command"  # a holder that wrote no kind (an older fireact)


def _read_holder(fd: int) -> tuple[int | None, str | None]:
    """The pid and kind in a lock file's first line, ``PID KIND`` (older files: ``PID``);
    (None, None) while that line is not complete."""
    try:
        text = os.pread(fd, 512, 0).decode("utf-8", "replace")
    except OSError:
        return None, None
    if "\n" not in text:
        return None, None
    pid, _, kind = text.split("\n", 1)[0].strip().partition(" ")
    return (int(pid) if pid.isdigit() else None), (kind.strip() or None)


def _holder(fd: int) -> tuple[int | None, str | None]:
    """The pid and kind in a held lock file; waits briefly for a holder that has not written
    them yet (the file may still show a killed earlier holder's)."""
    deadline = time.monotonic() + 1.0
    while True:
        pid, kind = _read_holder(fd)
        if (pid is not None and pid_alive(pid)) or time.monotonic() > deadline:
            return pid, kind
        time.sleep(0.005)


class FolderLock:
    """One writer per folder: an exclusive, non-blocking ``flock`` on a lock file.

    The lock file is ``path/.fireact.lock`` (`path` is created if missing, and removed again on
    release if the lock created it and it is still empty), or `lock_file` when given, e.g. a
    sibling file for a folder that is replaced by a rename. Entering takes the lock or raises
    ``FireactError("<holder's kind> in progress in <path> (pid N); ...")``; leaving releases it and
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
                pid, kind = _holder(fd)
                os.close(fd)
                raise FireactError(
                    f"{kind or UNKNOWN_KIND} in progress in {self.path} (pid {pid or 'unknown'}); "
                    "wait for it or use another folder"
                ) from None
            except OSError as err:  # e.g. a file system without locks
                os.close(fd)
                raise FireactError(describe_os_error(err, self.lock_file, "locking")) from None
            if self._still_linked(fd):
                self._fd = fd
                line = f"{os.getpid()} {self.kind}\n".encode()
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
        return _holder(fd)[0] or 0
    finally:
        os.close(fd)  # also drops the shared lock if we got it
    return None


def pid_alive(pid: int) -> bool:
    """Whether process `pid` of this machine is alive (True for a pid <= 0: not one we wrote)."""
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True

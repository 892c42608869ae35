"""OS errors in one line: a full disk, a read-only file system or a missing permission becomes
a `FireactError` naming the path (`describe_os_error`, `os_errors`); `remove` deletes a file or
a folder tree with that error."""

from __future__ import annotations

import contextlib
import errno
import shutil
from collections.abc import Iterator
from pathlib import Path

from fireact.errors import FireactError

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


def remove(entry: Path) -> None:
    """Remove a file, a link or a folder tree (a link to a folder: the link only)."""
    with os_errors(entry, "removing"):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()

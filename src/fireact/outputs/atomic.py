"""Atomic files and what killed writers leave behind.

`atomic_write_text` / `atomic_write_bytes` write ``.NAME.<pid>.tmp`` in the same folder, fsync
and ``os.replace``: a reader sees the old file or the new one, never half of one.
`replace_folder` renames a finished ``.NAME.<pid>.building`` folder into place (the one it
replaces goes aside as ``.NAME.<pid>.old`` until then). `clean_leftovers` removes the temp files
and the ``.building`` / ``.old`` folders of writers (pids) no longer alive.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path

from fireact.errors import FireactError
from fireact.outputs.lock import pid_alive
from fireact.outputs.oserrors import describe_os_error, os_errors, remove

# .NAME.<pid>.tmp (atomic writes), .NAME.<pid>.building (a folder being built), .NAME.<pid>.old
# (a folder being replaced): ours, and stale once <pid> is gone
LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.(?P<what>tmp|building|old)$")


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
        if match is None or pid_alive(int(match["pid"])):
            continue
        remove(entry)
        removed.append(entry)
    return removed


def replace_folder(built: Path, out: Path) -> None:
    """Rename the finished folder `built` to `out`, replacing an existing `out` (which is moved
    aside as ``.OUT.<pid>.old`` and put back if the rename fails)."""
    old = out.parent / f".{out.name}.{os.getpid()}.old"
    with os_errors(out, "replacing"):
        if out.exists():
            os.rename(out, old)
        try:
            os.rename(built, out)
        except OSError:
            if old.exists():
                os.rename(old, out)  # put the earlier folder back
            raise
    shutil.rmtree(old, ignore_errors=True)

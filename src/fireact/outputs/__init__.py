"""Output safety for every command that writes files: nothing lost, nothing silent.

Owns the rules every writer (`index build`, `train`, `run`, `view`, `report`, `convert`) follows
before and while it writes, one module each:

* **No overlap** (`refuse_overlap`, `overlap`): an output may not be one of the command's inputs,
  lie inside an input folder (an input run), or, when the output folder is to be replaced,
  contain an input.
* **One writer per folder** (`FolderLock`, `lock`): an exclusive ``fcntl.flock`` on a lock file
  (``FOLDER/.fireact.lock`` by default). The OS drops it when the process dies, even on kill -9,
  so a lock is never stale; a second writer stops with ``"<holder's kind> in progress in FOLDER (pid
  N)"``. `lock_holder` tells a reader whether (and by whom) a folder is being written.
* **Replace only what we made** (`mark_owned`, `check_owned`, `clear_owned`, `owned`): a command
  writes a marker ``FOLDER/.fireact-<kind>`` when it starts writing a folder; replacing the
  folder later (``--overwrite``) removes only the contents of a folder that carries the marker
  of the same kind, never a file that was there before fireact wrote into it, never an input,
  and refuses, naming the first foreign file, otherwise. An empty folder without a marker is
  fine.
* **Atomic files** (`atomic_write_text`, `atomic_write_bytes`, `replace_folder`, `atomic`):
  write ``.NAME.<pid>.tmp`` in the same folder, fsync, ``os.replace``; a reader sees the old
  file or the new one, never half of one. `clean_leftovers` removes the temp files,
  ``.NAME.<pid>.building`` and ``.NAME.<pid>.old`` folders that a killed writer (a pid no
  longer alive) left behind.
* **OS errors in one line** (`describe_os_error`, `os_errors`, `oserrors`): a full disk, a
  read-only file system or a missing permission becomes a `FireactError` naming the path.

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

from fireact.outputs.atomic import (
    LEFTOVER,
    atomic_write_bytes,
    atomic_write_text,
    clean_leftovers,
    replace_folder,
    temp_path,
)
from fireact.outputs.lock import LOCK_NAME, FolderLock, lock_holder, pid_alive
from fireact.outputs.oserrors import describe_os_error, os_errors, remove
from fireact.outputs.overlap import refuse_overlap
from fireact.outputs.owned import (
    MARKER_PREFIX,
    Ownership,
    check_owned,
    clear_owned,
    mark_owned,
    marker_path,
    read_marker,
)

__all__ = [
    "LEFTOVER",
    "LOCK_NAME",
    "MARKER_PREFIX",
    "FolderLock",
    "Ownership",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_owned",
    "clean_leftovers",
    "clear_owned",
    "describe_os_error",
    "lock_holder",
    "mark_owned",
    "marker_path",
    "os_errors",
    "pid_alive",
    "read_marker",
    "refuse_overlap",
    "remove",
    "replace_folder",
    "temp_path",
]

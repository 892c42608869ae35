"""fireact.outputs on real files and real processes: overlap refusals, folder locks held and
released (also by kill -9), ownership markers, atomic writes, leftovers and OS errors."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fireact.errors import FireactError
from fireact.outputs import (
    LOCK_NAME,
    FolderLock,
    atomic_write_bytes,
    atomic_write_text,
    check_owned,
    clean_leftovers,
    clear_owned,
    describe_os_error,
    lock_holder,
    mark_owned,
    os_errors,
    read_marker,
    refuse_overlap,
    temp_path,
)

SRC = str(Path(__file__).resolve().parents[1] / "src")


def python(code: str, *args: str) -> subprocess.Popen:
    """A Python process running `code` (fireact importable), stdin and stdout piped."""
    env = {**os.environ, "PYTHONPATH": SRC}
    command = [sys.executable, "-c", textwrap.dedent(code), *args]
    pipe = subprocess.PIPE
    return subprocess.Popen(command, stdin=pipe, stdout=pipe, text=True, env=env)


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    return int(done.stdout)


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ---------------------------------------------------------------- refuse_overlap


def test_an_output_that_is_an_input_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data.json"
    data.write_text("[]")
    with pytest.raises(FireactError) as error:
        refuse_overlap([tmp_path / "sub" / ".." / "data.json"], [data], what="--out")
    assert str(error.value) == (
        f"--out {data} is also an input; writing it would destroy the input: choose another --out"
    )


def test_links_to_an_input_are_the_input(tmp_path: Path) -> None:
    data = tmp_path / "data.json"
    data.write_text("[]")
    (tmp_path / "soft.json").symlink_to(data)
    os.link(data, tmp_path / "hard.json")
    with pytest.raises(FireactError, match="is also an input"):
        refuse_overlap([tmp_path / "soft.json"], [data], what="--out")
    with pytest.raises(FireactError, match="is also an input"):
        refuse_overlap([tmp_path / "hard.json"], [data], what="--out")


def test_an_output_inside_an_input_run_is_refused(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(FireactError) as error:
        refuse_overlap([run / "report"], [tmp_path / "other.json", run], what="--out")
    assert str(error.value) == (
        f"--out {run / 'report'} lies inside the input {run}; choose a --out outside it"
    )


def test_an_input_inside_an_output_only_matters_when_it_is_replaced(tmp_path: Path) -> None:
    out, data = tmp_path / "out", tmp_path / "out" / "data.json"
    refuse_overlap([out], [data], what="output_dir")  # written next to, not over
    with pytest.raises(FireactError) as error:
        refuse_overlap([out], [data], what="output_dir", replacing=True)
    assert str(error.value) == (
        f"the input {data} lies inside output_dir {out}, which would be replaced; "
        "move the input out or choose another output_dir"
    )
    refuse_overlap([tmp_path / "a"], [tmp_path / "ab", tmp_path / "b"], what="--out")  # apart


# ---------------------------------------------------------------- FolderLock

HOLD = """
import sys, time
from pathlib import Path
from fireact.outputs import FolderLock
with FolderLock(Path(sys.argv[1]), "run"):
    print("locked", flush=True)
    time.sleep(60)
"""


def hold_lock(folder: Path) -> subprocess.Popen:
    """Another process holding folder's lock (returns once it holds it)."""
    holder = python(HOLD, str(folder))
    assert holder.stdout.readline() == "locked\n"
    return holder


def test_a_second_process_is_told_who_writes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    holder = hold_lock(out)
    try:
        assert lock_holder(out) == holder.pid
        with pytest.raises(FireactError) as error, FolderLock(out, "run"):
            pass
        assert str(error.value) == (
            f"run in progress in {out} (pid {holder.pid}); wait for it or use another folder"
        )
    finally:
        holder.kill()
        holder.wait()


def test_kill_9_releases_the_lock(tmp_path: Path) -> None:
    out = tmp_path / "run"
    holder = hold_lock(out)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert names(out) == [LOCK_NAME]  # the killed holder's file stays, its lock does not
    assert lock_holder(out) is None
    with FolderLock(out, "run") as lock:  # takes the killed holder's file over
        assert lock.held and lock_holder(out) == os.getpid()
        assert (out / LOCK_NAME).read_text() == f"{os.getpid()} run\n"
    assert names(out) == []


CONTEND = """
import sys, time
from pathlib import Path
from fireact.errors import FireactError
from fireact.outputs import FolderLock
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
try:
    with FolderLock(Path(sys.argv[1]), "index build"):
        print("won", flush=True)
        sys.stdin.read()  # hold until the test has heard from every racer
except FireactError as err:
    print(err, flush=True)
"""


def test_of_processes_starting_together_exactly_one_writes(tmp_path: Path) -> None:
    out = tmp_path / "index"
    start = str(time.time() + 1.0)  # after every interpreter has started
    racers = [python(CONTEND, str(out), start) for _ in range(4)]
    said = [p.stdout.readline().strip() for p in racers]
    for p in racers:
        p.communicate(timeout=30)
    winner = [p.pid for p, s in zip(racers, said, strict=True) if s == "won"]
    assert len(winner) == 1, said
    refused = (
        f"index build in progress in {out} (pid {winner[0]}); wait for it or use another folder"
    )
    assert sorted(said) == sorted(["won"] + [refused] * 3)


def test_two_locks_of_one_process_conflict_and_release_cleans_up(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"
    with FolderLock(out, "training"):
        assert names(out) == [LOCK_NAME]
        with pytest.raises(
            FireactError, match=rf"training in progress in .* \(pid {os.getpid()}\)"
        ):
            FolderLock(out, "training").acquire()
    assert not out.exists() and (tmp_path / "a").is_dir()  # the lock made b/, not a/
    out.mkdir()
    (out / "kept.txt").write_text("x")
    with FolderLock(out, "training"):
        pass
    assert names(out) == ["kept.txt"]


def test_a_lock_file_beside_the_folder(tmp_path: Path) -> None:
    out, sibling = tmp_path / "ix", tmp_path / ".ix.lock"
    with FolderLock(out, "index build", lock_file=sibling):
        assert not out.exists() and sibling.is_file()
        assert lock_holder(out, lock_file=sibling) == os.getpid()
    assert names(tmp_path) == []


def test_a_file_where_the_folder_should_be(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(FireactError, match=f"{tmp_path / 'f'}: exists and is not a folder"):
        FolderLock(tmp_path / "f", "run").acquire()


# ---------------------------------------------------------------- markers


def test_mark_owned_writes_the_marker_once(tmp_path: Path) -> None:
    out = tmp_path / "out"
    path = mark_owned(out, "run")
    assert path == out / ".fireact-run"
    marker = json.loads(path.read_text())
    assert (marker["kind"], marker["version"], marker["foreign"]) == ("run", "0.1.0", [])
    assert marker["created_at"].endswith("+00:00")
    (out / "episodes.jsonl").write_text("{}\n")
    assert mark_owned(out, "run") == path and read_marker(out, "run") == marker
    assert read_marker(out, "index") is None


def test_clear_owned_removes_what_the_command_wrote(tmp_path: Path) -> None:
    out = tmp_path / "out"
    mark_owned(out, "train")
    for name in ("model.safetensors", "checkpoint-1/state.json", "base/config.json"):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text("x")
    removed = clear_owned(out, "train", keep=[out / "base"])
    assert sorted(p.name for p in removed) == ["checkpoint-1", "model.safetensors"]
    assert names(out) == [".fireact-train", "base"]


def test_a_folder_without_the_marker_is_refused_naming_the_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    assert clear_owned(out, "index") == []  # empty is fine
    (out / "thesis.tex").write_text("years of work")
    (out / "zz.txt").write_text("x")
    mark_owned(out, "run")  # another kind's marker does not count
    with pytest.raises(FireactError) as error:
        clear_owned(out, "index")
    assert str(error.value) == (
        f"refusing to replace {out}: it holds {out / '.fireact-run'}, and no earlier fireact "
        "index wrote that folder (no .fireact-index marker); move it away or choose another folder"
    )
    assert names(out) == [".fireact-run", "thesis.tex", "zz.txt"]


def test_a_legacy_marker_stands_for_the_marker(tmp_path: Path) -> None:
    out = tmp_path / "ix"  # an index an older fireact built, before markers
    out.mkdir()
    (out / "fireact-index.json").write_text("{}")
    (out / "meta.json").write_text("{}")
    owns = ["meta.json", "fireact-index.json"]
    removed = clear_owned(out, "index", owns=owns, legacy_markers=["fireact-index.json"])
    assert sorted(p.name for p in removed) == ["fireact-index.json", "meta.json"]
    assert names(out) == []


def test_files_there_before_the_marker_are_never_removed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    mark_owned(out, "train")
    (out / "model.safetensors").write_text("x")
    with pytest.raises(FireactError) as error:
        clear_owned(out, "train")
    assert str(error.value) == (
        f"refusing to replace {out}: it holds {out / 'notes.txt'}, which fireact train did not "
        "write; move it away or choose another folder"
    )
    assert names(out) == [".fireact-train", "model.safetensors", "notes.txt"]


def test_owns_patterns_name_a_file_added_later(tmp_path: Path) -> None:
    out = tmp_path / "ix"
    mark_owned(out, "index")
    for name in ("meta.json", "abc.idx", "later.txt"):
        (out / name).write_text("x")
    with pytest.raises(FireactError, match=f"it holds {out / 'later.txt'}, which fireact index"):
        check_owned(out, "index", owns=["meta.json", "*.idx"])
    (out / "later.txt").unlink()
    assert [p.name for p in check_owned(out, "index", owns=["meta.json", "*.idx"])] == [
        "abc.idx",
        "meta.json",
    ]


def test_an_input_in_the_folder_is_never_removed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    mark_owned(out, "train")
    (out / "data").mkdir()
    (out / "data" / "train.json").write_text("[]")
    with pytest.raises(FireactError) as error:
        clear_owned(out, "train", inputs=[out / "data" / "train.json"])
    assert str(error.value) == (
        f"the input {out / 'data' / 'train.json'} lies in {out}, which would be emptied; "
        "move the input out or choose another folder"
    )
    assert (out / "data" / "train.json").read_text() == "[]"
    clear_owned(out, "train", keep=[out / "data"], inputs=[out / "data" / "train.json"])


def test_locks_and_leftovers_are_not_foreign(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_NAME).write_text("1\n")
    (out / f".x.json.{os.getpid()}.tmp").write_text("")
    assert check_owned(out, "run") == []  # no marker needed: nothing to remove


# ---------------------------------------------------------------- atomic writes


def test_atomic_write_replaces_and_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    atomic_write_text(path, "old\n")
    atomic_write_bytes(path, b"new\n")
    assert path.read_bytes() == b"new\n" and names(tmp_path) == ["summary.json"]
    assert temp_path(path) == tmp_path / f".summary.json.{os.getpid()}.tmp"


WRITE_BIG = """
import sys
from fireact.outputs import atomic_write_bytes
atomic_write_bytes(sys.argv[1], b"n" * (256 << 20))
"""


def test_a_killed_writer_leaves_the_old_file_or_the_new_one(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(b"old")
    writer = python(WRITE_BIG, str(path))
    temp = path.with_name(f".model.bin.{writer.pid}.tmp")
    deadline = time.monotonic() + 60
    while not temp.exists() and writer.poll() is None and time.monotonic() < deadline:
        time.sleep(0.0005)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    size = path.stat().st_size
    assert size in (3, 256 << 20)  # never a part of the new file
    assert path.read_bytes()[:3] in (b"old", b"nnn")
    leftover = [temp] if temp.exists() else []  # killed before its rename: its temp file
    assert clean_leftovers(tmp_path) == leftover
    assert names(tmp_path) == ["model.bin"]


def test_a_write_that_fails_names_the_path_and_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "x.json"
    with pytest.raises(FireactError) as error:
        atomic_write_text(path, "{}")
    assert str(error.value) == f"no such file or folder writing {path}"
    (tmp_path / "x.json").mkdir()  # a folder where the file should go
    with pytest.raises(FireactError, match=f"is a folder writing {tmp_path / 'x.json'}"):
        atomic_write_text(tmp_path / "x.json", "{}")
    assert names(tmp_path) == ["x.json"]


def test_clean_leftovers_removes_only_dead_writers_files(tmp_path: Path) -> None:
    gone, alive = dead_pid(), os.getpid()
    for name in (f".a.json.{gone}.tmp", f".a.json.{alive}.tmp", f"a.json.{gone}.tmp", "a.json"):
        (tmp_path / name).write_text("x")
    for name in (f".ix.{gone}.building", f".ix.{gone}.old", f".ix.{alive}.building"):
        (tmp_path / name / "sub").mkdir(parents=True)
    removed = clean_leftovers(tmp_path)
    assert [p.name for p in removed] == [f".a.json.{gone}.tmp", f".ix.{gone}.building",
                                         f".ix.{gone}.old"]  # fmt: skip
    assert names(tmp_path) == sorted(
        [f".a.json.{alive}.tmp", f".ix.{alive}.building", f"a.json.{gone}.tmp", "a.json"]
    )
    assert clean_leftovers(tmp_path / "nothing") == []


# ---------------------------------------------------------------- OS errors


def test_a_full_disk_is_named_with_its_path() -> None:
    with pytest.raises(OSError) as raised, open("/dev/full", "wb") as full:
        full.write(b"x")
        full.flush()
    assert raised.value.errno == errno.ENOSPC
    message = describe_os_error(raised.value, "/runs/a/episodes.jsonl")
    assert message == "no space left on device writing /runs/a/episodes.jsonl"
    with pytest.raises(FireactError) as error, os_errors("/dev/full"), open("/dev/full", "wb") as f:
        f.write(b"x")
        f.flush()
    assert str(error.value) == "no space left on device writing /dev/full"


def test_other_os_errors() -> None:
    denied = PermissionError(errno.EACCES, "Permission denied")
    assert describe_os_error(denied, "/x", "removing") == "permission denied removing /x"
    odd = OSError(errno.EBUSY, "Device or resource busy")
    assert describe_os_error(odd, "/x") == "Device or resource busy writing /x"

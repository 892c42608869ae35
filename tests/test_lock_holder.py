"""A writer refused by a folder's lock is told what holds it (its kind and pid), read back from
the lock file; lock files of an older fireact (a pid alone) still read. Real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fireact.errors import FireactError
from fireact.outputs import LOCK_NAME, FolderLock, lock_holder
from tests.helpers.clirun import run_cli
from tests.helpers.openai_server import OpenAIServer
from tests.helpers.teachers import cli_args, teacher

SRC = str(Path(__file__).resolve().parents[1] / "src")

HOLD = """
import sys
from pathlib import Path
from fireact.outputs import FolderLock
with FolderLock(Path(sys.argv[1]), sys.argv[2]):
    print("locked", flush=True)
    sys.stdin.read()  # hold until the test closes stdin
"""

HOLD_OLD = """
import fcntl, os, sys
from pathlib import Path
folder = Path(sys.argv[1])
folder.mkdir(parents=True)
fd = os.open(folder / ".fireact.lock", os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
os.write(fd, f"{os.getpid()}\\n".encode())  # an older fireact's lock file: the pid alone
print("locked", flush=True)
sys.stdin.read()
"""


class Holder:
    """Another process holding `folder`'s lock while the block runs."""

    def __init__(self, code: str, *args: str) -> None:
        env = {**os.environ, "PYTHONPATH": SRC}
        pipe = subprocess.PIPE
        command = [sys.executable, "-c", textwrap.dedent(code), *args]
        self.proc = subprocess.Popen(command, stdin=pipe, stdout=pipe, text=True, env=env)
        self.pid = self.proc.pid

    def __enter__(self) -> Holder:
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline() == "locked\n"
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.communicate(timeout=30)  # closing stdin lets it release and exit


def test_a_run_refused_by_a_demo_names_the_demo(tmp_path):
    out = tmp_path / "run"
    with Holder(HOLD, str(out), "demo") as demo, OpenAIServer(teacher) as server:
        refused = run_cli("run", *cli_args(server.base_url, out, "--resume"))
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.strip() == (
        f"error: demo in progress in {out} (pid {demo.pid}); wait for it or use another folder"
    )
    assert not (out / "episodes.jsonl").exists()


def test_the_lock_file_names_the_holders_pid_and_kind(tmp_path):
    out = tmp_path / "ix"
    with FolderLock(out, "index build"):
        assert (out / LOCK_NAME).read_text() == f"{os.getpid()} index build\n"


def test_a_second_kind_in_one_process_is_told_the_first(tmp_path):
    out = tmp_path / "out"
    with FolderLock(out, "training"), pytest.raises(FireactError) as error:
        FolderLock(out, "run").acquire()
    assert str(error.value) == (
        f"training in progress in {out} (pid {os.getpid()}); wait for it or use another folder"
    )


def test_an_older_lock_file_without_a_kind_still_reads(tmp_path):
    out = tmp_path / "run"
    with Holder(HOLD_OLD, str(out)) as old:
        assert lock_holder(out) == old.pid
        with pytest.raises(FireactError) as error:
            FolderLock(out, "run").acquire()
    assert str(error.value) == (
        f"another fireact command in progress in {out} (pid {old.pid}); wait for it or use "
        "another folder"
    )

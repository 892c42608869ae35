"""CachedTool: hits and misses, ToolState restored on a hit, and the SQLite file's safety under
concurrent episodes, concurrent processes and a writer killed with SIGKILL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fireact.errors import FireactError
from fireact.tools.base import Tool, ToolState, lookup, open_page
from fireact.tools.cache import CachedTool
from fireact.tools.noisy import NoisyTool

SRC = str(Path(__file__).resolve().parents[1] / "src")


class DictSearch:
    """A real (tiny) Wikipedia-style tool: pages in a dict; counts its searches."""

    name = "dict"
    actions = frozenset({"search", "lookup"})

    def __init__(self, pages: dict[str, list[str]]) -> None:
        self.pages = pages
        self.searches = 0
        self.closed = False

    async def __call__(self, action: str, argument: str, state: ToolState) -> str:
        if action == "lookup":
            return lookup(state, argument)
        self.searches += 1
        await asyncio.sleep(0)
        if argument == "boom":
            raise RuntimeError("backend down")
        if argument not in self.pages:
            return f"Could not find [{argument}]. Similar: []."
        return open_page(state, self.pages[argument])

    async def aclose(self) -> None:
        self.closed = True


PAGES = {
    "Paris": [f"Paris sentence {i} about France." for i in range(8)],
    "Rome": ["Rome is in Italy.", "Rome has the Colosseum.", "Italy's capital is Rome."],
}


def test_hit_and_miss_and_passthrough(tmp_path: Path) -> None:
    inner = DictSearch(PAGES)
    cached = CachedTool(inner, tmp_path / "cache.sqlite")
    assert isinstance(cached, Tool)
    assert cached.name == "dict" and cached.actions == inner.actions

    async def go() -> list[str]:
        state = ToolState()
        out = [await cached("search", "Paris", state) for _ in range(3)]
        out.append(await cached("lookup", "sentence 6", state))
        await cached.aclose()
        return out

    out = asyncio.run(go())
    assert out[:3] == [" ".join(PAGES["Paris"][:5])] * 3
    assert out[3] == "(Result 1 / 1) Paris sentence 6 about France."
    assert inner.searches == 1 and inner.closed
    assert cached.stats == {"hits": 2, "misses": 1}


def _trace(cached: CachedTool) -> tuple[list[str], ToolState]:
    """An episode: open Rome, look up, search a missing title, look up again."""

    async def go() -> tuple[list[str], ToolState]:
        state = ToolState(episode_id="ep")
        out = [
            await cached("search", "Rome", state),
            await cached("lookup", "rome", state),
            await cached("search", "Atlantis", state),  # opens nothing: Rome stays open
            await cached("lookup", "rome", state),
            await cached("lookup", "italy", state),
        ]
        return out, state

    return asyncio.run(go())


def test_hit_restores_state_exactly_as_a_miss(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    miss = CachedTool(DictSearch(PAGES), path)
    miss_out, miss_state = _trace(miss)
    assert miss.stats == {"hits": 0, "misses": 2}

    inner = DictSearch(PAGES)
    hit = CachedTool(inner, path)  # a new process would see the same file
    hit_out, hit_state = _trace(hit)
    assert hit.stats == {"hits": 2, "misses": 0} and inner.searches == 0
    assert hit_out == miss_out
    assert hit_state == miss_state
    assert miss_out[3] == "(Result 2 / 3) Rome has the Colosseum."
    row = (
        sqlite3.connect(path)
        .execute("SELECT page FROM tool_cache WHERE argument='Atlantis'")
        .fetchone()
    )
    assert row == (None,)  # "opened nothing" is stored as such


def test_namespaces_errors_and_noisy_guard(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    inner = DictSearch(PAGES)
    a, b = CachedTool(inner, path), CachedTool(inner, path, namespace="other")

    async def go() -> None:
        await a("search", "Paris", ToolState())
        await b("search", "Paris", ToolState())
        for _ in range(2):
            with pytest.raises(RuntimeError, match="backend down"):
                await a("search", "boom", ToolState())

    asyncio.run(go())
    assert inner.searches == 4  # other namespace missed; the failure was retried, not cached
    assert a.count() == 1 and b.count() == 1
    with pytest.raises(FireactError, match="clean tool"):
        CachedTool(NoisyTool(inner, p=0.5), path)


def test_many_concurrent_episodes_in_one_process(tmp_path: Path) -> None:
    pages = {f"t{i}": [f"Sentence of t{i}."] for i in range(50)}
    inner = DictSearch(pages)
    cached = CachedTool(inner, tmp_path / "cache.sqlite")

    async def episode(k: int) -> list[str]:
        state = ToolState(episode_id=str(k))
        return [await cached("search", f"t{(k + j) % 50}", state) for j in range(5)]

    async def go() -> list[list[str]]:
        return await asyncio.gather(*(episode(k) for k in range(200)))

    results = asyncio.run(go())
    for k, out in enumerate(results):
        assert out == [f"Sentence of t{(k + j) % 50}." for j in range(5)]
    assert cached.hits + cached.misses == 1000 and cached.count() == 50
    assert inner.searches == cached.misses  # concurrent identical misses may both call


def test_unusable_file_is_a_user_error(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-db.sqlite"
    bad.write_bytes(b"this is not a sqlite database, just some text " * 100)
    with pytest.raises(FireactError, match="cannot be opened"):
        CachedTool(DictSearch(PAGES), bad)


# --- several OS processes on one file -----------------------------------------------------

WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from fireact.tools.base import ToolState, open_page
    from fireact.tools.cache import CachedTool

    class Pages:
        name = "proc"
        actions = frozenset({"search"})
        async def __call__(self, action, argument, state):
            i = int(argument[1:])
            return open_page(state, [f"{argument} first.", f"{argument} second {i * 7}."])
        async def aclose(self):
            pass

    path, start, stop, width = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    cached = CachedTool(Pages(), path)

    async def one(i):
        state = ToolState()
        out = await cached("search", f"q{i}", state)
        assert out == f"q{i} first. q{i} second {i * 7}.", out
        assert state.page == [f"q{i} first.", f"q{i} second {i * 7}."], state.page
        print(i, flush=True)  # committed: the entry is in the file

    async def main():
        for lo in range(start, stop, width):
            await asyncio.gather(*(one(i) for i in range(lo, min(lo + width, stop))))
        await cached.aclose()

    asyncio.run(main())
    """
)


def _spawn(tmp_path: Path, db: Path, start: int, stop: int, width: int) -> subprocess.Popen[str]:
    script = tmp_path / "worker.py"
    if not script.exists():
        script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(
        [sys.executable, str(script), str(db), str(start), str(stop), str(width)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _check_file(db: Path, expected: set[int]) -> None:
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    rows = conn.execute("SELECT argument, observation, page FROM tool_cache").fetchall()
    conn.close()
    stored = {int(argument[1:]): (obs, page) for argument, obs, page in rows}
    assert len(stored) == len(rows)  # no duplicates
    assert expected <= set(stored)  # nothing lost
    for i in expected:
        obs, page = stored[i]
        assert obs == f"q{i} first. q{i} second {i * 7}."
        assert json.loads(page) == [f"q{i} first.", f"q{i} second {i * 7}."]


def test_processes_share_one_file(tmp_path: Path) -> None:
    db = tmp_path / "shared.sqlite"
    ranges = [(0, 2500), (1000, 3500), (2000, 4000)]  # overlapping: same keys, racing misses
    procs = [_spawn(tmp_path, db, lo, hi, 20) for lo, hi in ranges]
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    _check_file(db, set(range(4000)))
    assert sqlite3.connect(db).execute("SELECT count(*) FROM tool_cache").fetchone() == (4000,)


def test_writer_killed_mid_stream_loses_nothing_committed(tmp_path: Path) -> None:
    db = tmp_path / "killed.sqlite"
    reader = _spawn(tmp_path, db, 100_000, 100_600, 50)  # a concurrent second process
    proc = _spawn(tmp_path, db, 0, 1_000_000, 8)
    assert proc.stdout is not None
    committed: set[int] = set()
    while len(committed) < 1500:
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else "writer exited early"
        committed.add(int(line))
    os.kill(proc.pid, signal.SIGKILL)
    rest, _ = proc.communicate(timeout=10)
    committed |= {int(line) for line in rest.split()}  # printed before the kill: committed too
    assert proc.returncode == -signal.SIGKILL
    reader.communicate(timeout=60)
    assert reader.returncode == 0
    _check_file(db, committed | set(range(100_000, 100_600)))

    async def resume() -> str:  # the file keeps working after the crash
        cached = CachedTool(DictSearch(PAGES), db, namespace="proc")
        try:
            return await cached("search", "q3", ToolState())
        finally:
            await cached.aclose()

    assert asyncio.run(resume()) == "q3 first. q3 second 21."

"""Helpers shared by the benchmarks in this folder: machine facts, the exact command line,
latency statistics, a plain-text table and the results file.

A benchmark calls `run_info` once at the start, measures, then `write_results(name, info,
results)`, which writes ``benchmarks/results/<name>-<host kind>.json`` (or the given path) with
the machine, the command, the commit and the start/end times next to its own figures.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "benchmarks" / "results"


# ---------------------------------------------------------------- the machine and the run


def package_lines(path: Path) -> list[str]:
    """The entries of a package list (``device_packages.txt``, ``device_wheels.txt``): one
    ``NAME`` or ``NAME==VERSION`` a line, ``#`` comments and blank lines left out."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text("utf-8").splitlines())
    return [line for line in lines if line]


def device_wheels() -> list[str]:
    """The distributions carried to the GPU machine as wheels (``benchmarks/device_wheels.txt``,
    which ``gpu_wheels.sh`` downloads), as written there."""
    return package_lines(REPO / "benchmarks" / "device_wheels.txt")


def cpu_model() -> str:
    """The CPU model name (``/proc/cpuinfo``), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def ram_gib() -> float:
    """Total memory in GiB."""
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return float("nan")


def gpus() -> list[str]:
    """Names of the NVIDIA GPUs (``nvidia-smi``), empty when there are none."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def host_kind() -> str:
    """A short name for the kind of machine, used in result file names.

    ``$FIREACT_BENCH_HOST`` if set; else the GPUs (``1xnvidia-h100-80gb-hbm3``); else
    ``cpu<cores>`` (``cpu2``), so results from different machine kinds never overwrite each other.
    """
    if os.environ.get("FIREACT_BENCH_HOST"):
        return _slug(os.environ["FIREACT_BENCH_HOST"])
    names = gpus()
    if names:
        return f"{len(names)}x{_slug(names[0])}"
    return f"cpu{usable_cores()}"


def _slug(text: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in text.lower()).split())


def package_versions(names: Iterable[str]) -> dict[str, str | None]:
    """Installed versions of the given distributions (None when not installed)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit() -> dict[str, Any]:
    """The checked-out commit and whether the work tree has uncommitted changes."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=20, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    status = git("status", "--porcelain")
    return {
        "commit": git("rev-parse", "HEAD"),
        "dirty": bool(status) if status is not None else None,
    }


def command_line() -> str:
    """The exact command that started this process, shell-quoted (interpreter included)."""
    argv = getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv]
    return shlex.join(argv)


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where unknown)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def run_info(packages: Iterable[str] = ()) -> dict[str, Any]:
    """Everything a result needs to be reproduced and compared: call once at the start."""
    return {
        "command": command_line(),
        "cwd": os.getcwd(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": git_commit(),
        "machine": {
            "host_kind": host_kind(),
            "hostname": platform.node(),
            "cpu": cpu_model(),
            "cores": usable_cores(),
            "ram_gib": ram_gib(),
            "gpus": gpus(),
            "os": platform.platform(),
            "python": platform.python_version(),
            "load_average_at_start": load_average(),
        },
        "packages": package_versions(packages),
    }


# ---------------------------------------------------------------- measuring


def latency_stats(seconds: Sequence[float], wall: float | None = None) -> dict[str, float | int]:
    """p50 / p90 / p99 / mean / max in milliseconds and QPS of per-call latencies.

    QPS is calls per second of `wall` (the loop's wall time) when given, else of their sum.
    Percentiles are nearest-rank on the sorted latencies.
    """
    if not seconds:
        return {"n": 0}
    ordered = sorted(seconds)
    total = wall if wall is not None else math.fsum(ordered)

    def pct(p: float) -> float:
        rank = max(1, math.ceil(p / 100 * len(ordered)))
        return round(ordered[rank - 1] * 1000, 4)

    return {
        "n": len(ordered),
        "p50_ms": pct(50),
        "p90_ms": pct(90),
        "p99_ms": pct(99),
        "mean_ms": round(math.fsum(ordered) / len(ordered) * 1000, 4),
        "max_ms": round(ordered[-1] * 1000, 4),
        "qps": round(len(ordered) / total, 1) if total > 0 else float("inf"),
    }


def time_calls(fn: Any, args: Sequence[Any], warmup: Sequence[Any] = ()) -> dict[str, float | int]:
    """Call ``fn(a)`` for each warm-up argument (untimed), then time ``fn(a)`` for each of `args`."""
    for a in warmup:
        fn(a)
    latencies = []
    clock = time.perf_counter
    start = clock()
    for a in args:
        t0 = clock()
        fn(a)
        latencies.append(clock() - t0)
    return latency_stats(latencies, wall=clock() - start)


# ---------------------------------------------------------------- reporting


def format_table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """A plain-text table, numbers right-aligned; None prints as ``-``."""

    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    numeric = [
        all(isinstance(r[i], int | float) or r[i] is None for r in rows) for i in range(len(header))
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def default_results_path(name: str) -> Path:
    """``benchmarks/results/<name>-<host kind>.json``."""
    return RESULTS_DIR / f"{name}-{host_kind()}.json"


def write_results(
    name: str, info: dict[str, Any], results: dict[str, Any], out: Path | None = None
) -> Path:
    """Write ``{"benchmark", **info, "finished_at", ...results}`` as JSON; return the path.

    `out` defaults to `default_results_path`. Written to a temporary file and renamed, so a
    crash never leaves a half-written results file.
    """
    path = Path(out) if out is not None else default_results_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": name,
        **info,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_at_end": load_average(),
        **results,
    }
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(document, indent=2, allow_nan=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path

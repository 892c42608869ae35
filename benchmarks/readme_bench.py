"""P5/P6: wall time of the README's two commands on a fresh clone.

Clones the current commit into a temporary folder (no ``.venv``, no ``runs/``), then runs the
first two commands of the README's first code block there, one fresh clone each, and times them.
The pip download cache of this machine is not cleared (say so when you compare with a truly new
machine; PyTorch comes from this disk either way).

    .venv/bin/python benchmarks/readme_bench.py [--only quickstart|tests]   # or -m benchmarks.readme_bench
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if not __package__:  # run as `python benchmarks/readme_bench.py`: the package's root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import REPO, format_table, run_info, write_results  # noqa: E402

TARGETS_S = {"quickstart": 180.0, "tests": 600.0}


def readme_commands() -> dict[str, str]:
    """The README's two commands: the first two lines of its first ```bash block."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    if block is None:
        raise SystemExit("README.md has no ```bash block")
    lines = [line.split("#", 1)[0].strip() for line in block.group(1).splitlines()]
    quickstart, tests = [line for line in lines if line][:2]
    return {"quickstart": quickstart, "tests": tests}


def time_in_fresh_clone(command: str) -> dict[str, object]:
    """Clone HEAD, run `command` there with bash, return wall time, exit code and output tail."""
    with tempfile.TemporaryDirectory(prefix="fireact-readme-") as tmp:
        clone = Path(tmp) / "fireact"
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
        start = time.perf_counter()
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=clone,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # one stream, in order: the tail is what ran last
            text=True,
            check=False,
        )
        wall = time.perf_counter() - start
    tail = done.stdout.strip().splitlines()[-15:]
    return {
        "command": command,
        "wall_s": round(wall, 1),
        "returncode": done.returncode,
        "tail": tail,
    }


def main() -> None:
    """Time the README's commands in fresh clones; write and print the results."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=sorted(TARGETS_S), help="time one command only")
    parser.add_argument("--out", type=Path, default=None, help="results JSON path")
    args = parser.parse_args()
    info = run_info()
    commands = readme_commands()
    names = [args.only] if args.only else list(commands)
    results = {name: time_in_fresh_clone(commands[name]) for name in names}
    for name, row in results.items():
        row["target_s"] = TARGETS_S[name]
        row["met"] = row["returncode"] == 0 and row["wall_s"] <= TARGETS_S[name]
    rows = [
        (name, r["wall_s"], r["target_s"], r["returncode"], r["met"]) for name, r in results.items()
    ]
    print(format_table(rows, ("command", "wall s", "target s", "exit", "met")))
    settings = {"pip_cache": "warm (this machine's)", "clone": "git clone of HEAD"}
    path = write_results("readme", info, {"settings": settings, "results": results}, out=args.out)
    print(f"written: {path}")


if __name__ == "__main__":
    main()

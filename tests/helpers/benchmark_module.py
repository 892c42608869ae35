"""Running a benchmark of the `benchmarks` package in a fresh interpreter, for the smoke tests.

The tests import the benchmarks as a package (``from benchmarks import search_bench``); this
helper runs one as ``python -m benchmarks.<name>`` would, optionally with some modules made
unimportable, to check what the lent GPU machine's image (no pydantic, tantivy or openai: see
``/work/.library/device/KINDS.md``) can run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# fireact's dependencies (and pydantic's own) that the GPU image does not have
GPU_IMAGE_LACKS = ("pydantic", "pydantic_core", "annotated_types", "typing_inspection", "tantivy",
                   "openai")  # fmt: skip

_RUN = """
import runpy, sys
for name in {blocked!r}:
    sys.modules[name] = None  # `import name` now raises ModuleNotFoundError
sys.argv = [{module!r}, *{argv!r}]
{body}
"""


def python_without(code: str, blocked: tuple[str, ...] = GPU_IMAGE_LACKS, timeout: float = 300):
    """Run Python `code` from the repository root with the `blocked` modules unimportable."""
    return _run(_RUN.format(blocked=blocked, module="-c", argv=[], body=code), timeout)


def run_module(
    name: str,
    argv: list[str],
    *,
    blocked: tuple[str, ...] = (),
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """``python -m benchmarks.<name> ARGV`` from the repository root, with the `blocked`
    modules unimportable; stdout and stderr captured."""
    module = f"benchmarks.{name}"
    body = f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)"
    return _run(_RUN.format(blocked=blocked, module=module, argv=argv, body=body), timeout)


def _run(code: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )

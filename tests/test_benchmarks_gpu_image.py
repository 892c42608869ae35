"""The benchmarks as the lent GPU machine runs them (``benchmarks/run_gpu.sh``).

Its image has torch, transformers, tokenizers, accelerate and peft, but not pydantic, tantivy or
openai (``/work/.library/device/KINDS.md``): the GPU benchmarks must import without them, P2
(`inference_bench`) must run without them (its smoke test runs it so), and P3 (`train_bench`,
which runs ``fireact train``, whose config is pydantic) must say in one line what to carry.
Also: every benchmark runs as a script (``python benchmarks/NAME.py``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.benchmark_module import GPU_IMAGE_LACKS, REPO, python_without, run_module

pytest.importorskip("torch")
pytest.importorskip("transformers")

GPU_MODULES = ("benchmarks.common", "benchmarks.models", "benchmarks.inference_bench",
               "benchmarks.train_bench", "fireact.train", "fireact.train.tiny")  # fmt: skip
BENCHMARKS = ("inference_bench", "readme_bench", "rollout_bench", "search_bench", "train_bench")


def test_gpu_benchmarks_import_without_what_the_image_lacks() -> None:
    code = f"""
import importlib, json
failed = {{}}
for name in {GPU_MODULES!r}:
    try:
        importlib.import_module(name)
    except Exception as err:
        failed[name] = f"{{type(err).__name__}}: {{err}}"
print(json.dumps(failed))
"""
    done = python_without(code)
    assert done.returncode == 0, done.stderr[-3000:]
    failed = json.loads(done.stdout.strip().splitlines()[-1])
    assert failed == {}, f"without {', '.join(GPU_IMAGE_LACKS)}: {failed}"


def test_training_benchmark_names_the_wheels_to_carry(tmp_path: Path) -> None:
    out = tmp_path / "train.json"
    argv = ["--quick", "--device", "cpu", "--model-size", "tiny", "--out", str(out)]
    done = run_module("train_bench", argv, blocked=GPU_IMAGE_LACKS, timeout=120)
    assert done.returncode == 1, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("train_bench: fireact's trainer needs pydantic"), last
    assert "benchmarks/gpu_wheels.sh" in last and "carry=['.whl']" in last
    assert not out.exists()


@pytest.mark.parametrize("name", BENCHMARKS)
def test_runs_as_a_script(name: str) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / f"{name}.py"), "--help"],
        cwd=REPO / "benchmarks",  # not the root: the script finds its package on its own
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "usage:" in done.stdout

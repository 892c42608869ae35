"""The GPU benchmarks as the lent GPU machine runs them (``benchmarks/run_gpu.sh``).

Its image ('cuda') holds the distributions of ``benchmarks/device_packages.txt`` and nothing can
be fetched there; ``benchmarks/device_wheels.txt`` names the wheels ``gpu_wheels.sh`` carries.
The import check runs the GPU benchmarks' whole import path (the benchmark modules, what they
import at module level and in functions, and what the fireact modules they load import in
functions) in an interpreter that sees only those two lists' distributions and this checkout, and
names every module that is missing and its distribution. Also: the wheel script reads the same
list, the training benchmark says in one line what to carry, ``run_gpu.sh`` stops without a GPU
and sums up its results in one line, and every benchmark runs as a script.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.helpers.benchmark_module import (
    DEVICE_PACKAGES,
    DEVICE_WHEELS,
    REPO,
    VERSION_SKEW,
    carried,
    check_gpu_imports,
    gpu_import_path,
    image,
    installed,
    lazy_problems,
    normalise,
    read_list,
    run_module,
)

pytest.importorskip("torch")
pytest.importorskip("transformers")

BENCHMARKS = (
    "inference_bench",
    "readme_bench",
    "rl_bench",
    "rollout_bench",
    "search_bench",
    "train_bench",
)
KINDS = Path("/work/.library/device/KINDS.md")  # the GPU machines' documentation, where present
LISTS = "neither on the GPU image (benchmarks/device_packages.txt) nor carried (benchmarks/" + (
    "device_wheels.txt)"
)
NOT_INSTALLED_HERE = {name for name in carried() if name not in installed()}


def test_gpu_import_path_imports_with_the_image_and_the_carried_wheels() -> None:
    check = check_gpu_imports()
    assert check.problems == []
    # only carried wheels that cannot install here (liger-kernel needs triton) go unchecked
    assert set(check.unverified.values()) <= NOT_INSTALLED_HERE, check.unverified


def test_a_module_left_uncarried_is_named_with_its_distribution() -> None:
    check = check_gpu_imports(carry=carried() - {"pydantic"})
    assert f"fireact.train.sft: needs pydantic (pydantic), {LISTS}" in check.problems
    assert all("needs pydantic (pydantic)" in line for line in check.problems), check.problems


def test_import_path_reaches_what_the_benchmarks_call() -> None:
    path = gpu_import_path()
    for module in ("benchmarks.inference_bench", "benchmarks.train_bench", "fireact.llm.hf",
                   "fireact.train.sft", "fireact.train.speed", "torch", "transformers", "peft"):  # fmt: skip
        assert module in path.imports, module
    assert {"fireact.llm.hf", "fireact.train.config", "fireact.train.tiny"} <= set(path.fireact)
    # imported in a function by the trainer's speed settings, which P3's 7b runs turn on
    assert path.lazy["liger_kernel.transformers"] == ["fireact.train.speed"]


def test_a_lazy_import_neither_carried_nor_excused_is_named() -> None:
    problems, importable = lazy_problems(
        gpu_import_path(), image() | (carried() - {"liger-kernel"})
    )
    why = f"imported in a function by fireact.train.speed: {LISTS}; carry it, or say in " + (
        "NOT_ON_DEVICE why the GPU runs do without it"
    )
    assert sorted(problems) == [
        f"liger_kernel (liger-kernel), {why}",
        f"liger_kernel.transformers (liger-kernel), {why}",
    ]
    assert "flash_attn" not in importable and "torch" in importable  # excused; on the image


def test_version_skew_entries_are_requirements_here_and_not_on_the_image() -> None:
    image_list = read_list(DEVICE_PACKAGES)

    def skewed(name: str) -> bool:  # its requirer here is not the image's version of it
        needed_by = VERSION_SKEW[name]
        if needed_by in VERSION_SKEW:
            return skewed(needed_by)
        return needed_by in installed() and (
            installed()[needed_by].version != image_list.get(needed_by)
        )

    for name, needed_by in VERSION_SKEW.items():
        assert name not in image_list, name
        if name in installed() and skewed(name):  # linked into the emulated image: only for that
            dist = installed()[needed_by]
            assert name in {normalise(Requirement(r).name) for r in dist.requires or ()}, name


def test_wheel_script_downloads_the_listed_wheels() -> None:
    done = subprocess.run(
        ["bash", "benchmarks/gpu_wheels.sh", "--list"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    wanted = [f"{n}=={v or version(n)}" for n, v in read_list(DEVICE_WHEELS).items()]
    assert done.stdout.split() == wanted
    assert {"pydantic", "pydantic-core", "liger-kernel"} <= set(read_list(DEVICE_WHEELS))


def test_device_packages_is_the_documented_image() -> None:
    listed = read_list(DEVICE_PACKAGES)
    assert (listed["torch"], listed["transformers"], listed["triton"]) == (
        "2.11.0", "5.17.0", "3.6.0"
    )  # fmt: skip
    absent = {"pydantic", "openai", "tantivy", "trl", "liger-kernel", "flash-attn", "vllm"}
    assert not absent & set(listed)
    if not KINDS.is_file():
        pytest.skip(f"{KINDS} is not on this machine")
    text = KINDS.read_text(encoding="utf-8").split("## Python packages already there", 1)[1]
    names = text.split("Packages: ", 1)[1].strip().rstrip(".").split(", ")
    assert sorted(listed) == sorted({normalise(n) for n in names})


def test_training_benchmark_on_the_bare_image_names_the_wheels_to_carry(tmp_path: Path) -> None:
    out = tmp_path / "train.json"
    argv = ["--quick", "--device", "cpu", "--model-size", "tiny", "--out", str(out)]
    done = run_module("train_bench", argv, carry=(), timeout=120)
    assert done.returncode == 1, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("train_bench: fireact's trainer needs pydantic"), last
    assert "benchmarks/gpu_wheels.sh" in last and "carry=['.whl']" in last
    assert not out.exists()


def _run_gpu(out: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OUT": str(out), "FIREACT_BENCH_HOST": "t", "PYTHON": sys.executable}
    return subprocess.run(
        ["bash", "benchmarks/run_gpu.sh", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_run_gpu_sums_up_its_results_files_in_one_line(tmp_path: Path) -> None:
    doc = {"progress": {"done": ["ours", "baseline"], "complete": False}, "rows": []}
    (tmp_path / "inference-t.json").write_text(json.dumps(doc))
    done = _run_gpu(tmp_path, "summary")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        f"summary ({tmp_path}): train-t.json: missing; "
        "inference-t.json: 2 done (ours, baseline), not complete\n"
    )


def test_run_gpu_stops_before_any_benchmark_without_a_gpu(tmp_path: Path) -> None:
    done = _run_gpu(tmp_path, "p3")
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "run_gpu.sh: no CUDA GPU here (torch.cuda.is_available() is False); the 7b runs need one"
    )
    assert "  pydantic " in done.stdout  # the import line of the preflight
    assert not list(tmp_path.glob("*.json"))


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

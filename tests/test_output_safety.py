"""Output folders through the real CLI: `index build` and `train` never destroy an input or a
stranger's file, allow one writer per folder, and report a damaged index in one line.

Each refusal is one line on stderr, exit 2, and leaves the tree byte-identical.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fireact.outputs import lock_holder
from fireact.resources import resource
from tests.helpers.clirun import run_cli
from tests.helpers.runs import snapshot

ALPACA = json.loads(resource("finetune", "alpaca_format", "hotpotqa.json").read_text())[:4]
RECIPE = """\
model: {{build_tiny: {{hidden_size: 32, layers: 1, heads: 2, vocab_size: 300}}}}
dataset: {data}
method: full
precision: fp32
cpu_threads: 1
batch_size: 1
micro_batch_size: 1
cutoff_len: 1024
max_steps: {steps}
output_dir: {out}
"""


def refused(result: subprocess.CompletedProcess) -> str:
    """The one error line of a refused command (asserting exit 2 and nothing else)."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    return lines[0].removeprefix("error: ")


def corpus(path: Path, *pages: tuple[str, str]) -> Path:
    path.write_text("".join(json.dumps({"title": t, "text": x}) + "\n" for t, x in pages))
    return path


def fireact(*args: str) -> subprocess.Popen:
    """`fireact ARGS` started in the background (its pid is the CLI's own)."""
    command = [sys.executable, "-m", "fireact", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, what: str, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"{what}: the first process ended ({process.stderr.read()[-2000:]})")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: timed out")
        time.sleep(0.01)


# ---------------------------------------------------------------- index build


def test_overwrite_refuses_a_folder_that_is_not_an_index(tmp_path: Path) -> None:
    source = corpus(tmp_path / "c.jsonl", ("A", "First."))
    (tmp_path / "ix").mkdir()
    (tmp_path / "ix" / "keep.txt").write_text("mine")
    before = snapshot(tmp_path)
    result = run_cli("index", "build", str(source), "--out", str(tmp_path / "ix"), "--overwrite")
    assert refused(result) == (
        f"refusing to replace {tmp_path / 'ix'}: it holds {tmp_path / 'ix' / 'keep.txt'}, and no "
        "earlier fireact index wrote that folder (no .fireact-index marker); move it away or "
        "choose another folder"
    )
    assert snapshot(tmp_path) == before


def test_overwrite_replaces_an_index_but_not_a_file_added_to_it(tmp_path: Path) -> None:
    source = corpus(tmp_path / "c.jsonl", ("A", "First."))
    ix = tmp_path / "ix"
    assert run_cli("index", "build", str(source), "--out", str(ix)).returncode == 0
    corpus(source, ("A", "Second."))
    assert run_cli("index", "build", str(source), "--out", str(ix), "--overwrite").returncode == 0
    assert run_cli("search", "A", "--index", str(ix)).stdout == "Second.\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.jsonl", "ix"]  # no temp folders

    (ix / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    result = run_cli("index", "build", str(source), "--out", str(ix), "--overwrite")
    assert refused(result) == (
        f"refusing to replace {ix}: it holds {ix / 'notes.txt'}, which fireact index did not "
        "write; move it away or choose another folder"
    )
    assert snapshot(tmp_path) == before


def test_a_source_inside_the_index_folder_is_refused(tmp_path: Path) -> None:
    ix = tmp_path / "ix"
    ix.mkdir()
    source = corpus(ix / "c.jsonl", ("A", "First."))
    before = snapshot(tmp_path)
    result = run_cli("index", "build", str(source), "--out", str(ix), "--overwrite")
    assert refused(result) == (
        f"the input {source} lies inside --out {ix}, which would be replaced; move the input "
        "out or choose another --out"
    )
    assert snapshot(tmp_path) == before
    result = run_cli("index", "build", str(source), "--out", str(source))
    assert refused(result) == (
        f"--out {source} is also an input; writing it would destroy the input: choose another --out"
    )


@pytest.mark.parametrize("damage", ["truncated metadata", "missing tantivy file"])
def test_a_damaged_index_is_one_line_with_the_command_that_rebuilds_it(
    tmp_path: Path, damage: str
) -> None:
    source = corpus(tmp_path / "c.jsonl", ("A", "First."))
    ix = tmp_path / "ix"
    assert run_cli("index", "build", str(source), "--out", str(ix)).returncode == 0
    if damage == "truncated metadata":
        meta = ix / "fireact-index.json"
        meta.write_text(meta.read_text()[:40])
    else:
        next(ix.glob("*.store")).unlink()
    before = snapshot(tmp_path)
    message = refused(run_cli("search", "A", "--index", str(ix)))
    assert message.startswith(f"{ix}: damaged index (") and "Traceback" not in message
    if damage == "truncated metadata":  # the sources are unknown
        assert message.endswith(
            f"rebuild it: fireact index build SOURCES... --out {ix} --overwrite"
        )
        command = ["index", "build", str(source), "--out", str(ix), "--overwrite"]
    else:
        _, rebuild = message.split("; rebuild it: fireact ")
        assert rebuild == f"index build {source} --out {ix} --overwrite"
        command = shlex.split(rebuild)
    assert snapshot(tmp_path) == before
    assert run_cli(*command).returncode == 0
    assert run_cli("search", "A", "--index", str(ix)).stdout == "First.\n"


def big_corpus(path: Path, pages: int) -> Path:
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    with path.open("w") as f:
        for i in range(pages):
            text = f"Page {i} is about {words[i % 8]} and {words[i * 3 % 8]}."
            f.write(json.dumps({"title": f"Page {i}", "text": text}) + "\n")
    return path


def test_one_index_build_per_folder_and_a_killed_one_is_cleaned_up(tmp_path: Path) -> None:
    big = big_corpus(tmp_path / "big.jsonl", 500_000)  # several seconds to index
    small = corpus(tmp_path / "small.jsonl", ("A", "Small."))
    ix = tmp_path / "ix"
    first = fireact("index", "build", str(big), "--out", str(ix))
    building = tmp_path / f".ix.{first.pid}.building"
    try:
        wait_for(building.is_dir, "the first build starts", first)
        second = run_cli("index", "build", str(small), "--out", str(ix))
        assert refused(second) == (
            f"index build in progress in {ix} (pid {first.pid}); wait for it or use another folder"
        )
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()
    assert building.is_dir() and not ix.exists()  # killed half way: nothing in place
    assert run_cli("index", "build", str(small), "--out", str(ix)).returncode == 0
    assert run_cli("search", "A", "--index", str(ix)).stdout == "Small.\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.jsonl", "ix", "small.jsonl"]


# ---------------------------------------------------------------- train


def recipe(tmp: Path, data: Path, out: Path, steps: int = 1) -> str:
    path = tmp / "recipe.yaml"
    path.write_text(RECIPE.format(data=data, out=out, steps=steps))
    return str(path)


@pytest.fixture(scope="module")
def earlier_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A finished tiny training run in ``tmp/out`` and its dataset ``tmp/data.json``."""
    tmp = tmp_path_factory.mktemp("train")
    (tmp / "data.json").write_text(json.dumps(ALPACA))
    result = run_cli("train", recipe(tmp, tmp / "data.json", tmp / "out"))
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp, tmp / "out"


def test_overwrite_never_deletes_the_dataset_it_reads(
    earlier_run: tuple[Path, Path], tmp_path: Path
) -> None:
    tmp, out = earlier_run
    data = out / "my-data.json"
    data.write_bytes((tmp / "data.json").read_bytes())
    try:
        before = snapshot(tmp)
        result = run_cli("train", recipe(tmp_path, data, out), "--overwrite", "true")
        assert refused(result) == (
            f"the input {data} lies inside output_dir {out}, which would be replaced; move the "
            "input out or choose another output_dir"
        )
        assert snapshot(tmp) == before  # the dataset byte-identical, the earlier run intact
    finally:
        data.unlink()


def test_overwrite_never_deletes_a_stranger_s_file(
    earlier_run: tuple[Path, Path], tmp_path: Path
) -> None:
    tmp, out = earlier_run
    (out / "notes.txt").write_text("mine")
    try:
        before = snapshot(tmp)
        result = run_cli("train", recipe(tmp_path, tmp / "data.json", out), "--overwrite", "true")
        assert refused(result) == (
            f"refusing to replace {out}: it holds {out / 'notes.txt'}, which fireact train did "
            "not write; move it away or choose another folder"
        )
        assert snapshot(tmp) == before
    finally:
        (out / "notes.txt").unlink()


def test_a_training_folder_without_the_marker_is_not_emptied(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "checkpoint-7").mkdir(parents=True)
    (out / "checkpoint-7" / "weights.bin").write_text("someone else's")
    (tmp_path / "data.json").write_text(json.dumps(ALPACA))
    config = recipe(tmp_path, tmp_path / "data.json", out)
    before = snapshot(tmp_path)
    result = run_cli("train", config, "--overwrite", "true")
    assert refused(result) == (
        f"refusing to replace {out}: it holds {out / 'checkpoint-7'}, and no earlier fireact "
        "train wrote that folder (no .fireact-train marker); move it away or choose another folder"
    )
    assert snapshot(tmp_path) == before


def test_one_training_per_folder_and_kill_9_leaves_no_stale_lock(tmp_path: Path) -> None:
    (tmp_path / "data.json").write_text(json.dumps(ALPACA))
    out = tmp_path / "out"
    config = recipe(tmp_path, tmp_path / "data.json", out, steps=100_000)
    first = fireact("train", config)
    try:
        wait_for(lambda: lock_holder(out) == first.pid, "the first training starts", first)
        second = run_cli("train", config, "--max_steps", "1")
        assert refused(second) == (
            f"training in progress in {out} (pid {first.pid}); wait for it or use another folder"
        )
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()
    assert lock_holder(out) is None
    third = run_cli("train", config, "--max_steps", "1", "--overwrite", "true")
    assert third.returncode == 0, third.stderr[-3000:]
    assert json.loads((out / "train_summary.json").read_text())["steps"] == 1
    assert not (out / ".fireact.lock").exists() and (out / ".fireact-train").is_file()
    assert os.path.isdir(out / "base")  # the tiny base model is kept by overwrite


def test_every_rank_of_a_multi_process_run_stops_on_the_refusal(
    earlier_run: tuple[Path, Path], tmp_path: Path
) -> None:
    """Only the main process claims the folder; the other ranks hear its refusal, not hang."""
    tmp, out = earlier_run
    repo = Path(__file__).resolve().parents[1]
    accelerate = Path(sys.executable).with_name("accelerate")
    command = [str(accelerate), "launch", "--config_file"]
    command += [str(repo / "configs/accelerate/multi_cpu_gloo.yaml"), "--main_process_port"]
    env = {**os.environ, "PYTHONPATH": str(repo / "src"), "OMP_NUM_THREADS": "1"}
    config = recipe(tmp_path, tmp / "data.json", out)
    for _attempt in range(2):  # a fresh port once more if the rendezvous itself failed
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = str(s.getsockname()[1])
        launch = [*command, port, "-m", "fireact.train.sft", config]
        done = subprocess.run(launch, capture_output=True, text=True, env=env, timeout=180)
        if "Address already in use" not in done.stderr:
            break
    earlier = f"error: output_dir {out} holds an earlier run: set resume: true to continue it"
    assert done.returncode != 0
    assert done.stderr.count(earlier) == 2, done.stderr[-3000:]  # rank 0 and rank 1

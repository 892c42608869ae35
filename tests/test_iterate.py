"""`fireact iterate`: recipe errors, the loop with real tiny models, resume after kill -9, LoRA
rounds that continue the previous adapter, and a loop folder moved elsewhere and resumed there.

The loops run the real runner, converter, data report and trainer on shipped HotpotQA data with
a tiny random Llama built in the test (no download), on the CPU.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from fireact.errors import FireactError
from fireact.iterate import iterate, load_recipe, table
from fireact.iterate.loop import claim
from fireact.outputs import FolderLock
from fireact.resources import resource
from fireact.tasks import load_task

SHIPPED = resource("configs", "iterate", "tiny-hotpotqa.yaml")
NUMBERS = ("round", "kept", "train_examples", "steps", "train_loss", "em", "f1")


def write_recipe(folder: Path, **changes) -> Path:
    """The shipped tiny recipe, made smaller for a test, with `changes` (dotted keys)."""
    data = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    small = {
        "teacher.examples": 8,
        "sample.start": 100,
        "sample.end": 102,
        "eval.end": 2,
        "run.max_steps": 2,
        "run.max_tokens": 16,
        "train.overrides.epochs": 6,
        "train.overrides.logging_steps": 2,
        "train.overrides.model.build_tiny.hidden_size": 32,
        "train.overrides.model.build_tiny.vocab_size": 400,
    }
    for key, value in {**small, **changes}.items():
        *parents, last = key.split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "fireact", "iterate", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def numbers(summary_file: Path) -> list[dict]:
    rows = json.loads(summary_file.read_text(encoding="utf-8"))["rounds"]
    return [{k: row[k] for k in NUMBERS} for row in rows]


# -- recipe errors -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"sample.kk": 3}, "unknown key 'sample.kk'"),
        ({"sample.k": 0}, "sample.k: Input should be greater than or equal to 1 (got 0)"),
        ({"eval.start": 101, "eval.end": 104}, "eval [101:104) overlaps sample [100:102)"),
        ({"run.model": "hf:x"}, "run.model: set by the loop's stages"),
        ({"run.max_steps": 0}, "run: run option 'max_steps' = 0"),
        ({"train.overrides.epochs": -1}, "epochs: Input should be greater than 0"),
        ({"teacher.data": "missing.json"}, "teacher.data: file not found"),
        ({"teacher": None}, "give start_model (round 0 evaluates it) or teacher"),
    ],
)
def test_recipe_error_names_the_key(tmp_path, changes, message):
    path = write_recipe(tmp_path, **changes)
    with pytest.raises(FireactError) as err:
        load_recipe(path)
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_shipped_hotpotqa_recipe_is_valid():
    recipe = load_recipe("tiny-hotpotqa.yaml")
    assert (recipe.task, recipe.rounds, recipe.sample.k, recipe.train.init) == (
        "hotpotqa", 2, 2, "previous",
    )  # fmt: skip


def test_shipped_tableqa_recipe_reads_the_quickstart_teacher(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FireactError, match="teacher.data: file not found: .*quickstart-tableqa"):
        load_recipe("tiny-tableqa.yaml")
    (tmp_path / "runs" / "quickstart-tableqa").mkdir(parents=True)
    (tmp_path / "runs" / "quickstart-tableqa" / "train.json").write_text("[]")
    recipe = load_recipe("tiny-tableqa.yaml")
    assert (recipe.task, recipe.run["tool"], recipe.eval.split) == (
        "tableqa",
        "sql,calculate",
        "test",
    )


def test_changed_recipe_on_resume_names_the_key(tmp_path):
    out = tmp_path / "loop"
    out.mkdir()
    claim(out, load_recipe(write_recipe(tmp_path)))
    changed = write_recipe(tmp_path, **{"sample.k": 3})
    with pytest.raises(FireactError, match=r"recipe key 'sample.k' changed since .* \(2 -> 3\)"):
        iterate(changed, out)
    assert not (out / "ROUND_0").exists()


def test_second_loop_in_one_folder_is_refused(tmp_path):
    out = tmp_path / "loop"
    with FolderLock(out, "iterate"), pytest.raises(FireactError, match="in progress in"):
        iterate(write_recipe(tmp_path), out)


def test_folder_with_other_files_is_refused(tmp_path):
    out = tmp_path / "loop"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FireactError, match="holds no recipe.json \\(found notes.txt\\)"):
        iterate(write_recipe(tmp_path), out)


def test_table_rows():
    rows = [
        {"round": 0, "kept": 8, "train_examples": 8, "steps": 18, "train_loss": 5.04261,
         "em": 0.0, "f1": 0.0},
        {"round": 1, "kept": 2, "train_examples": 10, "steps": None, "train_loss": None,
         "em": 0.5, "f1": 0.625},
    ]  # fmt: skip
    assert table(rows) == (
        "| round | kept | train examples | steps | train loss | EM | F1 |\n"
        "|---|---|---|---|---|---|---|\n"
        "| 0 | 8 | 8 | 18 | 5.0426 | 0.0 | 0.0 |\n"
        "| 1 | 2 | 10 | - | - | 50.0 | 62.5 |\n"
    )


# -- the loop ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    """One uninterrupted 2-round loop through the CLI: (recipe, folder, stdout)."""
    folder = tmp_path_factory.mktemp("iterate")
    recipe = write_recipe(folder)
    done = cli(str(recipe), "--out", str(folder / "a"))
    stdout, stderr = done.communicate(timeout=240)
    assert done.returncode == 0, stderr[-3000:]
    return recipe, folder / "a", stdout


def test_loop_writes_table_plot_and_rounds(loop):
    _, out, stdout = loop
    summary = json.loads((out / "summary.json").read_text())
    assert [row["round"] for row in summary["rounds"]] == [0, 1, 2]
    assert [row["kept"] for row in summary["rounds"]] == [8, 0, 0]  # the tiny model never wins
    assert [row["train_examples"] for row in summary["rounds"]] == [8, 8, 8]  # teacher mix
    assert (out / "summary.md").read_text().endswith(table(summary["rounds"]))
    assert table(summary["rounds"]) in stdout
    assert (out / "em_per_round.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for k in (1, 2):
        assert sorted(p.name for p in (out / f"ROUND_{k}" / "done").iterdir()) == [
            "eval.json", "keep.json", "report.json", "sample.json", "train.json",
        ]  # fmt: skip


def test_rerun_skips_every_finished_stage(loop, tmp_path):
    """A rerun of a finished loop loads no model: it runs even with every weight file gone."""
    recipe, out, _ = loop
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    for weights in copy.rglob("*.safetensors"):
        weights.unlink()
    summary = iterate(recipe, copy)
    assert summary["stages_run"] == []
    assert len(summary["stages_skipped"]) == 4 + 5 + 5
    assert numbers(copy / "summary.json") == numbers(out / "summary.json")


def test_kill_during_round_2_training_then_resume_gives_same_table(loop):
    recipe, out, _ = loop
    second = out.parent / "b"
    killed = cli(str(recipe), "--out", str(second))
    train_log = second / "ROUND_2" / "train" / "train_log.jsonl"
    deadline = time.monotonic() + 200
    while not train_log.exists():  # the trainer has logged its first steps of round 2
        assert killed.poll() is None and time.monotonic() < deadline, killed.stderr.read()
        time.sleep(0.005)
    os.kill(killed.pid, signal.SIGKILL)
    killed.communicate()
    assert not (second / "ROUND_2" / "done" / "train.json").exists()  # killed mid-training

    resumed = cli(str(recipe), "--out", str(second))
    _, stderr = resumed.communicate(timeout=240)
    assert resumed.returncode == 0, stderr[-3000:]
    assert "resuming round 2 at stage train (12 stages done)" in stderr
    assert "round 2 sample: starting" not in stderr
    assert numbers(second / "summary.json") == numbers(out / "summary.json")
    predictions = [
        [
            json.loads(line)["trajectory"]
            for line in (run / "ROUND_2" / "eval" / "episodes.jsonl").open()
        ]
        for run in (out, second)
    ]
    assert predictions[0] == predictions[1]


# -- successes are kept ------------------------------------------------------------------------
def test_scripted_start_model_successes_are_kept_and_trained_on(tmp_path):
    """Round 0 scores a scripted model (right on dev 0, wrong on dev 1); round 1 samples it on
    dev 100-102 (right on 100 and 101): 2 tries x 2 wins, one kept per question, + 8 teacher."""
    task = load_task("hotpotqa", "dev")
    script = {}
    for ex, right in [(ex, True) for ex in task.select(100, 103, False)[:2]] + [
        (task.select(102, 103, False)[0], False),
        (task.select(0, 1, False)[0], True),
        (task.select(1, 2, False)[0], False),
    ]:
        answer = ex.answer if right else "no idea"
        script[ex.id] = [f"Thought: I know this.\nAction: finish[{answer}]"]
    script_file = tmp_path / "script.json"
    script_file.write_text(json.dumps(script))
    recipe = write_recipe(
        tmp_path,
        **{"start_model": f"scripted:{script_file}", "rounds": 1, "sample.end": 103},
    )
    summary = iterate(recipe, tmp_path / "loop", say=lambda _: None)
    rows = summary["rounds"]
    assert [(r["round"], r["em"]) for r in rows] == [(0, 0.5), (1, 0.0)]
    assert (rows[0]["kept"], rows[1]["kept"], rows[1]["train_examples"]) == (None, 2, 10)
    keep = json.loads((tmp_path / "loop" / "ROUND_1" / "done" / "keep.json").read_text())
    assert (keep["successes"], keep["kept"], keep["teacher"]) == (4, 2, 8)


# -- LoRA rounds continue the adapter; a moved loop folder resumes where it is now -------------
LORA = {
    "train.overrides.method": "lora",
    "train.overrides.lora": {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": ["q_proj"]},
}
ROUND_STAGES = ["sample", "keep", "report", "train", "eval"]


def done_files(out: Path) -> list[Path]:
    return sorted(out.glob("ROUND_*/done/*.json"))


def strings(value) -> list[str]:
    """Every string in a JSON value."""
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return [value] if isinstance(value, str) else []


@pytest.fixture(scope="module")
def lora_loop(tmp_path_factory):
    """A finished LoRA loop, round 0 and round 1: (its folder, its summary)."""
    folder = tmp_path_factory.mktemp("iterate_lora")
    summary = iterate(write_recipe(folder, rounds=1, **LORA), folder / "a", say=lambda _: None)
    return folder / "a", summary


def moved(lora_loop, tmp_path) -> Path:
    """A copy of the LoRA loop folder, moved to another place; the copy's first place is gone."""
    first = tmp_path / "first"
    shutil.copytree(lora_loop[0], first)
    (tmp_path / "elsewhere").mkdir()
    return first.rename(tmp_path / "elsewhere" / "loop")


def test_lora_round_continues_the_previous_rounds_adapter(lora_loop):
    out, _ = lora_loop
    train = json.loads((out / "ROUND_1" / "done" / "train.json").read_text())
    assert (train["init_model"], train["init_adapter"]) == ("ROUND_0/train/base", "ROUND_0/train")
    assert train["agent"] == "hf:ROUND_0/train/base:ROUND_1/train"
    ran = yaml.safe_load((out / "ROUND_1" / "train" / "fireact_config.yaml").read_text())
    assert (ran["model"], ran["init_adapter"]) == (
        str(out / "ROUND_0/train/base"),
        str(out / "ROUND_0/train"),
    )
    assert not list(out.rglob("merged"))  # nothing is merged any more
    adapter = json.loads((out / "ROUND_1" / "train" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(out / "ROUND_0/train/base")


def test_loop_files_hold_no_absolute_path(lora_loop):
    out, _ = lora_loop
    files = [out / "summary.json", out / "recipe.json", *done_files(out)]
    assert len(files) == 2 + 4 + 5
    for path in files:
        values = strings(json.loads(path.read_text()))
        assert not [v for v in values if v.startswith("/") or str(out) in v], path
    assert str(out.parent) not in (out / "summary.md").read_text()


def test_moved_loop_resumes_where_it_is_now(lora_loop, tmp_path):
    """Two more rounds in the moved folder: rounds 0-1 are skipped, round 2 samples with and
    trains from round 1's adapter at the new place; the old place is never recreated."""
    out = moved(lora_loop, tmp_path)
    recipe = write_recipe(tmp_path, rounds=2, **LORA)
    summary = iterate(recipe, out, say=lambda _: None)
    assert summary["stages_run"] == [f"2/{stage}" for stage in ROUND_STAGES]
    assert len(summary["stages_skipped"]) == 4 + 5
    assert not (tmp_path / "first").exists()
    train = json.loads((out / "ROUND_2" / "done" / "train.json").read_text())
    assert (train["init_model"], train["init_adapter"]) == ("ROUND_0/train/base", "ROUND_1/train")
    ran = yaml.safe_load((out / "ROUND_2" / "train" / "fireact_config.yaml").read_text())
    assert ran["init_adapter"] == str(out / "ROUND_1" / "train")
    adapter = json.loads((out / "ROUND_2" / "train" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(out / "ROUND_0" / "train" / "base")
    assert summary["rounds"][:2] == lora_loop[1]["rounds"]


def test_moved_loop_runs_an_interrupted_eval_again(lora_loop, tmp_path):
    """An eval cut after its first episode, then moved: the runner would refuse to resume it
    (its model path changed), so it runs again from its start; greedy, the same episodes."""
    out = moved(lora_loop, tmp_path)
    (out / "ROUND_1" / "done" / "eval.json").unlink()
    (out / "ROUND_1" / "eval" / "summary.json").unlink()
    episodes = out / "ROUND_1" / "eval" / "episodes.jsonl"
    episodes.write_text(episodes.read_text().splitlines(keepends=True)[0])
    summary = iterate(write_recipe(tmp_path, rounds=1, **LORA), out, say=lambda _: None)
    assert summary["stages_run"] == ["1/eval"]
    assert summary["rounds"] == lora_loop[1]["rounds"]
    before = (lora_loop[0] / "ROUND_1" / "eval" / "episodes.jsonl").read_text().splitlines()
    assert [json.loads(line)["trajectory"] for line in episodes.read_text().splitlines()] == [
        json.loads(line)["trajectory"] for line in before
    ]


def test_loop_folder_with_absolute_paths_still_resumes(lora_loop, tmp_path):
    """Done-markers as earlier versions wrote them (absolute paths) keep working where those
    paths exist: round 1 from keep on runs again, reading them."""
    out = tmp_path / "loop"
    shutil.copytree(lora_loop[0], out)
    for path in done_files(out):
        text = (
            path.read_text()
            .replace('"ROUND_', f'"{out}/ROUND_')
            .replace(":ROUND_", f":{out}/ROUND_")
        )
        path.write_text(text)
    for stage in ROUND_STAGES[1:]:
        (out / "ROUND_1" / "done" / f"{stage}.json").unlink()
    summary = iterate(write_recipe(tmp_path, rounds=1, **LORA), out, say=lambda _: None)
    assert summary["stages_run"] == [f"1/{stage}" for stage in ROUND_STAGES[1:]]
    train = json.loads((out / "ROUND_1" / "done" / "train.json").read_text())
    assert (train["init_model"], train["init_adapter"]) == ("ROUND_0/train/base", "ROUND_0/train")
    assert numbers(out / "summary.json") == numbers(lora_loop[0] / "summary.json")

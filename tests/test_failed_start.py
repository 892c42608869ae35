"""A `fireact train` / `fireact quickstart` that fails before it trains never blocks its rerun.

Training: a model that cannot load (a hub id missing from the cache with ``HF_HUB_OFFLINE=1``,
an unreachable hub, a damaged weights file) leaves the output folder as it found it (absent,
or with the user's files byte-identical, or an earlier run intact even with ``overwrite``), so
the same command simply runs again. A hub id that cannot be fetched fails at once in one line
saying how to supply it. Quickstart: a failed start keeps its finished stages and the rerun
(no ``--overwrite``) reuses them; a rerun with other settings is refused in one line. Real
tiny models, real training, real sockets on 127.0.0.1; nothing reaches the network.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from fireact.errors import FireactError
from fireact.resources import resource
from fireact.train import load_config, train
from fireact.train.hub_source import check_hub_source
from fireact.train.output_dir import claim_output_dir, holds_run
from tests.helpers.clirun import run_cli
from tests.helpers.httpserver import Reply, serve
from tests.helpers.hub import unreachable_hub
from tests.helpers.runs import snapshot

HUB_ID = "meta-llama/Llama-2-7b-hf"
TINY = resource("configs", "tiny.yaml")  # the shipped recipe, cut to one step on two examples


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple[Path, Path]:
    """(a tiny model folder that loads, a copy whose weights file is damaged)."""
    from tests.helpers.tiny_models import build_tiny_llama

    tmp = tmp_path_factory.mktemp("models")
    good = build_tiny_llama(tmp / "good", hidden_size=32, layers=1, heads=2)
    broken = tmp / "broken"
    shutil.copytree(good, broken)
    (broken / "model.safetensors").write_bytes(b"a download cut short")
    return good, broken


def recipe(model: Path | str, out: Path) -> list[str]:
    """`fireact train configs/tiny.yaml` overrides: one step on `model`, into `out`."""
    one_step = ["--max_examples", "2", "--max_steps", "1", "--logging_steps", "1"]
    return ["--model", str(model), "--output_dir", str(out), *one_step]


def offline(tmp: Path) -> dict[str, str]:
    """The environment of a machine without the hub: an empty cache, HF_HUB_OFFLINE=1."""
    return {
        "HF_HOME": str(tmp / "hf"),
        "HF_HUB_CACHE": str(tmp / "hf" / "hub"),
        "HF_HUB_OFFLINE": "1",
    }


@pytest.fixture
def hub_online(tmp_path: Path, monkeypatch) -> None:
    """The hub switched on, with an empty cache (this process only)."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)


def hint(tmp: Path, why: str) -> str:
    return (
        f"model: cannot load {HUB_ID!r}: not in the Hugging Face cache ({tmp / 'hf' / 'hub'}) "
        f"and {why}: run `hf download {HUB_ID}` where the hub is reachable (accept its licence "
        "and set HF_TOKEN), or pass --model /path/to/a/local/folder"
    )


def damaged(broken: Path) -> str:
    return f"model: cannot load {str(broken)!r}: Error while deserializing header: header too large"


# ------------------------------------------------------------------ train: the hub model
def test_cli_train_of_an_uncached_hub_model_offline_says_how_to_supply_it_and_writes_nothing(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    result = run_cli("train", str(TINY), *recipe(HUB_ID, out), env=offline(tmp_path))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"error: {hint(tmp_path, 'HF_HUB_OFFLINE is set')}"]
    assert snapshot(tmp_path) == before


def test_an_unreachable_hub_fails_at_once_in_one_line(
    hub_online: None, tmp_path: Path, monkeypatch
) -> None:
    why = unreachable_hub(monkeypatch)
    started = time.monotonic()
    with pytest.raises(FireactError) as err:
        check_hub_source(HUB_ID, "model")
    assert time.monotonic() - started < 5  # not a minute of retries
    assert str(err.value) == hint(tmp_path, why)


def test_a_reachable_hub_lets_the_download_go_ahead(hub_online: None, monkeypatch) -> None:
    from huggingface_hub import constants

    with serve(lambda path, query: Reply(200, {})) as hub:
        monkeypatch.setattr(constants, "ENDPOINT", hub.url)
        assert check_hub_source(HUB_ID, "model") is None


# ------------------------------------------------------------ train: a model that fails to load
def test_a_model_that_fails_to_load_removes_the_folders_it_made(models, tmp_path: Path) -> None:
    _, broken = models
    config = load_config(TINY, recipe(broken, tmp_path / "runs" / "new" / "out"))
    with pytest.raises(FireactError) as err:
        train(config)
    assert str(err.value) == damaged(broken)
    assert not (tmp_path / "runs").exists()


def test_after_a_model_that_fails_to_load_the_same_folder_trains_without_flags(
    models, tmp_path: Path
) -> None:
    good, broken = models
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    with pytest.raises(FireactError, match="Error while deserializing header"):
        train(load_config(TINY, recipe(broken, out)))
    assert snapshot(tmp_path) == before  # no .fireact-train, no fireact_config.yaml
    summary = train(load_config(TINY, recipe(good, out)))
    assert summary["steps"] == 1 and (out / "model.safetensors").is_file()
    assert (out / "notes.txt").read_text() == "mine"


@pytest.fixture(scope="module")
def earlier_run(models, tmp_path_factory) -> Path:
    """The output_dir of a finished one-step run."""
    good, _ = models
    out = tmp_path_factory.mktemp("earlier") / "out"
    train(load_config(TINY, recipe(good, out)))
    return out


@pytest.mark.parametrize("flag", ["--overwrite", "--resume"])
def test_overwrite_or_resume_with_a_model_that_fails_to_load_keeps_the_earlier_run(
    models, earlier_run: Path, flag: str
) -> None:
    _, broken = models
    before = snapshot(earlier_run)
    with pytest.raises(FireactError) as err:
        train(load_config(TINY, [*recipe(broken, earlier_run), flag, "true"]))
    assert str(err.value) == damaged(broken)
    assert snapshot(earlier_run) == before  # fireact_config.yaml restored byte for byte


def test_a_run_killed_while_loading_is_no_earlier_run(models, tmp_path: Path) -> None:
    """What a run killed (kill -9, the OOM killer) before its first step leaves: the marker and
    its config. That folder holds no earlier run, so the same command runs."""
    good, _ = models
    config = load_config(TINY, recipe(good, tmp_path / "out"))
    claim_output_dir(config).lock.release()  # claimed, then the process is gone
    assert sorted(p.name for p in config.output_dir.iterdir()) == [
        ".fireact-train",
        "fireact_config.yaml",
    ]
    assert not holds_run(config.output_dir)
    assert train(config)["steps"] == 1 and holds_run(config.output_dir)


# ------------------------------------------------------------------------------- quickstart
def test_quickstart_with_an_uncached_hub_model_offline_fails_before_writing(
    tmp_path: Path,
) -> None:
    out = tmp_path / "qs"
    args = ["quickstart", "--model", HUB_ID, "--train-examples", "500", "--out", str(out)]
    result = run_cli(*args, env=offline(tmp_path))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"error: {hint(tmp_path, 'HF_HUB_OFFLINE is set')}"]
    assert not out.exists()


@pytest.fixture(scope="module")
def failed_quickstart(models, tmp_path_factory) -> Path:
    """A quickstart folder whose start failed at training (the model does not load)."""
    from fireact.quickstart import quickstart

    _, broken = models
    out = tmp_path_factory.mktemp("quickstart") / "qs"
    with pytest.raises(FireactError, match="Error while deserializing header"):
        quickstart(out, questions=1, train_examples=2, model=str(broken))
    return out


def test_a_failed_quickstart_keeps_its_finished_stages_only(failed_quickstart: Path) -> None:
    progress = json.loads((failed_quickstart / "progress.json").read_text())["stages"]
    assert progress == {
        "generate": {
            "settings": {"task": "hotpotqa", "train_examples": 2},
            "result": {"n": 2, "kept": 2, "em": 1.0},
        },
        "convert": {"settings": {"task": "hotpotqa", "train_examples": 2}, "result": {"kept": 2}},
    }
    assert not (failed_quickstart / "model").exists()  # the failed training took its folder


def test_a_failed_quickstart_reruns_without_overwrite_reusing_finished_stages(
    models, failed_quickstart: Path, tmp_path: Path
) -> None:
    from fireact.quickstart import quickstart

    good, _ = models
    out = tmp_path / "qs"
    shutil.copytree(failed_quickstart, out)
    teacher = snapshot(out / "teacher") | {"train.json": snapshot(out)["train.json"]}
    summary = quickstart(out, questions=1, train_examples=2, model=str(good))
    assert summary["generate"] == {"episodes": 2, "kept": 2, "em": 1.0}
    assert summary["convert"]["examples"] == 2 and summary["run"]["episodes"] == 1
    assert (out / "model" / "adapter_config.json").is_file()
    assert snapshot(out / "teacher") | {"train.json": snapshot(out)["train.json"]} == teacher


def test_a_failed_quickstart_rerun_with_other_settings_is_refused(
    failed_quickstart: Path, tmp_path: Path
) -> None:
    from fireact.quickstart import quickstart

    out = tmp_path / "qs"
    shutil.copytree(failed_quickstart, out)
    before = snapshot(out)
    with pytest.raises(FireactError) as err:
        quickstart(out, questions=1, train_examples=3)
    assert str(err.value) == (
        f"{out} holds a quickstart started with --train-examples 2, not --train-examples 3: "
        "rerun that command to finish it, pass --overwrite to start over, or pick another --out"
    )
    assert snapshot(out) == before

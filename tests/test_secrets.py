"""API keys come from the environment only and never reach a run file, summary, log, view,
report or converted data set: every output of a real run is scanned for a sentinel key."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers.clirun import run_cli
from tests.helpers.openai_server import OpenAIServer

SENTINEL = "sk-SENTINEL-0123456789abcdef"
SERP_SENTINEL = "serp-SENTINEL-9876543210"


def teacher(request) -> str:
    """Search once, then answer: a scripted GPT-4 stand-in behind real HTTP."""
    if "Observation:" in request.text.rsplit("\n\n", 1)[-1]:
        return " I have it.\nAction: finish[yes]"
    return " I should search.\nAction: search[Scott Derrickson]"


def every_file(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_a_sentinel_key_appears_in_no_output(tmp_path):
    env = {"OPENAI_API_KEY": SENTINEL, "SERPAPI_API_KEY": SERP_SENTINEL}
    runs = tmp_path / "runs"
    with OpenAIServer(teacher, api_key=SENTINEL) as server:
        args = ["--task", "hotpotqa", "--end", "3", "--model", "openai:gpt-4"]
        args += ["--base-url", server.base_url, "--tool-style", "wiki"]
        results = [
            run_cli("run", *args, "--out", str(runs / "run"), env=env),
            run_cli("generate", *args, "--out", str(runs / "gen"), env=env),
        ]
    results += [
        run_cli("view", str(runs / "run"), env=env),
        run_cli("report", str(runs / "run"), str(runs / "gen"), "--out", str(runs / "rep"), env=env),
        run_cli("convert", str(runs / "gen"), "--to", "chat", "--out", str(runs / "t.jsonl"), env=env),
        run_cli("score", str(runs / "run" / "episodes.jsonl"), env=env),
    ]  # fmt: skip
    for result in results:
        assert result.returncode == 0, result.stderr
        for secret in (SENTINEL, SERP_SENTINEL):
            assert secret not in result.stdout and secret not in result.stderr
    files = every_file(runs)
    assert {p.name for p in files} >= {"episodes.jsonl", "summary.json", "config.json", "view.html"}
    for path in files:
        data = path.read_bytes()
        for secret in (SENTINEL, SERP_SENTINEL):
            assert secret.encode() not in data, f"{secret} leaked into {path}"
    summary = json.loads((runs / "run" / "summary.json").read_text())
    assert summary["n"] == 3 and summary["finished"] == 3


def test_a_rejected_key_is_not_echoed(tmp_path):
    with OpenAIServer(teacher, api_key="sk-the-right-one") as server:
        result = run_cli(
            "run", "--task", "hotpotqa", "--end", "1", "--model", "openai:gpt-4",
            "--base-url", server.base_url, "--out", str(tmp_path / "r"),
            env={"OPENAI_API_KEY": SENTINEL},
        )  # fmt: skip
    assert result.returncode == 2
    assert SENTINEL not in result.stderr and SENTINEL not in result.stdout
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_training_run_saves_no_key(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "model: {build_tiny: {hidden_size: 32, layers: 1, heads: 2, vocab_size: 300}}\n"
        "dataset: fireact:finetune/alpaca_format/hotpotqa.json\nmax_examples: 4\n"
        f"method: full\nepochs: 1\nsave_steps: 1\noutput_dir: {tmp_path / 'model'}\n"
    )
    env = {"OPENAI_API_KEY": SENTINEL, "SERPAPI_API_KEY": SERP_SENTINEL, "WANDB_API_KEY": SENTINEL}
    result = run_cli("train", str(recipe), env=env)
    assert result.returncode == 0, result.stderr
    files = every_file(tmp_path / "model")
    assert any(p.name == "fireact_config.yaml" for p in files)
    for path in files:
        data = path.read_bytes()
        for secret in (SENTINEL, SERP_SENTINEL):
            assert secret.encode() not in data, f"{secret} leaked into {path}"
    assert SENTINEL not in result.stdout + result.stderr

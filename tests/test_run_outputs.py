"""No output can destroy an input, one writer per run folder (issue 13, items 1 and 2), through
the real CLI: each refusal is one line, exit 2, and the run is byte-identical afterwards."""

from __future__ import annotations

import json
import re

import pytest

from tests.helpers.clirun import run_cli
from tests.helpers.openai_server import OpenAIServer
from tests.helpers.runs import options, snapshot, tool
from tests.helpers.teachers import cli_args, start_slow_run, teacher, wait_for_lines


@pytest.fixture
def finished_run(tmp_path):
    from fireact.agent import run

    run(options(tmp_path, n=4), tool=tool())
    return tmp_path / "out"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["view", "{run}", "--out", "{run}/episodes.jsonl"], "is also an input"),
        (["view", "{run}", "--out", "{run}/summary.json"], "is also an input"),
        (["convert", "{run}", "--to", "chat", "--out", "{run}/episodes.jsonl", "--overwrite"], "is also an input"),
        (["convert", "{run}/episodes.jsonl", "--out", "{run}/episodes.jsonl", "--overwrite"], "is also an input"),
        (["report", "{run}", "--out", "{run}"], "is also an input"),
        (["report", "{run}", "--out", "{run}/report"], "lies inside the input"),
    ],
    ids=["view-episodes", "view-summary", "convert-run", "convert-file", "report-run", "report-inside"],
)  # fmt: skip
def test_an_output_that_would_destroy_an_input_is_refused(finished_run, args, says):
    before = snapshot(finished_run)
    result = run_cli(*[a.format(run=finished_run) for a in args])
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: --out ") and says in line
    assert snapshot(finished_run) == before


def test_the_default_view_page_inside_the_run_is_fine(finished_run):
    result = run_cli("view", str(finished_run))
    assert result.returncode == 0, result.stderr
    assert (finished_run / "view.html").stat().st_size > 1000


def test_a_run_whose_data_file_is_one_of_its_outputs_is_refused(tmp_path):
    data = tmp_path / "out" / "episodes.jsonl"
    data.parent.mkdir()
    data.write_text(json.dumps([{"_id": "a", "question": "Q?", "answer": "A"}]))
    before = data.read_bytes()
    result = run_cli(
        "run", "--task", "hotpotqa", "--data", str(data), "--model", "scripted:x.json",
        "--out", str(tmp_path / "out"), "--overwrite",
    )  # fmt: skip
    assert result.returncode == 2
    assert "is also an input" in result.stderr and data.read_bytes() == before


def test_a_second_writer_on_the_same_run_folder_stops_at_once(tmp_path):
    out = tmp_path / "run"
    with OpenAIServer(teacher, latency=0.25) as server:
        first = start_slow_run(server.base_url, out)
        wait_for_lines(out / "episodes.jsonl", 1)
        second = run_cli("run", *cli_args(server.base_url, out, "--resume"))
        first.communicate(timeout=120)
    assert second.returncode == 2, second.stderr
    (line,) = second.stderr.strip().splitlines()
    assert re.fullmatch(
        rf"error: run in progress in {re.escape(str(out))} \(pid {first.pid}\); wait for it or "
        "use another folder",
        line,
    ), line
    assert first.returncode == 0
    ids = [json.loads(x)["id"] for x in (out / "episodes.jsonl").read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 16

"""The `fireact` CLI as a user runs it: index build, search, tasks, quickstart, error lines."""

import json

from fireact.resources import resource
from tests.clirun import run_cli

DISTRACTOR = str(resource("hotpotqa", "dev_distractor_first100.json"))


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_index_build_then_search_it(tmp_path):
    out = tmp_path / "ix"
    built = run_cli("index", "build", DISTRACTOR, "--out", str(out))
    assert built.returncode == 0, built.stderr
    stats = json.loads(built.stdout)
    assert (stats["paragraphs"], stats["titles"], stats["duplicates"]) == (992, 991, 1)
    found = run_cli("search", "Scott Derrickson", "--index", str(out))
    assert found.stdout.startswith("Scott Derrickson (born July 16, 1966) is an American director")


def test_index_build_refuses_to_overwrite(tmp_path):
    out = tmp_path / "ix"
    assert run_cli("index", "build", DISTRACTOR, "--out", str(out)).returncode == 0
    again = run_cli("index", "build", DISTRACTOR, "--out", str(out))
    assert_one_line_error(again, str(out), "--overwrite")
    assert run_cli("index", "build", DISTRACTOR, "--out", str(out), "--overwrite").returncode == 0


def test_index_build_corpus_without_paragraphs(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("")
    result = run_cli("index", "build", str(corpus), "--out", str(tmp_path / "ix"))
    assert_one_line_error(result, "no paragraphs found in", str(corpus))
    assert not (tmp_path / "ix").exists()


def test_index_build_record_without_text(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"title": "A", "text": "Alpha."}\n{"title": "B"}\n')
    result = run_cli("index", "build", str(corpus), "--out", str(tmp_path / "ix"))
    assert_one_line_error(result, f"{corpus} line 2", "missing 'text'")


def test_unknown_search_style():
    assert_one_line_error(run_cli("search", "x", "--style", "bing"), "unknown search style 'bing'")


def test_tasks_lists_sizes():
    result = run_cli("tasks")
    assert result.returncode == 0
    assert "7405" in result.stdout and "14042" in result.stdout


def test_debug_shows_the_traceback(tmp_path):
    result = run_cli("--debug", "score", str(tmp_path / "missing.jsonl"))
    assert result.returncode == 2
    assert "Traceback" in result.stderr and "file not found" in result.stderr


def test_quickstart_writes_run_and_summary(tmp_path):
    result = run_cli("quickstart", "--out", str(tmp_path / "qs"), "--n", "5")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "qs" / "summary.json").read_text())
    assert summary["questions"] == 5
    lines = (tmp_path / "qs" / "search.jsonl").read_text().splitlines()
    assert len(lines) == 5

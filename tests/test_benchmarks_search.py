"""A tiny run of the search benchmark: it builds, measures every system and writes its JSON;
its raw tantivy variants run the query `LocalIndex.ranked` builds (no copy of the builder)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import search_bench


def test_smoke_run_writes_results(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "search.json"
    argv = [
        "--sizes",
        "2000",
        "--queries",
        "30",
        "--out",
        str(out),
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    search_bench.main(argv)
    data = json.loads(out.read_text())
    for key in (
        "benchmark",
        "command",
        "git",
        "machine",
        "packages",
        "settings",
        "targets",
        "sizes",
    ):
        assert key in data
    assert data["machine"]["cores"] >= 1 and data["machine"]["cpu"]
    assert data["settings"]["sizes"] == [2000] and data["settings"]["queries"] == 30
    (size,) = data["sizes"]
    assert size["size"] == 2000 and size["documents"] == 1999  # one shipped title repeats
    assert size["build"]["fireact"]["seconds"] > 0
    systems = {"fireact-tool", "fireact-tool-lru-hit", "tantivy-raw", "tantivy-raw-nocount"}
    systems |= {"tantivy-pruned", "bm25s", "rank_bm25"}
    for kind in ("question", "entity"):
        assert set(size["queries"][kind]) == systems
        for stats in size["queries"][kind].values():
            assert stats["n"] == 30 and 0 < stats["p50_ms"] <= stats["p99_ms"] and stats["qps"] > 0
        assert "bm25s/fireact-tool" in size["ratios"][kind]
    assert size["baselines"]["bm25s"]["build_s"] > 0
    assert data["complete"] is True
    assert data["targets"]["measured"] is False  # no 1M size in this run
    printed = capsys.readouterr().out
    assert "fireact-tool" in printed and str(out) in printed


def test_synthetic_corpus_is_deterministic_and_prefix_stable() -> None:
    shipped = search_bench.shipped_paragraphs()
    small = list(search_bench.SyntheticCorpus(shipped, seed=7).paragraphs(50))
    large = list(search_bench.SyntheticCorpus(shipped, seed=7).paragraphs(1500))
    assert large[:50] == small
    titles = [t for t, _ in large] + [t for t, _ in shipped]
    assert len(set(titles)) == len(titles) - 1  # unique, apart from the shipped repeat
    assert all(3 <= len(sentences) <= 6 for _, sentences in large)
    assert all(
        sentences[0].startswith(search_bench._QUALIFIER.sub("", t)) for t, sentences in large
    )


def test_skip_baselines_and_rank_bm25_skip_reason(tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    argv = ["--sizes", "1500", "--queries", "10", "--out", str(out), "--skip-baselines"]
    search_bench.main([*argv, "--cache-dir", str(tmp_path / "cache")])
    size = json.loads(out.read_text())["sizes"][0]
    assert "baselines" not in size and "bm25s" not in size["queries"]["question"]
    out2 = tmp_path / "r.json"
    argv = [
        "--sizes",
        "1200,2400",
        "--queries",
        "10",
        "--out",
        str(out2),
        "--rank-bm25-budget",
        "0",
    ]
    search_bench.main([*argv, "--cache-dir", str(tmp_path / "cache")])
    first, second = json.loads(out2.read_text())["sizes"]
    assert "build_s" in first["baselines"]["rank_bm25"]
    assert "exceeds" in second["baselines"]["rank_bm25"]["skipped"]


def test_raw_variants_run_the_shipped_query(tmp_path: Path) -> None:
    from fireact.resources import resource
    from fireact.tools.local import GOOGLE_TITLE_BOOST, LocalSearch
    from fireact.tools.local_index import build_index

    build_index([resource("hotpotqa", "dev_distractor_first100.json")], tmp_path / "index")
    tool = LocalSearch(tmp_path / "index", style="google", cache_size=0)
    index, query = tool.index, search_bench.shipped_query(tool.index)
    calls = search_bench.tantivy_calls(tool, GOOGLE_TITLE_BOOST)
    questions, _ = search_bench.question_queries(20, 0)
    for q in questions:
        shipped = index.ranked(index.query_terms(q), search_bench.K, GOOGLE_TITLE_BOOST)
        pruned = calls["tantivy-pruned"](q)
        assert [h.pid for h in shipped] == [
            index.searcher.doc(a).get_first("pid") for _, a in pruned
        ]
        assert [h.score for h in shipped] == [score for score, _ in pruned]
    assert query([], GOOGLE_TITLE_BOOST) is None and calls["tantivy-raw"]("") == []  # no terms

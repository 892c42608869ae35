"""Search benchmark (P4): fireact's local BM25 search against rank_bm25 and bm25s.

For each index size (10k, 100k, 1M paragraphs by default) it builds an index of the 992 shipped
HotpotQA paragraphs plus synthetic ones, then measures, one query at a time on one thread:

* build time of our index (`fireact.tools.local_index.build_index`, i.e. JSONL -> tantivy);
* p50 / p99 latency and QPS of two query sets:
  - ``question``: HotpotQA dev questions through the google-style tool (`LocalSearch.call`);
  - ``entity``: page titles through the wiki-style tool (half exact titles, half partial
    names such as ``Ed Wood film`` or a title minus its first word, which take the BM25 path);
* for each set the same queries as raw library calls, to show where the time goes:
  - ``tantivy-raw``: every analysed term (stop words kept), top-10, `Searcher.search` defaults
    (which also counts all matches, so no top-k pruning);
  - ``tantivy-raw-nocount``: the same without counting (block-max WAND top-k);
  - ``tantivy-pruned``: our query terms (stop words dropped, rarest 16), top-10, no counting,
    no stored-document loading: `LocalIndex.ranked` minus its hit loading;
  (every raw variant runs the query `LocalIndex.ranked` itself builds: `shipped_query`)
  - ``fireact-tool``: the whole tool call (terms, ranking, stored pages, snippet selection);
  - ``fireact-tool-lru-hit``: the tool's LRU cache answering a repeated query (reported apart);
  - ``bm25s`` and ``rank_bm25`` (BM25Okapi): one top-10 call per query on the same analysed
    tokens as ``tantivy-raw`` (documents tokenised once, by our analyzer, timed separately).

rank_bm25 runs at the smallest size, then at a larger one only when its time there, scaled
linearly from the largest size measured, fits ``--rank-bm25-budget`` seconds; otherwise the size
records why it was skipped. Synthetic paragraphs are generated deterministically from ``--seed``
(words drawn from the shipped corpus's unigram distribution, titles from its title words) and
cached under ``--cache-dir``. Results go to ``benchmarks/results/search-<host kind>.json``.

Run from the repository root: ``.venv/bin/python benchmarks/search_bench.py --sizes
10000,100000,1000000`` (or ``python -m benchmarks.search_bench ...``).
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import random
import re
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import tantivy

if not __package__:  # run as `python benchmarks/search_bench.py`: the package's root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import format_table, run_info, time_calls, write_results  # noqa: E402
from fireact.resources import resource  # noqa: E402
from fireact.tools.base import ToolState  # noqa: E402
from fireact.tools.local import GOOGLE_TITLE_BOOST, WIKI_TITLE_BOOST, LocalSearch  # noqa: E402
from fireact.tools.local_index import (  # noqa: E402
    INDEX_ANALYZER,
    LocalIndex,
    build_index,
    fireact_home,
    read_paragraphs,
)

NAME = "search"
GENERATOR_VERSION = 1  # bump when the synthetic corpus changes (cache file names include it)
CHUNK = 1000  # paragraphs drawn per RNG batch; any size's corpus is a prefix of a larger one
TARGETS = {"p50_ms": 2.0, "build_s": 60.0, "at_size": 1_000_000}
WARMUP = 20
K = 10
PACKAGES = ["tantivy", "bm25s", "rank-bm25", "numpy", "fireact"]


# ---------------------------------------------------------------- the corpus


def shipped_paragraphs() -> list[tuple[str, list[str]]]:
    """The shipped HotpotQA dev paragraphs as (title, sentences), in file order."""
    return [
        (p.title, p.sentences)
        for p in read_paragraphs(resource("hotpotqa", "dev_distractor_first100.json"))
    ]


_QUALIFIER = re.compile(r"\s*(\([^()]*\))\s*$")


class SyntheticCorpus:
    """Paragraphs that look like the shipped ones, drawn from their empirical distributions.

    Body words: the whitespace tokens of the shipped sentences (punctuation attached), sampled
    by their frequency; sentence lengths from the shipped sentence lengths; 3-6 sentences per
    paragraph, the first starting with the title. Titles: 1-4 words drawn from the shipped
    titles' words, sometimes with a shipped ``(qualifier)``; unique across the whole corpus.
    """

    def __init__(self, paragraphs: list[tuple[str, list[str]]], seed: int) -> None:
        words = Counter(w for _, ss in paragraphs for s in ss for w in s.split())
        self.words = np.array(list(words), dtype=object)
        self.word_p = np.array(list(words.values()), dtype=np.float64)
        self.word_p /= self.word_p.sum()
        self.sentence_lengths = np.array(
            [n for _, ss in paragraphs for s in ss if (n := len(s.split())) >= 3]
        )
        self.sentence_lengths = np.minimum(self.sentence_lengths, 60)
        bases, qualifiers = [], []
        for title, _ in paragraphs:
            m = _QUALIFIER.search(title)
            qualifiers.append(m.group(1) if m else "")
            bases.append(title[: m.start()] if m else title)
        title_words = Counter(w for b in bases for w in b.split())
        self.title_words = np.array(list(title_words), dtype=object)
        self.title_p = np.array(list(title_words.values()), dtype=np.float64)
        self.title_p /= self.title_p.sum()
        self.title_lengths = np.clip([len(b.split()) for b in bases], 1, 4)
        self.qualifiers = np.array(qualifiers, dtype=object)
        self.seen = {t for t, _ in paragraphs}
        self.seed = seed

    def paragraphs(self, n: int) -> Iterator[tuple[str, list[str]]]:
        """The first `n` synthetic paragraphs (the same first ones for any `n`)."""
        produced, chunk_no = 0, 0
        while produced < n:
            rng = np.random.default_rng([self.seed, chunk_no])
            for paragraph in self._chunk(rng):
                if produced == n:
                    break
                produced += 1
                yield paragraph
            chunk_no += 1

    def _chunk(self, rng: np.random.Generator) -> Iterator[tuple[str, list[str]]]:
        n_sentences = rng.integers(3, 7, size=CHUNK)
        lengths = rng.choice(self.sentence_lengths, size=int(n_sentences.sum()))
        words = rng.choice(self.words, size=int(lengths.sum()), p=self.word_p).tolist()
        ends = np.cumsum(lengths).tolist()
        starts = [0, *ends[:-1]]
        s = 0
        for count in n_sentences.tolist():
            title = self._title(rng)
            sentences = []
            for j in range(s, s + count):
                text = " ".join(words[starts[j] : ends[j]])
                if not text.endswith((".", "!", "?")):
                    text = text.rstrip(",;:") + "."
                if j == s:
                    base = _QUALIFIER.sub("", title)
                    sentences.append(f"{base} {text[0].lower()}{text[1:]}")
                else:
                    sentences.append(text[0].upper() + text[1:])
            s += count
            yield title, sentences

    def _title(self, rng: np.random.Generator) -> str:
        while True:
            length = int(rng.choice(self.title_lengths))
            words = rng.choice(self.title_words, size=length, p=self.title_p).tolist()
            qualifier = str(rng.choice(self.qualifiers))
            title = " ".join(words) + (f" {qualifier}" if qualifier else "")
            if title not in self.seen:
                self.seen.add(title)
                return title


def synthetic_file(cache_dir: Path, n: int, seed: int) -> Path:
    """A cached JSONL file of the first `n` synthetic paragraphs (generated when missing)."""
    path = cache_dir / f"synthetic-v{GENERATOR_VERSION}-seed{seed}-{n}.jsonl"
    if path.is_file():
        return path
    cache_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    corpus = SyntheticCorpus(shipped_paragraphs(), seed)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for title, sentences in corpus.paragraphs(n):
            f.write(json.dumps({"title": title, "sentences": sentences}, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    log(f"generated {n:,} synthetic paragraphs in {time.perf_counter() - started:.1f} s -> {path}")
    return path


def indexed_paragraphs(sources: list[Path]) -> Iterator[tuple[str, list[str]]]:
    """The paragraphs an index of `sources` holds: file order, first of each title kept."""
    seen: set[str] = set()
    for src in sources:
        for p in read_paragraphs(src):
            if p.title not in seen:
                seen.add(p.title)
                yield p.title, p.sentences


# ---------------------------------------------------------------- the queries


def question_queries(n: int, seed: int) -> tuple[list[str], list[str]]:
    """`n` HotpotQA dev questions (a seeded sample) and `WARMUP` others for warming up."""
    questions = [
        r["question"]
        for r in json.loads(resource("hotpotqa", "dev.json").read_text(encoding="utf-8"))
    ]
    picked = random.Random(seed).sample(questions, min(len(questions), n + WARMUP))
    return picked[WARMUP:], picked[:WARMUP]


def entity_queries(
    titles: list[str], shipped: list[str], n: int, seed: int
) -> tuple[list[str], list[str]]:
    """`n` entity queries (and `WARMUP` more): titles, half shipped and half from all `titles`.

    Every other query is a partial name: the title without its qualifier's brackets (``Ed Wood
    film``) or, when it has none, without its first word; these take the BM25 path.
    """
    rng = random.Random(seed + 1)
    queries = []
    for i in range(n + WARMUP):
        title = rng.choice(shipped if i % 2 == 0 else titles)
        if (i // 2) % 2 == 1:
            if _QUALIFIER.search(title):
                title = title.replace("(", "").replace(")", "")
            elif len(title.split()) > 1:
                title = title.split(" ", 1)[1]
        queries.append(title)
    return queries[WARMUP:], queries[:WARMUP]


# ---------------------------------------------------------------- systems under test


class _QueryCapture:
    """A stand-in searcher: keeps the query it is given and finds nothing."""

    NO_HITS = SimpleNamespace(hits=[])

    def __init__(self) -> None:
        self.query: tantivy.Query | None = None

    def search(self, query: tantivy.Query, *args: Any, **kwargs: Any) -> Any:
        self.query = query
        return self.NO_HITS


def shipped_query(index: LocalIndex) -> Callable[[list[str], float], tantivy.Query | None]:
    """The query `index.ranked(terms, k, title_boost)` runs, built by `ranked` itself.

    `LocalIndex` builds its BM25 query inside `ranked` (each term in the title, boosted, or the
    body); a shallow copy of the index whose searcher only records the query runs that very
    code, so the raw tantivy variants time the shipped query, not a copy of its builder.
    None when there are no terms (`ranked` then searches nothing).
    """
    capture = _QueryCapture()
    recorder = copy.copy(index)
    recorder.searcher = capture

    def build(terms: list[str], title_boost: float) -> tantivy.Query | None:
        capture.query = None
        recorder.ranked(terms, K, title_boost)
        return capture.query

    return build


def tantivy_calls(tool: LocalSearch, title_boost: float) -> dict[str, Callable[[str], Any]]:
    """Raw tantivy calls on a query string: all terms (counting or not) and our pruned terms."""
    index = tool.index
    searcher = index.searcher
    query = shipped_query(index)

    def search(terms: list[str], **options: Any) -> Any:
        q = query(terms, title_boost)
        return [] if q is None else searcher.search(q, K, **options).hits

    def raw(q: str) -> Any:
        return search(INDEX_ANALYZER.analyze(q))

    def raw_nocount(q: str) -> Any:
        return search(INDEX_ANALYZER.analyze(q), count=False)

    def pruned(q: str) -> Any:
        return search(index.query_terms(q), count=False)

    return {"tantivy-raw": raw, "tantivy-raw-nocount": raw_nocount, "tantivy-pruned": pruned}


class Tokens:
    """The corpus analysed once by our index analyzer, for the baselines (strings shared)."""

    def __init__(self, sources: list[Path]) -> None:
        started = time.perf_counter()
        vocab: dict[str, int] = {}
        self.ids: list[list[int]] = []
        analyze = INDEX_ANALYZER.analyze
        for title, sentences in indexed_paragraphs(sources):
            tokens = analyze(title + " " + " ".join(sentences))
            self.ids.append([vocab.setdefault(t, len(vocab)) for t in tokens])
        self.vocab = vocab
        self.words = list(vocab)
        self.seconds = time.perf_counter() - started

    def strings(self) -> Iterator[list[str]]:
        """Each document as a list of (shared) token strings."""
        words = self.words
        for doc in self.ids:
            yield [words[i] for i in doc]


def bench_bm25s(
    tokens: Tokens, query_sets: dict[str, tuple[list[list[str]], list[list[str]]]]
) -> dict:
    """Build a bm25s index of `tokens` and time one `retrieve(k=10)` per tokenised query."""
    import bm25s

    started = time.perf_counter()
    model = bm25s.BM25()
    model.index(
        bm25s.tokenization.Tokenized(ids=tokens.ids, vocab=tokens.vocab), show_progress=False
    )
    build = time.perf_counter() - started

    def retrieve(q: list[str]) -> Any:
        return model.retrieve([q], k=K, show_progress=False)

    out = {"build_s": round(build, 3), "tokenise_s": round(tokens.seconds, 3)}
    out["queries"] = {
        name: time_calls(retrieve, qs, warm) for name, (qs, warm) in query_sets.items()
    }
    return out


def bench_rank_bm25(
    tokens: Tokens, query_sets: dict[str, tuple[list[list[str]], list[list[str]]]]
) -> dict:
    """Build a rank_bm25 BM25Okapi index of `tokens` and time one ``get_top_n(n=10)`` per query."""
    from rank_bm25 import BM25Okapi

    started = time.perf_counter()
    model = BM25Okapi(list(tokens.strings()))
    build = time.perf_counter() - started
    ids = list(range(len(tokens.ids)))

    def top(q: list[str]) -> Any:
        return model.get_top_n(q, ids, n=K)

    out = {"build_s": round(build, 3), "tokenise_s": round(tokens.seconds, 3)}
    out["queries"] = {
        name: time_calls(top, qs, warm[:2]) for name, (qs, warm) in query_sets.items()
    }
    return out


# ---------------------------------------------------------------- one size: setup, measure


@dataclass
class SizeSetup:
    """One index size before anything is timed: its corpus files, index folder and queries."""

    size: int
    sources: list[Path]
    index_dir: Path
    query_sets: dict[str, tuple[list[str], list[str]]]  # question / entity: (timed, warm-up)


def setup_size(size: int, args: argparse.Namespace) -> SizeSetup:
    """The corpus of `size` paragraphs (shipped + cached synthetic ones) and both query sets."""
    cache = Path(args.cache_dir)
    shipped_src = resource("hotpotqa", "dev_distractor_first100.json")
    shipped = shipped_paragraphs()
    sources = [shipped_src]
    if size > len(shipped):
        sources.append(synthetic_file(cache, size - len(shipped), args.seed))
    titles = [t for t, _ in indexed_paragraphs(sources)]
    questions, q_warm = question_queries(args.queries, args.seed)
    entities, e_warm = entity_queries(titles, [t for t, _ in shipped], args.queries, args.seed)
    return SizeSetup(
        size=size,
        sources=sources,
        index_dir=cache / "indexes" / f"bench-{size}",
        query_sets={"question": (questions, q_warm), "entity": (entities, e_warm)},
    )


def measure_size(s: SizeSetup, args: argparse.Namespace, rank_state: dict) -> dict:
    """Build our index (timed), time every system on both query sets, then the baselines."""
    size, sources, index_dir = s.size, s.sources, s.index_dir
    log(f"[{size:,}] building our index ...")
    started = time.perf_counter()
    build_index(sources, index_dir, overwrite=True)
    build_wall = round(time.perf_counter() - started, 3)
    wiki = LocalSearch(index_dir, style="wiki", cache_size=0)
    google = LocalSearch(index_dir, style="google", cache_size=0)
    index_bytes = sum(f.stat().st_size for f in index_dir.iterdir() if f.is_file())
    result: dict[str, Any] = {
        "size": size,
        "documents": wiki.index.num_docs,
        "sources": [str(src) for src in sources],
        "build": {
            "fireact": {
                "seconds": build_wall,
                "segments": wiki.index.searcher.num_segments,
                "index_mib": round(index_bytes / 2**20, 1),
            }
        },
    }
    questions, q_warm = s.query_sets["question"]
    entities, e_warm = s.query_sets["entity"]
    exact = sum(wiki.index.exact_title(e) is not None for e in entities)
    result["query_sets"] = {
        "question": {"n": len(questions), "source": "hotpotqa dev.json questions (seeded sample)"},
        "entity": {
            "n": len(entities),
            "exact_title_matches": exact,
            "bm25_path": len(entities) - exact,
        },
    }
    tools = {
        "question": (google, GOOGLE_TITLE_BOOST, questions, q_warm),
        "entity": (wiki, WIKI_TITLE_BOOST, entities, e_warm),
    }
    timings: dict[str, dict[str, Any]] = {"question": {}, "entity": {}}
    for kind, (tool, boost, qs, warm) in tools.items():
        log(f"[{size:,}] {kind} queries ...")
        state = ToolState()
        timings[kind]["fireact-tool"] = time_calls(
            lambda q, t=tool, st=state: t.call("search", q, st), qs, warm
        )
        for name, fn in tantivy_calls(tool, boost).items():
            timings[kind][name] = time_calls(fn, qs, warm)
        cached = LocalSearch(index_dir, style=tool.style, cache_size=len(qs))
        for q in qs:  # fill the cache, then time the hits
            cached.call("search", q, state)
        timings[kind]["fireact-tool-lru-hit"] = time_calls(
            lambda q, t=cached, st=state: t.call("search", q, st), qs
        )
    result["queries"] = timings
    if not args.skip_baselines:
        result["baselines"] = bench_baselines(
            size, sources, s.query_sets, args, rank_state, timings
        )
    if not args.keep_indexes:
        shutil.rmtree(index_dir, ignore_errors=True)
    return result


def bench_baselines(
    size: int,
    sources: list[Path],
    query_sets: dict[str, tuple[list[str], list[str]]],
    args: argparse.Namespace,
    rank_state: dict,
    timings: dict[str, dict[str, Any]],
) -> dict:
    """Tokenise the corpus once, then time bm25s and (when it fits the budget) rank_bm25."""
    log(f"[{size:,}] tokenising the corpus for the baselines ...")
    tokens = Tokens(sources)
    tokenised = {
        k: ([INDEX_ANALYZER.analyze(q) for q in qs], [INDEX_ANALYZER.analyze(q) for q in w])
        for k, (qs, w) in query_sets.items()
    }
    out: dict[str, Any] = {
        "tokenise_s": round(tokens.seconds, 3),
        "tokens": sum(map(len, tokens.ids)),
        "vocabulary": len(tokens.vocab),
    }
    log(f"[{size:,}] bm25s ...")
    out["bm25s"] = bench_bm25s(tokens, tokenised)
    estimate = rank_state.get("seconds_per_doc", 0.0) * size
    if rank_state and estimate > args.rank_bm25_budget:
        out["rank_bm25"] = {
            "skipped": (
                f"estimated {estimate:,.0f} s (build + {sum(len(q) for q, _ in tokenised.values())} queries, "
                f"scaled linearly from {rank_state['size']:,} paragraphs) exceeds the "
                f"{args.rank_bm25_budget:.0f} s budget"
            ),
            "estimated_s": round(estimate),
        }
    else:
        log(f"[{size:,}] rank_bm25 ...")
        started = time.perf_counter()
        out["rank_bm25"] = bench_rank_bm25(tokens, tokenised)
        spent = time.perf_counter() - started
        out["rank_bm25"]["total_s"] = round(spent, 1)
        rank_state.update(size=size, seconds_per_doc=spent / size)
    for kind in query_sets:
        for name in ("bm25s", "rank_bm25"):
            if "queries" in out[name]:
                timings[kind][name] = out[name]["queries"][kind]
    del tokens
    gc.collect()
    return out


# ---------------------------------------------------------------- ratios, targets, table


def ratios(timings: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """p50 of each other system divided by the tool's p50 (>1: the tool is faster), per set."""
    out: dict[str, dict[str, float]] = {}
    for kind, systems in timings.items():
        ours = systems["fireact-tool"]["p50_ms"]
        out[kind] = {
            f"{name}/fireact-tool": round(s["p50_ms"] / ours, 2)
            for name, s in systems.items()
            if name != "fireact-tool" and s.get("p50_ms")
        }
    return out


def targets(sizes: list[dict]) -> dict[str, Any]:
    """Whether the tool meets p50 <= 2 ms (both query sets) and build <= 60 s at 1M."""
    at = [s for s in sizes if s["size"] == TARGETS["at_size"]]
    if not at:
        return {**TARGETS, "measured": False}
    s = at[0]
    p50 = {k: s["queries"][k]["fireact-tool"]["p50_ms"] for k in s["queries"]}
    build = s["build"]["fireact"]["seconds"]
    return {
        **TARGETS,
        "measured": True,
        "p50_ms_measured": p50,
        "build_s_measured": build,
        "p50_met": {k: v <= TARGETS["p50_ms"] for k, v in p50.items()},
        "build_met": build <= TARGETS["build_s"],
    }


def table(sizes: list[dict]) -> str:
    """Readable summary: one row per size, query set and system."""
    rows = []
    for s in sizes:
        build = s["build"]["fireact"]["seconds"]
        base = s.get("baselines", {})
        builds = {"fireact-tool": build}
        for name in ("bm25s", "rank_bm25"):
            if "build_s" in base.get(name, {}):
                builds[name] = round(base[name]["build_s"] + base[name]["tokenise_s"], 3)
        for kind, systems in s["queries"].items():
            ours = systems["fireact-tool"]["p50_ms"]
            for name, t in systems.items():
                rows.append(
                    [
                        s["size"],
                        kind,
                        name,
                        t["p50_ms"],
                        t["p99_ms"],
                        t["qps"],
                        round(t["p50_ms"] / ours, 2),
                        builds.get(name) if kind == "question" else None,
                    ]
                )
        for name in ("bm25s", "rank_bm25"):
            if "skipped" in base.get(name, {}):
                rows.append([s["size"], "-", f"{name}: skipped", None, None, None, None, None])
    header = ["size", "queries", "system", "p50 ms", "p99 ms", "QPS", "p50 / tool", "build s"]
    return format_table(rows, header)


# ---------------------------------------------------------------- main


def log(message: str) -> None:
    """Progress on stderr, with a timestamp."""
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default="10000,100000,1000000", help="index sizes in paragraphs, comma-separated"
    )
    parser.add_argument(
        "--queries", type=int, default=1000, help="queries per query set (default 1000)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results JSON (default benchmarks/results/search-<host>.json)",
    )
    parser.add_argument(
        "--skip-baselines", action="store_true", help="measure only our tool and raw tantivy"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the synthetic corpus and the query samples"
    )
    parser.add_argument(
        "--cache-dir",
        default=str(fireact_home() / "bench" / "search"),
        help="where synthetic corpora and the benchmark's indexes live (default $FIREACT_HOME/bench/search)",
    )
    parser.add_argument(
        "--rank-bm25-budget",
        type=float,
        default=600.0,
        help="seconds rank_bm25 may take at one size",
    )
    parser.add_argument(
        "--keep-indexes", action="store_true", help="keep the built indexes (for profiling)"
    )
    args = parser.parse_args(argv)
    args.sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    if not args.sizes or min(args.sizes) < 1:
        parser.error("--sizes needs one or more positive paragraph counts, e.g. 10000,100000")
    return args


def report(settings: dict[str, Any], sizes: list[dict], planned: int) -> dict[str, Any]:
    """The results document of the sizes measured so far (each with its ratios)."""
    for result in sizes:
        result["ratios"] = ratios(result["queries"])
    return {
        "settings": settings,
        "complete": len(sizes) == planned,
        "targets": targets(sizes),
        "sizes": sizes,
    }


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; write and return the results document."""
    args = parse_args(argv)
    info = run_info(PACKAGES)
    rank_state: dict = {}
    sizes: list[dict] = []
    settings = {
        "sizes": args.sizes,
        "queries": args.queries,
        "warmup": WARMUP,
        "k": K,
        "seed": args.seed,
        "skip_baselines": args.skip_baselines,
        "rank_bm25_budget_s": args.rank_bm25_budget,
        "cache_dir": args.cache_dir,
        "generator_version": GENERATOR_VERSION,
    }
    for size in args.sizes:
        sizes.append(measure_size(setup_size(size, args), args, rank_state))
        # written after every size, so an interrupted run keeps what it measured
        results = report(settings, sizes, len(args.sizes))
        path = write_results(NAME, info, results, args.out)
    print(table(sizes))
    print(f"targets at 1M: {json.dumps(results['targets'])}")
    print(f"results: {path}")
    return {**info, **results, "path": str(path)}


if __name__ == "__main__":
    main()

"""The offline search tool: ReAct's Wikipedia and FireAct's Google interfaces over a local index.

Owns the tool semantics on top of `fireact.tools.local_index` (which owns the index itself):

* ``style="wiki"`` (ReAct): ``search[entity]`` opens a page and returns its first 5 sentences,
  or answers ``Could not find [entity]. Similar: ['T1', ...].`` (up to 5 titles:
  `fireact.tools.text.not_found`, as `fireact.tools.wikipedia` answers); ``lookup[keyword]`` walks the open page (`fireact.tools.base.lookup`).
  Which page ``search[entity]`` opens, in order:

  1. a title equal to the entity up to case and spaces (an identical title first);
  2. else, among the 10 best BM25 hits (title terms boosted), the best one whose title has the
     same words as the entity ignoring punctuation and accents (``Ed Wood film`` opens
     ``Ed Wood (film)``);
  3. else the one hit whose title minus a trailing ``(qualifier)`` has those words (``Ed
     Wood`` opens ``Ed Wood (film)`` when it is the only ``Ed Wood (...)``; with two
     candidates it is ambiguous, as on a disambiguation page, and nothing opens);
  4. else nothing opens: not found, listing the best-ranked titles as similar.

* ``style="google"`` (FireAct): ``search[question]`` returns a short passage like a search
  snippet: the 5 best BM25 paragraphs are re-ranked by their BM25 score (relative to the best)
  plus the IDF-weighted share of query terms covered by their best window of 1-3 consecutive
  sentences (at most ~300 characters) together with the title; the best window of the best
  paragraph is the observation. No page is opened, so ``lookup`` answers "No more results.".

Queries are tokenised by our own analyzer and turned into term queries, never given to
tantivy's query parser, so any text (quotes, brackets, ``AND``, ``-``, unicode) is safe.
One `LocalSearch` object serves any number of concurrent episodes: it keeps only the opened,
read-only searcher; per-episode state lives in `ToolState`.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from fireact.errors import FireactError
from fireact.tools.base import ToolState, lookup, open_page
from fireact.tools.local_index import (
    INDEX_ANALYZER,
    NAME_ANALYZER,
    Hit,
    LocalIndex,
    default_index_dir,
)
from fireact.tools.text import SIMILAR, not_found

STYLES = ("wiki", "google")
WIKI_CANDIDATES = 10  # BM25 hits examined for a title match
WIKI_TITLE_BOOST = 3.0
GOOGLE_CANDIDATES = 5  # paragraphs re-ranked by their best window
GOOGLE_TITLE_BOOST = 2.0
WINDOW_WEIGHT = 1.0  # weight of the window's term coverage against the relative BM25 score
MAX_WINDOW = 3  # sentences in a snippet
SNIPPET_CHARS = 300
EMPTY_QUERY = "Empty search query: put an entity or a question inside search[...]."
_R = TypeVar("_R")
CACHE_SIZE = 4096  # recent queries whose result is kept (episodes repeat searches)


class LocalSearch:
    """``search``/``lookup`` over a local paragraph index, in ReAct (wiki) or FireAct (google)
    style. ``index_dir=None`` uses the default index of the shipped HotpotQA dev paragraphs."""

    name = "local"
    actions = frozenset({"search", "lookup"})

    def __init__(
        self, index_dir: Path | None = None, style: str = "wiki", cache_size: int = CACHE_SIZE
    ) -> None:
        if style not in STYLES:
            raise FireactError(f"unknown search style {style!r}; use one of {', '.join(STYLES)}")
        self.style = style
        if index_dir is None:
            default = default_index_dir()
            hint = f"delete {default} and fireact builds it again on next use"
            self.index = LocalIndex(default, rebuild=hint)
        else:
            self.index = LocalIndex(Path(index_dir))
        # tells styles and index builds apart, e.g. for CachedTool(tool, namespace=...)
        built = self.index.meta.get("built_at", "")
        self.namespace = f"local-{style}:{self.index.directory.resolve()}@{built}"
        # LRU of query -> find_page / best_passage result (the index never changes once open)
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._cache_size = max(0, cache_size)
        self._cache_lock = threading.Lock()

    async def __call__(self, action: str, argument: str, state: ToolState) -> str:
        # Inline, not in a thread: a search takes well under a millisecond on the default index,
        # less than a thread hop costs (a question takes ~2-3 ms p50 on a synthetic 1M-paragraph
        # index, entities ~0.02 ms: benchmarks/search_bench.py).
        return self.call(action, argument, state)

    async def aclose(self) -> None:
        """Nothing to release: the index is memory-mapped read-only files."""

    def call(self, action: str, argument: str, state: ToolState) -> str:
        """The observation for ``action[argument]`` (synchronous)."""
        if action == "lookup":
            return lookup(state, argument)
        if action != "search":
            raise ValueError(f"local answers search[...] and lookup[...], not {action}[...]")
        query = " ".join(argument.split())
        if not query:
            return EMPTY_QUERY
        if self.style == "google":
            found = self._cached(query, self.best_passage)
            return found[1] if found else f"No results found for {query}."
        page = self._cached(query, self.find_page)
        if isinstance(page, Hit):
            return open_page(state, page.sentences)
        return not_found(query, page)

    def _cached(self, query: str, find: Callable[[str], _R]) -> _R:
        """``find(query)``, remembered for the last `cache_size` distinct queries."""
        if not self._cache_size:
            return find(query)
        with self._cache_lock:
            if query in self._cache:
                self._cache.move_to_end(query)
                return self._cache[query]
        result = find(query)
        with self._cache_lock:
            self._cache[query] = result
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return result

    # ------------------------------------------------------------ wiki style

    def find_page(self, entity: str) -> Hit | list[str]:
        """The page ``search[entity]`` opens, or up to 5 similar titles (see the module doc)."""
        exact = self.index.exact_title(entity)
        if exact is not None:
            return exact
        hits = self.index.ranked(self.index.query_terms(entity), WIKI_CANDIDATES, WIKI_TITLE_BOOST)
        name = NAME_ANALYZER.analyze(entity)
        if name:
            same = [h for h in hits if NAME_ANALYZER.analyze(h.title) == name]
            if same:
                return same[0]
            base = [h for h in hits if NAME_ANALYZER.analyze(_unqualified(h.title)) == name]
            if len(base) == 1:
                return base[0]
            hits = base + [h for h in hits if h not in base]  # ambiguous ones first
        return [h.title for h in hits[:SIMILAR]]

    # ------------------------------------------------------------ google style

    def best_passage(self, query: str) -> tuple[str, str] | None:
        """``(title, passage)`` of the snippet ``search[query]`` returns, or None if no match."""
        terms = self.index.query_terms(query)
        hits = self.index.ranked(terms, GOOGLE_CANDIDATES, GOOGLE_TITLE_BOOST)
        if not hits:
            return None
        weights = {t: self.index.idf(t) for t in terms}
        total = sum(weights.values()) or 1.0
        best: tuple[float, str, str] | None = None
        for hit in hits:
            coverage, passage = _best_window(hit.title, hit.sentences, weights)
            score = hit.score / hits[0].score + WINDOW_WEIGHT * coverage / total
            if best is None or score > best[0]:
                best = (score, hit.title, passage)
        return best[1], best[2]


def _unqualified(title: str) -> str:
    """A title without its trailing parenthesised qualifier: ``Ed Wood (film)`` -> ``Ed Wood``."""
    return re.sub(r"\s*\([^()]*\)\s*$", "", title)


def _best_window(title: str, sentences: list[str], weights: dict[str, float]) -> tuple[float, str]:
    """The best run of 1-3 consecutive sentences: the most query weight covered (counting the
    title's terms), then the earliest, then the shortest. Returns (covered weight, snippet)."""
    sentences = [s.strip() for s in sentences if s.strip()]
    title_terms, *terms = _terms_of([title, *sentences])
    best = (-1.0, "")
    for start in range(len(sentences)):
        covered = set(title_terms)
        text = ""
        for end in range(start, min(start + MAX_WINDOW, len(sentences))):
            candidate = f"{text} {sentences[end]}".strip()
            if end > start and len(candidate) > SNIPPET_CHARS:
                break
            text = candidate
            covered |= terms[end]
            gain = sum(w for t, w in weights.items() if t in covered)
            if gain > best[0]:
                best = (gain, text)
    return best[0], _shorten(best[1])


# Joins texts so that one `analyze` call gives each text's terms: the analyzer splits words at
# non-alphanumerics and filters word by word, so a text's terms do not depend on its neighbours.
_SEPARATOR = "fireactseparatorqqz"
_SEPARATOR_TERM = INDEX_ANALYZER.analyze(_SEPARATOR)[0]


def _terms_of(texts: list[str]) -> list[set[str]]:
    """The index terms of each text, as ``[set(INDEX_ANALYZER.analyze(t)) for t in texts]``,
    in one analyzer call (one call per text if a text itself contains the separator word)."""
    out: list[set[str]] = [set()]
    for term in INDEX_ANALYZER.analyze(f" {_SEPARATOR} ".join(texts)):
        if term == _SEPARATOR_TERM:
            out.append(set())
        else:
            out[-1].add(term)
    if len(out) != len(texts):
        return [set(INDEX_ANALYZER.analyze(t)) for t in texts]
    return out


def _shorten(text: str) -> str:
    """Cut a passage longer than the snippet limit at a word boundary, marked with ``...``."""
    if len(text) <= SNIPPET_CHARS:
        return text
    return text[:SNIPPET_CHARS].rsplit(" ", 1)[0] + " ..."

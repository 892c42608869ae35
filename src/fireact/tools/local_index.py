"""The on-disk paragraph index behind the offline search tool (`fireact.tools.local`).

Owns the index format (tantivy schema, text analyzers, the metadata file), building an index
(`build_index`) from paragraph sources (read by `fireact.tools.paragraphs`), the default index
of the shipped HotpotQA dev paragraphs (`default_index_dir`, under `fireact.home.fireact_home`),
and the ranking primitives the tool uses (`LocalIndex`: exact title match, BM25 over title +
body, term statistics).

Index folders follow `fireact.outputs`: a build is locked (one builder per folder), written in
``.OUT.<pid>.building`` next to the folder and renamed into place when complete, marks the
folder as an index (``.fireact-index``), and replaces (``--overwrite``) only a folder holding an
index; a damaged index is reported in one line with the command that rebuilds it.

Of paragraphs sharing a title the first one is kept.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shlex
import shutil
import sys
import tempfile
import time
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import tantivy

from fireact.errors import FireactError
from fireact.home import fireact_home as fireact_home  # re-exported: its old home
from fireact.home import resource
from fireact.outputs import (
    FolderLock,
    atomic_write_text,
    check_owned,
    clean_leftovers,
    describe_os_error,
    mark_owned,
    os_errors,
    refuse_overlap,
    replace_folder,
)
from fireact.tools.paragraphs import HOTPOT_SHAPE, Paragraph, read_paragraphs
from fireact.tools.text import split_sentences as split_sentences  # re-exported

FORMAT_VERSION = 1
META_FILE = "fireact-index.json"
ANALYZER = "fireact_en"  # the analyzer name stored in the schema (registered at every open)
DEFAULT_SOURCE = ("hotpotqa", "dev_distractor_first100.json")
MARKER_KIND = "index"  # an index folder holds the marker .fireact-index (fireact.outputs)
# what a build writes into an index folder (tantivy's files and ours): --overwrite removes these
INDEX_FILES = (
    "meta.json",
    ".managed.json",
    ".tantivy-*.lock",
    "*.idx",
    "*.pos",
    "*.term",
    "*.store",
    "*.fast",
    "*.fieldnorm",
    "*.del",
    META_FILE,
)

# Query-time stop words (the index keeps every word, so exact titles like "The The" still
# match); folded and lower-cased, applied before stemming.
STOPWORDS = """
    a about above after again all also am an and any are as at be been before being
    below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers him his how i if in into is it its
    itself just me more most my no nor not of off on once only or other our out over own
    same she should so some such than that the their theirs them then there these they
    this those through to too under until up very was we were what when where which
    while who whom whose why will with would you your
""".split()  # noqa: SIM905


@dataclass(frozen=True)
class Hit:
    """A ranked paragraph: its score, its stored page and its position in the sources."""

    score: float
    title: str
    sentences: list[str]
    pid: int


# ---------------------------------------------------------------- analyzers and schema


def _analyzer(*, stopwords: bool = False, stem: bool = True) -> tantivy.TextAnalyzer:
    """Simple word tokenizer, lower-case, ASCII folding; optionally stop words and stemming."""
    builder = (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
    )
    if stopwords:
        builder = builder.filter(tantivy.Filter.custom_stopword(STOPWORDS))
    if stem:
        builder = builder.filter(tantivy.Filter.stemmer("english"))
    return builder.build()


INDEX_ANALYZER = _analyzer()  # what the index stores for `title` and `body`
QUERY_ANALYZER = _analyzer(stopwords=True)  # the same terms, minus stop words
NAME_ANALYZER = _analyzer(stem=False)  # compares names word for word (no stemming)


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("title", stored=True, tokenizer_name=ANALYZER, index_option="freq")
    # one value per sentence, so the stored values give the page back exactly
    builder.add_text_field("body", stored=True, tokenizer_name=ANALYZER, index_option="freq")
    builder.add_text_field("title_key", tokenizer_name="raw", index_option="basic")
    builder.add_unsigned_field("pid", stored=True)  # position in the sources (first wins)
    return builder.build()


def title_key(text: str) -> str:
    """A title or query normalised for exact matching: NFC, case-folded, single spaces."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


# ---------------------------------------------------------------- building


def build_index(
    sources: list[Path], out: Path, *, overwrite: bool = False, progress: bool = False
) -> dict:
    """Index the paragraphs of `sources` into the directory `out`; return build statistics.

    Refuses a non-empty `out` unless `overwrite`, and even then a folder that holds anything
    an index build did not write (naming the first such file), a source inside `out`, and a
    second build of `out` while one runs. The index is built in ``.OUT.<pid>.building`` next
    to `out` and renamed into place only when complete, so a failed or killed build leaves
    `out` as it was (the next build removes a killed build's folder).
    Returns ``{"paragraphs", "titles", "duplicates", "seconds"}``.
    """
    sources, out = [Path(s) for s in sources], Path(out)
    if not sources:
        raise FireactError("no source files given; pass HotpotQA JSON or title/text JSONL files")
    refuse_overlap([out], sources, what="--out", replacing=True)
    if out.exists() and not out.is_dir():
        raise FireactError(f"{out}: exists and is not a directory; choose another index path")
    for src in sources:
        if not src.is_file():
            raise FireactError(f"{src}: no such file; give a HotpotQA JSON or title/text JSONL")
    place = Path(os.path.abspath(out.expanduser()))  # "ix/.." or "." have a parent and a name
    # the lock sits next to `out`, since `out` itself is replaced by a rename
    lock = FolderLock(out, "index build", lock_file=place.parent / f".{place.name}.fireact.lock")
    with lock:
        clean_leftovers(place.parent)
        _check_replaceable(out, overwrite)
        building = place.parent / f".{place.name}.{os.getpid()}.building"
        try:
            with os_errors(building, "creating"):
                building.mkdir()
            try:
                stats = _build_into(sources, building, progress=progress)
            except (OSError, ValueError) as err:  # tantivy reports write errors as ValueError
                raise _write_failed(out, err) from None
            _check_replaceable(out, overwrite)  # nobody put a file in `out` meanwhile
            replace_folder(building, place)
        finally:
            shutil.rmtree(building, ignore_errors=True)
    return stats


def _check_replaceable(out: Path, overwrite: bool) -> None:
    """Refuse a non-empty `out` without `overwrite`, and one that does not hold an index."""
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not overwrite:
        raise FireactError(
            f"{out}: already exists and is not empty; pass --overwrite to replace it"
        )
    # indexes built before the marker existed are recognised by their metadata file
    check_owned(out, MARKER_KIND, owns=INDEX_FILES, legacy_markers=[META_FILE])


def _write_failed(out: Path, err: Exception) -> FireactError:
    """One line for a build that could not write its files (a full disk, most likely)."""
    if isinstance(err, OSError):
        return FireactError(describe_os_error(err, out))
    try:
        free = f"; {shutil.disk_usage(out.parent).free / 2**20:,.0f} MiB free on its disk"
    except OSError:
        free = ""
    reason = " ".join(str(err).split())[:200]
    return FireactError(f"cannot write the index {out} ({reason}){free}")


def _build_into(sources: list[Path], directory: Path, *, progress: bool) -> dict:
    """Write the index, its marker and its metadata file into the existing empty `directory`."""
    started = time.perf_counter()
    mark_owned(directory, MARKER_KIND)
    index = tantivy.Index(_schema(), path=str(directory))
    index.register_tokenizer(ANALYZER, INDEX_ANALYZER)
    total_bytes = sum(src.stat().st_size for src in sources)
    threads = 1 if total_bytes < 64 << 20 else min(4, os.cpu_count() or 1)
    writer = index.writer(heap_size=max(64_000_000, 50_000_000 * threads), num_threads=threads)
    seen: set[str] = set()
    read = 0
    for src in sources:
        before = read
        for p in read_paragraphs(src):
            read += 1
            if p.title not in seen:
                seen.add(p.title)
                writer.add_document(_document(p, len(seen) - 1))
                if progress and len(seen) % 100_000 == 0:
                    print(f"indexed {len(seen):,} paragraphs", file=sys.stderr, flush=True)
        if read == before:
            raise FireactError(f"no paragraphs found in {src}; {HOTPOT_SHAPE}, or JSONL")
    writer.commit()
    writer.wait_merging_threads()
    stats = {
        "paragraphs": read,
        "titles": len(seen),
        "duplicates": read - len(seen),
        "seconds": round(time.perf_counter() - started, 3),
    }
    _write_meta(directory, sources, stats)
    if progress:
        print(f"indexed {len(seen):,} paragraphs in {stats['seconds']} s", file=sys.stderr)
    return stats


def _document(p: Paragraph, pid: int) -> tantivy.Document:
    doc = tantivy.Document()
    doc.add_text("title", p.title)
    for sentence in p.sentences:
        doc.add_text("body", sentence)
    doc.add_text("title_key", title_key(p.title))
    doc.add_unsigned("pid", pid)
    return doc


def _write_meta(directory: Path, sources: list[Path], stats: dict) -> None:
    meta = {
        "format": FORMAT_VERSION,
        "tantivy": tantivy.__version__,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "sources": [{"path": str(s.resolve()), "bytes": s.stat().st_size} for s in sources],
        **stats,
    }
    atomic_write_text(directory / META_FILE, json.dumps(meta, indent=2) + "\n")


# ---------------------------------------------------------------- default index


def default_index_dir() -> Path:
    """The index of the shipped HotpotQA dev paragraphs, built on first use.

    It lives in ``$FIREACT_HOME/indexes/default-<hash>`` (hash of the data and the index
    format). It is built into a temporary directory and renamed into place, so concurrent
    processes never see a half-built index: the first rename wins, the others discard theirs.
    Temporary directories of killed builds are removed by the next build.
    """
    source = resource(*DEFAULT_SOURCE)
    digest = hashlib.sha256(source.read_bytes() + f"format={FORMAT_VERSION}".encode())
    final = fireact_home() / "indexes" / f"default-{digest.hexdigest()[:12]}"
    if (final / META_FILE).is_file():
        return final
    with os_errors(final.parent, "creating"):
        final.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(final.parent)
    # .NAME.<pid>.building (unique per thread too), so a killed build's is recognised
    suffix = f".{os.getpid()}.building"
    with os_errors(final.parent, "writing in"):
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", suffix=suffix, dir=final.parent))
    try:
        try:
            _build_into([source], tmp, progress=False)
        except (OSError, ValueError) as err:
            raise _write_failed(final, err) from None
        os.rename(tmp, final)
    except OSError as err:
        if not (final / META_FILE).is_file():  # lost the race is fine; anything else is not
            raise FireactError(describe_os_error(err, final)) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


# ---------------------------------------------------------------- searching


def _damaged(directory: Path, reason: str, meta: dict, rebuild: str | None) -> FireactError:
    """The one-line error for an index that cannot be opened, with the command to rebuild it."""
    if rebuild is None:
        listed = meta.get("sources")
        paths = [s.get("path") for s in listed if isinstance(s, dict)] if listed else []
        named = " ".join(shlex.quote(str(p)) for p in paths if p) or "SOURCES..."
        rebuild = f"rebuild it: fireact index build {named} --out {directory} --overwrite"
    reason = " ".join(reason.split())
    reason = reason if len(reason) <= 160 else reason[:157] + "..."
    return FireactError(f"{directory}: damaged index ({reason}); {rebuild}")


class LocalIndex:
    """An opened index: exact title lookup, BM25 ranking and term statistics (thread-safe)."""

    def __init__(self, directory: Path, *, rebuild: str | None = None) -> None:
        """Open the index in `directory`; a damaged one raises a one-line `FireactError` that
        ends with `rebuild` (default: the ``fireact index build ... --overwrite`` command)."""
        directory = Path(directory)
        meta_path = directory / META_FILE
        if not meta_path.is_file():
            raise FireactError(f"{directory}: not a fireact index (no {META_FILE}); build one")
        try:
            self.meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if not isinstance(self.meta, dict):
                raise ValueError(f"got a JSON {type(self.meta).__name__}, not an object")
        except (OSError, ValueError) as err:
            raise _damaged(directory, f"{META_FILE}: {err}", {}, rebuild) from None
        if self.meta.get("format") != FORMAT_VERSION:
            raise FireactError(
                f"{meta_path}: index format {self.meta.get('format')!r}, this fireact reads "
                f"{FORMAT_VERSION}; rebuild the index"
            )
        self.directory = directory
        try:  # tantivy checks every file (presence, footer) when it opens the searcher
            self.index = tantivy.Index.open(str(directory))
            self.index.register_tokenizer(ANALYZER, INDEX_ANALYZER)
            self.index.reload()
            self.searcher = self.index.searcher()
        except (OSError, ValueError) as err:
            raise _damaged(directory, str(err), self.meta, rebuild) from None
        self.schema = self.index.schema
        self.num_docs = self.searcher.num_docs

    def exact_title(self, text: str) -> Hit | None:
        """The page whose title equals `text` up to case and spaces (identical title first)."""
        key = title_key(text)
        if not key:
            return None
        query = tantivy.Query.term_query(self.schema, "title_key", key, "basic")
        hits = [self._hit(0.0, addr) for _, addr in self.searcher.search(query, 10).hits]
        hits.sort(key=lambda h: (h.title != text.strip(), h.pid))
        return hits[0] if hits else None

    def query_terms(self, text: str, limit: int = 16) -> list[str]:
        """Distinct index terms of `text` minus stop words, at most `limit` (the rarest).

        Falls back to all terms when `text` is only stop words.
        """
        terms = list(dict.fromkeys(QUERY_ANALYZER.analyze(text))) or list(
            dict.fromkeys(INDEX_ANALYZER.analyze(text))
        )
        if len(terms) > limit:
            terms = sorted(terms, key=self.idf, reverse=True)[:limit]
        return terms

    def idf(self, term: str) -> float:
        """BM25's inverse document frequency of `term` in the body field."""
        df = self.searcher.doc_freq("body", term)
        return math.log(1.0 + (self.num_docs - df + 0.5) / (df + 0.5))

    def ranked(self, terms: list[str], k: int, title_boost: float) -> list[Hit]:
        """The top-`k` paragraphs by BM25 over body + title (title scores times `title_boost`)."""
        if not terms:
            return []
        clauses = []
        for term in terms:
            title = tantivy.Query.term_query(self.schema, "title", term, "freq")
            body = tantivy.Query.term_query(self.schema, "body", term, "freq")
            clauses.append((tantivy.Occur.Should, tantivy.Query.boost_query(title, title_boost)))
            clauses.append((tantivy.Occur.Should, body))
        query = tantivy.Query.boolean_query(clauses)
        result = self.searcher.search(query, k, count=False)
        return [self._hit(score, addr) for score, addr in result.hits]

    def _hit(self, score: float, address: tantivy.DocAddress) -> Hit:
        doc = self.searcher.doc(address)
        return Hit(score, doc.get_first("title"), doc.get_all("body"), doc.get_first("pid"))

"""Offline search: index building and its errors, the default index, wiki and google styles."""

from __future__ import annotations

import ast
import asyncio
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fireact.errors import FireactError
from fireact.resources import resource
from fireact.tools import local_index
from fireact.tools.base import Tool, ToolState
from fireact.tools.local import EMPTY_QUERY, LocalSearch
from fireact.tools.local_index import META_FILE, build_index, default_index_dir, split_sentences

DEV = resource("hotpotqa", "dev_distractor_first100.json")
DERRICKSON = (
    "Scott Derrickson (born July 16, 1966) is an American director, screenwriter and producer. "
    "He lives in Los Angeles, California. He is best known for directing horror films such as "
    '"Sinister", "The Exorcism of Emily Rose", and "Deliver Us From Evil", as well as the 2016 '
    'Marvel Cinematic Universe installment, "Doctor Strange."'
)
ED_WOOD_FILM = [
    "Ed Wood is a 1994 American biographical period comedy-drama film directed and produced by "
    "Tim Burton, and starring Johnny Depp as cult filmmaker Ed Wood.",
    "The film concerns the period in Wood's life when he made his best-known films as well as "
    "his relationship with actor Bela Lugosi, played by Martin Landau.",
]


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FIREACT_HOME", str(tmp_path_factory.mktemp("home")))
        return default_index_dir()


@pytest.fixture(scope="module")
def wiki(index_dir: Path) -> LocalSearch:
    return LocalSearch(index_dir)


@pytest.fixture(scope="module")
def google(index_dir: Path) -> LocalSearch:
    return LocalSearch(index_dir, style="google")


def call(tool: LocalSearch, action: str, argument: str, state: ToolState | None = None) -> str:
    return asyncio.run(tool(action, argument, state or ToolState()))


# ---------------------------------------------------------------- wiki style


def test_tool_protocol(wiki: LocalSearch) -> None:
    assert isinstance(wiki, Tool)
    assert wiki.name == "local" and wiki.actions == {"search", "lookup"}
    asyncio.run(wiki.aclose())


def test_namespace_tells_styles_apart(wiki: LocalSearch, google: LocalSearch) -> None:
    assert wiki.namespace != google.namespace
    assert wiki.namespace.startswith("local-wiki:") and google.namespace.startswith("local-google:")


def test_search_title_returns_first_sentences(wiki: LocalSearch) -> None:
    assert call(wiki, "search", "Scott Derrickson") == DERRICKSON
    assert call(wiki, "search", "  scott   DERRICKSON ") == DERRICKSON  # case and spaces


def test_exact_title_wins_then_same_words(wiki: LocalSearch) -> None:
    person = "Edward Davis Wood Jr. (October 10, 1924 – December 10, 1978) was an American"
    assert call(wiki, "search", "Ed Wood").startswith(person)  # "Ed Wood (film)" also exists
    assert call(wiki, "search", "ed wood film").startswith(ED_WOOD_FILM[0])  # punctuation-blind
    assert call(wiki, "search", "Kiss and Tell").startswith(
        "Kiss and Tell is a 1945"
    )  # (1945 film)


def test_not_found_lists_similar_titles(wiki: LocalSearch) -> None:
    obs = call(wiki, "search", "Derrickson")
    prefix = "Could not find [Derrickson]. Similar: "
    assert obs.startswith(prefix) and obs.endswith(".")
    similar = ast.literal_eval(obs[len(prefix) : -1])
    assert similar[0] == "Scott Derrickson" and len(similar) == 5
    assert (
        call(wiki, "search", "zzqx unknownword")
        == "Could not find [zzqx unknownword]. Similar: []."
    )


def test_lookup_walks_hits_and_new_keyword_resets(wiki: LocalSearch) -> None:
    state = ToolState()
    assert call(wiki, "lookup", "Wood", state) == "No more results."  # no page open yet
    call(wiki, "search", "Ed Wood (film)", state)
    assert call(wiki, "lookup", "wood", state) == f"(Result 1 / 2) {ED_WOOD_FILM[0]}"
    assert call(wiki, "lookup", "wood", state) == f"(Result 2 / 2) {ED_WOOD_FILM[1]}"
    assert call(wiki, "lookup", "wood", state) == "No more results."
    assert call(wiki, "lookup", "Burton", state) == f"(Result 1 / 1) {ED_WOOD_FILM[0]}"
    call(wiki, "search", "Scott Derrickson", state)  # a new page resets the keyword
    assert call(wiki, "lookup", "Burton", state) == "No more results."


def test_concurrent_episodes_keep_their_own_pages(wiki: LocalSearch) -> None:
    async def episode(title: str) -> str:
        state = ToolState(episode_id=title)
        await wiki("search", title, state)
        await asyncio.sleep(0)
        return await wiki("lookup", "born", state)

    async def main() -> list[str]:
        return await asyncio.gather(*(episode(t) for t in ["Scott Derrickson", "Ed Wood"] * 20))

    results = asyncio.run(main())
    assert results[0].startswith("(Result 1 / 1) Scott Derrickson (born")
    assert results[1] == "No more results."
    assert len(set(results)) == 2


def test_title_recall_at_least_98_percent(wiki: LocalSearch) -> None:
    first: dict[str, list[str]] = {}
    for record in json.loads(DEV.read_text()):
        for title, sentences in record["context"]:
            first.setdefault(title, sentences)
    assert len(first) == 991
    found = sum(
        wiki.call("search", title, ToolState()) == " ".join(s.strip() for s in sentences[:5])
        for title, sentences in first.items()
    )
    assert found / len(first) >= 0.98


# ---------------------------------------------------------------- google style


def test_google_snippet_for_a_question(google: LocalSearch) -> None:
    question = (
        "What government position was held by the woman who portrayed Corliss Archer in the "
        "film Kiss and Tell?"
    )
    snippet = (
        "Kiss and Tell is a 1945 American comedy film starring then 17-year-old Shirley Temple "
        "as Corliss Archer."
    )
    assert google.best_passage(question) == ("Kiss and Tell (1945 film)", snippet)
    state = ToolState()
    assert call(google, "search", question, state) == snippet
    assert state.page is None
    assert call(google, "lookup", "Temple", state) == "No more results."


def test_google_passages_come_from_supporting_pages(google: LocalSearch) -> None:
    records = json.loads(DEV.read_text())
    hits = 0
    for record in records:
        title, passage = google.best_passage(record["question"])
        assert 0 < len(passage) <= 305
        hits += title in {t for t, _ in record["supporting_facts"]}
    assert hits / len(records) > 0.5


# ---------------------------------------------------------------- queries and arguments

ODD_QUERIES = [
    '"Ed Wood" AND (film) -x: [y]',
    "title:foo OR bar^2 ~ * ? \\ / { } ! &&",
    "NOT",
    "the",
    "***",
    "Beyoncé Knowles – 日本語 🙂",
    "a" * 5000,
    "\x00\t\n",
]


@pytest.mark.parametrize("query", ODD_QUERIES)
@pytest.mark.parametrize("style", ["wiki", "google"])
def test_any_query_text_is_safe(index_dir: Path, style: str, query: str) -> None:
    obs = call(LocalSearch(index_dir, style=style), "search", query)
    assert isinstance(obs, str) and obs


@pytest.mark.parametrize("style", ["wiki", "google"])
def test_empty_query_is_an_observation(index_dir: Path, style: str) -> None:
    tool = LocalSearch(index_dir, style=style)
    assert call(tool, "search", "") == EMPTY_QUERY
    assert call(tool, "search", " \n ") == EMPTY_QUERY


def test_unknown_style_and_action(index_dir: Path, wiki: LocalSearch) -> None:
    with pytest.raises(FireactError, match="unknown search style 'bing'"):
        LocalSearch(index_dir, style="bing")
    with pytest.raises(ValueError, match=r"not finish\[...\]"):
        call(wiki, "finish", "x")


def test_opening_something_that_is_not_an_index(tmp_path: Path) -> None:
    with pytest.raises(FireactError, match=f"{tmp_path}: not a fireact index"):
        LocalSearch(tmp_path)


# ---------------------------------------------------------------- building


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


ALPHA_BETA = "Alpha Beta is a thing. It was made by Dr. Who in the U.S. in 1990! Really?"


def test_build_from_jsonl(tmp_path: Path) -> None:
    source = write_jsonl(
        tmp_path / "wiki.jsonl",
        [
            {"title": "Alpha Beta", "text": ALPHA_BETA},
            {"title": "Gamma", "sentences": ["Gamma is a letter.", " It follows beta."]},
            {"title": "Alpha Beta", "text": "A duplicate that is dropped."},
            {"title": "Empty", "text": "   "},
        ],
    )
    out = tmp_path / "index"
    stats = build_index([source], out)
    assert {k: stats[k] for k in ("paragraphs", "titles", "duplicates")} == {
        "paragraphs": 3,
        "titles": 2,
        "duplicates": 1,
    }
    meta = json.loads((out / META_FILE).read_text())
    assert meta["format"] == 1 and meta["titles"] == 2
    assert meta["sources"][0]["path"] == str(source.resolve())
    tool = LocalSearch(out)
    state = ToolState()
    assert call(tool, "search", "alpha beta", state) == ALPHA_BETA  # split, then joined again
    assert (
        call(tool, "lookup", "who", state)
        == "(Result 1 / 1) It was made by Dr. Who in the U.S. in 1990!"
    )
    assert call(tool, "search", "Gamma") == "Gamma is a letter. It follows beta."
    google = LocalSearch(out, style="google")
    assert google.best_passage("which letter follows beta") == (
        "Gamma",
        "Gamma is a letter. It follows beta.",
    )


def test_split_sentences() -> None:
    text = 'He met J. R. R. Tolkien at St. Mary\'s in 1950.  "It rained." Then (1951) he left. ok'
    assert split_sentences(text) == [
        "He met J. R. R. Tolkien at St. Mary's in 1950.",
        '"It rained."',
        "Then (1951) he left. ok",
    ]
    assert split_sentences("") == []


def test_build_from_several_hotpot_and_jsonl_sources(tmp_path: Path) -> None:
    extra = write_jsonl(tmp_path / "extra.jsonl", [{"title": "Scott Derrickson", "text": "X."}])
    stats = build_index([DEV, extra], tmp_path / "index")
    assert (stats["paragraphs"], stats["titles"]) == (993, 991)
    assert call(LocalSearch(tmp_path / "index"), "search", "Scott Derrickson") == DERRICKSON


def test_overwrite_refused_then_allowed(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "a.jsonl", [{"title": "A", "text": "First."}])
    out = tmp_path / "index"
    build_index([source], out)
    with pytest.raises(FireactError, match=f"{out}: already exists and is not empty"):
        build_index([source], out)
    write_jsonl(source, [{"title": "A", "text": "Second."}])
    build_index([source], out, overwrite=True)
    assert call(LocalSearch(out), "search", "A") == "Second."
    (tmp_path / "empty").mkdir()
    build_index([source], tmp_path / "empty")  # an empty directory is fine
    (tmp_path / "file").write_text("x")
    with pytest.raises(FireactError, match="is not a directory"):
        build_index([source], tmp_path / "file", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl", "empty", "file", "index"]


BAD_JSONL = [
    ('{"title": "A", "text": "ok."}\n{not json\n', "line 2: not valid JSON"),
    ('{"text": "no title."}\n', "line 1: missing 'title'"),
    ('{"title": "A"}\n', "line 1: missing 'text' (or 'sentences')"),
    ('{"title": 3, "text": "x."}\n', "line 1: the title must be a non-empty string"),
    ('\n{"title": "A", "sentences": "x."}\n', "line 2: the sentences of 'A' must be a list"),
    ('{"title": "A", "text": ["x.", 1]}\n', "line 1: the sentences of 'A' must be a list"),
    ("[1, 2]\n", "line 1: missing 'title'"),
    ('{"title": "A", "text": ""}\n', "no paragraphs found in {path}"),
    ("", "no paragraphs found in {path}"),
]


@pytest.mark.parametrize(("content", "message"), BAD_JSONL)
def test_bad_jsonl(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    expected = message.format(path=path) if "{path}" in message else f"{path} {message}"
    with pytest.raises(FireactError) as error:
        build_index([path], tmp_path / "index")
    assert expected in str(error.value) and "\n" not in str(error.value)
    assert not (tmp_path / "index").exists()


BAD_JSON = [
    ('[{"context": []}, ', "line 1: not valid JSON"),
    ('"just a string"', ": got a JSON str"),
    ('[{"question": "q"}]', " record 0: missing 'context'"),
    ('[{"context": []}, {"context": {"t": 1}}]', " record 1: 'context' is not a list"),
    ('[{"context": [["T", "not a list"]]}]', " record 0: a 'context' item is not [title,"),
    ('[{"context": [[1, ["s."]]]}]', " record 0: the title must be a non-empty string"),
    ('[{"context": [["T", ["s.", null]]]}]', " record 0: the sentences of 'T' must be a list"),
    ('[{"context": []}]', "no paragraphs found in {path}"),
    ("[]", "no paragraphs found in {path}"),
]


@pytest.mark.parametrize(("content", "message"), BAD_JSON)
def test_bad_hotpot_json(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    expected = message.format(path=path) if "{path}" in message else f"{path}{message}"
    expected = expected.replace(f"{path}line", f"{path} line")
    with pytest.raises(FireactError) as error:
        build_index([path], tmp_path / "index")
    assert expected in str(error.value)


def test_missing_and_undecodable_sources(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    with pytest.raises(FireactError, match=f"{missing}: no such file"):
        build_index([missing], tmp_path / "index")
    with pytest.raises(FireactError, match="no source files"):
        build_index([], tmp_path / "index")
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"title": "caf\xe9", "text": "x."}\n')
    with pytest.raises(FireactError, match=f"{latin}: not UTF-8"):
        build_index([latin], tmp_path / "index")


# ---------------------------------------------------------------- default index


def test_default_index_built_once_and_loads_fast(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIREACT_HOME", str(tmp_path))
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(default_index_dir())) for _ in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2 and results[0] == results[1]
    (directory,) = (tmp_path / "indexes").iterdir()  # no temporary directories left behind
    assert directory == results[0] and directory.name.startswith("default-")
    assert json.loads((directory / META_FILE).read_text())["titles"] == 991

    started = time.perf_counter()
    tool = LocalSearch()
    seconds = time.perf_counter() - started
    assert seconds < 1.0
    assert tool.index.directory == directory
    assert call(tool, "search", "Scott Derrickson") == DERRICKSON


def test_default_index_losing_the_race_keeps_the_winner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIREACT_HOME", str(tmp_path))
    real_build = local_index._build_into
    winners: list[Path] = []

    def build_while_another_process_wins(sources: list[Path], directory: Path, **kw: bool) -> dict:
        stats = real_build(sources, directory, **kw)
        if not winners:  # another "process" finishes first and renames its copy into place
            winners.append(tmp_path)
            winners[0] = local_index.default_index_dir()
        return stats

    monkeypatch.setattr(local_index, "_build_into", build_while_another_process_wins)
    assert local_index.default_index_dir() == winners[0]
    assert [p.name for p in (tmp_path / "indexes").iterdir()] == [winners[0].name]


def test_default_index_build_removes_a_killed_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIREACT_HOME", str(tmp_path))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    killed = tmp_path / "indexes" / f".default-0123abcd-x1y2.{gone}.building"
    killed.mkdir(parents=True)
    (killed / "meta.json").write_text("{")
    directory = default_index_dir()
    assert [p.name for p in (tmp_path / "indexes").iterdir()] == [directory.name]
    assert (directory / ".fireact-index").is_file()


def test_damaged_default_index_says_how_to_rebuild_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIREACT_HOME", str(tmp_path))
    directory = default_index_dir()
    meta = directory / META_FILE
    meta.write_text(meta.read_text()[:10])
    with pytest.raises(FireactError) as error:
        LocalSearch()
    assert str(error.value) == (
        f"{directory}: damaged index (fireact-index.json: Unterminated string starting at: "
        f"line 2 column 3 (char 4)); delete {directory} and fireact builds it again on next use"
    )
    shutil.rmtree(directory)
    assert call(LocalSearch(), "search", "Scott Derrickson") == DERRICKSON

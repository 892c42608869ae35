"""Fakes of the search services fireact's tools call, served over real HTTP on 127.0.0.1.

This module owns two request handlers for `httpserver.serve_requests`, each enforcing its
service's documented contract so that fireact's real `SerpAPISearch` and `WikipediaSearch` can
run against them, and a request the real service refuses is refused here too:

- `FakeSerpAPI`: Google search through SerpAPI (``GET /search.json``). A missing or wrong
  ``api_key`` is HTTP 401, a missing ``q`` 400, an ``engine`` other than ``google`` 400, an
  exhausted account 429; a query with no results is HTTP 200 with SerpAPI's "Google hasn't
  returned any results" ``error`` field. Results come from a dict ``query -> result fields``
  (``answer_box``, ``organic_results``...; saved responses from ``tests/fixtures`` fit as they
  are); ``search_metadata``, ``search_parameters`` and ``search_information`` are built from the
  request, as SerpAPI does.
- `FakeWikipedia`: the MediaWiki Action API (``GET /w/api.php``) as Wikipedia serves it, for
  what the Wikipedia tool uses: ``action=query`` with ``titles`` + ``prop=extracts|pageprops``
  (``redirects``, ``explaintext``, ``exintro``, ``ppprop``) and ``list=search`` (``srsearch``,
  ``srlimit``, ``sroffset``, ``srprop``), in ``formatversion`` 1 and 2. Pages come from a dict
  ``title -> plain text``. Like the real API it answers errors with HTTP 200 and an ``error``
  object (``badvalue`` for an unknown action, ``maxlag`` when the configured replication lag
  exceeds the request's ``maxlag``, ``missingparam``, ``badinteger``), warns about unknown
  parameters and values, serves HTML (``jsonfm``) when ``format=json`` is missing, and refuses
  requests without a User-Agent (HTTP 403).

    wiki = FakeWikipedia({"Paris": "Paris is the capital of France. It is on the Seine."})
    with wiki.serve() as server:
        tool = WikipediaSearch(base_url=server.url + WIKI_PATH)

Every request is kept in ``server.requests`` (see `httpserver.Server`).
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

from tests.helpers.httpserver import Reply, Request, Server, fixture, serve_requests

# -- SerpAPI ----------------------------------------------------------------------------------

SERPAPI_PATH = "/search.json"
SERPAPI_PATHS = (SERPAPI_PATH, "/search")  # SerpAPI answers JSON on both
INVALID_KEY = "Invalid API key. Your API key should be here: https://serpapi.com/manage-api-key"
MISSING_QUERY = "Missing query `q` parameter."
NO_RESULTS = "Google hasn't returned any results for this query."
OUT_OF_SEARCHES = "Your account has run out of searches."
SEARCH_TIME = "2023-09-01 10:00:00 UTC"  # created_at / processed_at of every fake search
# the fields of a saved response that describe the search, not its results
_SEARCH_FIELDS = ("search_metadata", "search_parameters", "search_information", "error")
# the request parameters echoed in search_parameters, in SerpAPI's order
_ECHOED = ("engine", "q", "location", "google_domain", "hl", "gl", "start", "num", "safe")


def _query_key(query: str) -> str:
    return " ".join(query.split()).casefold()


def _not_found_page(path: str) -> Reply:
    page = f"<!DOCTYPE html><html><body><h1>Not Found</h1><p>{html.escape(path)}</p></body></html>"
    return Reply(status=404, body=page, content_type="text/html; charset=utf-8")


@dataclass
class FakeSerpAPI:
    """SerpAPI's Google engine over a dict of results (see the module doc).

    `results` maps a query (matched case- and whitespace-insensitively) to the result fields
    of its page; a saved full response works too (its metadata is rebuilt from the request).
    A query that is not there, or whose fields hold no results, gets the no-results answer.
    `searches_left` (None: unlimited) counts down with each search; at 0 the account is out
    of searches (HTTP 429).
    """

    api_key: str
    results: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    searches_left: int | None = None

    @classmethod
    def from_fixtures(cls, api_key: str, *names: str) -> FakeSerpAPI:
        """A fake answering the saved responses ``tests/fixtures/<name>``, each for the query
        in its own ``search_parameters.q``."""
        saved = [fixture(name) for name in names]
        return cls(api_key, {page["search_parameters"]["q"]: page for page in saved})

    @contextmanager
    def serve(self) -> Iterator[Server]:
        """Serve this fake on 127.0.0.1; the tool's base URL is ``server.url + SERPAPI_PATH``."""
        with serve_requests(self) as server:
            yield server

    def __call__(self, request: Request) -> Reply:
        if request.path not in SERPAPI_PATHS:
            return _not_found_page(request.path)
        params = request.query
        if params.get("api_key") != self.api_key or not self.api_key:
            return Reply(status=401, body={"error": INVALID_KEY})
        engine = params.get("engine", "google")
        if engine != "google":
            return Reply(status=400, body={"error": f"Unsupported `{engine}` search engine."})
        query = params.get("q", "")
        if not query.strip():
            return Reply(status=400, body={"error": MISSING_QUERY})
        if self.searches_left is not None:
            if self.searches_left <= 0:
                return Reply(status=429, body={"error": OUT_OF_SEARCHES})
            self.searches_left -= 1
        return Reply(body=self.page(params))

    def _results_for(self, query: str) -> dict[str, Any]:
        wanted = _query_key(query)
        for key, page in self.results.items():
            if _query_key(key) == wanted:
                return {k: v for k, v in page.items() if k not in _SEARCH_FIELDS}
        return {}

    def page(self, params: Mapping[str, str]) -> dict[str, Any]:
        """The JSON SerpAPI returns for a valid search with these parameters."""
        query = params["q"]
        results = self._results_for(query)
        search_id = hashlib.sha1(_query_key(query).encode()).hexdigest()[:24]
        domain = params.get("google_domain", "google.com")
        google_url = (
            f"https://www.{domain}/search?q={quote_plus(query)}&oq={quote_plus(query)}"
            + "".join(f"&{k}={quote_plus(params[k])}" for k in ("hl", "gl") if k in params)
            + "&sourceid=chrome&ie=UTF-8"
        )
        metadata = {
            "id": search_id,
            "status": "Success",
            "json_endpoint": f"https://serpapi.com/searches/{search_id[:10]}/{search_id}.json",
            "created_at": SEARCH_TIME,
            "processed_at": SEARCH_TIME,
            "google_url": google_url,
            "raw_html_file": f"https://serpapi.com/searches/{search_id[:10]}/{search_id}.html",
            "total_time_taken": 1.02,
        }
        echoed = {"engine": "google", "google_domain": "google.com"} | {
            k: params[k] for k in _ECHOED if k in params
        }
        parameters = {k: echoed[k] for k in _ECHOED if k in echoed} | {"device": "desktop"}
        has_results = bool(results.get("answer_box") or results.get("organic_results"))
        if not has_results:
            information = {"organic_results_state": "Fully empty", "query_displayed": query}
            return {
                "search_metadata": metadata,
                "search_parameters": parameters,
                "search_information": information,
                "error": NO_RESULTS,
            }
        information = {
            "organic_results_state": "Results for exact spelling",
            "query_displayed": query,
            "total_results": 1_230_000,
            "time_taken_displayed": 0.41,
        }
        return {
            "search_metadata": metadata,
            "search_parameters": parameters,
            "search_information": information,
            **results,
        }


# -- MediaWiki Action API ---------------------------------------------------------------------

WIKI_PATH = "/w/api.php"
DOCREF = (
    "See https://en.wikipedia.org/w/api.php for API usage. Subscribe to the "
    "mediawiki-api-announce mailing list at &lt;https://lists.wikimedia.org/postorius/lists/"
    "mediawiki-api-announce.lists.wikimedia.org/&gt; for notice of API deprecations and "
    "breaking changes."
)
NO_USER_AGENT = (
    "Please set a user-agent and respect our robot policy https://w.wiki/4wJS. "
    "Scripts should use an informative User-Agent string with contact information, or they may "
    "be blocked without notice."
)


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# The parameters the fake knows: the main module's, action=query's and its submodules'.
_MAIN_PARAMS = _names(
    "action format formatversion maxlag smaxage maxage assert assertuser requestid servedby "
    "curtimestamp responselanginfo origin uselang variant errorformat errorlang errorsuselocal "
    "utf8 ascii callback"
)
_QUERY_PARAMS = _names(
    "prop list meta titles pageids revids generator redirects converttitles indexpageids export "
    "exportnowrap iwurl continue rawcontinue "
    "exchars exsentences exlimit exintro explaintext exsectionformat excontinue ppprop ppcontinue "
    "srsearch srnamespace srlimit sroffset srwhat srinfo srprop srinterwiki srenablerewrites "
    "srsort srqiprofile srbackend"
)
_PROPS = frozenset({"extracts", "pageprops"})
_LISTS = frozenset({"search"})
_INVALID_TITLE_CHARS = "#<>[]|{}"
_HEADING = re.compile(r"^(=+)\s*(.*?)\s*\1$")
SEARCH_MAX = 500


class ApiError(Exception):
    """An error the Action API answers (with HTTP 200) as ``{"error": {code, info, ...}}``."""

    def __init__(self, code: str, info: str, **extra: Any) -> None:
        super().__init__(info)
        self.code, self.info, self.extra = code, info, extra


def normalize_title(title: str) -> str:
    """MediaWiki's title normalisation: underscores to spaces, spaces collapsed, first letter
    upper-cased."""
    title = " ".join(title.replace("_", " ").split())
    return title[:1].upper() + title[1:]


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.casefold())


def saved_page(name: str) -> tuple[str, str]:
    """(title, plain text) of the page in a saved ``prop=extracts`` reply in tests/fixtures."""
    pages = fixture(name)["query"]["pages"]
    page = pages[0] if isinstance(pages, list) else next(iter(pages.values()))
    return page["title"], page["extract"]


def saved_titles(name: str) -> list[str]:
    """The result titles of a saved ``list=search`` reply in tests/fixtures."""
    return [hit["title"] for hit in fixture(name)["query"]["search"]]


@dataclass
class FakeWikipedia:
    """The MediaWiki Action API over a dict of pages (see the module doc).

    `pages` maps titles to plain text (paragraphs one per line, ``== Heading ==`` lines);
    page ids count from 1 in the order of `pages`, then `redirects`, then `searches`. `redirects` maps a title to the page it redirects
    to, `disambiguation` names the disambiguation pages (``pageprops.disambiguation``).
    `searches` fixes the ranked titles of a full-text search (by ``srsearch``); other searches
    rank the pages by the query words found in their title (3 points each) and text (1 point).
    `lag_s` is the replication lag: a request with ``maxlag`` below it gets the maxlag error.
    """

    pages: Mapping[str, str] = field(default_factory=dict)
    redirects: Mapping[str, str] = field(default_factory=dict)
    disambiguation: Iterable[str] = ()
    searches: Mapping[str, list[str]] = field(default_factory=dict)
    lag_s: int = 0
    lag_host: str = "10.64.16.7"
    servedby: str = "mw-api-ext.eqiad.main-7c9d5f8b46-x2x7q"

    def __post_init__(self) -> None:
        self._text = {normalize_title(t): text for t, text in self.pages.items()}
        self._redirects = {
            normalize_title(a): normalize_title(b) for a, b in self.redirects.items()
        }
        # page ids: the pages in order from 1, then the redirect pages, then other search hits
        hits = (normalize_title(t) for titles in self.searches.values() for t in titles)
        self._ids: dict[str, int] = {}
        for title in (*self._text, *self._redirects, *hits):
            self._ids.setdefault(title, len(self._ids) + 1)
        self._disambiguation = {normalize_title(t) for t in self.disambiguation}

    @contextmanager
    def serve(self) -> Iterator[Server]:
        """Serve this fake on 127.0.0.1; the tool's base URL is ``server.url + WIKI_PATH``."""
        with serve_requests(self) as server:
            yield server

    # -- the request --------------------------------------------------------------------------
    def __call__(self, request: Request) -> Reply:
        if request.path != WIKI_PATH:
            return _not_found_page(request.path)
        agent = next((v for k, v in request.headers.items() if k.lower() == "user-agent"), "")
        if not agent.strip():
            return Reply(status=403, body=NO_USER_AGENT, content_type="text/plain; charset=utf-8")
        params = request.query
        fmt = params.get("format", "jsonfm")
        version = 2 if params.get("formatversion") in ("2", "latest") else 1
        headers: dict[str, str] = {}
        try:
            if fmt not in ("json", "jsonfm"):
                fmt = "jsonfm"  # the API falls back to its default format to report this
                raise _bad_value("format", params["format"])
            if params.get("formatversion", "1") not in ("1", "2", "latest"):
                raise _bad_value("formatversion", params["formatversion"])
            action = params.get("action", "help")
            if action == "help":
                return Reply(body=_HELP_PAGE, content_type="text/html; charset=utf-8")
            if action != "query":
                raise _bad_value("action", action)
            self._check_lag(params, headers)
            data = self._query(params, version)
        except ApiError as error:
            headers["MediaWiki-API-Error"] = error.code
            data = self._error(error, version)
        return _render(data, fmt, headers)

    def _error(self, error: ApiError, version: int) -> dict[str, Any]:
        body = {"code": error.code, "info": error.info, **error.extra}
        body["docref" if version == 2 else "*"] = DOCREF
        return {"error": body, "servedby": self.servedby}

    def _check_lag(self, params: Mapping[str, str], headers: dict[str, str]) -> None:
        if "maxlag" not in params:
            return
        maxlag = _integer("maxlag", params["maxlag"])
        if self.lag_s > maxlag:
            headers["Retry-After"] = str(max(maxlag, 5))
            headers["X-Database-Lag"] = str(self.lag_s)
            raise ApiError(
                "maxlag",
                f"Waiting for {self.lag_host}: {self.lag_s} seconds lagged.",
                host=self.lag_host,
                lag=self.lag_s,
                type="db",
            )

    # -- action=query -------------------------------------------------------------------------
    def _query(self, params: Mapping[str, str], version: int) -> dict[str, Any]:
        warnings: dict[str, list[str]] = {}
        unknown = sorted(p for p in params if p not in _MAIN_PARAMS | _QUERY_PARAMS)
        if unknown:
            warnings["main"] = [f"Unrecognized parameter: {', '.join(unknown)}."]
        props = _values(params.get("prop"))
        lists = _values(params.get("list"))
        for name, values, known in (("prop", props, _PROPS), ("list", lists, _LISTS)):
            for value in values:
                if value not in known:
                    message = f'Unrecognized value for parameter "{name}": {value}.'
                    warnings.setdefault("query", []).append(message)
        query: dict[str, Any] = {}
        data: dict[str, Any] = {"batchcomplete": True if version == 2 else ""}
        if "search" in lists:
            hits, more = self._search(params, query)
            if more is not None:
                data["continue"] = {"sroffset": more, "continue": "-||"}
            query["search"] = hits
        if "titles" in params:
            query.update(self._pages(params, props, version))
        if warnings:
            key = "warnings" if version == 2 else "*"
            data["warnings"] = {m: {key: "\n".join(w)} for m, w in warnings.items()}
        if query:
            data["query"] = query
        return data

    def _search(
        self, params: Mapping[str, str], query: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], int | None]:
        """The hits of a ``list=search`` (searchinfo goes into `query`) and the next offset."""
        text = params.get("srsearch", "")
        if not text:
            raise ApiError("missingparam", 'The "srsearch" parameter must be set.')
        raw_limit = params.get("srlimit", "10")
        limit = SEARCH_MAX if raw_limit == "max" else _integer("srlimit", raw_limit)
        limit = min(max(limit, 1), SEARCH_MAX)
        offset = max(_integer("sroffset", params.get("sroffset", "0")), 0)
        ranked = self.searches.get(text)
        if ranked is None:
            ranked = self._rank(text)
        page = ranked[offset : offset + limit]
        query["searchinfo"] = {"totalhits": len(ranked)}
        minimal = params.get("srprop") == ""
        hits = []
        for title in page:
            hit: dict[str, Any] = {"ns": 0, "title": title, "pageid": self._page_id(title)}
            if not minimal:
                body = self._text.get(title, "")
                hit |= {
                    "size": len(body.encode()),
                    "wordcount": len(body.split()),
                    "snippet": html.escape(body[:120]),
                    "timestamp": "2023-09-01T10:00:00Z",
                }
            hits.append(hit)
        more = offset + limit if offset + limit < len(ranked) else None
        return hits, more

    def _rank(self, text: str) -> list[str]:
        words = set(_words(text))
        scores = {
            title: 3 * len(words & set(_words(title))) + len(words & set(_words(body)))
            for title, body in self._text.items()
        }
        return sorted((t for t, s in scores.items() if s > 0), key=lambda t: (-scores[t], t))

    def _page_id(self, title: str) -> int:
        return self._ids.get(normalize_title(title), 0)

    def _pages(self, params: Mapping[str, str], props: list[str], version: int) -> dict[str, Any]:
        normalized, redirected, pages = [], [], []
        for asked in params["titles"].split("|"):
            bad = next((c for c in asked if c in _INVALID_TITLE_CHARS), None)
            if bad is not None:
                reason = f'The requested page title contains invalid characters: "{bad}".'
                pages.append({"title": asked, "invalidreason": reason, "invalid": True})
                continue
            if not asked.strip():
                continue
            title = normalize_title(asked)
            if title != asked:
                normalized.append({"fromencoded": False, "from": asked, "to": title})
            target = self._redirects.get(title)
            if target is not None and "redirects" in params:
                redirected.append({"from": title, "to": target})
                title = target
            pages.append(self._page(title, props, params, redirect=target is not None))
        result: dict[str, Any] = {}
        if normalized:
            result["normalized"] = normalized
        if redirected:
            result["redirects"] = redirected
        result["pages"] = pages if version == 2 else _v1_pages(pages)
        return result

    def _page(
        self, title: str, props: list[str], params: Mapping[str, str], *, redirect: bool
    ) -> dict[str, Any]:
        if redirect and "redirects" not in params:  # the redirect page itself
            page: dict[str, Any] = {"pageid": self._ids[title], "ns": 0, "title": title}
            page["redirect"] = True
            if "extracts" in props:
                page["extract"] = ""
            return page
        if title not in self._text:
            return {"ns": 0, "title": title, "missing": True}
        page = {"pageid": self._ids[title], "ns": 0, "title": title}
        if "pageprops" in props and title in self._disambiguation:
            wanted = _values(params.get("ppprop")) or ["disambiguation"]
            if "disambiguation" in wanted:
                page["pageprops"] = {"disambiguation": ""}
        if "extracts" in props:
            page["extract"] = _extract(self._text[title], params)
        return page


def _bad_value(name: str, value: str) -> ApiError:
    return ApiError("badvalue", f'Unrecognized value for parameter "{name}": {value}.')


def _values(value: str | None) -> list[str]:
    """The values of a multi-value parameter (``a|b``)."""
    return [v for v in (value or "").split("|") if v]


def _integer(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        message = f'Invalid value "{value}" for integer parameter "{name}".'
        raise ApiError("badinteger", message) from None


def _extract(text: str, params: Mapping[str, str]) -> str:
    """TextExtracts' extract: the whole text (or its intro), plain or as simple HTML."""
    lines = text.splitlines()
    if "exintro" in params:
        end = next((i for i, line in enumerate(lines) if _HEADING.match(line.strip())), len(lines))
        lines = lines[:end]
    if "explaintext" in params:
        return "\n".join(lines).strip("\n")
    parts = []
    for line in lines:
        if heading := _HEADING.match(line.strip()):
            level = len(heading.group(1))
            parts.append(f"<h{level}>{html.escape(heading.group(2))}</h{level}>")
        elif line.strip():
            parts.append(f"<p>{html.escape(line.strip())}</p>")
    return "\n".join(parts)


def _v1_pages(pages: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """formatversion=1's ``pages``: keyed by page id (negative for missing and invalid pages),
    with empty strings for the boolean flags."""
    keyed: dict[str, dict[str, Any]] = {}
    negative = 0
    for page in pages:
        page = {k: ("" if v is True else v) for k, v in page.items()}
        if "pageid" in page:
            keyed[str(page["pageid"])] = page
        else:
            negative -= 1
            keyed[str(negative)] = page
    return keyed


def _render(data: dict[str, Any], fmt: str, headers: dict[str, str]) -> Reply:
    if fmt == "json":
        return Reply(body=data, content_type="application/json; charset=utf-8", headers=headers)
    pretty = html.escape(json.dumps(data, indent=4, ensure_ascii=False))
    page = (
        '<!DOCTYPE html>\n<html class="client-nojs" lang="en" dir="ltr">\n<head>\n'
        '<meta charset="UTF-8"/>\n<title>MediaWiki API result - Wikipedia</title>\n</head>\n'
        '<body class="api-pretty">\n<div class="api-pretty-header">'
        "This is the HTML representation of the JSON format. HTML is good for debugging, but is "
        "unsuitable for application use.\n\nSpecify the format parameter to change the output "
        "format. To see the non-HTML representation of the JSON format, set format=json.</div>\n"
        f'<pre class="api-pretty-content">{pretty}</pre>\n</body>\n</html>\n'
    )
    return Reply(body=page, content_type="text/html; charset=utf-8", headers=headers)


_HELP_PAGE = (
    '<!DOCTYPE html>\n<html lang="en" dir="ltr">\n<head><meta charset="UTF-8"/>'
    "<title>MediaWiki API help - Wikipedia</title></head>\n<body>\n"
    "<h1>Main module</h1>\n<p>Parameters: action (default: help), format (default: jsonfm), "
    "maxlag, ...</p>\n</body>\n</html>\n"
)

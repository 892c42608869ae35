"""The run viewer: real scripted runs rendered, run text escaped, filters, nothing executes.

The browser tests load the page in headless Chromium (``--dump-dom`` / ``--screenshot``); they
skip when no chromium is installed (Debian: ``apt-get install -y chromium``).
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from collections import Counter
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from fireact.agent import RunOptions, run
from fireact.errors import FireactError
from fireact.report.view import episode_steps, parse_steps, read_run, render_html, write_view
from fireact.tools.base import ToolState
from tests.helpers.runs import real_run

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not found: apt-get install chromium"
)

# Each payload would leave a mark in the DOM if it ran: the title "PWNED", a data-pwned
# attribute, a <pwned> element (the strings are split so that the text itself never matches).
PAYLOADS = [
    "<script>window.__pwned=1;document.title='PW'+'NED'</script>",
    "<img src=x onerror=\"window.__pwned=1;document.body.setAttribute('data-pw'+'ned','1')\">",
    '"></div><script>window.__pwned=1;'
    "document.body.appendChild(document.createElement('pw'+'ned'))</script>",
    "'><svg onload=\"document.title='PW'+'NED'\">",
]
ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "header", "h1", "p", "div", "span", "b",
    "nav", "button", "input", "main", "details", "summary", "dl", "dt", "dd", "ol", "li", "script",
}  # fmt: skip
MARKS = ("PWNED", "data-pwned", "<pwned", "<img", "<svg")


# ------------------------------------------------------------------ runs


class PayloadTool:
    """A search tool whose every observation is a payload."""

    name = "payload"
    actions = frozenset({"search", "lookup"})

    async def __call__(self, action: str, argument: str, state: ToolState) -> str:
        state.calls += 1
        return f"Result {state.calls}: {PAYLOADS[state.calls % len(PAYLOADS)]}"

    async def aclose(self) -> None:
        return None


def payload_run(tmp_path: Path) -> Path:
    """Payloads in ids, questions, gold answers, thoughts, actions, observations and errors."""
    rows, script = [], {}
    for i, payload in enumerate(PAYLOADS):
        key = f"e{i}{payload}"
        rows.append({"_id": key, "question": f"Q{i} {payload}?", "answer": payload})
        thought, finish = f" Thinking {payload}", f"Action: finish[{payload}]"
        script[key] = [f"{thought}\nAction: search[{payload}]", f"{thought}\n{finish}"]
    script[rows[-1]["_id"]] = script[rows[-1]["_id"]][:1]  # the last one errors (script ends)
    data, script_path = tmp_path / "questions.json", tmp_path / "script.json"
    data.write_text(json.dumps(rows))
    script_path.write_text(json.dumps(script))
    out = tmp_path / "payload-run"
    options = RunOptions(
        task="hotpotqa", data=data, model=f"scripted:{script_path}", out=out, max_steps=3,
        progress=False,
    )  # fmt: skip
    run(options, tool=PayloadTool())
    return out


# ------------------------------------------------------------------ reading pages


class Page(HTMLParser):
    """The parts of a viewer page (raw or dumped DOM) the tests look at."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.episodes: list[tuple[str, bool]] = []  # (category, hidden)
        self.counts: dict[str, int] = {}
        self.body: dict[str, Any] = {}
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self._button: str | None = None
        self._grab: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.add(tag)
        self.attributes.update(a)
        if tag == "details" and "ep" in (a.get("class") or "").split():
            self.episodes.append((a["data-cat"] or "", "hidden" in a))
        elif tag == "body":
            self.body = a
        elif tag == "button":
            self._button = a.get("data-cat")
        elif tag == "span" and a.get("class") == "n" and self._button:
            self._grab = self._button
        elif tag == "span" and a.get("id") == "shown":
            self._grab = "shown"

    def handle_data(self, data: str) -> None:
        if self._grab and data.strip():
            self.counts[self._grab] = int(data)
            self._grab = None

    def visible(self) -> list[str]:
        return [cat for cat, hidden in self.episodes if not hidden]


def chromium(tmp_path: Path, *args: str) -> str:
    """Run headless Chromium with no network and a throwaway profile; its stdout."""
    cmd = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--virtual-time-budget=2000", *args,
    ]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout


# ------------------------------------------------------------------ without a browser


def test_view_of_a_real_run(tmp_path):
    out = real_run(tmp_path)
    path = write_view(out)
    assert path == out / "view.html"
    html = path.read_text(encoding="utf-8")
    page = Page(html)
    assert Counter(cat for cat, _ in page.episodes) == {
        "correct": 1, "wrong": 1, "unfinished": 1, "errored": 1,
    }  # fmt: skip
    assert page.counts == {
        "all": 4, "correct": 1, "wrong": 1, "unfinished": 1, "errored": 1, "shown": 4,
    }  # fmt: skip
    run_data = read_run(out)
    first = next(r for r in run_data.records if r["id"] == "hotpotqa/dev/0")
    assert len(first["tool_calls"]) == 2
    for call in first["tool_calls"]:  # the local tool's own text is on the page, escaped
        assert escape(call["observation"]) in html
    assert "Were Scott Derrickson and Ed Wood of the same nationality?" in html
    assert "ScriptExhaustedError" in html  # the errored episode says why
    other = write_view(out, tmp_path / "pages" / "run.html")
    assert other.is_file() and other.read_text(encoding="utf-8") == html


def test_run_text_is_escaped_and_page_is_offline(tmp_path):
    html = render_html(read_run(payload_run(tmp_path)))
    assert html.count("<script") == 1  # ours only
    for mark in ("<img", "<svg", "<pwned", "</div><script", 'onerror="window'):
        assert mark not in html
    assert "&lt;script&gt;window.__pwned=1;document.title=&#x27;PW&#x27;+&#x27;NED&#x27;" in html
    assert "http://" not in html and "https://" not in html  # no resource from anywhere
    page = Page(html)
    assert not page.attributes & {"src", "href", "srcset", "action", "poster", "data"}
    assert page.tags <= ALLOWED_TAGS and "url(" not in html
    assert "default-src 'none'" in html  # and the browser is told to load nothing
    assert Counter(cat for cat, _ in page.episodes) == {"correct": 3, "errored": 1}


def test_steps_from_a_trajectory():
    text = (
        "Thought: first line\nsecond line\nAction: search[x]\nObservation: found x\n"
        "Action: finish[y]\nObservation: Episode finished, reward = True\n"
    )
    steps = parse_steps(text)
    assert [(s.thought, s.action, s.observation) for s in steps] == [
        ("first line\nsecond line", "search[x]", "found x"),
        ("", "finish[y]", "Episode finished, reward = True"),
    ]
    record = {"trajectory": text, "tool_calls": [{"observation": "found x", "latency_s": 0.25}]}
    assert [s.tool_latency_s for s in episode_steps(record)] == [0.25, None]
    assert parse_steps("Thought: cut short")[0].thought == "cut short"


def test_view_errors_name_the_folder(tmp_path):
    with pytest.raises(FireactError, match="missing-run"):
        write_view(tmp_path / "missing-run")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FireactError, match="episodes.jsonl"):
        write_view(tmp_path / "empty")
    (tmp_path / "empty" / "episodes.jsonl").write_text("\n")
    with pytest.raises(FireactError, match="no episodes"):
        write_view(tmp_path / "empty")


# ------------------------------------------------------------------ in a browser


@needs_chromium
@pytest.mark.parametrize("csp", [False, True], ids=["escaping-only", "with-csp"])
def test_browser_runs_nothing_from_the_run(tmp_path, csp):
    run_data = read_run(payload_run(tmp_path))
    page_path = tmp_path / "view.html"
    page_path.write_text(render_html(run_data, csp=csp), encoding="utf-8")
    dom = chromium(tmp_path, "--dump-dom", page_path.as_uri())
    page = Page(dom)
    assert page.body.get("data-ready") == "1"  # the page's own script did run
    for mark in MARKS:
        assert mark not in dom, mark
    assert "&lt;script&gt;window.__pwned=1" in dom  # shown as text instead
    assert "&lt;img src=x onerror=" in dom
    assert len(page.visible()) == len(run_data.records) == 4


@needs_chromium
def test_browser_filters_by_outcome_and_text(tmp_path):
    path = write_view(real_run(tmp_path))
    wrong = Page(chromium(tmp_path, "--dump-dom", path.as_uri() + "#cat=wrong"))
    assert wrong.visible() == ["wrong"]
    assert wrong.counts == {
        "all": 4, "correct": 1, "wrong": 1, "unfinished": 1, "errored": 1, "shown": 1,
    }  # fmt: skip
    found = Page(chromium(tmp_path, "--dump-dom", path.as_uri() + "#cat=all&q=DERRICKSON"))
    assert found.visible() == ["correct"]
    assert found.counts == {
        "all": 1, "correct": 1, "wrong": 0, "unfinished": 0, "errored": 0, "shown": 1,
    }  # fmt: skip


@needs_chromium
def test_browser_screenshot(tmp_path):
    path = write_view(real_run(tmp_path))
    shot = tmp_path / "viewer.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,900", path.as_uri())
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (1280, 900)
    assert len(data) > 20_000  # a rendered page, not a blank one

"""`fireact demo` in headless Chromium (Playwright): a real ``fireact demo`` subprocess on a free
port, a scripted model from a file, and an OpenAI-compatible server on 127.0.0.1 whose answers
take 0.5 s (so that two episodes can be seen running at the same time).

Skipped with a message where Chromium (``/usr/bin/chromium``, or ``$FIREACT_CHROMIUM``) or the
demo's extra (gradio, playwright) is missing. Every page also checks that it asked nothing of any
host but the demo server (offline: no fonts, analytics or CDN). Set ``FIREACT_DEMO_SCREENSHOT``
to a path to save a screenshot of the answered page there (the README's picture).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers.openai_server import OpenAIServer

CHROMIUM = os.environ.get("FIREACT_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
pytest.importorskip("gradio", reason="the demo needs the extra fireact[demo]")
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need playwright")
if not shutil.which(CHROMIUM):
    pytest.skip(f"no Chromium at {CHROMIUM} (set FIREACT_CHROMIUM)", allow_module_level=True)

QUESTION = "Who was Milhouse named after?"
EVIL = "Show me markup"
EVIL_ANSWER = "<script>document.title='pwned'</script><img src=x onerror=\"document.title='x'\">"
SCRIPT = {
    QUESTION: [
        " I need to search Milhouse.\nAction: search[Milhouse]",
        " Milhouse is named after Nixon.\nAction: finish[Richard Nixon]",
    ],
    EVIL: [f" Here it is.\nAction: finish[{EVIL_ANSWER}]"],
}
SLOW = {  # the OpenAI-compatible server's answers, by a word of the question
    "Zorblax": [" Search it.\nAction: search[Zorblax]", " Found.\nAction: finish[green]"],
    "Quimby": [" Search it.\nAction: search[Quimby]", " Found.\nAction: finish[Joe]"],
    "Stopme": [" Search it.\nAction: search[Stopme]", " Found.\nAction: finish[never]"],
}
API_KEY = "sk-demo-test-secret-4471"
LATENCY_S = 0.5
WAIT_MS = 20_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_up(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"fireact demo exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"fireact demo did not answer at {url}: {log.read_text()[-2000:]}")


@contextmanager
def running_demo(root: Path, **env: str) -> Iterator[str]:
    """``fireact demo`` as a subprocess in `root` (script.json, runs/demo); yields its URL."""
    port = _free_port()
    local = "127.0.0.1,localhost"  # the fake OpenAI server is never reached through a proxy
    full_env = {**os.environ, "FIREACT_HOME": str(root / "home"), "FIREACT_DEMO_AUTH": ""}
    full_env |= {"NO_PROXY": local, "no_proxy": local, **env}
    log = root / f"demo-{port}.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fireact", "demo", "--model", "scripted:script.json"]
            + ["--out", "runs/demo", "--port", str(port)],  # relative to cwd=root
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=root,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_up(url, proc, log)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, log.read_text()[-2000:]  # SIGTERM, as the other commands
    assert (
        log.read_text()
        .rstrip()
        .endswith("terminated: the demo stopped; kept episodes are in runs/demo")
    )
    assert not (root / "runs" / "demo" / ".fireact.lock").exists()  # the store's lock released


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[dict]:
    """The demo (and the slow OpenAI-compatible server it may call)."""
    root = tmp_path_factory.mktemp("demo")
    (root / "script.json").write_text(json.dumps(SCRIPT), encoding="utf-8")
    with OpenAIServer(SLOW, api_key=API_KEY, latency=LATENCY_S) as slow:
        env = {"OPENAI_BASE_URL": slow.base_url, "OPENAI_API_KEY": API_KEY}
        with running_demo(root, **env) as url:
            yield {"url": url, "out": root / "runs" / "demo"}


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def open_page(browser, server):
    """Pages on the demo; each one must ask nothing of another host."""
    contexts, elsewhere = [], []

    def make():
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        contexts.append(context)
        page = context.new_page()
        page.on(
            "request",
            lambda r: (
                None if r.url.startswith((server["url"], "data:")) else elsewhere.append(r.url)
            ),
        )
        page.on("dialog", lambda d: elsewhere.append(f"dialog: {d.message}"))
        page.goto(server["url"])
        page.locator("#run").wait_for()
        return page

    yield make
    for context in contexts:
        context.close()
    assert elsewhere == []


def ask(page, question: str, **fields: str) -> None:
    page.locator("#question textarea").fill(question)
    for name, value in fields.items():
        page.locator(f"#{name} input, #{name} textarea").first.fill(value)
    page.locator("#run").click()


def wait_state(page, *states: str) -> str:
    wanted = json.dumps(list(states))
    page.wait_for_function(
        f"() => {{ const s = document.querySelector('#fireact-steps');"
        f" const e = document.querySelector('#fireact-status .error');"
        f" return e || (s && {wanted}.includes(s.dataset.state)); }}",
        timeout=WAIT_MS,
    )
    return page.locator("#fireact-status").inner_text().strip()


RECORD_STEPS = """() => {
  window.seen = [];
  const sig = () => Array.from(document.querySelectorAll('#fireact-live .demo-step'))
      .map(d => d.dataset.n + (d.classList.contains('pending') ? 'p' : 'd')).join(',');
  const note = () => { const s = sig(); if (window.seen.at(-1) !== s) window.seen.push(s); };
  new MutationObserver(note).observe(document.querySelector('#fireact-live'),
      {subtree: true, childList: true, characterData: true});
}"""


def keep(page, note: str) -> str:
    page.locator("#note textarea").fill(note)
    page.locator("#keep").click()
    page.locator("#fireact-stored p").wait_for(timeout=WAIT_MS)
    return page.locator("#fireact-stored").inner_text()


def kept(out: Path) -> dict[str, dict]:
    """The kept records by their note."""
    records = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    return {r["demo"].get("note"): r for r in records}


def test_ask_streams_the_steps_in_order_then_keep_writes_the_run_folder(open_page, server):
    page = open_page()
    ask(page, QUESTION)
    status = wait_state(page, "finished")
    assert status.startswith("Finished: 2 steps in ")
    steps = page.locator("#fireact-live .demo-step")
    assert steps.count() == 2
    assert [steps.nth(i).locator(".action").inner_text() for i in range(2)] == [
        "ACTION search[Milhouse]",
        "ACTION finish[Richard Nixon]",
    ]
    assert "Richard Milhous Nixon" in steps.nth(0).locator(".obs").inner_text()
    assert page.locator("#answer textarea").input_value() == "Richard Nixon"
    assert keep(page, "first keep").startswith("Kept demo-")
    record = kept(server["out"])["first keep"]
    assert (record["question"], record["prediction"], record["reward"]) == (
        QUESTION,
        "Richard Nixon",
        True,
    )
    if os.environ.get("FIREACT_DEMO_SCREENSHOT"):
        page.screenshot(path=os.environ["FIREACT_DEMO_SCREENSHOT"], full_page=True)


def test_two_pages_at_once_both_finish_and_their_episodes_overlap(open_page, server):
    pages = [open_page(), open_page()]
    pages[0].evaluate(RECORD_STEPS)
    for page, question in zip(pages, ["What is the Zorblax flag?", "Who is Quimby?"], strict=True):
        ask(page, question, model="openai:gpt-4")
    for page in pages:
        assert wait_state(page, "finished").startswith("Finished: 2 steps")
    # the first page saw the step whose tool is working, then it done, then the answer step
    assert pages[0].evaluate("window.seen") == ["", "1p", "1d", "1d,2d"]
    for page, note in zip(pages, ["zorblax", "quimby"], strict=True):
        assert keep(page, note).startswith("Kept demo-")
    records = kept(server["out"])
    a, b = records["zorblax"]["demo"], records["quimby"]["demo"]
    assert (records["zorblax"]["prediction"], records["quimby"]["prediction"]) == ("green", "Joe")
    assert min(a["ended_at"], b["ended_at"]) - max(a["started_at"], b["started_at"]) > LATENCY_S
    for page in pages:  # the key stays on the server
        assert API_KEY not in page.content()
    with urllib.request.urlopen(server["url"] + "config") as reply:
        assert API_KEY not in reply.read().decode()


def test_model_markup_is_shown_as_text_and_runs_nothing(open_page):
    page = open_page()
    ask(page, EVIL)
    wait_state(page, "finished")
    live = page.locator("#fireact-live")
    assert live.locator(".action").inner_text() == f"ACTION finish[{EVIL_ANSWER}]"
    assert live.locator("script, img").count() == 0
    assert page.locator("#answer textarea").input_value() == EVIL_ANSWER
    assert page.title() == "fireact demo"


@pytest.mark.parametrize(
    ("question", "fields", "message"),
    [
        ("", {}, "Error: question: type a question"),
        (QUESTION, {"tool": "nope"}, "Error: run option 'tool' = 'nope': unknown tool 'nope'"),
        (QUESTION, {"model": "scripted:/no/such.json"}, "Error: model scripted:/no/such.json"),
    ],
)
def test_bad_input_is_one_line_in_the_page_and_the_server_goes_on(
    open_page, question, fields, message
):
    page = open_page()
    ask(page, question, **fields)
    wait_state(page, "error")
    status = page.locator("#fireact-status").inner_text().strip()
    assert status.startswith(message) and "\n" not in status
    page.reload()
    ask(page, QUESTION)
    assert wait_state(page, "finished").startswith("Finished: 2 steps")


def test_runs_tab_shows_the_kept_run_in_the_viewer(open_page):
    page = open_page()
    ask(page, QUESTION)
    wait_state(page, "finished")
    keep(page, "for the runs tab")
    page.get_by_role("tab", name="Runs").click()
    page.locator("#runs input").click()
    page.get_by_role("option", name="demo").click()
    summary = page.locator("#fireact-run-summary")
    summary.wait_for(timeout=WAIT_MS)
    assert " episodes · EM " in summary.inner_text()
    viewer = page.frame_locator("#fireact-run-view")
    assert viewer.locator("details.ep").first.locator(".q").inner_text() == QUESTION


def test_stop_ends_the_episode_and_the_page_can_ask_again(open_page):
    page = open_page()
    ask(page, "Stopme, please", model="openai:gpt-4")
    page.locator("#fireact-steps[data-state=running]").wait_for(timeout=WAIT_MS)
    page.locator("#stop").click()
    # the second model call (0.5 s each) never answers: at most the search step is shown
    assert wait_state(page, "stopped") in ("Stopped after 0 steps.", "Stopped after 1 step.")
    assert "finish[never]" not in page.locator("#fireact-live").inner_text()
    assert page.locator("#answer textarea").input_value() == ""
    ask(page, QUESTION, model="scripted:script.json")
    assert wait_state(page, "finished").startswith("Finished: 2 steps")


def test_login_from_the_environment_guards_the_page(browser, tmp_path):
    (tmp_path / "script.json").write_text(json.dumps(SCRIPT), encoding="utf-8")
    with running_demo(tmp_path, FIREACT_DEMO_AUTH="ann:pw-9931") as url:
        page = browser.new_page()
        page.goto(url)
        page.locator("input[type=password]").wait_for(timeout=WAIT_MS)
        assert page.locator("#run").count() == 0
        for password in ("wrong", "pw-9931"):
            page.locator("input[type=text]").first.fill("ann")
            page.locator("input[type=password]").fill(password)
            page.get_by_role("button", name="Login").click()
            if password == "wrong":
                page.get_by_text("Incorrect Credentials").wait_for(timeout=WAIT_MS)
                assert page.locator("#run").count() == 0
        page.locator("#run").wait_for(timeout=WAIT_MS)
        assert "pw-9931" not in page.content()
        page.close()

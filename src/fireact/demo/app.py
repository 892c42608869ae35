"""The demo's Gradio app: its layout, its event wiring, basic auth, and serving it.

Owns `build_blocks` (the two tabs), `auth_from_env` and `serve` (what ``fireact demo`` runs).

* Tab "Ask": the question (and, for a task whose questions come with tables, the table box), the
  settings (model, method, format, tool, temperature, max tokens, max steps), Run / Stop, the
  status line, the steps as they happen (`fireact.demo.render`), the final answer, and Keep
  (corrected answer, note) / Flag (reason) into the store (`fireact.demo.store`). Run is an
  async generator over `fireact.demo.session.Sessions.ask` with no concurrency limit, so the
  episodes of different browser sessions run at the same time on the server's one loop. A bad
  input is one line in the status line; nothing is raised to the page.
* Tab "Runs": the run folders under the runs root (`fireact.demo.runs_tab`).

Safe by default: it binds 127.0.0.1, makes no public share link unless ``share``, and asks for a
login when ``FIREACT_DEMO_AUTH=user:password`` is set (read from the environment only; a
malformed value stops the start with one line). Model text is escaped text, never HTML; API
keys stay on the server (the page only ever gets model specs, rendered steps and messages).
Offline: analytics and Gradio's version check are off and the theme uses the system fonts, so
the page asks for nothing beyond the demo server.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fireact.agent.methods import FORMATS
from fireact.agent.options import RunOptions
from fireact.demo import render
from fireact.demo.inputs import AskRequest, demo_methods
from fireact.demo.runs_tab import list_runs, run_html
from fireact.demo.session import Sessions
from fireact.demo.shared import Shared
from fireact.demo.store import FLAGGED, DemoStore
from fireact.errors import FireactError
from fireact.runs import EPISODES
from fireact.tasks import load_task

AUTH_ENV = "FIREACT_DEMO_AUTH"  # user:password for the login page (environment only)
OFFLINE_ENV = {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_DISABLE_TELEMETRY": "1"}
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def auth_from_env(environ: Mapping[str, str]) -> tuple[str, str] | None:
    """``(user, password)`` from ``FIREACT_DEMO_AUTH=user:password``; None when unset."""
    value = environ.get(AUTH_ENV)
    if value is None or value == "":
        return None
    user, sep, password = value.partition(":")
    if not sep or not user.strip() or not password:
        raise FireactError(
            f"{AUTH_ENV}: expected user:password (a user name, a colon, a password), got a value "
            f"of {len(value)} characters{'' if sep else ' without a colon'}"
        )
    return user.strip(), password


@dataclass
class DemoApp:
    """Everything the page's handlers use."""

    sessions: Sessions
    store: DemoStore
    runs_root: Path
    defaults: RunOptions
    needs_tables: bool = False
    question: str = ""  # prefilled (table tasks: the split's first question and its tables)
    table: str = ""


def _ask_request(values: tuple[Any, ...]) -> AskRequest:
    question, table, model, method, fmt, tool, temperature, max_tokens, max_steps = values
    return AskRequest(
        question=question or "",
        model=model or "",
        method=method or "",
        format=fmt or "",
        tool=tool or "",
        temperature=temperature,
        max_tokens=max_tokens,
        max_steps=max_steps,
        table=table or "",
    )


def _stored(action: str, path: Path, record: Any) -> str:
    return render.message_html(
        f"{action} {record.id} in {path} (gold {record.gold!r}, reward {record.reward})"
    )


def build_blocks(app: DemoApp) -> Any:
    """The Gradio `Blocks` of the demo (not launched)."""
    import gradio as gr

    d = app.defaults
    with gr.Blocks(title="fireact demo", analytics_enabled=False) as blocks:
        gr.Markdown(f"## fireact demo — task {d.task}")
        with gr.Tab("Ask"):
            question = gr.Textbox(label="Question", lines=2, value=app.question, elem_id="question")
            table = gr.Textbox(
                label="Table (CSV with a header row, or JSON tables)",
                lines=6,
                value=app.table,
                visible=app.needs_tables,
                elem_id="table",
            )
            with gr.Accordion("Settings", open=True), gr.Row():
                model = gr.Textbox(
                    label="Model", value=d.model, elem_id="model", scale=2, max_lines=1
                )
                method = gr.Dropdown(demo_methods(), value=d.method, label="Method")
                fmt = gr.Dropdown(list(FORMATS), value=d.format, label="Format")
                tool = gr.Textbox(label="Tool", value=d.tool, elem_id="tool", max_lines=1)
                temperature = gr.Slider(0, 2, value=d.temperature, step=0.05, label="Temperature")
                max_tokens = gr.Number(d.max_tokens, label="Max tokens", precision=0, minimum=1)
                max_steps = gr.Number(d.max_steps, label="Max steps", precision=0, minimum=1)
            with gr.Row():
                run = gr.Button("Run", variant="primary", elem_id="run")
                stop = gr.Button("Stop", variant="stop", elem_id="stop")
            status = gr.HTML(elem_id="fireact-status")
            steps = gr.HTML(elem_id="fireact-live")
            answer = gr.Textbox(label="Answer", interactive=False, elem_id="answer")
            episode = gr.State("")
            with gr.Row():
                corrected = gr.Textbox(label="Corrected answer (optional)", elem_id="corrected")
                note = gr.Textbox(label="Note (optional)", elem_id="note")
                keep = gr.Button("Keep", elem_id="keep")
            with gr.Row():
                reason = gr.Textbox(label="Why it is bad", elem_id="reason")
                flag = gr.Button("Flag as bad", elem_id="flag")
            stored = gr.HTML(elem_id="fireact-stored")
        with gr.Tab("Runs"):
            with gr.Row():
                runs = gr.Dropdown(list_runs(app.runs_root), label="Run folder", elem_id="runs")
                refresh = gr.Button("Refresh", elem_id="refresh")
            run_view = gr.HTML(elem_id="fireact-run")

        form = [question, table, model, method, fmt, tool, temperature, max_tokens, max_steps]

        async def ask(*values: Any) -> AsyncIterator[tuple[str, str, str, str, str]]:
            async for live in app.sessions.ask(_ask_request(values)):
                yield (
                    render.status_html(live),
                    render.steps_html(live),
                    render.answer_text(live),
                    live.id,
                    "",
                )

        async def stop_episode(episode_id: str) -> None:
            app.sessions.stop(episode_id)

        async def keep_episode(episode_id: str, corrected_answer: str, text: str) -> Any:
            try:
                done = app.sessions.get(episode_id)
                record = app.store.keep(done, corrected_answer or "", text or "")
            except FireactError as err:
                return render.message_html(str(err), ok=False), gr.Dropdown()
            message = _stored("Kept", app.store.out / EPISODES, record)
            return message, gr.Dropdown(choices=list_runs(app.runs_root))

        async def flag_episode(episode_id: str, why: str) -> str:
            try:
                record = app.store.flag(app.sessions.get(episode_id), why or "")
            except FireactError as err:
                return render.message_html(str(err), ok=False)
            return _stored("Flagged", app.store.out / FLAGGED, record)

        async def show_run(name: str | None) -> str:
            try:
                return run_html(app.runs_root, name or "")
            except FireactError as err:
                return render.message_html(str(err), ok=False)

        async def refresh_runs() -> Any:
            return gr.Dropdown(choices=list_runs(app.runs_root))

        outputs = [status, steps, answer, episode, stored]
        run.click(ask, form, outputs, concurrency_limit=None)
        question.submit(ask, form, outputs, concurrency_limit=None)
        stop.click(stop_episode, [episode], None, concurrency_limit=None, queue=False)
        keep.click(keep_episode, [episode, corrected, note], [stored, runs])
        flag.click(flag_episode, [episode, reason], stored)
        runs.change(show_run, [runs], run_view, concurrency_limit=None)
        refresh.click(refresh_runs, None, runs)
        blocks.load(refresh_runs, None, runs)
    return blocks


def theme() -> Any:
    """Gradio's default theme on the system fonts (no font is fetched from the network)."""
    import gradio as gr

    return gr.themes.Default(
        font=["system-ui", "Segoe UI", "Roboto", "sans-serif"],
        font_mono=["ui-monospace", "Menlo", "monospace"],
    )


def make_app(
    *, model: str, task: str, tool: str | None, out: Path, runs: Path | None
) -> tuple[DemoApp, Shared]:
    """The demo's state: the task loaded, the defaults checked, the store opened."""
    loaded = load_task(task)
    first = loaded.examples[0] if loaded.examples else None
    tables = getattr(first, "tables", None)
    default_tool = tool or ("sql,calculate" if tables else "local")
    defaults = RunOptions(task=task, model=model, tool=default_tool, out=out)
    shared = Shared(loaded)
    sessions = Sessions(shared, defaults, needs_tables=bool(tables))
    store = DemoStore(Path(out), task, defaults).open()
    app = DemoApp(sessions, store, Path(runs) if runs else Path(out).parent, defaults)
    if tables and first is not None:
        import json

        app.needs_tables, app.question = True, first.question
        app.table = json.dumps([t.to_json() for t in tables], ensure_ascii=False)
    return app, shared


def serve(
    *,
    model: str,
    task: str = "hotpotqa",
    tool: str | None = None,
    out: Path = Path("runs/demo"),
    runs: Path | None = None,
    host: str = "127.0.0.1",
    port: int = 7860,
    share: bool = False,
    environ: Mapping[str, str] | None = None,
) -> int | None:
    """Start the demo and serve until Ctrl-C / SIGTERM (module doc); the signal that stopped it
    (None: the server closed by itself)."""
    for name, value in OFFLINE_ENV.items():
        os.environ.setdefault(name, value)
    auth = auth_from_env(os.environ if environ is None else environ)
    if host not in LOCAL_HOSTS and auth is None:
        print(
            f"warning: serving on {host} without {AUTH_ENV}: anyone who can reach it can use "
            "the model (and its API key's budget)",
            file=sys.stderr,
        )
    app, shared = make_app(model=model, task=task, tool=tool, out=out, runs=runs)
    _stop_on_signals()
    try:
        blocks = build_blocks(app)
        blocks.queue(default_concurrency_limit=None)
        blocks.launch(
            server_name=host,
            server_port=port,
            share=share,
            auth=auth,
            theme=theme(),
            css=render.CSS,
            ssr_mode=False,
            pwa=False,
            mcp_server=False,
            enable_monitoring=False,
            show_error=False,
            footer_links=["api", "gradio", "settings"],
        )
    finally:
        app.store.close()
        try:
            asyncio.run(shared.aclose())
        except Exception as err:  # noqa: BLE001 - shutting down: say it, do not hide the cause
            print(f"warning: closing the models and tools: {err}", file=sys.stderr)
    return _stopped_by[0] if _stopped_by else None


_stopped_by: list[int] = []  # the signal that closed the server, if any


def _interrupt(signum: int, frame: object) -> None:
    _stopped_by.append(signum)
    raise KeyboardInterrupt  # Gradio's serving loop closes the server on it


def _stop_on_signals() -> None:
    """Ctrl-C and SIGTERM close the server (SIGTERM even where SIGINT is ignored, as in a
    background job): the demo stops, the store's lock is released, the models are closed, and
    `serve` returns which signal it was."""
    import signal
    import threading

    _stopped_by.clear()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
        if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            signal.signal(signal.SIGINT, _interrupt)

"""`fireact view`: one self-contained HTML page to read a run, and the reading of a run folder.

Owns two things:

* reading a run folder (`read_run`: ``episodes.jsonl`` plus the optional ``summary.json`` and
  ``config.json``) and its headline numbers (`run_summary`, shared with
  `fireact.report.compare`): `fireact.runs.run_stats` under ``summary.json``'s names, with
  finished / EM / F1 scored by `fireact.report.score.scored_tally`, so they always match
  ``fireact score``;
* `write_view(run_dir, out=None)`: ``RUN/view.html`` (or ``out``) — the run's summary, a list of
  episodes filtered by outcome (correct / wrong / unfinished / errored) and by free text over
  question, prediction and trajectory, and each episode's steps (read by
  `fireact.trajectory.parse`: thought, action, observation, tool latency; per-step model cost
  when the record has ``step_stats``) with gold and prediction. The page's stylesheet and script
  are `fireact.report.assets`.

Safety: the page is rendered entirely here; every piece of run text goes through `html.escape`
and lands in element text or quoted attributes, never in a script. The one inline script only
toggles ``hidden`` and writes numbers with ``textContent``. A Content-Security-Policy allows that
script alone (by hash) and no network at all, so the page makes no request and nothing from a
run can execute. The filter state lives in the URL hash (``#cat=wrong&q=paris``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from fireact.errors import FireactError
from fireact.files import iter_jsonl, read_json
from fireact.outputs import atomic_write_text, os_errors, refuse_overlap
from fireact.report.assets import CSS, JS
from fireact.report.score import read_run_episodes, scored_tally
from fireact.runs import CONFIG, EPISODES, SUMMARY, VIEW, Tally, run_inputs, run_stats
from fireact.trajectory import Step, parse

CATEGORIES = ("correct", "wrong", "unfinished", "errored")


# ------------------------------------------------------------------ reading a run folder


@dataclass
class RunData:
    """A run folder as read from disk; ``categories[i]`` is the outcome of ``records[i]`` and
    ``tallies[i]`` its numbers (finished, EM and F1 as ``fireact score`` counts them)."""

    directory: Path
    records: list[dict[str, Any]]
    categories: list[str]
    summary: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    tallies: list[Tally] = field(default_factory=list)


def _optional_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = read_json(path)
    if not isinstance(data, dict):
        raise FireactError(f"{path}: expected a JSON object")
    return data


def read_run(run_dir: Path) -> RunData:
    """Read a ``fireact run --out`` folder; a `FireactError` names a missing or empty one."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FireactError(f"{run_dir}: run folder not found (give the --out folder of a run)")
    path = run_dir / EPISODES
    if not path.is_file():
        raise FireactError(f"{run_dir}: no {EPISODES}; is this the --out folder of `fireact run`?")
    records = []
    for lineno, record in iter_jsonl(path):
        if not isinstance(record, dict):
            raise FireactError(f"{path}:{lineno}: expected a JSON object per line")
        records.append(record)
    if not records:
        raise FireactError(f"{path}: no episodes yet (the run has not finished one)")
    episodes = read_run_episodes(path)
    tallies = [scored_tally(ep, r) for ep, r in zip(episodes, records, strict=True)]
    categories = [category(r, t.em) for r, t in zip(records, tallies, strict=True)]
    summary, config = _optional_json(run_dir / SUMMARY), _optional_json(run_dir / CONFIG)
    return RunData(run_dir, records, categories, summary, config, tallies)


def category(record: dict[str, Any], em: bool) -> str:
    """The episode's outcome: errored, unfinished, correct or wrong."""
    if record.get("error") is not None:
        return "errored"
    if not record.get("finished"):
        return "unfinished"
    return "correct" if em else "wrong"


def _num(record: dict[str, Any], key: str) -> float:
    value = record.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def run_summary(run: RunData) -> dict[str, Any]:
    """What the run was and its numbers, in ``summary.json``'s names: task, split, method,
    format, model, the keys of `fireact.runs.run_stats` over the episodes requested, wall_s."""
    recs, opts = run.records, run.summary.get("options") or run.config.get("options") or {}
    requested = run.summary.get("n") or run.config.get("n")
    n = requested if isinstance(requested, int) and requested >= len(recs) else len(recs)
    first = recs[0]
    head = {k: run.summary.get(k, first.get(k)) for k in ("task", "split", "method", "format")}
    head["model"] = run.summary.get("model", first.get("model") or opts.get("model"))
    return head | run_stats(run.tallies, n) | {"wall_s": run.summary.get("wall_s")}


# ------------------------------------------------------------------ steps of an episode


@dataclass
class ShownStep:
    """A step as the page shows it: its text stripped (``""`` where the step has no action or
    observation), the latency of the tool call it made and its ``step_stats`` entry."""

    step: Step
    tool_latency_s: float | None = None
    stats: dict[str, Any] | None = None  # the record's optional step_stats entry

    @property
    def thought(self) -> str:
        return self.step.thought.strip()

    @property
    def action(self) -> str:
        return (self.step.action or "").strip()

    @property
    def observation(self) -> str:
        return (self.step.observation or "").strip()


def parse_steps(trajectory: str) -> list[ShownStep]:
    """The steps of a trajectory text (`fireact.trajectory.parse`), as the page shows them."""
    return [ShownStep(step) for step in parse(trajectory or "")]


def episode_steps(record: dict[str, Any]) -> list[ShownStep]:
    """The record's last try as steps, with tool latencies and per-step stats attached."""
    steps = parse_steps(str(record.get("trajectory") or ""))
    calls = [c for c in record.get("tool_calls") or [] if isinstance(c, dict)]
    i = 0
    for step in steps:  # tool calls are in step order; invalid actions and finish make none
        if i < len(calls) and str(calls[i].get("observation", "")).strip() == step.observation:
            step.tool_latency_s = _num(calls[i], "latency_s")
            i += 1
    stats = record.get("step_stats")
    if isinstance(stats, list) and len(stats) == len(steps):
        for step, stat in zip(steps, stats, strict=True):
            step.stats = stat if isinstance(stat, dict) else None
    return steps


# ------------------------------------------------------------------ formatting


def _text(value: Any) -> str:
    """Any JSON value as display text (strings as they are), escaped."""
    if value is None:
        return "—"
    return escape(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))


def _money(value: Any) -> str:
    return f"${value:.4f}" if isinstance(value, int | float) else "—"


def _secs(value: Any) -> str:
    if not isinstance(value, int | float):
        return "—"
    return f"{value * 1000:.1f} ms" if 0 < value < 0.1 else f"{value:.2f} s"


def _natural_key(pair: tuple[dict[str, Any], str]) -> list[Any]:
    parts = re.split(r"(\d+)", str(pair[0].get("id", "")))
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts]


# ------------------------------------------------------------------ rendering


def _card(label: str, value: str, note: str = "") -> str:
    small = f'<span class="note">{escape(note)}</span>' if note else ""
    return (
        f'<div class="card"><span class="label">{escape(label)}</span><b>{value}</b>{small}</div>'
    )


def summary_html(run: RunData, stats: dict[str, Any]) -> str:
    """The page head: what the run was, and its headline numbers (`run_summary`)."""
    what = " · ".join(
        _text(stats[k]) for k in ("task", "split", "method", "format", "model") if stats[k]
    )
    done = f"{stats['done']} of {stats['n']} episodes"
    if not run.summary:
        done += " (no summary.json: the run has not ended)"
    tokens = stats["prompt_tokens"] + stats["completion_tokens"]
    each = _money(stats["cost_usd"] / stats["done"])
    cards = [
        _card("EM", f"{stats['em']:.3f}", f"{stats['correct']} correct of {stats['n']}"),
        _card("F1", f"{stats['f1']:.3f}"),
        _card("unfinished", str(stats["unfinished"]), f"{stats['errors']} with an error"),
        _card("mean steps", f"{stats['mean_steps']:.2f}"),
        _card("tokens", f"{tokens:,}", f"{tokens / stats['done']:,.0f} per episode"),
        _card("cost", _money(stats["cost_usd"]), f"{each} each"),
        _card("time / episode", _secs(stats["mean_episode_s"])),
        _card("run wall time", _secs(stats["wall_s"])),
    ]
    return (
        f'<header><h1>{escape(run.directory.name)}</h1><p class="what">{what}</p>'
        f'<p class="done">{escape(done)}</p><div class="cards">{"".join(cards)}</div></header>'
    )


def filters_html(run: RunData) -> str:
    """Outcome buttons with counts, the search box and the number shown."""
    counts = {c: run.categories.count(c) for c in CATEGORIES}
    buttons = [("all", "All", len(run.records))] + [(c, c.title(), counts[c]) for c in CATEGORIES]
    html = "".join(
        f'<button type="button" data-cat="{cat}" class="f-{cat}" aria-pressed="{cat == "all"}">'
        f'{label} <span class="n">{n}</span></button>'
        for cat, label, n in buttons
    )
    return (
        f'<nav class="filters">{html}<input id="q" type="search" autocomplete="off" '
        'placeholder="Search question, prediction, trajectory…" aria-label="search">'
        f'<span class="shown"><span id="shown">{len(run.records)}</span> shown</span></nav>'
    )


def step_html(number: int, step: ShownStep) -> str:
    """One step: thought, action, observation, and what it cost."""
    facts = []
    if step.tool_latency_s is not None:
        facts.append(f"tool {_secs(step.tool_latency_s)}")
    if step.stats:
        facts.append(f"model {_secs(step.stats.get('llm_latency_s'))}")
        facts.append(_money(step.stats.get("cost_usd")))
    thought = f'<div class="thought">{escape(step.thought)}</div>' if step.thought else ""
    return (
        f'<li class="step"><span class="no">{number}</span><div class="turn">{thought}'
        f'<div class="action"><span class="k">Action</span> {escape(step.action)}</div>'
        f'<div class="obs"><span class="k">Observation</span> {escape(step.observation)}</div>'
        f'</div><span class="facts">{escape(" · ".join(facts))}</span></li>'
    )


def steps_html(steps: list[ShownStep]) -> str:
    if not steps:
        return '<p class="nosteps">No steps recorded.</p>'
    return (
        '<ol class="steps srch">'
        + "".join(step_html(i, s) for i, s in enumerate(steps, 1))
        + "</ol>"
    )


def attempts_html(record: dict[str, Any]) -> str:
    """Reflexion: the earlier tries and the reflection after each, folded."""
    parts = []
    for i, attempt in enumerate(record.get("attempts") or [], 1):
        if not isinstance(attempt, dict):
            continue
        steps = parse_steps(str(attempt.get("trajectory") or ""))
        reflection = escape(str(attempt.get("reflection") or ""))
        parts.append(
            f'<details class="attempt"><summary>Try {i}: prediction '
            f"{_text(attempt.get('prediction'))}</summary>{steps_html(steps)}"
            f'<p class="reflection srch"><span class="k">Reflection</span> {reflection}</p></details>'
        )
    return "".join(parts)


def totals_html(r: dict[str, Any]) -> str:
    """The episode's model and tool totals."""
    tokens = int(_num(r, "prompt_tokens") + _num(r, "completion_tokens"))
    items = [
        f"{int(_num(r, 'llm_calls'))} model calls ({int(_num(r, 'reasks'))} re-asks)",
        f"{tokens:,} tokens",
        _money(_num(r, "cost_usd")),
        f"model {_secs(_num(r, 'llm_latency_s'))}",
        f"{len(r.get('tool_calls') or [])} tool calls, {_secs(_num(r, 'tool_latency_s'))}",
        f"wall {_secs(_num(r, 'wall_s'))}",
    ]
    if _num(r, "tries") > 1:
        items.append(f"{int(_num(r, 'tries'))} tries")
    return '<p class="totals">' + " · ".join(escape(i) for i in items) + "</p>"


def episode_html(record: dict[str, Any], cat: str, is_open: bool) -> str:
    """One episode: a one-line summary that unfolds to answers, totals and steps."""
    steps = episode_steps(record)
    error = record.get("error")
    error_html = f'<p class="error">Error: {escape(str(error))}</p>' if error is not None else ""
    meta = f"{len(steps)} steps · {_money(_num(record, 'cost_usd'))}"
    return (
        f'<details class="ep {cat}" data-cat="{cat}"{" open" if is_open else ""}><summary>'
        f'<span class="badge">{cat}</span><span class="id">{_text(record.get("id"))}</span>'
        f'<span class="q srch">{_text(record.get("question"))}</span>'
        f'<span class="meta">{escape(meta)}</span></summary><div class="body">'
        f'<dl class="answers"><dt>Gold</dt><dd>{_text(record.get("gold"))}</dd>'
        f'<dt>Prediction</dt><dd class="pred srch">{_text(record.get("prediction"))}</dd></dl>'
        f"{error_html}{totals_html(record)}{steps_html(steps)}{attempts_html(record)}</div></details>"
    )


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def render_html(run: RunData, *, csp: bool = True) -> str:
    """The whole page; ``csp=False`` drops the Content-Security-Policy (tests of escaping)."""
    stats = run_summary(run)
    pairs = sorted(zip(run.records, run.categories, strict=True), key=_natural_key)
    # unfold the first episode that went wrong (the one to look at), else the first one
    first = next((i for i, (_, c) in enumerate(pairs) if c != "correct"), 0)
    episodes = "".join(episode_html(r, c, i == first) for i, (r, c) in enumerate(pairs))
    policy = (
        f"default-src 'none'; style-src {_csp_hash(CSS)}; script-src {_csp_hash(JS)}; "
        "base-uri 'none'; form-action 'none'"
    )
    meta = f'<meta http-equiv="Content-Security-Policy" content="{policy}">' if csp else ""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">{meta}'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>fireact · {escape(run.directory.name)}</title><style>{CSS}</style></head>"
        f"<body>{summary_html(run, stats)}{filters_html(run)}<main>{episodes}"
        '<p id="none" hidden>No episode matches.</p></main>'
        f"<script>{JS}</script></body></html>\n"
    )


def write_view(run_dir: Path, out: Path | None = None) -> Path:
    """Write the run's viewer page (default ``RUN/view.html``) and return its path."""
    path = Path(out) if out is not None else Path(run_dir) / VIEW
    refuse_overlap([path], run_inputs(run_dir), what="--out")
    run = read_run(run_dir)
    if path.is_dir():
        raise FireactError(f"{path}: is a folder; give a file name for the page, e.g. view.html")
    with os_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, render_html(run))
    return path

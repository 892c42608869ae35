"""`fireact view`: one self-contained HTML page to read a run, and the reading of a run folder.

Owns two things:

* reading a run folder (`read_run`: ``episodes.jsonl`` plus the optional ``summary.json`` and
  ``config.json``) and its headline numbers (`run_stats`, shared with `fireact.report.compare`);
  EM / F1 / unfinished come from `fireact.report.score.score_file`, so they always match
  ``fireact score``;
* `write_view(run_dir, out=None)`: ``RUN/view.html`` (or ``out``) — the run's summary, a list of
  episodes filtered by outcome (correct / wrong / unfinished / errored) and by free text over
  question, prediction and trajectory, and each episode's steps (thought, action, observation,
  tool latency; per-step model cost when the record has ``step_stats``) with gold and prediction.

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
from fireact.report.score import read_run_episodes, score_episode, score_file
from fireact.runs import CONFIG, EPISODES, SUMMARY, VIEW, run_inputs

CATEGORIES = ("correct", "wrong", "unfinished", "errored")


# ------------------------------------------------------------------ reading a run folder


@dataclass
class RunData:
    """A run folder as read from disk; ``categories[i]`` is the outcome of ``records[i]``."""

    directory: Path
    records: list[dict[str, Any]]
    categories: list[str]
    summary: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def episodes_path(self) -> Path:
        return self.directory / EPISODES


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
    scores = [score_episode(ep) for ep in read_run_episodes(path)]
    categories = [category(r, bool(s.em)) for r, s in zip(records, scores, strict=True)]
    summary = _optional_json(run_dir / SUMMARY)
    return RunData(run_dir, records, categories, summary, _optional_json(run_dir / CONFIG))


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


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def run_stats(run: RunData) -> dict[str, Any]:
    """Headline numbers of a run; EM, F1 and unfinished over the episodes requested."""
    recs, opts = run.records, run.summary.get("options") or run.config.get("options") or {}
    requested = run.summary.get("n") or run.config.get("n")
    n = requested if isinstance(requested, int) and requested >= len(recs) else len(recs)
    score = score_file(run.episodes_path, denominator=n)
    tokens = sum(_num(r, "prompt_tokens") + _num(r, "completion_tokens") for r in recs)
    cost = sum(_num(r, "cost_usd") for r in recs)
    first = recs[0]
    return {
        "run": run.directory.name,
        "dir": str(run.directory),
        "task": run.summary.get("task", first.get("task")),
        "split": run.summary.get("split", first.get("split")),
        "method": run.summary.get("method", first.get("method")),
        "format": run.summary.get("format", first.get("format")),
        "model": run.summary.get("model", first.get("model") or opts.get("model")),
        "n": n,
        "episodes": len(recs),
        "correct": score.correct,
        "em": score.em,
        "f1": score.f1,
        "finished": score.finished,
        "unfinished": score.unfinished,
        "errors": sum(r.get("error") is not None for r in recs),
        "unfinished_rate": score.unfinished / n,
        "mean_steps": _mean([_num(r, "steps") for r in recs]),
        "tokens": int(tokens),
        "tokens_per_episode": tokens / len(recs),
        "cost_usd": cost,
        "cost_per_episode": cost / len(recs),
        "time_per_episode_s": _mean([_num(r, "wall_s") for r in recs]),
        "wall_s": run.summary.get("wall_s"),
    }


# ------------------------------------------------------------------ steps of an episode


@dataclass
class Step:
    """One step of a trajectory, with the tool call it made (if any)."""

    thought: str
    action: str
    observation: str
    tool_latency_s: float | None = None
    stats: dict[str, Any] | None = None  # the record's optional step_stats entry


def parse_steps(trajectory: str) -> list[Step]:
    """``Thought: ...\\nAction: ...\\nObservation: ...`` blocks → steps (thought may be empty)."""
    steps, turn = [], []
    for line in (trajectory or "").splitlines():
        if not line.startswith("Observation:"):
            turn.append(line)
            continue
        actions = [i for i, text in enumerate(turn) if text.startswith("Action:")]
        cut = actions[-1] if actions else len(turn)
        thought = "\n".join(turn[:cut]).removeprefix("Thought:").strip()
        action = "\n".join(turn[cut:]).removeprefix("Action:").strip()
        steps.append(Step(thought, action, line.removeprefix("Observation:").strip()))
        turn = []
    if any(text.strip() for text in turn):  # a turn cut short (no observation)
        steps.append(Step("\n".join(turn).removeprefix("Thought:").strip(), "", ""))
    return steps


def episode_steps(record: dict[str, Any]) -> list[Step]:
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
    """The page head: what the run was, and its headline numbers."""
    what = " · ".join(
        _text(stats[k]) for k in ("task", "split", "method", "format", "model") if stats[k]
    )
    done = f"{stats['episodes']} of {stats['n']} episodes"
    if not run.summary:
        done += " (no summary.json: the run has not ended)"
    cards = [
        _card("EM", f"{stats['em']:.3f}", f"{stats['correct']} correct of {stats['n']}"),
        _card("F1", f"{stats['f1']:.3f}"),
        _card("unfinished", str(stats["unfinished"]), f"{stats['errors']} with an error"),
        _card("mean steps", f"{stats['mean_steps']:.2f}"),
        _card("tokens", f"{stats['tokens']:,}", f"{stats['tokens_per_episode']:,.0f} per episode"),
        _card("cost", _money(stats["cost_usd"]), f"{_money(stats['cost_per_episode'])} each"),
        _card("time / episode", _secs(stats["time_per_episode_s"])),
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


def step_html(number: int, step: Step) -> str:
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


def steps_html(steps: list[Step]) -> str:
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
    stats = run_stats(run)
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


# ------------------------------------------------------------------ page assets (inline)

CSS = """
:root{--fg:#1f2328;--mute:#656d76;--line:#d0d7de;--bg:#f6f8fa;--ok:#1a7f37;--bad:#cf222e;
--warn:#9a6700;--err:#8250df;--acc:#0969da}
*{box-sizing:border-box}[hidden]{display:none!important}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg)}
header{padding:14px 24px 10px;background:var(--bg);border-bottom:1px solid var(--line)}
h1{font-size:20px;margin:0}.what{margin:2px 0;color:var(--mute)}.done{margin:0 0 8px;color:var(--mute)}
.cards{display:flex;flex-wrap:wrap;gap:8px}
.card{background:#fff;border:1px solid var(--line);border-radius:6px;padding:6px 12px;min-width:112px}
.card .label{display:block;font-size:11px;text-transform:uppercase;color:var(--mute)}
.card b{font-size:18px}.card .note{display:block;font-size:11px;color:var(--mute)}
.filters{position:sticky;top:0;z-index:1;display:flex;flex-wrap:wrap;gap:6px;align-items:center;
padding:8px 24px;background:#fff;border-bottom:1px solid var(--line)}
.filters button{font:inherit;border:1px solid var(--line);background:#fff;border-radius:16px;
padding:3px 12px;cursor:pointer}
.filters button[aria-pressed=true]{background:var(--fg);color:#fff;border-color:var(--fg)}
.filters .n{font-weight:600}
#q{flex:1;min-width:220px;font:inherit;padding:4px 10px;border:1px solid var(--line);border-radius:6px}
.shown{color:var(--mute)}
main{padding:8px 24px 40px}
.ep{border:1px solid var(--line);border-left-width:4px;border-radius:6px;margin:6px 0;background:#fff}
.ep.correct{border-left-color:var(--ok)}.ep.wrong{border-left-color:var(--bad)}
.ep.unfinished{border-left-color:var(--warn)}.ep.errored{border-left-color:var(--err)}
.ep>summary{display:flex;gap:10px;align-items:baseline;padding:6px 10px;cursor:pointer}
.badge{font-size:11px;font-weight:600;text-transform:uppercase;min-width:78px}
.correct .badge{color:var(--ok)}.wrong .badge{color:var(--bad)}
.unfinished .badge{color:var(--warn)}.errored .badge{color:var(--err)}
.id{color:var(--mute);font-family:ui-monospace,monospace;font-size:12px;white-space:nowrap}
.q{flex:1;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.meta{color:var(--mute);white-space:nowrap;font-size:12px}
.body{padding:0 14px 10px;border-top:1px solid var(--line)}
.answers{display:grid;grid-template-columns:90px 1fr;margin:8px 0;gap:2px 8px}
.answers dt{color:var(--mute)}.answers dd{margin:0;font-weight:600;white-space:pre-wrap}
.totals{color:var(--mute);font-size:12px;margin:4px 0}
.error{color:var(--err);font-family:ui-monospace,monospace;white-space:pre-wrap}
.steps{list-style:none;padding:0;margin:6px 0}
.step{display:grid;grid-template-columns:28px 1fr 150px;gap:8px;padding:6px 0;
border-top:1px dashed var(--line)}
.no{color:var(--mute);font-weight:600;text-align:right}
.thought{font-style:italic;white-space:pre-wrap}
.action{font-family:ui-monospace,monospace;color:var(--acc);white-space:pre-wrap;word-break:break-word}
.obs{background:var(--bg);border-radius:4px;padding:3px 8px;margin-top:3px;white-space:pre-wrap;
word-break:break-word}
.k{font-size:11px;text-transform:uppercase;color:var(--mute);font-style:normal;font-family:system-ui}
.facts{color:var(--mute);font-size:12px;text-align:right}
.attempt{margin:6px 0;padding:4px 8px;background:var(--bg);border-radius:6px}
.reflection{white-space:pre-wrap}#none{color:var(--mute)}
"""

JS = """
"use strict";
(function () {
  var CATS = ["all", "correct", "wrong", "unfinished", "errored"];
  var eps = Array.prototype.slice.call(document.querySelectorAll("details.ep"));
  var hay = eps.map(function (e) {
    var parts = Array.prototype.map.call(e.querySelectorAll(".srch"), function (x) {
      return x.textContent;
    });
    return parts.join("\\n").toLowerCase();
  });
  var buttons = Array.prototype.slice.call(document.querySelectorAll("button[data-cat]"));
  var box = document.getElementById("q");
  var state = { cat: "all", q: "" };
  function apply() {
    var words = state.q.toLowerCase().split(/\\s+/).filter(Boolean);
    var counts = { all: 0 }, shown = 0;
    eps.forEach(function (e, i) {
      var cat = e.getAttribute("data-cat");
      var hit = words.every(function (w) { return hay[i].indexOf(w) >= 0; });
      if (hit) { counts[cat] = (counts[cat] || 0) + 1; counts.all += 1; }
      e.hidden = !(hit && (state.cat === "all" || state.cat === cat));
      if (!e.hidden) { shown += 1; }
    });
    buttons.forEach(function (b) {
      var cat = b.getAttribute("data-cat");
      b.querySelector(".n").textContent = String(counts[cat] || 0);
      b.setAttribute("aria-pressed", String(cat === state.cat));
    });
    document.getElementById("shown").textContent = String(shown);
    document.getElementById("none").hidden = shown > 0;
  }
  function save() {
    var hash = "#" + new URLSearchParams(state).toString();
    try { history.replaceState(null, "", hash); } catch (err) { /* file: URLs may refuse */ }
  }
  buttons.forEach(function (b) {
    b.addEventListener("click", function () {
      state.cat = b.getAttribute("data-cat"); apply(); save();
    });
  });
  box.addEventListener("input", function () { state.q = box.value; apply(); save(); });
  var params = new URLSearchParams(location.hash.slice(1));
  if (CATS.indexOf(params.get("cat")) >= 0) { state.cat = params.get("cat"); }
  state.q = box.value = params.get("q") || "";
  apply();
  document.body.setAttribute("data-ready", "1");
})();
"""

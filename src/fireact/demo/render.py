"""The Ask tab's HTML: the episode's steps as they come, its status line and its answer.

Owns `steps_html`, `status_html` and `answer_text` over a `fireact.demo.session.Live`, and the
tab's stylesheet `CSS`. A step is drawn by the viewer's own `fireact.report.view.step_html`
(thought, action, observation, every piece through `html.escape`), followed by what the step
cost: model calls, prompt + completion tokens, model and tool time, dollars. Model text is
always escaped text, never markup: a ``<script>`` in an answer shows as those characters.
"""

from __future__ import annotations

from html import escape

from fireact.agent.episode import Step
from fireact.demo.session import Live
from fireact.report.view import ShownStep, step_html
from fireact.trajectory import Step as TextStep

CSS = """
#fireact-live .steps{list-style:none;padding:0;margin:4px 0}
#fireact-live .step{display:grid;grid-template-columns:28px 1fr;gap:8px;padding:4px 0}
#fireact-live .no{font-weight:600;text-align:right;opacity:.7}
#fireact-live .thought{font-style:italic;white-space:pre-wrap}
#fireact-live .action{font-family:ui-monospace,monospace;white-space:pre-wrap;word-break:break-word}
#fireact-live .obs{border-radius:4px;padding:3px 8px;margin-top:3px;white-space:pre-wrap;
 word-break:break-word;background:rgba(127,127,127,.12)}
#fireact-live .k{font-size:11px;text-transform:uppercase;opacity:.7;font-style:normal}
#fireact-live .facts:empty{display:none}
#fireact-live .stepinfo{margin:0 0 8px 36px;font-size:12px;opacity:.75}
#fireact-live .pending .obs{opacity:.6}
#fireact-status .status{margin:0}#fireact-status .error{color:#cf222e}
"""


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _secs(value: float) -> str:
    if value >= 1:
        return f"{value:.2f} s"
    return f"{value * 1000:.1f} ms" if value < 0.01 else f"{value * 1000:.0f} ms"


def step_facts(step: Step) -> str:
    """What one step cost, in one line."""
    calls = _n(step.llm_calls, "model call")
    tokens = f"{step.prompt_tokens} + {step.completion_tokens} tokens"
    times = f"model {_secs(step.llm_latency_s)}"
    if step.tool_latency_s:
        times += f" · tool {_secs(step.tool_latency_s)}"
    return f"{calls} · {tokens} · {times} · ${step.cost_usd:.4f}"


def _one(number: int, thought: str, action: str, observation: str, info: str, cls: str) -> str:
    shown = ShownStep(TextStep(thought, action, observation))
    return (
        f'<div class="demo-step {cls}" data-n="{number}"><ol class="steps">'
        f'{step_html(number, shown)}</ol><p class="stepinfo">{escape(info)}</p></div>'
    )


def steps_html(live: Live) -> str:
    """Every recorded step, then the one whose tool is working (if any)."""
    steps = live.steps
    parts = [
        _one(i, s.thought, s.action, s.observation, step_facts(s), "done")
        for i, s in enumerate(steps, 1)
    ]
    if live.pending is not None:
        thought, action = live.pending
        parts.append(_one(len(steps) + 1, thought, action, "…", "waiting for the tool…", "pending"))
    return f'<div id="fireact-steps" data-state="{escape(live.state)}">{"".join(parts)}</div>'


def status_line(live: Live) -> str:
    """The episode's state in one line of text."""
    if live.state == "error":
        return f"Error: {live.message}"
    ep = live.ep
    n = len(live.steps)
    if live.state in ("starting", "running"):
        return f"Running… {_n(n, 'step')} so far"
    if live.state == "stopped":
        return f"Stopped after {_n(n, 'step')}."
    assert ep is not None
    wall = (live.ended_at or live.started_at) - live.started_at
    tokens = ep.prompt_tokens + ep.completion_tokens
    end = "Finished" if ep.finished else f"Step limit reached ({n} steps), no answer"
    graded = " · no gold answer: Keep grades it" if ep.gold is None else ""
    return (
        f"{end}: {_n(n, 'step')} in {_secs(wall)} · {_n(ep.llm_calls, 'model call')} · "
        f"{tokens} tokens · ${ep.cost_usd:.4f}{graded}"
    )


def status_html(live: Live) -> str:
    """The status line as the page shows it (escaped; the state is its class)."""
    return f'<p class="status {escape(live.state)}">{escape(status_line(live))}</p>'


def message_html(text: str, ok: bool = True) -> str:
    """A one-line message (keep / flag / runs results) as escaped text."""
    return f'<p class="status {"ok" if ok else "error"}">{escape(" ".join(text.split()))}</p>'


def answer_text(live: Live) -> str:
    """The final answer (plain text for a text box), or "" while there is none."""
    if live.state != "finished" or live.ep is None or live.ep.prediction is None:
        return ""
    return live.ep.prediction

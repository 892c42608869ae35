"""`fireact report`: runs side by side — one table (JSON + Markdown) and three PNG plots.

Owns `compare_runs(run_dirs, out_dir)`. Each run folder is read with
`fireact.report.view.read_run` and summarised with `fireact.report.view.run_summary`
(`fireact.runs.run_stats`, with EM, F1 and unfinished scored as ``fireact score`` does, over the
episodes the run requested), so the numbers match ``fireact score`` and ``fireact view``.
Written to ``out_dir``:

* ``compare.json`` — ``{"runs": [row, ...], "files": {...}}``, one row per run in the order
  given; a row keeps the report's own column names (`report_row` maps ``summary.json``'s names
  to them: ``episodes`` is ``done``, ``time_per_episode_s`` is ``mean_episode_s``, ...);
* ``compare.md`` — the same table in Markdown;
* ``em.png`` (EM by run, bars), ``steps.png`` (histogram of steps per episode, one panel per
  run) and ``cost_em.png`` (cost per episode against EM, one point per run).

Plots use matplotlib's Agg canvas directly (no pyplot state, no display). A missing or empty
run folder raises `FireactError` naming it, before anything is written.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from fireact.errors import FireactError
from fireact.outputs import atomic_write_text, os_errors, refuse_overlap
from fireact.report.view import RunData, read_run, run_summary

JSON_FILE, MD_FILE = "compare.json", "compare.md"
EM_PNG, STEPS_PNG, COST_PNG = "em.png", "steps.png", "cost_em.png"
COLUMNS = (  # (row key, Markdown header, format)
    ("run", "run", "{}"),
    ("model", "model", "{}"),
    ("method", "method", "{}"),
    ("n", "n", "{}"),
    ("em", "EM", "{:.3f}"),
    ("f1", "F1", "{:.3f}"),
    ("mean_steps", "mean steps", "{:.2f}"),
    ("tokens_per_episode", "tokens / ep", "{:,.0f}"),
    ("cost_per_episode", "cost / ep (USD)", "{:.5f}"),
    ("time_per_episode_s", "time / ep (s)", "{:.2f}"),
    ("unfinished_rate", "unfinished", "{:.1%}"),
)


def unique_labels(dirs: list[Path]) -> list[str]:
    """Short names for the runs: the folder name, with its parent or a number when repeated."""
    names = [d.name or str(d) for d in dirs]
    labels = [
        n if names.count(n) == 1 else f"{d.parent.name}/{n}"
        for n, d in zip(names, dirs, strict=True)
    ]
    seen: Counter[str] = Counter()
    out = []
    for label in labels:
        seen[label] += 1
        out.append(label if seen[label] == 1 else f"{label} #{seen[label]}")
    return out


def report_row(label: str, run: RunData) -> dict[str, Any]:
    """One row of ``compare.json``: `run_summary` (``summary.json``'s names) in the report's
    column names, with the per-episode means the table shows."""
    stats = run_summary(run)
    done, tokens = stats["done"], stats["prompt_tokens"] + stats["completion_tokens"]
    return {
        "run": label,
        "dir": str(run.directory),
        **{key: stats[key] for key in ("task", "split", "method", "format", "model", "n")},
        "episodes": done,
        **{key: stats[key] for key in ("correct", "em", "f1", "finished", "unfinished", "errors")},
        "unfinished_rate": stats["unfinished"] / stats["n"],
        "mean_steps": stats["mean_steps"],
        "tokens": tokens,
        "tokens_per_episode": tokens / done,
        "cost_usd": stats["cost_usd"],
        "cost_per_episode": stats["cost_usd"] / done,
        "time_per_episode_s": stats["mean_episode_s"],
        "wall_s": stats["wall_s"],
    }


def _cell(value: Any, fmt: str) -> str:
    text = "—" if value is None else fmt.format(value)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The comparison as a Markdown table."""
    head = "| " + " | ".join(h for _, h, _ in COLUMNS) + " |"
    rule = "|" + "|".join("---" if k in ("run", "model", "method") else "---:" for k, *_ in COLUMNS)
    lines = [head, rule + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(k), f) for k, _, f in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def compare_runs(run_dirs: list[Path], out_dir: Path, *, plots: bool = True) -> dict[str, Any]:
    """Compare runs: write the table (JSON, Markdown) and plots into `out_dir`; return the JSON."""
    if not run_dirs:
        raise FireactError("report: give at least one run folder")
    dirs = [Path(d) for d in run_dirs]
    runs = [read_run(d) for d in dirs]  # every folder checked before anything is written
    rows = [report_row(label, run) for run, label in zip(runs, unique_labels(dirs), strict=True)]
    if plots:
        _figure(1, 1)  # no matplotlib: say so before writing anything
    out_dir = Path(out_dir)
    refuse_overlap([out_dir], [Path(d) for d in run_dirs], what="--out")
    if out_dir.exists() and not out_dir.is_dir():
        raise FireactError(f"{out_dir}: is a file; give a folder for the report")
    with os_errors(out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
    files = {"json": str(out_dir / JSON_FILE), "markdown": str(out_dir / MD_FILE)}
    if plots:
        files |= write_plots(runs, rows, out_dir)
    result = {"runs": rows, "files": files}
    atomic_write_text(out_dir / MD_FILE, markdown_table(rows))
    atomic_write_text(out_dir / JSON_FILE, json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return result


# ------------------------------------------------------------------ plots


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise FireactError("report plots need matplotlib: pip install matplotlib") from None
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def write_plots(runs: list[RunData], rows: list[dict[str, Any]], out_dir: Path) -> dict[str, str]:
    """The three PNGs; returns their paths by name."""
    paths = {"em_png": out_dir / EM_PNG, "steps_png": out_dir / STEPS_PNG}
    paths["cost_em_png"] = out_dir / COST_PNG
    plot_em(rows, paths["em_png"])
    plot_steps(runs, rows, paths["steps_png"])
    plot_cost_em(rows, paths["cost_em_png"])
    return {k: str(v) for k, v in paths.items()}


def plot_em(rows: list[dict[str, Any]], path: Path) -> None:
    """EM by run, each bar labelled with EM and correct / n."""
    fig = _figure(max(4.0, 1.1 * len(rows) + 2), 3.6)
    ax = fig.add_subplot()
    labels = [r["run"] for r in rows]
    bars = ax.bar(labels, [r["em"] for r in rows], color="#4c72b0")
    notes = [f"{r['em']:.3f}\n{r['correct']}/{r['n']}" for r in rows]
    ax.bar_label(bars, labels=notes, padding=2, fontsize=9)
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("EM")
    ax.set_title("Exact match by run")
    ax.tick_params(axis="x", labelrotation=20 if len(rows) > 3 else 0)
    ax.grid(axis="y", alpha=0.3)
    fig.savefig(path)


def plot_steps(runs: list[RunData], rows: list[dict[str, Any]], path: Path) -> None:
    """Histogram of steps per episode, one panel per run on a shared axis."""
    from matplotlib.ticker import MaxNLocator

    counts = [Counter(int(r.get("steps") or 0) for r in run.records) for run in runs]
    low, top = min(min(c) for c in counts), max(max(c) for c in counts)
    xs = list(range(low, top + 1))
    fig = _figure(6.4, 1.2 + 1.5 * len(runs))
    axes = fig.subplots(len(runs), 1, sharex=True, squeeze=False)[:, 0]
    for ax, count, row in zip(axes, counts, rows, strict=True):
        ax.bar(xs, [count.get(x, 0) for x in xs], color="#55a868", width=0.8)
        ax.set_ylabel("episodes")
        ax.set_title(f"{row['run']}  (mean {row['mean_steps']:.2f})", fontsize=10, loc="left")
        ax.grid(axis="y", alpha=0.3)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes[-1].set_xlabel("steps per episode")
    axes[-1].set_xticks(xs)
    fig.savefig(path)


def plot_cost_em(rows: list[dict[str, Any]], path: Path) -> None:
    """Cost per episode (x) against EM (y), one labelled point per run."""
    fig = _figure(6.0, 4.2)
    ax = fig.add_subplot()
    for row in rows:
        ax.scatter(row["cost_per_episode"], row["em"], s=60, zorder=3)
        ax.annotate(
            row["run"],
            (row["cost_per_episode"], row["em"]),
            textcoords="offset points",
            xytext=(6, 4),
            fontsize=9,
        )
    ax.set_xlabel("cost per episode (USD)")
    ax.set_ylabel("EM")
    ax.set_ylim(0, 1.05)
    ax.set_xlim(0, max(r["cost_per_episode"] for r in rows) * 1.3 or 1.0)
    ax.set_title("Cost per episode vs exact match")
    ax.grid(alpha=0.3)
    fig.savefig(path)

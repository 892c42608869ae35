"""The loop's summary: one row per round, as ``summary.json``, a Markdown table and a plot.

Owns `round_row` (what the table shows of a round: kept self-generated examples, training
examples, training steps and loss, EM and F1 on the held-out questions), `table` (Markdown,
also what the terminal prints), `write_summary` (``summary.json``, ``summary.md``,
``em_per_round.png``, each written atomically) and `em_table` (the rows' round → EM, what a
resumed loop must reproduce exactly).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from fireact.outputs import atomic_write_bytes, atomic_write_text

SUMMARY_JSON = "summary.json"
SUMMARY_MD = "summary.md"
PLOT = "em_per_round.png"
COLUMNS = ("round", "kept", "train examples", "steps", "train loss", "EM", "F1")


def round_row(k: int, stages: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A round's line: from its stages' saved results."""
    data = stages.get("keep") or stages.get("teacher") or {}
    trained = stages.get("train") or {}
    evaluated = stages["eval"]
    return {
        "round": k,
        "kept": data.get("kept"),
        "train_examples": trained.get("examples"),
        "steps": trained.get("steps"),
        "train_loss": trained.get("final_loss"),
        "em": evaluated["em"],
        "f1": evaluated["f1"],
        "model": evaluated["model"],
    }


def _cell(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(rows: list[dict[str, Any]]) -> str:
    """The rounds as a Markdown table (EM and F1 in %, loss to 4 digits)."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        cells = [
            _cell(row["round"]),
            _cell(row["kept"]),
            _cell(row["train_examples"]),
            _cell(row["steps"]),
            _cell(row["train_loss"]),
            f"{100 * row['em']:.1f}",
            f"{100 * row['f1']:.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def em_table(rows: list[dict[str, Any]]) -> list[tuple[int, float]]:
    """(round, EM) of each row."""
    return [(row["round"], row["em"]) for row in rows]


def plot_png(rows: list[dict[str, Any]], title: str) -> bytes:
    """EM (and F1) on the held-out questions per round, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    rounds = [row["round"] for row in rows]
    ax.plot(rounds, [100 * row["em"] for row in rows], marker="o", label="EM")
    ax.plot(rounds, [100 * row["f1"] for row in rows], marker="s", linestyle="--", label="F1")
    ax.set_xticks(rounds)
    ax.set_xlabel("round")
    ax.set_ylabel("held-out score (%)")
    ax.set_ylim(-2, 102)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def write_summary(out: Path, rows: list[dict[str, Any]], header: dict[str, Any]) -> None:
    """``summary.json`` (header + rows), ``summary.md`` (the table) and the plot."""
    atomic_write_text(out / SUMMARY_JSON, json.dumps({**header, "rounds": rows}, indent=2) + "\n")
    title = f"{header['task']}: EM per round"
    atomic_write_text(out / SUMMARY_MD, f"# {title}\n\n" + table(rows))
    atomic_write_bytes(out / PLOT, plot_png(rows, title))

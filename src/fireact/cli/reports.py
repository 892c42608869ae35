"""Commands that read finished runs: `score`, `view` and `report`.

Owns their arguments and printing; the numbers come from `fireact.report` (`score_file`,
`write_view`, `compare_runs`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fireact.cli.app import out


def score(
    files: Annotated[
        list[Path],
        typer.Argument(help="Run folders, run JSONL or FireAct trajectory JSON (.gz too)."),
    ],
    task: Annotated[
        str | None, typer.Option(help="Task whose scoring rule to use (default: from the file).")
    ] = None,
    denominator: Annotated[
        int | None,
        typer.Option(help="Episodes requested (default: the run's n, or FireAct's range)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of lines.")] = False,
) -> None:
    """Score runs: EM = correct / episodes requested (missing ones count wrong), F1."""
    from fireact.report.score import score_file

    results = [score_file(f, task=task, denominator=denominator) for f in files]
    if as_json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
        return
    for r in results:
        print(f"{r.file}  [{r.task}, {r.format}; out of {r.denominator}: {r.denominator_from}]")
        print(f"  {r.count_line()}")


def view(
    run_dir: Annotated[Path, typer.Argument(help="A run folder (with episodes.jsonl).")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="HTML file (default: RUN/view.html).")
    ] = None,
) -> None:
    """Write one self-contained HTML page to browse a run's episodes."""
    from fireact.report.view import write_view

    print(write_view(run_dir, out_file))


def report(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run folders to compare.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the table and plots.")],
) -> None:
    """Compare runs side by side: a table (JSON + Markdown) and PNG plots."""
    from fireact.report.compare import compare_runs

    result = compare_runs(run_dirs, out_dir)
    table = Table("run", "n", "EM", "F1", "steps", "unfinished", "tokens/ep", "$/ep", "s/ep")
    for row in result["runs"]:
        table.add_row(
            str(row["run"]),
            str(row["n"]),
            f"{100 * row['em']:.1f}",
            f"{100 * row['f1']:.1f}",
            f"{row['mean_steps']:.2f}",
            f"{100 * row['unfinished_rate']:.1f}%",
            f"{row['tokens_per_episode']:.0f}",
            f"{row['cost_per_episode']:.5f}",
            f"{row['time_per_episode_s']:.2f}",
        )
    out.print(table)
    out.print(f"written: {', '.join(str(p) for p in result['files'].values())}")

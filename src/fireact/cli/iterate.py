"""`fireact iterate RECIPE.yaml`: expert iteration in one command (`fireact.iterate`).

Owns the command's arguments and printing: the summary table on stdout, each stage's progress on
stderr; the work is `fireact.iterate.iterate`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def iterate(
    recipe: Annotated[
        str,
        typer.Argument(help="A recipe YAML, or a name in configs/iterate/ (tiny-hotpotqa.yaml)."),
    ],
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Loop folder (default: runs/iterate/RECIPE-NAME); rerun to resume."
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Start the loop in --out again from round 0.")
    ] = False,
) -> None:
    """Rounds of sample (k tries) -> keep successes -> data report -> train -> evaluate; resumes."""
    from fireact.iterate import iterate as run_loop
    from fireact.iterate import table

    out = out_dir or Path("runs") / "iterate" / Path(recipe).stem
    summary = run_loop(recipe, out, overwrite=overwrite)
    print(table(summary["rounds"]), end="")
    print(f"summary: {out}/summary.json, table: {out}/summary.md, plot: {out}/em_per_round.png")

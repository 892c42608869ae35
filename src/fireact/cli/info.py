"""Commands that look things up: `tasks`, `models`, `search`, and the `index` group.

Owns the listing of tasks and FireAct's published models, one search against a local index as
an agent sees it, and `index_app` (``fireact index build``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fireact.cli.app import out

index_app = typer.Typer(help="Build and inspect local BM25 search indexes.", no_args_is_help=True)


def tasks() -> None:
    """List the tasks, their splits and sizes."""
    from fireact.tasks import SPLITS, load_task
    from fireact.tasks.loaders import mmlu_subjects

    table = Table("task", "split", "examples")
    for name, splits in SPLITS.items():
        for split in splits:
            table.add_row(name, split, str(len(load_task(name, split).examples)))
    out.print(table)
    out.print(f"mmlu subjects: {', '.join(mmlu_subjects('test'))}")


def models() -> None:
    """List FireAct's published models; run one with --model hf:fireact/NAME."""
    from fireact.llm.zoo import zoo_lines

    for line in zoo_lines():
        print(line)


def search(
    query: Annotated[str, typer.Argument(help="What to search for.")],
    style: Annotated[str, typer.Option(help="wiki (search[entity]) or google.")] = "wiki",
    index: Annotated[
        Path | None, typer.Option(help="Index folder (default: the shipped HotpotQA one).")
    ] = None,
) -> None:
    """Run one search against the local index, as an agent would see it."""
    import asyncio

    from fireact.tools.base import ToolState
    from fireact.tools.local import LocalSearch

    tool = LocalSearch(index, style=style)
    print(asyncio.run(tool("search", query, ToolState())))


@index_app.command("build")
def index_build(
    sources: Annotated[
        list[Path], typer.Argument(help="HotpotQA distractor/fullwiki JSON or {title,text} JSONL.")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the index to.")],
    overwrite: Annotated[bool, typer.Option(help="Replace an existing index in --out.")] = False,
) -> None:
    """Build an on-disk BM25 index (tantivy) for the local search tool."""
    from fireact.tools.local_index import build_index

    stats = build_index(sources, out_dir, overwrite=overwrite, progress=True)
    out.print(json.dumps(stats, indent=2, default=str))

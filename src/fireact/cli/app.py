"""The `fireact` typer application, its console and exit codes, shared by the command modules.

Owns `app` (the root command, with ``--debug``), `out` (the rich console tables print to) and the
exit codes `fireact.cli.main` returns. Command modules register on `app` (through the table in
`fireact.cli`) or on their own sub-application (`index`, `openai-ft`).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    name="fireact",
    help="Fine-tune language agents: generate ReAct trajectories, convert, fine-tune, run, score.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
EXIT_USER_ERROR = 2  # a user-fixable problem (FireactError) or a usage error
EXIT_EPISODES_FAILED = 3  # run/generate finished, but some episodes ended in errors
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT)
EXIT_TERMINATED = 143  # SIGTERM


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
) -> None:
    """fireact: the FireAct loop as one toolkit."""

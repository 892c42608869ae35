"""`fireact demo`: the command that starts the Gradio web app (`fireact.demo.app.serve`).

Owns its flags; the app needs the optional extra ``fireact[demo]`` (gradio), and says so in one
line when it is missing.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from fireact.errors import FireactError

DEFAULT_MODEL = "openai:gpt-4"  # FireAct's teacher; needs OPENAI_API_KEY when asked


def demo(
    model: Annotated[
        str,
        typer.Option(
            help="The model the page starts with: openai:MODEL | vllm:PATH | hf:PATH | "
            "scripted:FILE (the page can name others)."
        ),
    ] = DEFAULT_MODEL,
    task: Annotated[str, typer.Option(help="Task whose prompt and scoring rule to use.")] = (
        "hotpotqa"
    ),
    tool: Annotated[
        str | None,
        typer.Option(
            help="Tool the page starts with (default: local, or sql,calculate for tables)."
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option(help="Run folder that kept and flagged episodes go to.")
    ] = Path("runs/demo"),
    runs: Annotated[
        Path | None, typer.Option(help="Folder whose runs the Runs tab lists (default: OUT/..).")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to bind (keep 127.0.0.1 unless needed).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 7860,
    share: Annotated[
        bool, typer.Option("--share", help="Also make a public gradio.live link (off by default).")
    ] = False,
) -> None:
    """A web page to ask the agent questions, watch its steps, and keep or flag its answers.

    Login: set FIREACT_DEMO_AUTH=user:password in the environment.
    """
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise FireactError(
            "fireact demo needs gradio: install the extra, pip install 'fireact[demo]'"
        ) from None
    import signal

    from fireact.cli.app import EXIT_INTERRUPTED, EXIT_TERMINATED
    from fireact.demo.app import serve

    stopped_by = serve(
        model=model, task=task, tool=tool, out=out, runs=runs, host=host, port=port, share=share
    )
    if stopped_by is not None:  # exit codes as the other commands': 130 Ctrl-C, 143 SIGTERM
        term = stopped_by == signal.SIGTERM
        print(f"{'terminated' if term else 'interrupted'}: the demo stopped; kept episodes are "
              f"in {out}", file=sys.stderr)  # fmt: skip
        sys.exit(EXIT_TERMINATED if term else EXIT_INTERRUPTED)  # past main's resume hint

"""The `fireact` command line: parse arguments and call one library function per command.

Owns `main` (the console script ``fireact = fireact.cli:main`` and ``python -m fireact``): user
errors (`FireactError`) print one line on stderr and exit with code 2; `--debug` shows the
traceback as well; Ctrl-C exits with 130, SIGTERM with 143. The commands live one group a
module: `fireact.cli.info` (tasks, models, search, index), `fireact.cli.reports` (score, view,
report), `fireact.cli.agent` (run, generate: flags generated from `RunOptions`),
`fireact.cli.data` (convert, train, quickstart, data report), `fireact.cli.openai_ft` (openai-ft); `COMMANDS`
registers them on `fireact.cli.app.app` in the order ``fireact --help`` lists them.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from types import FrameType
from typing import Any

import typer

from fireact.cli import agent, data, demo, info, iterate, reports, rl
from fireact.cli.app import (
    EXIT_EPISODES_FAILED,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    EXIT_USER_ERROR,
    app,
)
from fireact.cli.openai_ft import ft_app
from fireact.errors import FireactError

EXTRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}  # train's --key value
COMMANDS: tuple[tuple[str, Callable[..., Any], dict[str, Any] | None], ...] = (
    ("tasks", info.tasks, None),
    ("models", info.models, None),
    ("score", reports.score, None),
    ("search", info.search, None),
    ("run", agent.agent_command(generate=False), None),
    ("generate", agent.agent_command(generate=True), None),
    ("convert", data.convert, None),
    ("view", reports.view, None),
    ("report", reports.report, None),
    ("train", data.train, EXTRA_ARGS),
    ("quickstart", data.quickstart, None),
    ("demo", demo.demo, None),
    ("iterate", iterate.iterate, None),
    ("rl", rl.rl, None),
)
for _name, _command, _settings in COMMANDS:
    app.command(_name, context_settings=_settings)(_command)
app.add_typer(info.index_app, name="index")
app.add_typer(ft_app, name="openai-ft")
app.add_typer(data.data_app, name="data")

__all__ = ["EXIT_EPISODES_FAILED", "EXIT_USER_ERROR", "app", "main"]


_terminated = False  # set when SIGTERM arrived


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """SIGTERM stops the command exactly as Ctrl-C does (asyncio cancels the run cleanly, the
    trainer stops between steps); only the exit code and the message differ.

    It does what the SIGINT handler in force would do, without raising SIGINT: in a background
    job of a non-interactive shell SIGINT is ignored, so a raised SIGINT would do nothing, and
    `asyncio.run` installed no handler of its own. SIGINT itself stays as the shell set it."""
    import signal

    global _terminated
    _terminated = True
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):  # Python's (KeyboardInterrupt) or asyncio.run's (cancel the run)
        handler(signal.SIGINT, frame)
        return
    _interrupt_asyncio_run(frame)


def _interrupt_asyncio_run(frame: FrameType | None) -> None:
    """What `asyncio.run`'s SIGINT handler does, for a run that installed none because SIGINT
    was ignored: the first signal cancels the run's main task (the run ends with
    KeyboardInterrupt once the task has finished cancelling), a later one raises
    KeyboardInterrupt. Outside a running `asyncio.run`, KeyboardInterrupt at once."""
    import asyncio.runners
    import signal

    while frame is not None:  # the innermost asyncio.Runner.run on the main thread's stack
        if frame.f_code is asyncio.runners.Runner.run.__code__:
            runner, task = frame.f_locals.get("self"), frame.f_locals.get("task")
            loop = getattr(runner, "_loop", None)
            if isinstance(task, asyncio.Task) and loop is not None and loop.is_running():
                runner._on_sigint(signal.SIGINT, frame, main_task=task)  # asyncio.run's own handler
                return
            break
        frame = frame.f_back
    raise KeyboardInterrupt


INTERRUPTED = "finished work is saved; rerun with --resume to continue"


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: every error is one line on stderr.

    Exit codes: 0 done; 2 a user error (`FireactError`, a file that cannot be read or written)
    or a usage error (unknown command, missing or bad option); 3 `run`/`generate` finished but
    some episodes ended in errors (rerun with --resume); 130 Ctrl-C; 143 SIGTERM (both save what
    is finished and say how to continue). ``--debug`` adds the traceback of a user error.
    """
    import signal

    from typer._click.exceptions import ClickException, NoArgsIsHelpError

    args = sys.argv[1:] if argv is None else argv
    if threading_main():
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code = app(args=args, prog_name="fireact", standalone_mode=False)
    except FireactError as err:
        if "--debug" in args:
            traceback.print_exc()
        print(f"error: {err}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except OSError as err:  # a path the user gave that cannot be read or written
        if "--debug" in args:
            traceback.print_exc()
        where = f"{err.filename}: " if err.filename else ""
        print(f"error: {where}{err.strerror or err}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except NoArgsIsHelpError as err:
        print(err.ctx.get_help() if err.ctx else err.format_message(), file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except ClickException as err:
        hint = f" (see: {err.ctx.command_path} --help)" if getattr(err, "ctx", None) else ""
        print(f"error: {err.format_message()}{hint}", file=sys.stderr)
        sys.exit(err.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        code = EXIT_INTERRUPTED
    if code == EXIT_INTERRUPTED:  # typer turns Ctrl-C into exit code 130
        if _terminated:
            print(f"terminated: {INTERRUPTED}", file=sys.stderr)
            sys.exit(EXIT_TERMINATED)
        print(f"interrupted: {INTERRUPTED}", file=sys.stderr)
    sys.exit(code if isinstance(code, int) else 0)


def threading_main() -> bool:
    """True in the main thread (the only one that may install signal handlers)."""
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    main()

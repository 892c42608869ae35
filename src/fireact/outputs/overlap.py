"""No output over an input (`refuse_overlap`): an output may not be one of the command's inputs,
lie inside an input folder, or, when it is to be replaced, contain an input."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from fireact.errors import FireactError


def resolved(path: Path | str) -> Path:
    """`path` absolute, with ``~`` and links resolved."""
    return Path(path).expanduser().resolve()


def _same(a: Path, b: Path) -> bool:
    if a == b:
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)  # hard links
    except OSError:
        return False


def refuse_overlap(
    outputs: Iterable[Path | str],
    inputs: Iterable[Path | str],
    *,
    what: str,
    replacing: bool = False,
) -> None:
    """Raise `FireactError` when writing `outputs` could destroy one of `inputs`.

    Refused (paths resolved, symbolic and hard links followed): an output that is an input, an
    output inside an input folder, and, when `replacing` (the output folders are emptied or
    replaced, e.g. ``--overwrite``), an input inside an output. `what` names the option that
    chose the output (``"--out"``, ``"output_dir"``); the message names it and both paths.
    """
    ins = [resolved(p) for p in inputs]
    for output in map(resolved, outputs):
        for source in ins:
            if _same(output, source):
                raise FireactError(
                    f"{what} {output} is also an input; writing it would destroy the input: "
                    f"choose another {what}"
                )
            if output.is_relative_to(source):
                raise FireactError(
                    f"{what} {output} lies inside the input {source}; choose a {what} outside it"
                )
            if replacing and source.is_relative_to(output):
                raise FireactError(
                    f"the input {source} lies inside {what} {output}, which would be replaced; "
                    f"move the input out or choose another {what}"
                )

"""Where fireact's files live: the user's cache root and the data shipped in the package.

Owns `fireact_home()` (``$FIREACT_HOME``, else ``~/.cache/fireact``: default indexes, the tool
and LLM caches, benchmark data), `resource()` (a file under ``fireact/resources/``) and
`packaged()` (what a user-given name like ``fireact:finetune/...`` points to). Imports nothing
heavy, so any module may ask for a path without loading tantivy or torch.
"""

from __future__ import annotations

import os
from pathlib import Path

RESOURCES = Path(__file__).resolve().parent / "resources"
PACKAGED_PREFIX = "fireact:"  # a file name starting with it names a file shipped in the package


def fireact_home() -> Path:
    """fireact's cache root: ``$FIREACT_HOME``, else ``~/.cache/fireact``."""
    return Path(os.environ.get("FIREACT_HOME") or "~/.cache/fireact").expanduser()


def resource(*parts: str) -> Path:
    """Path of a shipped data file, e.g. ``resource("hotpotqa", "dev.json")``."""
    return RESOURCES.joinpath(*parts)


def packaged(name: str) -> Path | None:
    """The shipped file ``fireact:DIR/FILE`` names (``fireact:finetune/...``), else None."""
    if name.startswith(PACKAGED_PREFIX):
        return resource(*name.removeprefix(PACKAGED_PREFIX).split("/"))
    return None

"""Data shipped with fireact: task splits, prompts and licences (see README.md here).

The path helper lives in `fireact.home` (with the cache root); `resource` and `ROOT` stay
importable from here.
"""

from __future__ import annotations

from fireact.home import RESOURCES as ROOT
from fireact.home import resource

__all__ = ["ROOT", "resource"]

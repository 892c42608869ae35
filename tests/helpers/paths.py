"""Where the shared data lives: the shared data folder beside the checkout when it is there,
else the package's own copy (the same files in the same layout)."""

from __future__ import annotations

from pathlib import Path

from fireact.resources import ROOT as PACKAGED_DATA

_BESIDE = Path(__file__).resolve().parents[3] / "shared" / "data"
SHARED_DATA = _BESIDE if (_BESIDE / "finetune").is_dir() else PACKAGED_DATA

"""Shared test setup: where the shared data lives; caches kept out of the user's home."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fireact.resources import ROOT as PACKAGED_DATA

# The shared data folder beside the checkout; the package ships the same files in the same
# layout, so tests still run on a checkout without it.
_BESIDE = Path(__file__).resolve().parents[2] / "shared" / "data"
SHARED_DATA = _BESIDE if (_BESIDE / "finetune").is_dir() else PACKAGED_DATA


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Keep caches and default indexes out of the user's home during tests."""
    home = os.environ.get("FIREACT_TEST_HOME") or str(tmp_path_factory.getbasetemp() / "home")
    monkeypatch.setenv("FIREACT_HOME", home)

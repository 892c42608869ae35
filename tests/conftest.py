"""Shared test setup: caches kept out of the user's home (shared helpers: `tests/helpers/`)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Keep caches and default indexes out of the user's home during tests."""
    home = os.environ.get("FIREACT_TEST_HOME") or str(tmp_path_factory.getbasetemp() / "home")
    monkeypatch.setenv("FIREACT_HOME", home)

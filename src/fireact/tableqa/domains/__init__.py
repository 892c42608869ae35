"""The table domains of the generator: each draws one example's two tables (a `Scene`).

Owns `DOMAINS`, the scene builders in the order the generator draws from them: companies
(`companies`), football (`football`), countries (`countries`).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from fireact.tableqa.domains.companies import companies_scene
from fireact.tableqa.domains.countries import countries_scene
from fireact.tableqa.domains.football import football_scene
from fireact.tableqa.model import Scene

DOMAINS: tuple[Callable[[random.Random], Scene], ...] = (
    companies_scene,
    football_scene,
    countries_scene,
)

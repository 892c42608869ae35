"""What the three table domains share: random gaps, year ranges and the founding-year measure."""

from __future__ import annotations

import random
from collections.abc import Sequence

from fireact.tableqa.model import Cell, Measure, measures


def founded(noun: str) -> Measure:
    """The ``founded_year`` column of a table of `noun` s (``company``, ``club``)."""
    return measures(
        f"""
        col: founded_year
        decimals: 0
        lookup: In which year was {{e}} founded? | When was {{e}} founded? Give the year.
        above: {{was}} founded after {{v}}
        below: {{was}} founded before {{v}}
        most: was founded most recently
        least: was founded first
        cmp_yn: Was {{a}} founded before {{b}}?
        cmp_which: Which {noun} was founded earlier: {{a}} or {{b}}?
        diff: How many years after {{b}} was {{a}} founded?
        the: the founding year
        rel: <
        grouping: false
        """
    )["founded_year"]


def _null(rng: random.Random, p: float, value: Cell) -> Cell:
    return None if rng.random() < p else value


def _years(rng: random.Random, lo: int, hi: int, counts: Sequence[int]) -> list[int]:
    end, k = rng.randint(lo, hi), rng.choice(counts)
    return list(range(end - k + 1, end + 1))

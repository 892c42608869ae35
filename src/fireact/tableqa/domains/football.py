"""The football domain: a simulated league season (``standings``) and the clubs (``teams``:
city, founding year, stadium, crowds)."""

from __future__ import annotations

import math
import random

from fireact.tableqa import model
from fireact.tableqa.domains.common import _null, founded

TEAM_ADJECTIVES = (
    "Crimson", "Northern", "Iron", "Golden", "Silver", "Royal", "Blue", "Harbor", "Highland",
    "Emerald", "Scarlet", "Thunder", "Coastal", "Black", "White", "Valley",
)  # fmt: skip
TEAM_ANIMALS = (
    "Falcons", "Wolves", "Stags", "Lions", "Hawks", "Bears", "Foxes", "Eagles", "Owls", "Ravens",
    "Tigers", "Otters", "Herons", "Bulls", "Rams", "Sharks",
)  # fmt: skip
CITIES = (
    "Riverton", "Eastbrook", "Kingsport", "Ashford", "Millbrook", "Westhaven", "Northgate",
    "Fairview", "Oakridge", "Lakeside", "Port Ellis", "Stonebridge", "Granville", "Redhill",
    "Bellmont", "Clearwater", "Harwick", "Dunmore", "Marston", "Elmstead", "Brackley", "Halston",
)  # fmt: skip
SURNAMES = (
    "Hadley", "Morrow", "Carver", "Ellison", "Prescott", "Whitlock", "Danvers", "Holloway",
    "Kendrick", "Lowry", "Ashby", "Fenwick", "Garland", "Merritt", "Radley", "Sutton",
)  # fmt: skip


def tally(col: str, verb: str, verbed: str, done: str, noun: str, lookup: str) -> model.Measure:
    """A standings column counted in matches or goals: to `verb`, `verbed` (past), `done`
    (participle); `lookup`: its templates separated by `` | ``."""
    return model.measures(
        f"""
        col: {col}
        decimals: 0
        lookup: {lookup}
        above: {verbed} more than {{v}} {noun}
        below: {verbed} fewer than {{v}} {noun}
        most: {verbed} the most {noun}
        least: {verbed} the fewest {noun}
        cmp_yn: Did {{a}} {verb} more {noun} than {{b}}?
        cmp_which: Which team {verbed} more {noun}: {{a}} or {{b}}?
        diff: How many more {noun} did {{a}} {verb} than {{b}}?
        the: the number of {noun} {done}
        total: total number of {noun} {done}
        average: average number of {noun} {done}
        prep: by
        """
    )[col]


# column | to verb | verbed | done | noun | lookup templates
_TALLIES = """
wins | win | won | won | matches | How many wins did {e} record? | How many matches did {e} win?
draws | draw | drew | drawn | matches | How many draws did {e} have? | How many of their matches did {e} draw?
losses | lose | lost | lost | matches | How many matches did {e} lose? | How many defeats did {e} suffer?
goals_for | score | scored | scored | goals | How many goals did {e} score? | How many goals did {e} score over the season?
goals_against | concede | conceded | conceded | goals | How many goals did {e} concede? | How many goals were scored against {e}?
"""
WINS, DRAWS, LOSSES, GOALS_FOR, GOALS_AGAINST = (
    tally(*line.split(" | ", 5)) for line in _TALLIES.strip().splitlines()
)
# the numeric columns: ``field: text`` lines, one block a column (see `model.measures`)
_MEASURES = model.measures(
    """
col: points
decimals: 0
lookup: How many points did {e} finish with? | How many points did {e} collect?
above: finished with more than {v} points
below: finished with fewer than {v} points
most: finished with the most points
least: finished with the fewest points
cmp_yn: Did {a} finish with more points than {b}?
cmp_which: Which team finished with more points: {a} or {b}?
diff: How many more points did {a} collect than {b}?
the: the points total
total: total number of points
average: average number of points
tiebreak_text: Teams level on points are ranked by goal difference (goals scored minus goals conceded).
prep: collected by

col: stadium_capacity
decimals: 0
lookup: How many spectators does the stadium of {e} hold? | What is the capacity of the home stadium of {e}?
above: {has} a stadium holding more than {v} spectators
below: {has} a stadium holding fewer than {v} spectators
most: has the largest stadium
least: has the smallest stadium
cmp_yn: Does the stadium of {a} hold more spectators than that of {b}?
cmp_which: Which team has the bigger stadium: {a} or {b}?
diff: How many more spectators does the stadium of {a} hold than that of {b}?
the: the stadium capacity
total: combined stadium capacity
average: average stadium capacity
positive: true

col: avg_attendance
decimals: 0
lookup: What was the average home attendance of {e}? | How many spectators did {e} draw to a home match on average?
above: had an average attendance above {v}
below: had an average attendance below {v}
most: had the highest average attendance
least: had the lowest average attendance
cmp_yn: Did {a} draw bigger home crowds on average than {b}?
cmp_which: Which team had the higher average attendance: {a} or {b}?
diff: How many more spectators did {a} draw on average than {b}?
the: the average attendance
positive: true
""",
    tiebreak={"points": ((["-", "goals_for", "goals_against"], "desc"),)},
)
POINTS, CAPACITY, ATTENDANCE = (
    _MEASURES["points"],
    _MEASURES["stadium_capacity"],
    _MEASURES["avg_attendance"],
)


def _poisson(rng: random.Random, lam: float) -> int:
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _season(rng: random.Random, names: list[str]) -> list[list[model.Cell]]:
    """Standings of a double round robin between `names`, best first."""
    strength = {name: rng.uniform(0.7, 1.45) for name in names}
    stats = {name: [0, 0, 0, 0, 0] for name in names}  # wins, draws, losses, for, against
    for home in names:
        for away in names:
            if home == away:
                continue
            ratio = strength[home] / strength[away]
            h = _poisson(rng, 1.5 * ratio**0.8)
            a = _poisson(rng, 1.15 / ratio**0.8)
            for team, gf, ga in ((home, h, a), (away, a, h)):
                s = stats[team]
                s[0 if gf > ga else 1 if gf == ga else 2] += 1
                s[3] += gf
                s[4] += ga
    played = 2 * (len(names) - 1)
    rows: list[list[model.Cell]] = [
        [name, played, w, d, lo, gf, ga, 3 * w + d] for name, (w, d, lo, gf, ga) in stats.items()
    ]
    rows.sort(key=lambda r: (-r[7], -(r[5] - r[6]), -r[5], r[0]))
    return rows


# the text columns an entity is asked about (see `model.text_attrs`)
_TEXTS = model.text_attrs(
    """
col: city
lookup: Which city is the home of {e}? | Which city do {e} play in?
unique: the team based in {v}

col: stadium
lookup: What is the name of the home stadium of {e}? | Where do {e} play their home matches?
unique: the team that plays at {v}
"""
)


def football_scene(rng: random.Random) -> model.Scene:
    """A league season (standings) and the clubs (city, founding year, stadium, crowds)."""
    n = rng.randint(8, 10)
    names = [
        f"{a} {b}"
        for a, b in zip(rng.sample(TEAM_ADJECTIVES, n), rng.sample(TEAM_ANIMALS, n), strict=True)
    ]
    at_an_end = rng.random() < 0.5
    for _ in range(50):  # teams level on points on purpose, often at the top or bottom
        standings = _season(rng, names)
        points = [r[7] for r in standings]
        if points[0] == points[1] or points[-1] == points[-2]:
            break
        if not at_an_end and len(set(points)) < len(points):
            break
    cities = rng.sample(CITIES, n)
    surnames = rng.sample(SURNAMES, n)
    teams = []
    for name, city, surname in zip(sorted(names), cities, surnames, strict=True):
        capacity = int(round(rng.uniform(8000, 62000), -1))
        attendance = int(capacity * rng.uniform(0.55, 0.98))
        stadium = f"{surname} {rng.choice(('Park', 'Stadium', 'Arena', 'Ground'))}"
        teams.append(
            [name, city, rng.randint(1872, 1995), stadium, capacity, _null(rng, 0.15, attendance)]
        )
    fact = model.Table(
        "standings",
        ["team", "played", "wins", "draws", "losses", "goals_for", "goals_against", "points"],
        standings,
    )
    attr = model.Table(
        "teams",
        ["team", "city", "founded_year", "stadium", "stadium_capacity", "avg_attendance"],
        teams,
    )
    return model.Scene(
        "team",
        "teams",
        model.Source(fact, "team", None, (WINS, DRAWS, LOSSES, GOALS_FOR, GOALS_AGAINST, POINTS)),
        model.Source(attr, "team", None, (founded("club"), CAPACITY, ATTENDANCE)),
        ("standings", "teams"),
        texts=_TEXTS,
        categories=(),
        ratios=(
            model.Ratio(
                "How many points per match did {e} collect on average?",
                ("fact", "points"),
                ("fact", "played"),
                1,
                2,
                model.TWO_DECIMALS,
            ),
            model.Ratio(
                "What percentage of their matches did {e} win?",
                ("fact", "wins"),
                ("fact", "played"),
                100,
                2,
                model.TWO_DECIMALS,
            ),
            model.Ratio(
                "On average, what percentage of their stadium's capacity did {e} fill at home matches?",
                ("attr", "avg_attendance"),
                ("attr", "stadium_capacity"),
                100,
                2,
                model.TWO_DECIMALS,
            ),
        ),
    )

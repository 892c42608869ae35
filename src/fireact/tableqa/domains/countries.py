"""The countries domain: ``countries`` (real names, continents, capitals and areas, perturbed
populations) and yearly synthetic ``indicators`` (GDP, unemployment, life expectancy)."""

from __future__ import annotations

import random
from typing import Any

from fireact.tableqa import model
from fireact.tableqa.domains.common import _null, _years

# country, continent, capital, population (millions), area (km²), GDP (USD bn),
# unemployment (%), life expectancy (years): magnitudes around 2022, rounded
COUNTRIES = (
    ("Germany", "Europe", "Berlin", 83.8, 357588, 4070, 3.1, 80.6),
    ("France", "Europe", "Paris", 68.0, 551695, 2780, 7.3, 82.3),
    ("Italy", "Europe", "Rome", 58.9, 301340, 2010, 8.1, 83.0),
    ("Spain", "Europe", "Madrid", 47.6, 505990, 1400, 12.9, 83.1),
    ("Poland", "Europe", "Warsaw", 36.8, 312696, 690, 2.9, 77.4),
    ("Netherlands", "Europe", "Amsterdam", 17.7, 41850, 1010, 3.5, 81.7),
    ("Sweden", "Europe", "Stockholm", 10.5, 450295, 585, 7.5, 83.0),
    ("Portugal", "Europe", "Lisbon", 10.4, 92212, 255, 6.0, 81.8),
    ("Greece", "Europe", "Athens", 10.4, 131957, 219, 12.4, 80.7),
    ("Austria", "Europe", "Vienna", 9.1, 83879, 471, 4.8, 81.3),
    ("Norway", "Europe", "Oslo", 5.5, 385207, 579, 3.2, 83.2),
    ("Ireland", "Europe", "Dublin", 5.1, 70273, 533, 4.5, 82.4),
    ("Hungary", "Europe", "Budapest", 9.6, 93028, 177, 3.6, 76.4),
    ("Finland", "Europe", "Helsinki", 5.6, 338455, 281, 6.8, 81.9),
    ("Japan", "Asia", "Tokyo", 124.5, 377975, 4230, 2.6, 84.5),
    ("India", "Asia", "New Delhi", 1417.2, 3287263, 3390, 7.3, 72.0),
    ("Indonesia", "Asia", "Jakarta", 275.5, 1904569, 1320, 5.9, 71.8),
    ("Vietnam", "Asia", "Hanoi", 98.2, 331212, 409, 2.3, 75.4),
    ("Thailand", "Asia", "Bangkok", 71.7, 513120, 495, 1.0, 79.3),
    ("South Korea", "Asia", "Seoul", 51.6, 100210, 1670, 2.9, 83.7),
    ("Philippines", "Asia", "Manila", 115.6, 300000, 404, 5.4, 72.0),
    ("Malaysia", "Asia", "Kuala Lumpur", 33.9, 330803, 407, 3.9, 76.2),
    ("Bangladesh", "Asia", "Dhaka", 171.2, 148460, 460, 5.2, 73.7),
    ("Pakistan", "Asia", "Islamabad", 235.8, 881913, 375, 6.3, 66.1),
    ("Nigeria", "Africa", "Abuja", 218.5, 923768, 477, 5.0, 53.6),
    ("Egypt", "Africa", "Cairo", 111.0, 1002450, 477, 7.3, 70.2),
    ("Kenya", "Africa", "Nairobi", 54.0, 580367, 113, 5.7, 62.7),
    ("Ghana", "Africa", "Accra", 33.5, 238533, 73, 3.9, 63.9),
    ("Morocco", "Africa", "Rabat", 37.5, 446550, 130, 11.8, 74.0),
    ("Ethiopia", "Africa", "Addis Ababa", 123.4, 1104300, 126, 3.7, 65.0),
    ("Tanzania", "Africa", "Dodoma", 65.5, 945087, 76, 2.6, 66.2),
    ("Senegal", "Africa", "Dakar", 17.3, 196722, 28, 3.7, 68.0),
    ("Brazil", "South America", "Brasília", 215.3, 8515767, 1920, 9.2, 73.4),
    ("Argentina", "South America", "Buenos Aires", 46.2, 2780400, 632, 6.8, 75.4),
    ("Colombia", "South America", "Bogotá", 51.9, 1141748, 344, 11.2, 72.8),
    ("Peru", "South America", "Lima", 34.0, 1285216, 243, 7.6, 72.4),
    ("Chile", "South America", "Santiago", 19.6, 756102, 301, 7.9, 78.9),
    ("Uruguay", "South America", "Montevideo", 3.4, 176215, 71, 7.9, 75.8),
    ("Ecuador", "South America", "Quito", 18.0, 256369, 115, 3.8, 73.7),
    ("United States", "North America", "Washington, D.C.", 333.3, 9833520, 25460, 3.6, 76.4),
    ("Canada", "North America", "Ottawa", 38.9, 9984670, 2140, 5.3, 81.7),
    ("Mexico", "North America", "Mexico City", 127.5, 1964375, 1415, 3.3, 70.2),
    ("Australia", "Oceania", "Canberra", 26.0, 7692024, 1690, 3.7, 83.3),
    ("New Zealand", "Oceania", "Wellington", 5.1, 268021, 247, 3.3, 82.1),
)


# the numeric columns: ``field: text`` lines, one block a column (see `model.measures`)
_MEASURES = model.measures(
    """
col: population_millions
decimals: 1
lookup: What is the population of {e}? | How many people live in {e}?
above: {has} a population above {v} million
below: {has} a population below {v} million
most: has the largest population
least: has the smallest population
cmp_yn: Does {a} have a larger population than {b}?
cmp_which: Which country has more inhabitants: {a} or {b}?
diff: How many more people live in {a} than in {b}?
the: the population
unit: Answer in millions.
total: total population
average: average population
positive: true

col: area_km2
decimals: 0
lookup: What is the area of {e}? | How large is {e} in area?
above: {has} an area above {v} km²
below: {has} an area below {v} km²
most: has the largest area
least: has the smallest area
cmp_yn: Is {a} larger in area than {b}?
cmp_which: Which country is larger in area: {a} or {b}?
diff: How much larger in area is {a} than {b}?
the: the area
unit: Answer in square kilometres.
total: total area
average: average area
positive: true

col: gdp_busd
decimals: 1
lookup: What was the GDP of {e}{y}? | How large was the economy (GDP) of {e}{y}?
above: had a GDP above {v} billion US dollars
below: had a GDP below {v} billion US dollars
most: had the largest GDP
least: had the smallest GDP
cmp_yn: Did {a} have a larger GDP than {b}{y}?
cmp_which: Which country had the larger GDP{y}: {a} or {b}?
diff: How much larger was the GDP of {a} than that of {b}{y}?
the: the GDP
unit: Answer in billions of US dollars.
total: combined GDP
average: average GDP
positive: true

col: unemployment_pct
decimals: 1
lookup: What was the unemployment rate of {e}{y}? | How high was unemployment in {e}{y}?
above: had an unemployment rate above {v}%
below: had an unemployment rate below {v}%
most: had the highest unemployment rate
least: had the lowest unemployment rate
cmp_yn: Did {a} have a higher unemployment rate than {b}{y}?
cmp_which: Which country had the higher unemployment rate{y}: {a} or {b}?
diff: By how many percentage points was the unemployment rate of {a} higher than that of {b}{y}?
the: the unemployment rate
unit: Answer in percent.
average: average unemployment rate
positive: true

col: life_expectancy_years
decimals: 1
lookup: What was the life expectancy in {e}{y}? | How long could people in {e} expect to live{y}?
above: had a life expectancy above {v} years
below: had a life expectancy below {v} years
most: had the highest life expectancy
least: had the lowest life expectancy
cmp_yn: Was life expectancy in {a} higher than in {b}{y}?
cmp_which: Where was life expectancy higher{y}: {a} or {b}?
diff: How many years longer was life expectancy in {a} than in {b}{y}?
the: the life expectancy
unit: Answer in years.
average: average life expectancy
positive: true
"""
)
POPULATION, AREA, GDP, UNEMPLOYMENT, LIFE = (
    _MEASURES["population_millions"],
    _MEASURES["area_km2"],
    _MEASURES["gdp_busd"],
    _MEASURES["unemployment_pct"],
    _MEASURES["life_expectancy_years"],
)


# the text columns an entity is asked about (see `model.text_attrs`)
_TEXTS = model.text_attrs(
    """
col: capital
lookup: What is the capital of {e}? | Which city is the capital of {e}?
unique: the country whose capital is {v}

col: continent
lookup: On which continent is {e}? | Which continent is {e} part of?
"""
)


def countries_scene(rng: random.Random) -> model.Scene:
    """Countries (continent, capital, population, area) and yearly economic indicators."""
    by_continent: dict[str, list[tuple[Any, ...]]] = {}
    for row in COUNTRIES:
        by_continent.setdefault(row[1], []).append(row)
    continents = rng.sample(sorted(c for c, rows in by_continent.items() if len(rows) >= 3), 3)
    chosen = []
    for continent in continents:
        chosen += rng.sample(
            by_continent[continent], min(len(by_continent[continent]), rng.randint(2, 4))
        )
    rng.shuffle(chosen)
    years = _years(rng, 2019, 2023, (2, 3))
    countries, indicators = [], []
    for name, continent, capital, pop, area, gdp, unemployment, life in chosen:
        countries.append([name, continent, capital, round(pop * rng.uniform(0.96, 1.04), 1), area])
        gdp *= rng.uniform(0.85, 1.1)
        for year in years:
            gdp *= 1 + rng.uniform(-0.04, 0.09)
            indicators.append(
                [
                    name,
                    year,
                    _null(rng, 0.06, round(gdp, 1)),
                    _null(rng, 0.06, round(max(0.5, unemployment + rng.uniform(-1.2, 1.2)), 1)),
                    _null(rng, 0.06, round(life + rng.uniform(-0.8, 0.8), 1)),
                ]
            )
    indicators.sort(key=lambda r: (r[0], r[1]))
    attr = model.Table(
        "countries",
        ["country", "continent", "capital", "population_millions", "area_km2"],
        countries,
    )
    fact = model.Table(
        "indicators",
        ["country", "year", "gdp_busd", "unemployment_pct", "life_expectancy_years"],
        indicators,
    )
    return model.Scene(
        "country",
        "countries",
        model.Source(fact, "country", "year", (GDP, UNEMPLOYMENT, LIFE)),
        model.Source(attr, "country", None, (POPULATION, AREA)),
        ("countries", "indicators"),
        texts=_TEXTS,
        categories=(model.Category("continent", "in {v}", "the countries in {v}"),),
        ratios=(
            model.Ratio(
                "What is the population density of {e} in people per square kilometre?",
                ("attr", "population_millions"),
                ("attr", "area_km2"),
                1_000_000,
                2,
                model.TWO_DECIMALS,
            ),
            model.Ratio(
                "Using the population in the countries table, what was the GDP per person of {e}{y}, in US dollars?",
                ("fact", "gdp_busd"),
                ("attr", "population_millions"),
                1000,
                0,
                "Round to the nearest dollar.",
            ),
        ),
    )

"""The companies domain: ``companies`` (sector, headquarters, founding year, headcount) and
their yearly ``financials`` (revenue, net income)."""

from __future__ import annotations

import math
import random

from fireact.tableqa import model
from fireact.tableqa.domains.common import _null, _years, founded

COMPANY_WORDS = (
    "Northwind", "Halvorsen", "Bluefin", "Cedarline", "Orion", "Kestrel", "Meridian", "Tamarack",
    "Solace", "Vantage", "Ironbridge", "Lumen", "Parkside", "Redwood", "Silverleaf", "Alder",
    "Brightwater", "Copperfield", "Driftwood", "Everstone", "Foxglove", "Granite Peak",
    "Harborview", "Juniper", "Larkspur", "Maplecrest", "Nimbus", "Oakhaven", "Pinnacle",
    "Quillon", "Riverbend", "Stonegate", "Thornbury", "Upland", "Westmark", "Yellowfield",
    "Zenith", "Ashcombe", "Blackwater", "Crestline",
)  # fmt: skip
SECTORS = {
    "Technology": ("Systems", "Software", "Networks", "Digital"),
    "Energy": ("Energy", "Power", "Renewables", "Petroleum"),
    "Retail": ("Stores", "Markets", "Outfitters", "Retail"),
    "Healthcare": ("Health", "Pharma", "Biotech", "Medical"),
    "Financials": ("Bank", "Capital", "Insurance", "Financial"),
    "Industrials": ("Industries", "Logistics", "Engineering", "Machinery"),
    "Consumer Goods": ("Foods", "Brands", "Beverages", "Apparel"),
}
HEADQUARTERS = (
    "United States", "Germany", "Japan", "United Kingdom", "Canada", "France", "South Korea",
    "Brazil", "India", "Sweden", "Netherlands", "Australia",
)  # fmt: skip

# the numeric columns: ``field: text`` lines, one block a column (see `model.measures`)
_MEASURES = model.measures(
    """
col: revenue_musd
decimals: 1
lookup: What was the revenue of {e}{y}? | How much revenue did {e} report{y}? | According to the table, what revenue did {e} have{y}?
above: had revenue above {v} million US dollars
below: had revenue below {v} million US dollars
most: had the highest revenue
least: had the lowest revenue
cmp_yn: Did {a} have more revenue than {b}{y}?
cmp_which: Which company had more revenue{y}: {a} or {b}?
diff: How much more revenue did {a} report than {b}{y}?
the: the revenue
unit: Answer in millions of US dollars.
total: total revenue
average: average revenue
positive: true

col: net_income_musd
decimals: 1
lookup: What was the net income of {e}{y}? | How much net income did {e} earn{y}?
above: had net income above {v} million US dollars
below: had net income below {v} million US dollars
most: had the highest net income
least: had the lowest net income
cmp_yn: Did {a} earn more net income than {b}{y}?
cmp_which: Which company earned more net income{y}: {a} or {b}?
diff: How much more net income did {a} earn than {b}{y}?
the: the net income
unit: Answer in millions of US dollars.
total: total net income
average: average net income

col: employees
decimals: 0
lookup: How many employees does {e} have? | What is the headcount of {e}?
above: {has} more than {v} employees
below: {has} fewer than {v} employees
most: has the most employees
least: has the fewest employees
cmp_yn: Does {a} have more employees than {b}?
cmp_which: Which company has more employees: {a} or {b}?
diff: How many more employees does {a} have than {b}?
the: the number of employees
total: total number of employees
average: average number of employees
positive: true
"""
)
REVENUE, NET_INCOME, EMPLOYEES = (
    _MEASURES["revenue_musd"],
    _MEASURES["net_income_musd"],
    _MEASURES["employees"],
)


# the text columns an entity is asked about (see `model.text_attrs`)
_TEXTS = model.text_attrs(
    """
col: sector
lookup: In which sector does {e} operate? | What sector is {e} in?

col: headquarters
lookup: In which country is {e} headquartered? | Where is {e} headquartered?
"""
)


def companies_scene(rng: random.Random) -> model.Scene:
    """Companies (sector, headquarters, founding year, headcount) and their yearly financials."""
    n = rng.randint(6, 9)
    sectors = rng.sample(sorted(SECTORS), 3)
    hqs = rng.sample(HEADQUARTERS, 3)
    words = rng.sample(COMPANY_WORDS, n)
    years = _years(rng, 2020, 2024, (3, 4))
    companies, financials = [], []
    for word in sorted(words):
        sector = rng.choice(sectors)
        name = f"{word} {rng.choice(SECTORS[sector])}"
        revenue = math.exp(rng.uniform(math.log(80), math.log(40000)))
        employees = max(20, int(round(revenue * rng.uniform(2, 9), -1)))
        founded_year = rng.randint(1895, 2016)
        companies.append([name, sector, rng.choice(hqs), founded_year, _null(rng, 0.12, employees)])
        margin = rng.uniform(-0.05, 0.2)
        for year in years:
            revenue *= 1 + rng.uniform(-0.12, 0.25)
            margin = min(0.3, max(-0.15, margin + rng.uniform(-0.04, 0.04)))
            financials.append(
                [
                    name,
                    year,
                    _null(rng, 0.05, round(revenue, 1)),
                    _null(rng, 0.06, round(revenue * margin, 1)),
                ]
            )
    attr = model.Table(
        "companies", ["company", "sector", "headquarters", "founded_year", "employees"], companies
    )
    fact = model.Table(
        "financials", ["company", "year", "revenue_musd", "net_income_musd"], financials
    )
    return model.Scene(
        "company",
        "companies",
        model.Source(fact, "company", "year", (REVENUE, NET_INCOME)),
        model.Source(attr, "company", None, (EMPLOYEES, founded("company"))),
        ("companies", "financials"),
        texts=_TEXTS,
        categories=(
            model.Category("sector", "in the {v} sector", "the companies in the {v} sector"),
            model.Category(
                "headquarters", "headquartered in {v}", "the companies headquartered in {v}"
            ),
        ),
        ratios=(
            model.Ratio(
                "What was the net profit margin of {e}{y} (net income as a percentage of revenue)?",
                ("fact", "net_income_musd"),
                ("fact", "revenue_musd"),
                100,
                2,
                model.TWO_DECIMALS,
            ),
        ),
    )

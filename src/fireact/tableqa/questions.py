"""The question kinds but ``arithmetic``: ``lookup``, ``filter``, ``count``, ``sum``,
``average``, ``comparison``, ``argmax`` and ``join`` (a subset or entity defined in one table,
the figure in the other); each returns (question, answer, check, tables read) or raises `Retry`
(see `fireact.tableqa.generate` for the rules they keep)."""

from __future__ import annotations

import random
from typing import Any

from fireact.tableqa.model import (
    TWO_DECIMALS,
    Built,
    Retry,
    Scene,
    fmt_answer,
    holds,
    nice_between,
    query,
    sentence,
    yp,
)
from fireact.tableqa.question_parts import (
    _q,
    _two,
    best,
    condition_text,
    missing_note,
    pick_measure,
    scope,
    threshold,
    values,
    year_where,
    years_of,
)


def k_lookup(rng: random.Random, sc: Scene) -> Built:
    if rng.random() < 0.3:
        ta = rng.choice(sc.texts)
        row = rng.choice(sc.attr.table.records())
        e = row[sc.attr.key]
        q = query(sc.attr.table.name, ta.col, [[sc.attr.key, "=", e]])
        return rng.choice(ta.lookup).format(e=e), str(row[ta.col]), _q(q), {sc.attr.table.name}
    src, m, year = pick_measure(rng, sc)
    rows = [r for r in scope(src, year) if r[m.col] is not None]
    row = rng.choice(rows)
    e = row[src.key]
    question = sentence(rng.choice(m.lookup).format(e=e, y=yp(year)), m.unit)
    q = query(src.table.name, m.col, [[src.key, "=", e], *year_where(src, year)])
    return question, fmt_answer(row[m.col], m.decimals), _q(q), {src.table.name}


FILTER_TEMPLATES = ("Which {ent} {c1} and {c2}{y}?", "Name the {ent} that {c1} and {c2}{y}.")
FILTER_CAT_TEMPLATES = ("Which {ent} {cat} {c}?", "Name the {ent} {cat} that {c}.")


def k_filter(rng: random.Random, sc: Scene) -> Built:
    use_category = bool(sc.categories) and rng.random() < 0.4
    if use_category:
        src, year = sc.attr, None
        cat = rng.choice(sc.categories)
        m = rng.choice(src.measures)
        rows = scope(src, None)
        target = rng.choice([r for r in rows if r[m.col] is not None])
        op = rng.choice((">", "<"))
        t = threshold(
            rng,
            [r for r in rows if r[cat.col] == target[cat.col]],
            m.col,
            target[m.col],
            op,
            m.decimals,
        )
        if t is None:
            raise Retry
        conds = [[cat.col, "=", target[cat.col]], [m.col, op, t]]
        texts = {
            "cat": cat.singular.format(v=target[cat.col]),
            "c": condition_text(m, op, t, plural=False),
        }
        question = rng.choice(FILTER_CAT_TEMPLATES).format(ent=sc.entity, **texts)
        cols = [m.col]
    else:
        src = rng.choice([s for s in (sc.fact, sc.attr) if len(s.measures) >= 2])
        year = rng.choice(years_of(src)) if src.time else None
        rows = scope(src, year)
        m1, m2 = rng.sample(src.measures, 2)
        target = rng.choice([r for r in rows if r[m1.col] is not None and r[m2.col] is not None])
        conds, texts = [], {}
        for m, name in ((m1, "c1"), (m2, "c2")):
            op = rng.choice((">", "<"))
            t = threshold(rng, rows, m.col, target[m.col], op, m.decimals)
            if t is None:
                raise Retry
            conds.append([m.col, op, t])
            texts[name] = condition_text(m, op, t, plural=False)
        question = rng.choice(FILTER_TEMPLATES).format(ent=sc.entity, y=yp(year), **texts)
        cols = [m1.col, m2.col]
    matches = [r for r in rows if all(holds(r[c], op, v) for c, op, v in conds)]
    if len(matches) != 1:
        raise Retry
    question = sentence(question, missing_note(rows, cols, sc.entities))
    q = query(src.table.name, src.key, conds + year_where(src, year))
    return question, str(matches[0][src.key]), _q(q), {src.table.name}


def k_count(rng: random.Random, sc: Scene) -> Built:
    roll = rng.random()
    if roll < 0.25 and sc.categories:
        cat = rng.choice(sc.categories)
        rows = scope(sc.attr, None)
        v = rng.choice(rows)[cat.col]
        n = sum(1 for r in rows if r[cat.col] == v)
        if n == len(rows):
            raise Retry
        question = f"How many {sc.entities} in the table are {cat.singular.format(v=v)}?"
        q = query(sc.attr.table.name, ["count"], [[cat.col, "=", v]])
        return question, str(n), _q(q), {sc.attr.table.name}
    src, m, year = pick_measure(rng, sc)
    rows = scope(src, year)
    if roll < 0.4:  # missing figures
        n = sum(1 for r in rows if r[m.col] is None)
        if n == 0:
            raise Retry
        question = f"For how many {sc.entities} is {m.the}{yp(year)} missing from the table?"
        q = query(src.table.name, ["count"], [[m.col, "is null", None], *year_where(src, year)])
        return question, str(n), _q(q), {src.table.name}
    distinct = sorted(set(values(rows, m.col)))
    if len(distinct) < 2:
        raise Retry
    i = rng.randrange(len(distinct) - 1)
    t = nice_between(distinct[i], distinct[i + 1], m.decimals)
    if t is None:
        raise Retry
    op = rng.choice((">", "<"))
    n = sum(1 for r in rows if holds(r[m.col], op, t))
    cond = condition_text(m, op, t, plural=True)
    template = rng.choice(
        ("How many {ents} {c}{y}?", "How many of the {ents} in the table {c}{y}?")
    )
    question = sentence(
        template.format(ents=sc.entities, c=cond, y=yp(year)),
        missing_note(rows, [m.col], sc.entities),
    )
    q = query(src.table.name, ["count"], [[m.col, op, t], *year_where(src, year)])
    return question, str(n), _q(q), {src.table.name}


def _aggregate(rng: random.Random, sc: Scene, agg: str) -> Built:
    """`sum` and `average`: over all entities (in a year), one entity over the years, or the
    entities of one category."""
    phrase = "total" if agg == "sum" else "average"
    src, m, year = pick_measure(rng, sc, lambda m: bool(getattr(m, phrase)))
    noun = getattr(m, phrase)
    decimals = m.decimals if agg == "sum" else 2
    rounding = "" if agg == "sum" else TWO_DECIMALS
    roll = rng.random()
    where: list[list[Any]]
    if src.time and roll < 0.35:
        e = rng.choice(scope(src, year))[src.key]
        rows = [r for r in src.table.records() if r[src.key] == e]
        ys = years_of(src)
        who = f"{e} over the years {ys[0]} to {ys[-1]}"
        where = [[src.key, "=", e]]
        year = None
    elif src is sc.attr and sc.categories and roll < 0.7:
        cat = rng.choice(sc.categories)
        v = rng.choice(scope(src, None))[cat.col]
        rows = [r for r in scope(src, None) if r[cat.col] == v]
        if len(rows) < 2 or len(rows) == len(src.table.rows):
            raise Retry
        who = cat.plural.format(v=v)
        where = [[cat.col, "=", v]]
    else:
        rows = scope(src, year)
        who = f"all {sc.entities} in the table"
        where = year_where(src, year)
    present = values(rows, m.col)
    if len(present) < 2:
        raise Retry
    value = sum(present) if agg == "sum" else sum(present) / len(present)
    note = "Skip missing values." if len(present) < len(rows) else ""
    template = rng.choice(("What was the {n} {p} {w}{y}?", "Give the {n} {p} {w}{y}."))
    question = sentence(
        template.format(n=noun, p=m.prep, w=who, y=yp(year)), note, m.unit, rounding
    )
    q = query(src.table.name, [agg if agg == "sum" else "avg", m.col], where)
    return question, fmt_answer(value, decimals), _q(q, decimals), {src.table.name}


def k_sum(rng: random.Random, sc: Scene) -> Built:
    return _aggregate(rng, sc, "sum")


def k_average(rng: random.Random, sc: Scene) -> Built:
    return _aggregate(rng, sc, "average")


def k_comparison(rng: random.Random, sc: Scene) -> Built:
    src, m, year = pick_measure(rng, sc)
    if src.time and rng.random() < 0.3:  # one entity, two years
        e = rng.choice(scope(src, year))[src.key]
        rows = {r[src.time]: r for r in src.table.records() if r[src.key] == e}
        y1, y2 = rng.sample(sorted(rows), 2)
        v1, v2 = rows[y1][m.col], rows[y2][m.col]
        if v1 is None or v2 is None or v1 == v2:
            raise Retry
        question = f"Was {m.the} of {e} higher in {y2} than in {y1}?"
        left = query(src.table.name, m.col, [[src.key, "=", e], [src.time, "=", y2]])
        right = query(src.table.name, m.col, [[src.key, "=", e], [src.time, "=", y1]])
        answer = "yes" if v2 > v1 else "no"
        check = {"op": "compare", "left": left, "right": right, "relation": ">", "answer": "yes_no"}
        return question, answer, check, {src.table.name}
    a, b = _two(rng, scope(src, year), m.col)
    ea, eb = a[src.key], b[src.key]
    left = query(src.table.name, m.col, [[src.key, "=", ea], *year_where(src, year)])
    right = query(src.table.name, m.col, [[src.key, "=", eb], *year_where(src, year)])
    a_wins = a[m.col] > b[m.col] if m.rel == ">" else a[m.col] < b[m.col]
    check: dict[str, Any] = {"op": "compare", "left": left, "right": right, "relation": m.rel}
    if rng.random() < 0.5:
        check["answer"] = "yes_no"
        question = m.cmp_yn.format(a=ea, b=eb, y=yp(year))
        answer = "yes" if a_wins else "no"
    else:
        check["answer"], check["names"] = "which", [ea, eb]
        question = m.cmp_which.format(a=ea, b=eb, y=yp(year))
        answer = str(ea if a_wins else eb)
    return question, answer, check, {src.table.name}


ARGMAX_TEMPLATES = (
    "Which {ent} {most}{y}?",
    "According to the table, which {ent} {most}{y}?",
    "Among all {ents} in the table, which one {most}{y}?",
)


def k_argmax(rng: random.Random, sc: Scene) -> Built:
    src, m, year = pick_measure(rng, sc)
    direction = rng.choice(("desc", "asc"))
    high = direction == "desc"
    if src.time and rng.random() < 0.3:  # the year of one entity's peak
        e = rng.choice(scope(src, year))[src.key]
        rows = [r for r in src.table.records() if r[src.key] == e]
        ranked, order, _ = best(rows, m, direction, src.time, tiebreak=False)
        word = "highest" if high else "lowest"
        question = sentence(
            f"In which year was {m.the} of {e} at its {word}?",
            "Leave out years whose figure is missing." if len(ranked) < len(rows) else "",
        )
        q = query(src.table.name, src.time, [[src.key, "=", e]], order)
        return question, str(ranked[0][src.time]), _q(q), {src.table.name}
    rows = scope(src, year)
    ranked, order, tie = best(rows, m, direction, src.key, tiebreak=True)
    question = sentence(
        rng.choice(ARGMAX_TEMPLATES).format(
            ent=sc.entity, ents=sc.entities, most=m.most if high else m.least, y=yp(year)
        ),
        tie,
        missing_note(rows, [m.col], sc.entities),
    )
    q = query(src.table.name, src.key, year_where(src, year), order)
    return question, str(ranked[0][src.key]), _q(q), {src.table.name}


def _subset(rng: random.Random, sc: Scene) -> tuple[list[list[Any]], str, set[str]]:
    """Conditions on the entity table that pick a proper subset of at least two entities,
    the phrase naming them ("the companies in the Energy sector") and their names."""
    rows = scope(sc.attr, None)
    if sc.categories and rng.random() < 0.7:
        cat = rng.choice(sc.categories)
        v = rng.choice(rows)[cat.col]
        where: list[list[Any]] = [[cat.col, "=", v]]
        phrase = cat.plural.format(v=v)
    else:
        m = rng.choice(sc.attr.measures)
        distinct = sorted(set(values(rows, m.col)))
        if len(distinct) < 3:
            raise Retry
        i = rng.randrange(1, len(distinct) - 1)
        t = nice_between(distinct[i - 1], distinct[i], m.decimals)
        if t is None:
            raise Retry
        op = rng.choice((">", "<"))
        where = [[m.col, op, t]]
        phrase = f"the {sc.entities} that {condition_text(m, op, t, plural=True)}"
        if any(r[m.col] is None for r in rows):
            phrase += " (leaving out those whose figure is missing)"
    names = {r[sc.attr.key] for r in rows if all(holds(r[c], op, v) for c, op, v in where)}
    if not 2 <= len(names) < len(rows):
        raise Retry
    return where, phrase, names


def k_join(rng: random.Random, sc: Scene) -> Built:
    fact, attr = sc.fact, sc.attr
    join = (attr.table.name, fact.key)
    tables = {fact.table.name, attr.table.name}
    roll = rng.random()
    m = rng.choice(fact.measures)
    year = rng.choice(years_of(fact)) if fact.time else None
    rows = scope(fact, year)
    uniques = [ta for ta in sc.texts if ta.unique]
    if roll < 0.25 and uniques:  # a figure of the entity named by a unique attribute
        ta = rng.choice(uniques)
        row = rng.choice([r for r in rows if r[m.col] is not None])
        e = row[fact.key]
        v = next(r[ta.col] for r in attr.table.records() if r[attr.key] == e)
        who = ta.unique.format(v=v)
        question = sentence(rng.choice(m.lookup).format(e=who, y=yp(year)), m.unit)
        q = query(fact.table.name, m.col, [[ta.col, "=", v], *year_where(fact, year)], join=join)
        return question, fmt_answer(row[m.col], m.decimals), _q(q), tables
    direction = rng.choice(("desc", "asc"))
    most = m.most if direction == "desc" else m.least
    if roll < 0.5:  # a text attribute of the best entity
        ta = rng.choice(sc.texts)
        ranked, order, _ = best(rows, m, direction, fact.key, tiebreak=False)
        e = ranked[0][fact.key]
        v = next(r[ta.col] for r in attr.table.records() if r[attr.key] == e)
        question = sentence(
            ta.lookup[0].format(e=f"the {sc.entity} that {most}{yp(year)}"),
            missing_note(rows, [m.col], sc.entities),
        )
        q = query(fact.table.name, ta.col, year_where(fact, year), order, join=join)
        return question, str(v), _q(q), tables
    where, phrase, names = _subset(rng, sc)
    members = [r for r in rows if r[fact.key] in names]
    if roll < 0.75:  # the best of a subset
        ranked, order, tie = best(members, m, direction, fact.key, tiebreak=True)
        if not ranked:
            raise Retry
        question = sentence(
            f"Among {phrase}, which one {most}{yp(year)}?",
            tie,
            missing_note(members, [m.col], sc.entities),
        )
        q = query(fact.table.name, fact.key, where + year_where(fact, year), order, join=join)
        return question, str(ranked[0][fact.key]), _q(q), tables
    agg = "sum" if m.total and rng.random() < 0.5 else "avg"
    if agg == "avg" and not m.average:
        raise Retry
    present = values(members, m.col)
    if len(present) < 2:
        raise Retry
    value = sum(present) if agg == "sum" else sum(present) / len(present)
    decimals = m.decimals if agg == "sum" else 2
    question = sentence(
        f"What was the {m.total if agg == 'sum' else m.average} {m.prep} {phrase}{yp(year)}?",
        "Skip missing values." if len(present) < len(members) else "",
        m.unit,
        "" if agg == "sum" else TWO_DECIMALS,
    )
    q = query(fact.table.name, [agg, m.col], where + year_where(fact, year), join=join)
    return question, fmt_answer(value, decimals), _q(q, decimals), tables

"""The ``arithmetic`` question kind: a ratio of two figures of one entity, the change of a
figure between two years (a difference or percentage change), or the difference of two
entities' figures; it returns (question, answer, check, tables read) or raises `Retry`."""

from __future__ import annotations

import random

from fireact.tableqa.model import (
    TWO_DECIMALS,
    Built,
    Retry,
    Scene,
    fmt_answer,
    query,
    sentence,
    yp,
)
from fireact.tableqa.question_parts import (
    _cell,
    _two,
    pick_measure,
    scope,
    year_where,
    years_of,
)


def k_arithmetic(rng: random.Random, sc: Scene) -> Built:
    roll = rng.random()
    if roll < 0.35:  # a ratio of two figures of one entity
        ratio = rng.choice(sc.ratios)
        num_src, den_src = sc.source(ratio.num[0]), sc.source(ratio.den[0])
        timed = num_src.time or den_src.time
        year = rng.choice(years_of(sc.fact)) if timed else None
        e = rng.choice(scope(sc.attr, None))[sc.attr.key]
        a, qa = _cell(num_src, e, ratio.num[1], year if num_src.time else None)
        b, qb = _cell(den_src, e, ratio.den[1], year if den_src.time else None)
        if a is None or b is None or b == 0:
            raise Retry
        value = a / b * ratio.factor
        question = sentence(ratio.question.format(e=e, y=yp(year)), ratio.rounding)
        check = {
            "op": "arith",
            "formula": "ratio",
            "a": qa,
            "b": qb,
            "factor": ratio.factor,
            "round": ratio.decimals,
        }
        return question, fmt_answer(value, ratio.decimals), check, {qa["from"], qb["from"]}
    src, m, year = pick_measure(rng, sc)
    if src.time and roll < 0.7:  # change of one entity's figure between two years
        e = rng.choice(scope(src, year))[src.key]
        y1, y2 = sorted(rng.sample(years_of(src), 2))
        v1, q1 = _cell(src, e, m.col, y1)
        v2, q2 = _cell(src, e, m.col, y2)
        if v1 is None or v2 is None:
            raise Retry
        if m.positive and rng.random() < 0.5:
            value, decimals, formula = (v2 - v1) / v1 * 100, 2, "pct_change"
            question = sentence(
                f"By what percentage did {m.the} of {e} change from {y1} to {y2}?",
                "Give a negative number for a fall.",
                TWO_DECIMALS,
            )
        else:
            value, decimals, formula = v2 - v1, m.decimals, "difference"
            question = sentence(
                f"By how much did {m.the} of {e} change from {y1} to {y2}?",
                "Give a negative number for a fall.",
                m.unit,
            )
        check = {"op": "arith", "formula": formula, "a": q2, "b": q1, "round": decimals}
        return question, fmt_answer(value, decimals), check, {src.table.name}
    a, b = _two(rng, scope(src, year), m.col)
    if a[m.col] < b[m.col]:
        a, b = b, a
    qa = query(src.table.name, m.col, [[src.key, "=", a[src.key]], *year_where(src, year)])
    qb = query(src.table.name, m.col, [[src.key, "=", b[src.key]], *year_where(src, year)])
    question = sentence(m.diff.format(a=a[src.key], b=b[src.key], y=yp(year)), m.unit)
    value = a[m.col] - b[m.col]
    check = {"op": "arith", "formula": "difference", "a": qa, "b": qb, "round": m.decimals}
    return question, fmt_answer(value, m.decimals), check, {src.table.name}

"""A report on fine-tuning files before training (``fireact data report FILE...``).

Owns `report` (one dict, per file and overall, also written as ``report.json``, ``report.md`` and
``tokens.png``), `summary_line` (the one line ``fireact train`` prints first) and the rules that
infer a record's task and method when the data does not carry them.

What is counted, and how:

* Records are read by `fireact.train.sft_files` (the trainer's reader; a bad record is one
  `FireactError` line naming the file and line) and tokenised by
  `fireact.train.dataset.build_examples` with the trainer's defaults (``mask: model_turns``,
  ``chat_template: auto``, ``add_eos``, no ``learn_stop``), one record at a time: the token counts,
  the supervised (loss-carrying) tokens and the records training would skip are exactly the
  trainer's. With ``tokenizer`` (a local tokenizer folder) the tokens are that tokenizer's;
  without one, every whitespace-separated word is one token (`WHITESPACE`, said in the output).
* Cutoff: an example longer than ``cutoff`` tokens is truncated to its first ``cutoff`` tokens
  (`fireact.train.packing.fit_to_cutoff`); ``lose_supervised`` counts those whose cut-off tail
  holds supervised tokens (part of a Thought/Action or assistant turn is never trained on),
  ``dropped`` those left with no supervised token at all (training drops them).
* Task and method: a record's own ``task`` / ``method`` fields when it has them, else inferred
  (`infer_method`, `infer_task`); FireAct's shipped sets carry neither.
* Parse failures: the Thought/Action text read by `fireact.trajectory.blocks` / `parse` (the one
  parser): a record with no Thought/Action block, a step with no action (a thought followed by an
  observation, two observations in a row), and for chat an assistant turn with no ``Action:``.
* Duplicates: records equal as JSON (keys sorted); each copy after the first counts once.
* OpenAI cost per epoch: tokens by `fireact.data.openai_tokens` (tiktoken when installed, else
  characters / 4; an alpaca record counted as a user turn + an assistant turn) times a price per
  1M training tokens (`OPENAI_TRAINING_PRICE`, configurable).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

from fireact.data.infer import (
    infer_method,
    infer_task,
    parse_problems,
)
from fireact.data.openai_tokens import example_tokens, token_rule
from fireact.errors import FireactError
from fireact.files import read_text
from fireact.train.dataset import DataStats, build_examples, record_prompt
from fireact.train.sft_files import detect_format, read_records
from fireact.train.tokens import IGNORE

WHITESPACE = "whitespace words (no --model given: an estimate, not a real tokenizer)"
MASK = "model_turns"  # the trainer's default mask (fireact.train.config)
# USD per 1M training tokens, OpenAI's fine-tuning price list (openai.com/api/pricing, 2024-25);
# prices change: pass price_per_million to override.
OPENAI_TRAINING_PRICE = {
    "gpt-3.5-turbo": 8.00,
    "gpt-4o-mini": 3.00,
    "gpt-4o": 25.00,
    "gpt-4.1-nano": 1.50,
    "gpt-4.1-mini": 5.00,
    "gpt-4.1": 25.00,
}


class WhitespaceTokenizer:
    """A stand-in tokenizer: each whitespace-separated word is one token (no BOS / EOS)."""

    chat_template = None
    eos_token_id = None

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}

    def __call__(self, text: str, add_special_tokens: bool = True) -> Any:
        ids = [self._ids.setdefault(word, len(self._ids)) for word in text.split()]
        return type("Encoded", (), {"input_ids": ids})()


def load_tokenizer(name: str | Path | None) -> tuple[Any, str]:
    """The tokenizer (a local folder or a name already in the HF cache) and how it is named."""
    if name is None:
        return WhitespaceTokenizer(), WHITESPACE
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(name))
    except (OSError, ValueError) as err:
        raise FireactError(
            f"tokenizer: cannot load {str(name)!r}: {str(err).splitlines()[0]}"
        ) from None
    return tokenizer, f"{name} ({type(tokenizer).__name__})"


# -- what a record is ------------------------------------------------------------------------


def record_lines(path: Path) -> list[int]:
    """The line on which each record of a JSON list or JSONL file starts (1-based)."""
    text = read_text(path)
    if text.lstrip()[:1] != "[":
        return [n for n, line in enumerate(text.split("\n"), 1) if line.strip()]
    decoder, pos, lines = json.JSONDecoder(), text.index("[") + 1, []
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text) or text[pos] == "]":
            return lines
        lines.append(text.count("\n", 0, pos) + 1)
        _, pos = decoder.raw_decode(text, pos)


# -- counting --------------------------------------------------------------------------------
def _percentile(values: list[int], q: float) -> int:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def _openai_tokens(record: dict[str, Any], model: str) -> int:
    if "messages" in record:
        return example_tokens(record, model)
    messages = [
        {"role": "user", "content": record_prompt(record)},
        {"role": "assistant", "content": record["output"]},
    ]
    return example_tokens({"messages": messages}, model)


def _rows(path: Path, tokenizer: Any, cutoff: int, openai_model: str) -> list[dict[str, Any]]:
    """One dict per record of the file: what it is and what training does with it."""
    fmt = detect_format(path)
    records = read_records(path, fmt)
    lines = record_lines(path)
    rows = []
    for record, line in zip(records, lines, strict=True):
        stats = DataStats()
        examples = build_examples([record], tokenizer, mask=MASK, stats=stats)
        row: dict[str, Any] = {
            "file": str(path),
            "format": fmt,
            "line": line,
            "task": infer_task(record),
            "method": infer_method(record),
            "problems": parse_problems(record),
            "key": json.dumps(record, sort_keys=True),
            "openai_tokens": _openai_tokens(record, openai_model),
            "skipped": next(iter(stats.skipped), None),
        }
        if examples:
            labels = examples[0].labels
            row["tokens"] = len(labels)
            row["supervised"] = examples[0].supervised
            kept = [label for label in labels[1:cutoff] if label != IGNORE]
            row["supervised_after_cutoff"] = len(kept)
        rows.append(row)
    return rows


def _summarise(rows: list[dict[str, Any]], cutoff: int, price: float) -> dict[str, Any]:
    """The counts of a set of records (one file, or all)."""
    used = [r for r in rows if "tokens" in r]
    lengths = [r["tokens"] for r in used]
    total, supervised = sum(lengths), sum(r["supervised"] for r in used)
    over = [r for r in used if r["tokens"] > cutoff]
    lose = [r for r in over if r["supervised_after_cutoff"] < r["supervised"]]
    dropped = [r for r in over if r["supervised_after_cutoff"] == 0]
    kept_tokens = sum(min(r["tokens"], cutoff) for r in used if r["supervised_after_cutoff"])
    kept_supervised = sum(r["supervised_after_cutoff"] for r in used)
    seen: dict[str, list[str]] = {}
    for r in rows:
        seen.setdefault(r["key"], []).append(f"{r['file']}:{r['line']}")
    groups = [where for where in seen.values() if len(where) > 1]
    openai_tokens = sum(r["openai_tokens"] for r in rows)
    return {
        "examples": len(rows),
        "by_task": dict(Counter(r["task"] for r in rows).most_common()),
        "by_method": dict(Counter(r["method"] for r in rows).most_common()),
        "by_task_method": {
            f"{t}/{m}": n for (t, m), n in Counter((r["task"], r["method"]) for r in rows).items()
        },
        "parse_failures": [
            {"where": f"{r['file']}:{r['line']}", "problem": p} for r in rows for p in r["problems"]
        ],
        "skipped_by_training": dict(Counter(r["skipped"] for r in rows if r["skipped"])),
        "tokens": {
            "examples": len(used),
            "total": total,
            "mean": round(total / len(used), 1) if used else 0.0,
            "p50": _percentile(lengths, 50),
            "p95": _percentile(lengths, 95),
            "max": max(lengths, default=0),
        },
        "supervised": {
            "tokens": supervised,
            "share": round(supervised / total, 4) if total else 0.0,
            "share_after_cutoff": round(kept_supervised / kept_tokens, 4) if kept_tokens else 0.0,
        },
        "cutoff": {
            "cutoff": cutoff,
            "over": len(over),
            "lose_supervised": len(lose),
            "dropped": len(dropped),
            "supervised_tokens_lost": sum(
                r["supervised"] - r["supervised_after_cutoff"] for r in over
            ),
        },
        "duplicates": {"extra_copies": sum(len(g) - 1 for g in groups), "groups": groups},
        "openai": {
            "tokens_per_epoch": openai_tokens,
            "price_per_million_usd": price,
            "cost_per_epoch_usd": round(openai_tokens * price / 1e6, 2),
        },
    }


def report(
    files: list[Path],
    *,
    tokenizer: str | Path | None = None,
    cutoff: int = 512,
    out_dir: Path | None = None,
    openai_model: str = "gpt-3.5-turbo",
    price_per_million: float | None = None,
) -> dict[str, Any]:
    """The report on `files` (see the module doc); written into `out_dir` when given."""
    if not files:
        raise FireactError("data report: give at least one file")
    if cutoff < 1:
        raise FireactError(f"data report: --cutoff must be positive, not {cutoff}")
    if price_per_million is None:
        base = max(
            (m for m in OPENAI_TRAINING_PRICE if openai_model.startswith(m)), key=len, default=None
        )
        if base is None:
            raise FireactError(
                f"no training price known for {openai_model!r}: pass --price-per-million"
            )
        price_per_million = OPENAI_TRAINING_PRICE[base]
    tok, tokenizer_name = load_tokenizer(tokenizer)
    per_file = {}
    every: list[dict[str, Any]] = []
    for path in files:
        rows = _rows(Path(path), tok, cutoff, openai_model)
        every += rows
        per_file[str(path)] = _summarise(rows, cutoff, price_per_million) | {
            "format": rows[0]["format"]
        }
    result = {
        "tokenizer": tokenizer_name,
        "mask": MASK,
        "cutoff": cutoff,
        "openai": {"model": openai_model, "token_rule": token_rule(openai_model)},
        "method_rule": "the record's 'method'/'task' fields, else inferred from its text",
        "files": per_file,
        "overall": _summarise(every, cutoff, price_per_million),
    }
    if out_dir is not None:
        write(result, [r["tokens"] for r in every if "tokens" in r], Path(out_dir))
    return result


# -- writing ---------------------------------------------------------------------------------
def summary_line(result: dict[str, Any]) -> str:
    """One line: examples, mean tokens, truncated by the cutoff, supervised share."""
    o = result["overall"]
    cut = o["cutoff"]
    return (
        f"data: {o['examples']} examples, mean {o['tokens']['mean']} tokens "
        f"(p95 {o['tokens']['p95']}, max {o['tokens']['max']}; {result['tokenizer']}); "
        f"{cut['over']} over cutoff {cut['cutoff']} ({cut['lose_supervised']} lose supervised "
        f"tokens, {cut['dropped']} dropped); supervised share {o['supervised']['share']:.1%}"
    )


def markdown(result: dict[str, Any]) -> str:
    """The report as Markdown: one table per question, a column per file and one overall."""
    columns = {
        **{Path(k).name: v for k, v in result["files"].items()},
        "overall": result["overall"],
    }
    head = "| | " + " | ".join(columns) + " |\n|---|" + "---|" * len(columns) + "\n"

    def table(title: str, rows: list[tuple[str, Any]]) -> str:
        body = "".join(
            f"| {label} | " + " | ".join(str(get(s)) for s in columns.values()) + " |\n"
            for label, get in rows
        )
        return f"## {title}\n\n{head}{body}\n"

    tasks = sorted({t for s in columns.values() for t in s["by_task"]})
    methods = sorted({m for s in columns.values() for m in s["by_method"]})
    o = result["overall"]
    parts = [
        "# Fine-tuning data report\n\n",
        f"- tokenizer: {result['tokenizer']}\n- mask: {result['mask']} (the trainer's default)\n",
        f"- cutoff: {result['cutoff']} tokens\n- task / method: {result['method_rule']}\n",
        f"- OpenAI tokens: {result['openai']['token_rule']} ({result['openai']['model']})\n\n",
        f"{summary_line(result)}\n\n",
        table(
            "Examples",
            [("examples", lambda s: s["examples"])]
            + [(f"task {t}", lambda s, t=t: s["by_task"].get(t, 0)) for t in tasks]
            + [(f"method {m}", lambda s, m=m: s["by_method"].get(m, 0)) for m in methods],
        ),
        table(
            "Tokens per example",
            [(k, lambda s, k=k: s["tokens"][k]) for k in ("mean", "p50", "p95", "max", "total")]
            + [
                ("supervised share", lambda s: f"{s['supervised']['share']:.1%}"),
                (
                    "supervised share after cutoff",
                    lambda s: f"{s['supervised']['share_after_cutoff']:.1%}",
                ),
            ],
        ),
        table(
            f"Cutoff {result['cutoff']}",
            [
                (k, lambda s, k=k: s["cutoff"][k])
                for k in ("over", "lose_supervised", "dropped", "supervised_tokens_lost")
            ],
        ),
        table(
            "Quality",
            [
                ("parse failures", lambda s: len(s["parse_failures"])),
                ("skipped by training", lambda s: sum(s["skipped_by_training"].values())),
                ("duplicate copies", lambda s: s["duplicates"]["extra_copies"]),
                ("OpenAI tokens / epoch", lambda s: s["openai"]["tokens_per_epoch"]),
                ("OpenAI cost / epoch (USD)", lambda s: s["openai"]["cost_per_epoch_usd"]),
            ],
        ),
        "## Parse failures\n\n",
        "".join(f"- {f['where']}: {f['problem']}\n" for f in o["parse_failures"]) or "none\n",
        "\n## Duplicates\n\n",
        "".join(f"- {', '.join(g)}\n" for g in o["duplicates"]["groups"]) or "none\n",
    ]
    return "".join(parts)


def write(result: dict[str, Any], lengths: list[int], out_dir: Path) -> None:
    """``report.json``, ``report.md`` and ``tokens.png`` (a histogram) into `out_dir`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (out_dir / "report.md").write_text(markdown(result), encoding="utf-8")
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(lengths, bins=50)
    ax.axvline(result["cutoff"], color="red", linestyle="--", label=f"cutoff {result['cutoff']}")
    ax.set_xlabel(f"tokens per example ({result['tokenizer']})"[:90])
    ax.set_ylabel("examples")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "tokens.png", dpi=100)
    plt.close(fig)

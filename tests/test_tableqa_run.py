"""The table-QA task end to end through `fireact run`: its own prompt, the sql and calculate
tools over each question's tables, its scorer; and its bad inputs as one line, exit 2."""

from __future__ import annotations

import json

import pytest

from tests.helpers.clirun import run_cli

# dev/8: "What is the population density of Egypt in people per square kilometre? Round to two
# decimal places." -> 113.02, in three tool calls (tables, sql, calculate)
DENSITY = [
    " I need to find out which tables there are.\nAction: tables[]",
    " Population and area are in countries.\nAction: sql[SELECT population_millions, area_km2 "
    "FROM countries WHERE country = 'Egypt']",
    " Density is population over area.\nAction: calculate[{pop} * 1000000 / {area}]",
    " Rounded to two decimal places.\nAction: finish[113.02]",
]


def dev_example(i: int) -> dict:
    from fireact.tasks import task_spec

    path = task_spec("tableqa").splits["dev"]
    return json.loads(path.read_text().splitlines()[i])


def egypt_row() -> tuple[str, str]:
    (countries,) = [t for t in dev_example(8)["tables"] if t["name"] == "countries"]
    row = next(r for r in countries["rows"] if r[0] == "Egypt")
    header = countries["header"]
    pop = row[header.index("population_millions")]
    area = row[header.index("area_km2")]
    return repr(pop), repr(area)


def test_a_multi_step_table_question_is_solved_end_to_end(tmp_path):
    pop, area = egypt_row()
    script = tmp_path / "script.json"
    outputs = [o.format(pop=pop, area=area) for o in DENSITY]
    script.write_text(json.dumps({"tableqa/dev/8": outputs}))
    out = tmp_path / "run"
    result = run_cli(
        "run", "--task", "tableqa", "--split", "dev", "--start", "8", "--end", "9",
        "--tool", "sql,calculate", "--model", f"scripted:{script}", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (record,) = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    calls = [(c["action"], c["observation"]) for c in record["tool_calls"]]
    assert [c[0] for c in calls] == ["tables", "sql", "calculate"]
    assert calls[0][1].startswith("countries: country VARCHAR, continent VARCHAR")
    assert calls[1][1] == f"population_millions | area_km2 ; {pop} | {area} ; (1 row)"
    density = float(pop) * 1_000_000 / float(area)
    assert float(calls[2][1]) == pytest.approx(density, rel=1e-12) and round(density, 2) == 113.02
    assert (record["prediction"], record["em"], record["gold"]) == ("113.02", True, "113.02")
    assert record["trajectory"].endswith("Observation: Episode finished, reward = 1\n")
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["n"], summary["correct"]) == (1, 1)


def test_the_task_prompt_is_the_table_prompt(tmp_path):
    from fireact.agent import RunOptions
    from fireact.agent.runner import method_head, select_examples

    options = RunOptions(task="tableqa", tool="sql,calculate", model="scripted:x", out=tmp_path)
    head = method_head(options, select_examples(options)[0])
    assert head.startswith("Solve a question answering task over tables")
    assert "Action: sql[SELECT" in head and "Action: calculate[" in head


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--tool", "sql,nosuch"], "unknown tool 'nosuch'"),
        (["--tool", "sql,sql"], "name each tool once"),
        (["--data", "{bad}"], "bad.jsonl:1: "),
        (["--data", "{notables}"], "notables.jsonl:1: "),
    ],
    ids=["unknown-tool", "tool-twice", "table-csv-unparsable", "no-tables"],
)
def test_table_bad_inputs_are_one_line(tmp_path, args, says):
    (tmp_path / "broken.csv").write_text('a,b\n1,"unterminated\n')
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps(
            {"question": "Q?", "answer": "1", "tables": [{"name": "t", "csv": "broken.csv"}]}
        )
        + "\n"
    )
    notables = tmp_path / "notables.jsonl"
    notables.write_text(json.dumps({"question": "Q?", "answer": "1", "tables": []}) + "\n")
    filled = [a.format(bad=bad, notables=notables) for a in args]
    result = run_cli(
        "run", "--task", "tableqa", "--tool", "sql,calculate", "--model", "scripted:x.json",
        "--out", str(tmp_path / "o"), *filled,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and says in line, line
    assert not (tmp_path / "o").exists()

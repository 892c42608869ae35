"""The table-QA task's CoT and IO prompts: the same four worked examples as its ReAct prompt
(checked by running the ReAct prompt's own actions over the examples' shipped tables), each
example's tables written after its question, and `fireact run --method cot / io` on tableqa end
to end without ``--prompt``, through the real CLI and an OpenAI-compatible server, then
`fireact convert` in FireAct's CoT / IO shapes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from fireact.agent.parse import parse_action, parse_answer
from fireact.agent.prompts import user_prompt
from fireact.tableqa.data import TableData, TableQAExample, read_tableqa
from fireact.tableqa.score import score_tableqa
from fireact.tasks import task_spec
from fireact.tasks.tableqa import PROMPTS, example_text, question_with_tables, table_text
from fireact.tools.base import ToolState
from fireact.tools.calculate import CalculatorTool
from fireact.tools.sql import SQLTool, load_tables
from tests.helpers.clirun import run_cli
from tests.helpers.openai_server import OpenAIServer, ScriptRequest

SPEC = task_spec("tableqa")
EXAMPLES = read_tableqa(PROMPTS / "examples.jsonl", "examples")
REACT = SPEC.prompts["react"].read_text()
COT = user_prompt(str(SPEC.prompts["cot"]))
IO = user_prompt(str(SPEC.prompts["io"]))
# dev/0: "What was the revenue of Ironbridge Financial in 2017? Answer in millions of US
# dollars." -> 109.6 (its one table, financials, holds 24 rows)
DEV0 = SPEC.load("dev").examples[0]


def react_examples() -> list[list[str]]:
    """The ReAct prompt's worked examples: each a list of lines (question first)."""
    blocks = REACT.split("Here are some examples.\n", 1)[1].strip().split("\n\n\n")
    return [block.strip().splitlines() for block in blocks]


def replay_react(example: TableQAExample, lines: list[str]) -> list[tuple[str, str]]:
    """(observation shown in the ReAct prompt, observation the real tools give) per tool action."""

    async def go() -> list[tuple[str, str]]:
        sql, calc = SQLTool(), CalculatorTool()
        state = ToolState(episode_id=example.id)
        load_tables(state, example.tables)
        pairs = []
        try:
            for action, shown in zip(lines, lines[1:], strict=False):
                if not action.startswith("Action: ") or action.startswith("Action: finish["):
                    continue
                name, argument = parse_action(action.removeprefix("Action: "))
                tool = calc if name == "calculate" else sql
                real = await tool(name, argument, state)
                pairs.append((shown.removeprefix("Observation: "), real))
        finally:
            await sql.aclose()
        return pairs

    return asyncio.run(go())


def test_the_examples_are_the_react_prompts_and_its_observations_hold_on_their_tables():
    blocks = react_examples()
    assert [b[0] for b in blocks] == [ex.question for ex in EXAMPLES]
    assert [b[-2] for b in blocks] == [f"Action: finish[{ex.answer}]" for ex in EXAMPLES]
    counts = []
    for example, lines in zip(EXAMPLES, blocks, strict=True):
        pairs = replay_react(example, lines)
        assert [real for _, real in pairs] == [shown for shown, _ in pairs]
        counts.append(len(pairs))
    assert counts == [3, 2, 2, 3]  # every tables[], sql[...] and calculate[...] was checked


def test_the_cot_and_io_prompts_show_each_example_with_its_tables_and_the_right_answer():
    assert COT.count("\nThought: ") == IO.count("\nAnswer: ") == COT.count("\nAnswer: ") == 4
    for example in EXAMPLES:
        shown = example_text(example)
        assert f"\n\n{shown}\nAnswer: {example.answer}\n\n" in IO
        thought, answer = parse_answer(COT.split(f"\n\n{shown}\nThought:", 1)[1].split("\n\n")[0])
        assert answer == example.answer and thought.count("\n") == 0
        assert score_tableqa(answer, example.answer).em


def test_a_table_is_written_as_lines_of_cells_as_the_sql_tool_writes_them():
    table = TableData("standings", ("team", "goals", "rate"), (("Iron Wolves", 31, 0.5),))
    missing = TableData(
        "teams", ("team", "city"), (("Blue Owls", None), ("Iron Wolves", "Ashford"))
    )
    assert (
        table_text(table) == "Table standings (1 row):\nteam | goals | rate\nIron Wolves | 31 | 0.5"
    )
    assert question_with_tables("Who scored most? ", [table, missing]).splitlines() == [
        "Who scored most?",
        "Table standings (1 row):",
        "team | goals | rate",
        "Iron Wolves | 31 | 0.5",
        "Table teams (2 rows):",
        "team | city",
        "Blue Owls | NULL",
        "Iron Wolves | Ashford",
    ]


def run_dev0(tmp_path: Path, method: str, output: str) -> tuple[dict, str]:
    """`fireact run --task tableqa --method METHOD` on dev/0 against the test server; the
    episode record and the one prompt the server received."""

    prompts: list[tuple[str, str]] = []

    def answer(request: ScriptRequest) -> str:
        prompts.append((request.api, request.text))
        return output

    out = tmp_path / method
    with OpenAIServer(answer) as server:
        result = run_cli(
            "run", "--task", "tableqa", "--split", "dev", "--end", "1", "--method", method,
            "--model", "openai:tiny", "--api", "completions", "--base-url", server.base_url,
            "--out", str(out),
            env={"OPENAI_API_KEY": "sk-test"},
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (record,) = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    ((api, prompt),) = prompts
    assert api == "completions"  # a few-shot prompt is continued as text
    return record, prompt


@pytest.mark.parametrize(
    ("method", "output", "head", "ask", "text"),
    [
        (
            "cot",
            " The financials table gives 109.6 for Ironbridge Financial in 2017.\nAnswer: 109.6",
            COT,
            "Thought:",
            "Thought: The financials table gives 109.6 for Ironbridge Financial in 2017.\n"
            "Action: finish[109.6]\nObservation: Episode finished, reward = 1\n",
        ),
        (
            "io",
            " 109.6",
            IO,
            "Answer:",
            "Action: finish[109.6]\nObservation: Episode finished, reward = 1\n",
        ),
    ],
)
def test_cot_and_io_run_on_tableqa_without_a_prompt_and_score_em(
    tmp_path, method, output, head, ask, text
):
    record, prompt = run_dev0(tmp_path, method, output)
    # the four examples, then the question with its tables (no tool could read them)
    assert prompt == head + example_text(DEV0) + "\n" + ask
    assert "Table " in example_text(DEV0) and DEV0.question in prompt
    assert (record["method"], record["prediction"], record["gold"]) == (method, "109.6", "109.6")
    assert (record["em"], record["f1"]) == (True, 1.0)
    assert record["trajectory"] == text


def test_convert_gives_fireacts_cot_and_io_training_records(tmp_path):
    run_dev0(tmp_path, "cot", " Ironbridge Financial made 109.6 in 2017.\nAnswer: 109.6")
    run_dev0(tmp_path, "io", " 109.6")
    out = tmp_path / "sft.json"
    result = run_cli("convert", str(tmp_path / "cot"), str(tmp_path / "io"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    finished = "Action: finish[109.6]\nObservation: Episode finished, reward = 1"
    assert json.loads(out.read_text()) == [
        {
            "instruction": example_text(DEV0),
            "input": "",
            "output": f"Thought: Ironbridge Financial made 109.6 in 2017.\n{finished}",
        },
        {"instruction": example_text(DEV0), "input": "", "output": finished},
    ]

"""`fireact demo` without a browser: the episode hooks, the streamed order, Stop, keep / flag into
a run folder that score / convert / view read, bad input as one line, auth from the environment,
the Runs tab's folder rules. Real parts throughout: the scripted backend from a file, the shipped
local BM25 index, DuckDB for tables, the run-folder readers."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from fireact.agent.options import RunOptions
from fireact.data.convert import convert
from fireact.demo.app import auth_from_env
from fireact.demo.inputs import AskRequest, parse_tables
from fireact.demo.runs_tab import list_runs, run_html
from fireact.demo.session import Sessions
from fireact.demo.shared import Shared
from fireact.demo.store import FLAGGED, DemoStore
from fireact.errors import FireactError
from fireact.report.score import score_file
from fireact.report.view import read_run, write_view
from fireact.runs import EPISODES, read_records
from fireact.tasks import load_task
from tests.helpers.agents import GOOD, NIXON, QUESTION, DictTool, make_agent, run

SEARCH = " I need to search Milhouse.\nAction: search[Milhouse]"
FINISH = " Milhouse is named after Nixon.\nAction: finish[Richard Nixon]"
SQL = " Sum the goals.\nAction: sql[SELECT SUM(goals) AS total FROM data]"
TABLE_Q = "How many goals in all?"


class Demo:
    """Sessions and a store over a scripted model written to a file (the CLI's spec)."""

    def __init__(self, tmp_path: Path, script: dict, *, task: str = "hotpotqa", **shared):
        path = tmp_path / "script.json"
        path.write_text(json.dumps(script), encoding="utf-8")
        self.model = f"scripted:{path}"
        tool = "sql,calculate" if task == "tableqa" else "local"
        self.defaults = RunOptions(task=task, model=self.model, tool=tool, out=tmp_path / "demo")
        self.shared = Shared(load_task(task), **shared)
        self.sessions = Sessions(self.shared, self.defaults, needs_tables=task == "tableqa")
        self.store = DemoStore(tmp_path / "demo", task, self.defaults).open()

    def request(self, question: str, **values) -> AskRequest:
        return AskRequest(question, values.pop("model", self.model), **values)

    async def views(self, question: str, **values) -> list[tuple]:
        """(state, steps shown, pending action, message) at each view the stream yields."""
        out = []
        async for live in self.sessions.ask(self.request(question, **values)):
            pending = live.pending[1] if live.pending else None
            out.append((live.state, [s.action for s in live.steps], pending, live.message))
        self.last = live
        return out

    def ask(self, question: str, **values) -> list[tuple]:
        return asyncio.run(self.views(question, **values))


@pytest.fixture
def demo(tmp_path):
    d = Demo(tmp_path, {QUESTION: [SEARCH, FINISH], "Who?": [" Unsure.\nAction: finish[Bart]"]})
    yield d
    d.store.close()


# ------------------------------------------------------------------ the hooks (episode.py)


def test_agent_hooks_see_the_action_before_its_tool_and_each_step_after():
    from fireact.llm.scripted import ScriptedLLM

    events: list[tuple] = []
    tool = DictTool(NIXON)
    agent = make_agent(ScriptedLLM({"q1": GOOD}), tool)
    agent.on_action = lambda ep, t, a: events.append(("action", a, len(tool.calls)))
    agent.on_step = lambda ep, step: events.append(("step", step.action, len(ep.steps)))
    run(agent)
    assert events == [
        ("action", "search[Milhouse]", 0),  # before the tool was called
        ("step", "search[Milhouse]", 1),
        ("step", "finish[Richard Nixon]", 2),  # finish calls no tool: no on_action
    ]


# ------------------------------------------------------------------ streaming, Stop


def test_stream_shows_action_then_observation_then_next_step_then_answer(demo):
    views = demo.ask(QUESTION)
    assert [v[:3] for v in views] == [
        ("running", [], None),
        ("running", [], "search[Milhouse]"),
        ("running", ["search[Milhouse]"], None),
        ("running", ["search[Milhouse]", "finish[Richard Nixon]"], None),
        ("finished", ["search[Milhouse]", "finish[Richard Nixon]"], None),
    ]
    assert demo.last.ep.prediction == "Richard Nixon"
    assert demo.last.ep.steps[0].observation.startswith("Richard Milhous Nixon (January 9, 1913")


def test_the_same_question_replays_its_script_from_the_start_each_time(demo):
    first, second = demo.ask(QUESTION), demo.ask(QUESTION)
    assert (
        first[-1][:2]
        == second[-1][:2]
        == ("finished", ["search[Milhouse]", "finish[Richard Nixon]"])
    )


def test_stop_cancels_the_running_episode_and_its_tool_call(tmp_path):
    slow = DictTool(NIXON, slow=30.0)
    demo = Demo(tmp_path, {QUESTION: [SEARCH, FINISH]}, tools={})
    demo.shared.tools[demo.defaults.tool_setup()] = slow

    async def ask_then_stop() -> list[tuple]:
        views = []
        async for live in demo.sessions.ask(demo.request(QUESTION)):
            views.append((live.state, live.pending is not None))
            if live.pending is not None:
                assert demo.sessions.stop(live.id) is True
        assert demo.sessions.running == {}
        return views

    started = time.perf_counter()
    views = asyncio.run(ask_then_stop())
    assert time.perf_counter() - started < 5  # not the tool's 30 s
    assert views == [("running", False), ("running", True), ("stopped", False)]
    assert slow.calls == [("search", "Milhouse")] and demo.sessions.finished == {}
    demo.store.close()


# ------------------------------------------------------------------ keep / flag


def test_kept_episode_is_a_run_folder_that_score_convert_and_view_read(demo, tmp_path):
    demo.ask(QUESTION)
    record = demo.store.keep(demo.sessions.get(demo.last.id), note="good")
    out = tmp_path / "demo"
    assert [r.id for r in read_records(out / EPISODES)] == [record.id]
    assert record.extra["demo"]["note"] == "good"
    assert record.extra["demo"]["started_at"] < record.extra["demo"]["ended_at"]
    score = score_file(out)
    assert (score.task, score.denominator, score.count_line()[:18]) == (
        "hotpotqa",
        1,
        "EM 100.00 = 1/1; 1",
    )
    result = convert([out], "alpaca", tmp_path / "train.json")
    assert result["kept"] == 1
    rows = json.loads((tmp_path / "train.json").read_text())
    assert rows[0]["instruction"] == QUESTION
    assert rows[0]["output"].endswith(
        "Action: finish[Richard Nixon]\nObservation: Episode finished, reward = True\n"
    )
    assert "demo-" in write_view(out).read_text()


def test_keep_with_a_corrected_answer_grades_the_episode_against_it(demo, tmp_path):
    demo.ask("Who?")
    record = demo.store.keep(demo.sessions.get(demo.last.id), corrected="Milhouse")
    assert (record.gold, record.prediction, record.em, record.reward) == (
        "Milhouse",
        "Bart",
        False,
        False,
    )
    assert record.trajectory.endswith("Observation: Episode finished, reward = False\n")
    assert record.extra["demo"]["corrected_answer"] == "Milhouse"
    assert read_run(tmp_path / "demo").categories == ["wrong"]


def test_an_episode_is_kept_once(demo):
    demo.ask(QUESTION)
    done = demo.sessions.get(demo.last.id)
    demo.store.keep(done)
    with pytest.raises(FireactError, match=f"episode {done.ep.id} is already kept"):
        demo.store.keep(done)


def test_flag_needs_a_reason_and_writes_flagged_jsonl(demo, tmp_path):
    demo.ask("Who?")
    done = demo.sessions.get(demo.last.id)
    with pytest.raises(FireactError, match="^flag: give a reason"):
        demo.store.flag(done, "  ")
    demo.store.flag(done, "Bart is wrong")
    [record] = read_records(tmp_path / "demo" / FLAGGED)
    assert (record.prediction, record.extra["demo"]["reason"]) == ("Bart", "Bart is wrong")
    assert not (tmp_path / "demo" / EPISODES).exists()  # flagged is not kept


def test_a_second_demo_on_the_same_folder_is_refused(demo, tmp_path):
    with pytest.raises(FireactError, match="demo in progress in"):
        DemoStore(tmp_path / "demo", "hotpotqa", demo.defaults).open()


def test_a_restarted_demo_knows_what_was_kept(demo, tmp_path):
    demo.ask(QUESTION)
    done = demo.sessions.get(demo.last.id)
    demo.store.keep(done)
    demo.store.close()
    again = DemoStore(tmp_path / "demo", "hotpotqa", demo.defaults).open()
    try:
        assert list(again.kept) == [done.ep.id]
        with pytest.raises(FireactError, match="already kept"):
            again.keep(done)
    finally:
        again.close()
        demo.store = DemoStore(tmp_path / "demo", "hotpotqa", demo.defaults).open()


# ------------------------------------------------------------------ tables


def test_table_box_csv_feeds_the_sql_tool(tmp_path):
    demo = Demo(
        tmp_path,
        {TABLE_Q: [SQL, " Done.\nAction: finish[12]"]},
        task="tableqa",
    )
    views = demo.ask(TABLE_Q, tool="sql,calculate", table="team,goals\nOwls,5\nWolves,7\n")
    assert views[-1][:2] == (
        "finished",
        ["sql[SELECT SUM(goals) AS total FROM data]", "finish[12]"],
    )
    assert "12" in demo.last.ep.steps[0].observation
    demo.store.close()


def test_table_box_json_in_the_task_format():
    tables = parse_tables('[{"name": "t", "header": ["a"], "rows": [[1], [2]]}]')
    assert tables == [{"name": "t", "header": ["a"], "rows": [[1], [2]]}]


# ------------------------------------------------------------------ bad input: one line


@pytest.mark.parametrize(
    ("question", "values", "message"),
    [
        ("  ", {}, "question: type a question"),
        ("Who?", {"tool": "nope"}, "run option 'tool' = 'nope': unknown tool 'nope'"),
        ("Who?", {"model": "scripted:/no/such.json"}, "model scripted:/no/such.json: script file"),
        ("Who?", {"model": "gpt4"}, "run option 'model' = 'gpt4'"),
        ("Who?", {"method": "reflexion"}, "method reflexion needs gold answers"),
        ("Why?", {}, "no script for this question"),
        ("Who?", {"max_steps": 2.5}, "max steps: expected a whole number, got 2.5"),
    ],
)
def test_bad_input_is_one_line_and_the_next_question_works(demo, question, values, message):
    views = demo.ask(question, **values)
    assert len(views) == 1 and views[0][0] == "error"
    assert message in views[0][3] and "\n" not in views[0][3]
    assert demo.ask(QUESTION)[-1][0] == "finished"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "table: this task answers over a table"),
        ("[{", "table: not valid JSON"),
        ("a,a\n1,2", "table: line 1: column 'a' appears twice"),
        ('{"name": "t", "header": ["a"], "rows": [[1, 2]]}', "table: table 't' row 1"),
    ],
)
def test_bad_table_is_one_line(text, message):
    with pytest.raises(FireactError, match="^" + message.replace("[", r"\[")):
        parse_tables(text)


# ------------------------------------------------------------------ auth, runs tab


def test_auth_from_the_environment():
    assert auth_from_env({}) is None
    assert auth_from_env({"FIREACT_DEMO_AUTH": "ann:s3:cret"}) == ("ann", "s3:cret")


@pytest.mark.parametrize("value", ["ann", "ann:", ":pw"])
def test_malformed_auth_is_one_line_without_the_value(value):
    with pytest.raises(FireactError, match="^FIREACT_DEMO_AUTH: expected user:password") as err:
        auth_from_env({"FIREACT_DEMO_AUTH": value})
    assert value not in str(err.value).split("got")[1]


def test_runs_tab_opens_only_the_run_folders_it_lists(demo, tmp_path):
    demo.ask(QUESTION)
    demo.store.keep(demo.sessions.get(demo.last.id))
    (tmp_path / "notarun").mkdir()
    assert list_runs(tmp_path) == ["demo"]
    page = run_html(tmp_path, "demo")
    assert "1 of 1 episodes · EM 1.000" in page and 'sandbox="allow-scripts"' in page
    with pytest.raises(FireactError, match="^runs: ../etc is not a run folder"):
        run_html(tmp_path, "../etc")

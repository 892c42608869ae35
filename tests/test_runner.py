"""The runner: concurrent episodes, the run folder, resume (incl. after kill -9), summaries."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fireact.agent import RunOptions, arun, generate, options_from_dict, run
from fireact.agent.replay import ReplayTool, split_trajectory
from fireact.errors import FireactError
from tests.helpers.agents import DictTool
from tests.helpers.paths import SHARED_DATA
from tests.helpers.runs import N, options, records, tool, without_timings

REPO = Path(__file__).resolve().parents[1]


def test_records_are_the_same_with_concurrency_1_and_32(tmp_path):
    one = run(options(tmp_path, "c1", concurrency=1), tool=tool())
    many = run(options(tmp_path, "c32", concurrency=32), tool=tool())
    assert without_timings(records(tmp_path / "c1")) == without_timings(records(tmp_path / "c32"))
    rows = records(tmp_path / "c1")
    assert len(rows) == N and len({r["id"] for r in rows}) == N
    for key in (
        "n",
        "done",
        "finished",
        "unfinished",
        "correct",
        "em",
        "f1",
        "mean_steps",
        "errors",
    ):
        assert one[key] == many[key], key
    # 0, 2 and 4 mod 5 are right ("Answer 4!" normalises to "answer 4"); 3 mod 5 is capped
    assert (one["n"], one["correct"], one["finished"], one["unfinished"]) == (N, 24, 32, 8)
    assert one["em"] == 24 / N and one["mean_steps"] == (2 * 8 + 2 * 8 + 2 * 8 + 3 * 8 + 2 * 8) / N


def test_record_schema_and_rules_in_the_file(tmp_path):
    run(options(tmp_path), tool=tool())
    by_id = {r["id"]: r for r in records(tmp_path / "out")}
    capped, failed, invalid = by_id["e3"], by_id["e4"], by_id["e2"]
    assert (capped["finished"], capped["prediction"], capped["em"], capped["steps"]) == (
        False,
        None,
        False,
        3,
    )
    assert failed["tool_calls"][0]["observation"] == "Tool error: RuntimeError: backend down"
    assert failed["prediction"] == "Answer 4!" and failed["reward"] is True
    assert invalid["reasks"] == 1 and invalid["trajectory"].startswith(
        "Thought: a\nAction: look[topic 2]\nObservation: Invalid action: look[topic 2]."
    )
    expected = {
        "id", "task", "split", "method", "format", "model", "question", "gold", "prediction",
        "finished", "reward", "em", "f1", "steps", "trajectory", "messages", "tool_calls",
        "step_stats", "llm_calls", "reasks", "prompt_tokens", "completion_tokens", "cost_usd", "llm_latency_s",
        "tool_latency_s", "wall_s", "tries", "reflections", "attempts", "error",
    }  # fmt: skip
    assert set(by_id["e0"]) == expected
    assert by_id["e0"]["task"] == "hotpotqa" and by_id["e0"]["split"] == "questions"
    assert set(by_id["e0"]["tool_calls"][0]) == {"action", "argument", "observation", "latency_s"}
    assert len(by_id["e0"]["step_stats"]) == by_id["e0"]["steps"]
    assert sum(s["llm_calls"] for s in by_id["e0"]["step_stats"]) == by_id["e0"]["llm_calls"]


def test_summary_and_config_files(tmp_path):
    summary = run(options(tmp_path), tool=tool())
    on_disk = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert on_disk == json.loads(json.dumps(summary))
    for key in ("task", "split", "n", "finished", "em", "f1", "mean_steps", "prompt_tokens",
                "completion_tokens", "cost_usd", "wall_s", "episodes_per_s", "options"):  # fmt: skip
        assert key in summary
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["n"] == N and config["options"]["concurrency"] == 8
    assert "key" not in json.dumps(config).lower()


def test_resume_after_a_torn_last_line_gives_each_episode_once(tmp_path):
    full = run(options(tmp_path, "full"), tool=tool())
    lines = (tmp_path / "full" / "episodes.jsonl").read_text().splitlines(keepends=True)
    partial = tmp_path / "partial"
    partial.mkdir()
    torn = lines[15][: len(lines[15]) // 2]
    (partial / "episodes.jsonl").write_text("".join(lines[:15]) + torn)
    resumed = run(options(tmp_path, "partial", resume=True), tool=tool())
    rows = records(partial)
    assert len(rows) == N and len({r["id"] for r in rows}) == N
    assert without_timings(rows) == without_timings(records(tmp_path / "full"))
    assert resumed["episodes_run"] == N - 15
    assert (resumed["correct"], resumed["finished"]) == (full["correct"], full["finished"])


def test_resume_of_a_complete_run_runs_nothing(tmp_path):
    run(options(tmp_path), tool=tool())
    again = run(options(tmp_path, resume=True), tool=tool())
    assert again["episodes_run"] == 0 and again["done"] == N and len(records(tmp_path / "out")) == N


def test_resume_refuses_other_options_and_a_bad_middle_line(tmp_path):
    run(options(tmp_path), tool=tool())
    with pytest.raises(FireactError, match="method"):
        run(options(tmp_path, resume=True, method="reflexion"), tool=tool())
    path = tmp_path / "out" / "episodes.jsonl"
    path.write_text("not json\n" + path.read_text())
    with pytest.raises(FireactError, match=r"episodes.jsonl:1"):
        run(options(tmp_path, resume=True), tool=tool())


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"temperature": 0.5}, "temperature: "),
        ({"max_tokens": 64}, "max_tokens: "),
        ({"max_steps": 4}, "max_steps: "),
        ({"format": "alpaca"}, "format: "),
        ({"seed": 1}, "seed: "),
    ],
)
def test_resume_refuses_a_setting_that_changes_results(tmp_path, change, named):
    run(options(tmp_path, n=4), tool=tool())
    with pytest.raises(FireactError, match=named) as info:
        run(options(tmp_path, n=4, resume=True, **change), tool=tool())
    assert "use a new --out" in str(info.value)


def test_resume_refuses_an_edited_prompt_file(tmp_path):
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("Who? \nThought: x\nAction: finish[y]\n")
    run(options(tmp_path, n=4, prompt=prompt), tool=tool())
    prompt.write_text("Who else? \nThought: x\nAction: finish[z]\n")
    with pytest.raises(FireactError, match="few-shot prompt text changed"):
        run(options(tmp_path, n=4, prompt=prompt, resume=True), tool=tool())


def test_resume_accepts_settings_that_do_not_change_results(tmp_path):
    first = run(options(tmp_path, n=4, max_steps=3), tool=tool())
    path = tmp_path / "out" / "episodes.jsonl"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:2]))
    again = options(tmp_path, n=4, resume=True, concurrency=1, llm_timeout=5.0, tool_timeout=9.0)
    resumed = run(again, tool=tool())
    assert (resumed["episodes_run"], resumed["correct"]) == (2, first["correct"])


def test_non_empty_out_needs_resume_or_overwrite(tmp_path):
    run(options(tmp_path), tool=tool())
    with pytest.raises(FireactError, match="not empty"):
        run(options(tmp_path), tool=tool())
    summary = run(options(tmp_path, overwrite=True, end=10), tool=tool())
    assert summary["n"] == 10 and len(records(tmp_path / "out")) == 10


def test_generate_keeps_successful_episodes(tmp_path):
    summary = generate(options(tmp_path), tool=tool())
    kept = records_of(tmp_path / "out" / "trajectories.jsonl")
    # 24 episodes succeed; 8 of them saw a "Tool error" observation and are not training data
    assert summary["kept"] == len(kept) == 16 and all(r["reward"] for r in kept)
    assert summary["dropped_tool_errors"] == 8
    summary = generate(options(tmp_path, "all", keep="all", keep_tool_errors=True), tool=tool())
    assert summary["kept"] == N


def records_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_failed_episode_is_recorded_and_the_run_goes_on(tmp_path):
    opts = options(tmp_path)
    script = json.loads(Path(opts.model.split(":", 1)[1]).read_text())
    script["e0"] = script["e0"][:1]  # the model has nothing more to say after one step
    Path(opts.model.split(":", 1)[1]).write_text(json.dumps(script))
    summary = run(opts, tool=tool())
    e0 = next(r for r in records(tmp_path / "out") if r["id"] == "e0")
    assert "ScriptExhaustedError" in e0["error"] and e0["finished"] is False
    assert summary["errors"] == 1 and summary["done"] == N


def test_resume_retries_errored_episodes_without_duplicates(tmp_path):
    opts = options(tmp_path)
    script_path = Path(opts.model.split(":", 1)[1])
    full_script = json.loads(script_path.read_text())
    broken = dict(full_script, e0=full_script["e0"][:1])  # e0's model call fails after a step
    script_path.write_text(json.dumps(broken))
    assert run(opts, tool=tool())["errors"] == 1
    script_path.write_text(json.dumps(full_script))  # the outage is over
    resumed = run(opts.model_copy(update={"resume": True}), tool=tool())
    rows = records(tmp_path / "out")
    assert resumed["episodes_run"] == 1 and resumed["errors"] == 0
    assert sorted(r["id"] for r in rows) == sorted(f"e{i}" for i in range(N))
    e0 = next(r for r in rows if r["id"] == "e0")
    assert (e0["error"], e0["prediction"], e0["em"]) == (None, "answer 0", True)


def test_a_user_error_from_a_tool_stops_the_run(tmp_path):
    class RejectingTool(DictTool):
        async def __call__(self, action, argument, state):
            raise FireactError("SerpAPI rejected the API key: check SERPAPI_API_KEY")

    with pytest.raises(FireactError, match="rejected"):
        run(options(tmp_path), tool=RejectingTool({}))


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"task": "nope"}, "task"),
        ({"concurrency": 0}, "concurrency"),
        ({"max_steps": 0}, "max_steps"),
        ({"method": "magic"}, "method"),
        ({"format": "xml"}, "format"),
        ({"noise": "loud"}, "noise"),
        ({"noise_p": 1.5}, "noise_p"),
        ({"model": "gpt-4"}, "model"),
        ({"temperature": -1}, "temperature"),
        ({"colour": "red"}, "colour"),
        ({"method": "cot", "format": "alpaca"}, "format fewshot"),
        ({"resume": True, "overwrite": True}, "resume / overwrite"),
        ({"start": 5, "end": 5}, "end 5"),
        ({"tool": "wikipedia", "tool_style": "google"}, "tool_style"),
        ({"base_url": "http://x", "model": "scripted:f.json"}, "base_url"),
    ],
)
def test_invalid_options_name_the_field(tmp_path, values, field):
    base = {"task": "hotpotqa", "model": "scripted:f.json", "out": str(tmp_path / "o")}
    with pytest.raises(FireactError, match=field):
        options_from_dict(base | values)


def test_options_from_dict_uses_defaults_for_none(tmp_path):
    opts = options_from_dict(
        {
            "task": "hotpotqa",
            "model": "openai:gpt-4",
            "out": "o",
            "split": None,
            "concurrency": None,
        }
    )
    assert (opts.concurrency, opts.max_steps, opts.method) == (64, 11, "react")


@pytest.mark.parametrize(
    ("model", "fmt", "expected"),
    [
        ("openai:gpt-4", "fewshot", (0.7, 1000)),  # the prompted teacher: FireAct's defaults
        ("openai:ft:gpt-3.5-turbo-0613:org::x", "chat", (0.0, 1000)),  # FireAct's GPT example
        ("openai:my-llama", "alpaca", (0.0, 1000)),  # a fine-tuned model behind vLLM
        ("hf:some/model", "fewshot", (0.0, 1000)),  # FireAct's llama backend is greedy
    ],
)
def test_generation_defaults_follow_fireact_per_setting(model, fmt, expected):
    opts = options_from_dict({"task": "hotpotqa", "model": model, "format": fmt, "out": "o"})
    assert (opts.temperature, opts.max_tokens) == expected


def test_generation_settings_given_by_the_user_win():
    values = {"task": "hotpotqa", "model": "openai:gpt-4", "out": "o"}
    opts = options_from_dict(values | {"temperature": 0.0, "max_tokens": 64})
    assert (opts.temperature, opts.max_tokens) == (0.0, 64)


def test_run_with_the_local_tool_and_shipped_data(tmp_path):
    question_ids = ["hotpotqa/dev/0", "hotpotqa/dev/1"]
    script = tmp_path / "s.json"
    script.write_text(
        json.dumps(
            {
                i: [" Search.\nAction: search[Scott Derrickson]", " Done.\nAction: finish[yes]"]
                for i in question_ids
            }
        )
    )
    summary = run(
        RunOptions(
            task="hotpotqa", end=2, model=f"scripted:{script}", out=tmp_path / "o", progress=False
        )
    )
    rows = records(tmp_path / "o")
    assert {r["id"] for r in rows} == set(question_ids) and summary["finished"] == 2
    assert all(r["tool_calls"][0]["observation"] and not r["error"] for r in rows)


# ---------------------------------------------------------------- kill -9 and resume

KILLED_RUN = """
import asyncio, json, sys
from fireact.agent.runner import RunOptions, arun
from fireact.llm.scripted import ScriptedLLM, load_script
from fireact.tools.base import open_page

class SlowScripted(ScriptedLLM):
    async def complete(self, prompt, **kw):
        await asyncio.sleep(0.15)  # the whole run takes ~4 s: the kill lands midway
        return await super().complete(prompt, **kw)

class Tool:
    name, actions = "dict", frozenset({"search"})
    async def __call__(self, action, argument, state):
        return "Result for " + argument
    async def aclose(self):
        pass

opts = RunOptions(**json.loads(sys.argv[1]))
asyncio.run(arun(opts, llm=SlowScripted(load_script(opts.model.split(":", 1)[1])), tool=Tool()))
"""


def test_kill_9_midway_then_resume_gives_each_episode_once(tmp_path):
    opts = options(tmp_path, concurrency=4)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, opts.model_dump_json()], cwd=REPO, env=env
    )
    path = opts.out / "episodes.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if path.is_file() and path.read_bytes().count(b"\n") >= 8:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = path.read_bytes().count(b"\n")
    assert 8 <= before < N
    summary = run(opts.model_copy(update={"resume": True}), tool=tool())
    ids = [r["id"] for r in records(opts.out)]
    assert len(ids) == N and len(set(ids)) == N
    assert summary["done"] == N and summary["episodes_run"] == N - before


# ---------------------------------------------------------------- FireAct's own trajectories


def test_replaying_fireacts_hotpotqa_set_reproduces_every_trajectory(tmp_path):
    alpaca = SHARED_DATA / "finetune" / "alpaca_format" / "hotpotqa.json"
    chat = SHARED_DATA / "finetune" / "gpt_format" / "hotpotqa.jsonl"
    if not alpaca.is_file():
        pytest.skip("FireAct's fine-tuning data is not available")
    rows = json.loads(alpaca.read_text())
    turns, observations, questions = {}, {}, []
    for i, row in enumerate(rows):
        model_turns, obs = split_trajectory(row["output"])
        gold = model_turns[-1].split("finish[", 1)[1][:-1]
        turns[f"r{i}"], observations[f"r{i}"] = model_turns, obs[:-1]
        questions.append({"_id": f"r{i}", "question": row["instruction"], "answer": gold})
    (tmp_path / "q.json").write_text(json.dumps(questions))
    (tmp_path / "s.json").write_text(json.dumps(turns))
    opts = RunOptions(
        task="hotpotqa", data=tmp_path / "q.json", model=f"scripted:{tmp_path / 's.json'}",
        format="alpaca", out=tmp_path / "o", concurrency=32, progress=False,
    )  # fmt: skip
    summary = asyncio.run(arun(opts, tool=ReplayTool(observations)))
    assert summary["correct"] == len(rows)
    by_id = {r["id"]: r for r in records(tmp_path / "o")}
    chats = [json.loads(line)["messages"] for line in chat.read_text().splitlines()]
    for i, row in enumerate(rows):
        assert by_id[f"r{i}"]["trajectory"] == row["output"]
        ours = by_id[f"r{i}"]["messages"]
        # the two FireAct sets differ in whitespace around some questions
        assert ours[0]["content"].strip() == chats[i][0]["content"].strip()
        assert ours[1:] == chats[i][1:]


def test_noisy_and_cached_local_tool_from_options(tmp_path):
    script = tmp_path / "s.json"
    outputs = [" Search.\nAction: search[Scott Derrickson]", " Done.\nAction: finish[yes]"]
    script.write_text(json.dumps({"hotpotqa/dev/0": outputs}))
    common = {"task": "hotpotqa", "end": 1, "model": f"scripted:{script}", "progress": False}
    run(RunOptions(**common, out=tmp_path / "noisy", noise="none", noise_p=1.0))
    assert records(tmp_path / "noisy")[0]["tool_calls"][0]["observation"] == "None"
    run(RunOptions(**common, out=tmp_path / "cached", cache=str(tmp_path / "c.sqlite")))
    assert (tmp_path / "c.sqlite").is_file()
    assert records(tmp_path / "cached")[0]["tool_calls"][0]["observation"] != "None"


def test_reflexion_needs_gold_answers(tmp_path):
    opts = RunOptions(
        task="strategyqa",
        split="test",
        method="reflexion",
        model="scripted:x.json",
        out=tmp_path / "o",
    )
    with pytest.raises(FireactError, match="gold answers"):
        run(opts)
    assert not (tmp_path / "o").exists()


def test_an_hf_model_batches_every_episode_in_flight(tmp_path):
    import asyncio as aio

    from fireact.agent.runner import build_llm
    from tests.helpers.tiny_models import build_tiny_llama

    model = build_tiny_llama(tmp_path / "m")
    opts = RunOptions(task="hotpotqa", model=f"hf:{model}", out=tmp_path / "o", concurrency=48)
    llm = build_llm(opts)
    try:
        assert llm.max_batch_size == 48
    finally:
        aio.run(llm.aclose())


@pytest.mark.parametrize(("given", "hedge"), [("auto", "auto"), ("2.5", 2.5), (None, None)])
def test_hedge_after_takes_seconds_or_auto_to_the_backend(tmp_path, given, hedge):
    import asyncio as aio

    from fireact.agent.runner import build_llm

    url = "http://127.0.0.1:1/v1"
    opts = RunOptions(
        task="hotpotqa", model="openai:m", base_url=url, out=tmp_path, hedge_after=given
    )
    llm = build_llm(opts)
    try:
        assert llm.hedge_after_s == hedge
    finally:
        aio.run(llm.aclose())


@pytest.mark.parametrize("given", ["0", "-1", "fast"])
def test_hedge_after_refuses_anything_else_in_one_line(tmp_path, given):
    with pytest.raises(FireactError) as err:
        options_from_dict(
            {"task": "hotpotqa", "model": "openai:m", "out": str(tmp_path), "hedge_after": given}
        )
    assert str(err.value) == f"run option 'hedge_after' = '{given}': give seconds > 0, or auto"

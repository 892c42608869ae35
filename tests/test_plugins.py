"""Plug-ins and additions: a third-party package adds a task, a tool and a model backend through
entry points; a task or tool added inside fireact is one new file plus one registration line.

The plug-in package `tests/plugin_pkg` (fireact-toy) is installed with pip into a folder of its
own (``pip install --target``: a real wheel build, with its ``.dist-info/entry_points.txt``), and
fireact runs with that folder on ``PYTHONPATH``; the shared virtual environment is not changed.
"""

from __future__ import annotations

import difflib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.clirun import run_cli

PLUGIN = Path(__file__).parent / "plugin_pkg"
PACKAGE = Path(__file__).resolve().parents[1] / "src" / "fireact"


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory) -> dict[str, str]:
    """The environment of a fireact with fireact-toy installed."""
    root = tmp_path_factory.mktemp("plugin")
    source = root / "fireact-toy"
    shutil.copytree(PLUGIN, source)  # the build writes build/ and *.egg-info beside its source
    site = root / "site"
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation"]
    done = subprocess.run(
        [*pip, "--no-index", "--quiet", "--target", str(site), str(source)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert (site / "fireact_toy-0.1.0.dist-info" / "entry_points.txt").is_file()
    return {"PYTHONPATH": str(site)}


def python(code: str, env: dict[str, str]) -> str:
    """Run `code` with the given environment added; its stdout."""
    import os

    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env}
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_plugin_adds_a_task_a_tool_and_a_backend(plugin_env):
    out = python(
        "import asyncio, json\n"
        "from fireact.tasks import TASKS, load_task\n"
        "from fireact.tools import ToolState, build, names\n"
        "from fireact.llm import load_llm, spec_help\n"
        "task = load_task('toy')\n"
        "tool = build('toy')\n"
        "reply = asyncio.run(load_llm('echo:ice').complete('q'))\n"
        "print(json.dumps({'tasks': list(TASKS), 'tools': names(), 'help': spec_help(),\n"
        "    'ids': [e.id for e in task.examples], 'reward': task.reward_text(True),\n"
        "    'wrong': task.score('snow', 'ice').f1, 'reply': reply.text,\n"
        "    'define': asyncio.run(tool('define', 'ice', ToolState()))}))\n",
        plugin_env,
    )
    assert json.loads(out) == {
        "tasks": ["hotpotqa", "bamboogle", "strategyqa", "mmlu", "tableqa", "arith", "toy"],
        "tools": ["local", "serpapi", "wikipedia", "calculate", "sql", "toy"],
        "help": "use openai:MODEL, vllm:PATH_OR_ID[:ADAPTER], hf:PATH[:ADAPTER], scripted:FILE or echo:ANSWER",
        "ids": ["toy-sky", "toy/test/1"],
        "reward": "full marks",
        "wrong": 0.25,
        "reply": " I know this.\nAction: finish[ice]",
        "define": "[toy dictionary] ice: frozen water",
    }


def test_score_uses_the_plugin_scorer(plugin_env, tmp_path):
    records = [
        {"id": "toy-sky", "task": "toy", "prediction": "Blue", "gold": "blue", "finished": True},
        {"id": "toy/test/1", "task": "toy", "prediction": "snow", "gold": "ice", "finished": True},
    ]
    path = tmp_path / "episodes.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = run_cli("score", "--json", str(path), env=plugin_env)
    assert result.returncode == 0, result.stderr
    scored = json.loads(result.stdout)[0]
    assert (scored["correct"], scored["em"], scored["f1"]) == (1, 0.5, 0.625)  # wrong: F1 0.25
    without = run_cli("score", "--json", str(path))  # the plug-in not installed
    assert without.returncode == 2
    assert "unknown task 'toy': choose one of hotpotqa, bamboogle, strategyqa, mmlu" in (
        without.stderr
    )


def test_run_an_episode_with_the_plugin_task_and_tool(plugin_env, tmp_path):
    script = tmp_path / "script.json"
    script.write_text(
        json.dumps(
            {
                "toy-sky": [
                    " I should look up sky.\nAction: define[sky]",
                    " The sky is blue.\nAction: finish[blue]",
                ],
                "toy/test/1": [" I guess.\nAction: finish[snow]"],
            }
        )
    )
    out = tmp_path / "run"
    args = ["run", "--task", "toy", "--tool", "toy", "--model", f"scripted:{script}"]
    result = run_cli(*args, "--out", str(out), env=plugin_env)
    assert result.returncode == 0, result.stderr
    episodes = {
        r["id"]: r for r in map(json.loads, (out / "episodes.jsonl").read_text().splitlines())
    }
    sky, ice = episodes["toy-sky"], episodes["toy/test/1"]
    assert sky["tool_calls"][0]["action"] == "define"
    assert sky["tool_calls"][0]["observation"].startswith("[toy dictionary] sky: the space")
    assert (sky["em"], sky["f1"], ice["em"], ice["f1"]) == (True, 1.0, False, 0.25)
    assert "Episode finished, reward = full marks" in sky["trajectory"]
    assert "Episode finished, reward = no marks" in ice["trajectory"]
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["task"], summary["em"], summary["f1"]) == ("toy", 0.5, 0.625)


def test_convert_writes_the_plugin_tasks_reward(plugin_env, tmp_path):
    trajectory = (
        " The sky is blue.\nAction: finish[blue]\nObservation: Episode finished, reward = True\n"
    )
    record = {"id": "toy-sky", "task": "toy", "method": "react", "question": "What colour is the sky?",
              "trajectory": trajectory, "em": True, "finished": True}  # fmt: skip
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "episodes.jsonl").write_text(json.dumps(record) + "\n")
    out = tmp_path / "sft.json"
    result = run_cli("convert", str(tmp_path / "run"), "--to", "alpaca", "--out", str(out),
                     env=plugin_env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    output = json.loads(out.read_text())[0]["output"]
    assert output.endswith("Observation: Episode finished, reward = full marks\n")


# ------------------------------------------------------------------ additions inside fireact

TOY_TASK = '''\
"""Toy: Bamboogle's questions, right when the answer is anywhere in the prediction."""

from fireact.resources import resource
from fireact.tasks.bamboogle import read_bamboogle
from fireact.tasks.base import Score, TaskSpec


def contains(prediction: str, gold: str) -> Score:
    ok = gold.lower() in prediction.lower()
    return Score(ok, float(ok))


SPEC = TaskSpec(
    name="toy",
    read=read_bamboogle,
    splits={"test": resource("bamboogle", "test.csv")},
    scorer=contains,
    prompt_task="hotpotqa",
)
'''
TOY_TOOL = '''\
"""Echo: a tool that answers echo[text] with the text."""

from fireact.tools.base import ToolSpec, ToolState


class EchoTool:
    name = "echo"
    actions = frozenset({"echo"})

    async def __call__(self, action: str, argument: str, state: ToolState) -> str:
        return f"echo: {argument}"

    async def aclose(self) -> None:
        pass


SPEC = ToolSpec("echo", EchoTool, frozenset({"echo"}))
'''


def register_line(path: Path, line: str) -> None:
    """Add `line` as the last entry of the ``BUILT_IN = (...)`` tuple of `path`."""
    lines = path.read_text().splitlines(keepends=True)
    start = lines.index("BUILT_IN = (\n")
    end = lines.index(")\n", start)
    lines.insert(end, line)
    path.write_text("".join(lines))


def diff_size(before: Path, after: Path) -> dict[str, tuple[int, int]]:
    """``{file: (lines added, lines removed)}`` for every Python file that differs."""
    sizes = {}
    for new in sorted(after.rglob("*.py")):
        rel = new.relative_to(after)
        old = before / rel
        a = old.read_text().splitlines() if old.is_file() else []
        b = new.read_text().splitlines()
        diff = list(difflib.unified_diff(a, b, lineterm="", n=0))
        added = sum(1 for d in diff if d.startswith("+") and not d.startswith("+++"))
        removed = sum(1 for d in diff if d.startswith("-") and not d.startswith("---"))
        if added or removed:
            sizes[str(rel)] = (added, removed)
    return sizes


def test_adding_a_task_and_a_tool_is_one_file_and_one_line_each(tmp_path):
    copy = tmp_path / "src" / "fireact"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("resources", "__pycache__"))
    (copy / "resources").symlink_to(PACKAGE / "resources")
    (copy / "tasks" / "toy.py").write_text(TOY_TASK)
    register_line(copy / "tasks" / "__init__.py", '    "fireact.tasks.toy:SPEC",\n')
    (copy / "tools" / "echo.py").write_text(TOY_TOOL)
    register_line(copy / "tools" / "__init__.py", '    "fireact.tools.echo:SPEC",\n')

    sizes = diff_size(PACKAGE, copy)
    print("\n".join(f"{rel}: +{a} -{r}" for rel, (a, r) in sizes.items()))
    assert {rel: r for rel, (a, r) in sizes.items()} == dict.fromkeys(sizes, 0)  # nothing removed
    assert {rel: a for rel, (a, r) in sizes.items() if not rel.endswith("__init__.py")} == {
        "tasks/toy.py": len(TOY_TASK.splitlines()),
        "tools/echo.py": len(TOY_TOOL.splitlines()),
    }
    assert {rel: a for rel, (a, r) in sizes.items() if rel.endswith("__init__.py")} == {
        "tasks/__init__.py": 1,
        "tools/__init__.py": 1,
    }

    out = python(
        "import asyncio, fireact\n"
        "from fireact.tasks import TASKS, load_task\n"
        "from fireact.tools import ToolState, build, names\n"
        "task = load_task('toy')\n"
        "print(fireact.__file__)\n"
        "print(list(TASKS)[-1], names()[-1], len(task.examples), task.score('It is James Madison.',"
        " 'james madison').em)\n"
        "print(asyncio.run(build('echo')('echo', 'hi', ToolState())))\n",
        {"PYTHONPATH": str(tmp_path / "src")},
    )
    where, listed, echoed = out.splitlines()
    assert where == str(copy / "__init__.py")
    assert listed == "toy echo 125 True"
    assert echoed == "echo: hi"

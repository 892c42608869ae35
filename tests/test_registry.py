"""The registries: checks at registration, lookups, lazy built-ins, plug-ins by entry point.

Plug-ins here are real distributions: a ``.dist-info`` folder with an ``entry_points.txt`` on
``sys.path``, which `importlib.metadata` finds as it finds an installed package.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from fireact.errors import FireactError
from fireact.registry import GROUPS, Registry
from fireact.tasks import DEFAULT_SPLIT, SPLITS, TASK_REGISTRY, TASKS, TaskSpec, load_task
from fireact.tasks.base import score_qa
from fireact.tools import TOOL_REGISTRY, ToolSpec, ToolState, build, names, tool_spec


@dataclass(frozen=True)
class Thing:
    """A spec for the generic tests."""

    name: str
    part: str | None = "x"

    def problems(self):
        if self.part == "bad":
            yield "part must not be 'bad'"


def things(group: str = "fireact.testing.none", **kwargs) -> Registry[Thing]:
    return Registry("thing", group, spec_type=Thing, required=("name", "part"), **kwargs)


# ------------------------------------------------------------------ generic registry


def test_register_and_look_up():
    reg = things(built_in=[Thing("a")])
    reg.register(Thing("b"))
    assert reg.names() == ("a", "b") and list(reg) == ["a", "b"] and len(reg) == 2
    assert reg.get("b") == Thing("b") and "a" in reg and "c" not in reg
    assert reg.find("c") is None
    with pytest.raises(FireactError, match=r"^unknown thing 'c': choose one of a, b$"):
        reg.get("c")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (Thing("a"), r"thing 'a' is registered twice \(built in and again\)"),
        (Thing("b", None), r"thing 'b': missing part \(a thing needs name, part\)"),
        (Thing("b", ""), r"thing 'b': missing part"),
        (Thing("b", "bad"), r"thing 'b': part must not be 'bad'"),
        (Thing("two words"), r"thing: bad name 'two words'"),
        (Thing(""), r"thing: bad name ''"),
        ({"name": "d"}, r"thing: expected a Thing, got dict"),
    ],
)
def test_bad_registrations_fail_at_once(spec, message):
    reg = things(built_in=[Thing("a")])
    with pytest.raises(FireactError, match=message):
        reg.register(spec)
    assert reg.names() == ("a",)


def test_built_in_references_are_imported_on_first_lookup(tmp_path, monkeypatch):
    (tmp_path / "lazy_things.py").write_text(
        f"from {Thing.__module__} import Thing\nSPEC = Thing('lazy')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = things(built_in=["lazy_things:SPEC"])
    assert "lazy_things" not in sys.modules
    assert reg.names() == ("lazy",) and "lazy_things" in sys.modules
    monkeypatch.delitem(sys.modules, "lazy_things")


def test_a_broken_built_in_fails_every_lookup():
    reg = things(built_in=[Thing("a"), Thing("b", None)])
    for _ in range(2):
        with pytest.raises(FireactError, match=r"thing 'b' \(built in\): missing part"):
            reg.names()
    missing = things(built_in=["fireact_no_such_module:SPEC"])
    for _ in range(2):
        with pytest.raises(ModuleNotFoundError):
            missing.get("a")


def test_views_follow_the_registry():
    reg = things(built_in=[Thing("a", "1")])
    view, parts = reg.names_view(), reg.view(lambda t: t.part)
    reg.register(Thing("b", "2"))
    assert view == ("a", "b") and view[1] == "b" and "b" in view and ", ".join(view) == "a, b"
    assert dict(parts) == {"a": "1", "b": "2"}
    with pytest.raises(KeyError):
        parts["c"]


def test_groups_cover_every_kind():
    assert GROUPS == {
        "task": "fireact.tasks",
        "tool": "fireact.tools",
        "llm": "fireact.llms",
        "method": "fireact.methods",
    }


# ------------------------------------------------------------------ plug-ins


def install_fake_dist(root: Path, group: str) -> None:
    """A distribution 'thingplug 1.0' with entry points in `group`, found on sys.path."""
    dist = root / "thingplug-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thingplug\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        textwrap.dedent(f"""\
            [{group}]
            good = thingplug_mod:GOOD
            many = thingplug_mod:make_many
            broken = thingplug_missing:SPEC
            misnamed = thingplug_mod:GOOD2
            a = thingplug_mod:CLASH
            incomplete = thingplug_mod:INCOMPLETE
            """)
    )
    (root / "thingplug_mod.py").write_text(
        textwrap.dedent(f"""\
            from {Thing.__module__} import Thing
            GOOD = Thing("good")
            GOOD2 = Thing("good2")
            CLASH = Thing("a")
            INCOMPLETE = Thing("incomplete", None)
            def make_many():
                return [Thing("many1"), Thing("many2")]
            """)
    )


@pytest.fixture
def plugged(tmp_path, monkeypatch):
    group = "fireact.testing.things"
    install_fake_dist(tmp_path, group)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield things(group, built_in=[Thing("a")])
    sys.modules.pop("thingplug_mod", None)


def test_plugins_load_on_first_lookup(plugged):
    assert plugged.names() == ("a", "good", "many1", "many2")


def test_a_broken_plugin_is_a_one_line_error_naming_dist_and_entry_point(plugged):
    with pytest.raises(FireactError) as err:
        plugged.get("broken")
    assert str(err.value) == (
        "thing plug-in thingplug 1.0, entry point fireact.testing.things: broken = "
        "thingplug_missing:SPEC failed to load: ModuleNotFoundError: No module named "
        "'thingplug_missing'"
    )
    assert plugged.get("good") == Thing("good")  # the others still work


def test_plugin_problems_are_listed(plugged):
    errors = {line.split(": ", 1)[1].split(" = ")[0]: line for line in plugged.errors}
    assert set(errors) == {"broken", "misnamed", "a", "incomplete"}
    assert "it gives thing 'good2': name the entry point after it" in errors["misnamed"]
    assert "thing 'a' is registered twice (built in and plug-in thingplug 1.0" in errors["a"]
    assert "thing 'incomplete' (plug-in thingplug 1.0" in errors["incomplete"]
    assert all("\n" not in line for line in plugged.errors)
    with pytest.raises(FireactError, match=r"unknown thing 'zzz': .*failed to load: broken"):
        plugged.get("zzz")


# ------------------------------------------------------------------ tasks


def test_task_views_keep_their_old_shape():
    assert tuple(TASKS) == ("hotpotqa", "bamboogle", "strategyqa", "mmlu", "tableqa", "arith")
    assert SPLITS["strategyqa"] == ("dev", "test", "train_filtered")
    assert dict(DEFAULT_SPLIT) == {
        "hotpotqa": "dev",
        "bamboogle": "test",
        "strategyqa": "dev",
        "mmlu": "test",
        "tableqa": "dev",
        "arith": "dev",
    }


@pytest.mark.parametrize("name", ["hotpotqa", "bamboogle", "strategyqa", "mmlu"])
def test_task_specs_say_which_splits_have_answers(name):
    spec = TASK_REGISTRY.get(name)
    for split in spec.splits:
        if name == "mmlu" and split == "test":
            continue  # 14k rows; dev and val show the same reader
        answers = [ex.answer is not None for ex in load_task(name, split).examples]
        assert all(answers) if spec.labelled(split) else not any(answers), split


def test_reward_text_comes_from_the_spec():
    assert load_task("hotpotqa").reward_text(True) == "True"
    assert load_task("bamboogle").reward_text(False) == "False"
    assert load_task("strategyqa").reward_text(True) == "1"
    assert load_task("mmlu", "dev", subject="anatomy").reward_text(False) == "0"


def spec(**changes) -> TaskSpec:
    parts = {
        "name": "quiz",
        "read": lambda path, split: [],
        "splits": {"dev": Path("dev.json")},
        "scorer": score_qa,
        "prompt_task": "hotpotqa",
    }
    return TaskSpec(**{**parts, **changes})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "mmlu"}, "task 'mmlu' is registered twice"),
        ({"scorer": None}, r"task 'quiz' \(register_task\(\)\): missing scorer \(a task needs"),
        ({"splits": {}}, "missing splits"),
        ({"read": "not a function"}, "read must be a function"),
        ({"default_split": "test"}, "default_split 'test' is not one of its splits"),
        ({"unlabelled": frozenset({"test"})}, "unlabelled names splits it does not have"),
    ],
)
def test_a_task_missing_a_part_is_refused_at_registration(changes, message):
    from fireact.tasks import register_task

    with pytest.raises(FireactError, match=message):
        register_task(spec(**changes))
    assert "quiz" not in TASKS


def test_a_registered_task_is_loaded_and_scored_by_its_spec(tmp_path):
    questions = tmp_path / "dev.json"
    questions.write_text('[{"question": "Q?", "answer": "A"}]')
    from fireact.tasks import json_questions

    quiz = spec(read=json_questions("quiz"), splits={"dev": questions})
    task = quiz.load()
    assert (task.name, task.split, task.source) == ("quiz", "dev", str(questions))
    assert task.examples[0].id == "quiz/dev/0" and task.score("a", "A").em is True
    with pytest.raises(FireactError, match="unknown split 'test' for task quiz: choose one of dev"):
        quiz.load("test")


# ------------------------------------------------------------------ tools


def test_tool_specs_say_style_network_and_actions():
    assert names() == ("local", "serpapi", "wikipedia", "calculate", "sql")
    local, serpapi, wiki, calc, sql = (tool_spec(n) for n in names())
    assert (local.network, serpapi.network, wiki.network) == (False, True, True)
    assert (calc.network, sql.network, sql.settings) == (False, False, ("tables_for",))
    assert calc.actions == {"calculate"} and sql.actions == {"sql", "tables"}
    assert local.style_for(None) == "google" and local.style_for("wiki") == "wiki"
    assert serpapi.style_for("wiki") == "google" and wiki.style_for(None) == "wiki"
    assert serpapi.actions == {"search"} and wiki.actions == {"search", "lookup"}
    with pytest.raises(FireactError, match="unknown tool 'bing': choose one of local, serpapi"):
        tool_spec("bing")


def test_tools_combine_into_one_spec_with_every_action():
    both = tool_spec("sql,calculate")
    assert (both.name, both.actions) == ("sql,calculate", {"sql", "tables", "calculate"})
    assert (both.network, both.settings) == (False, ("tables_for",))
    with pytest.raises(FireactError, match="both answer search"):
        tool_spec("local,serpapi")


def test_build_a_tool_from_its_settings(tmp_path):
    tool = build("local", style="google")
    assert tool.name == "local" and tool.style == "google"
    with pytest.raises(FireactError, match=r"index: .*nope is not a folder; build one with"):
        build("local", index_dir=tmp_path / "nope")
    with pytest.raises(FireactError, match="tool serpapi: unknown setting index_dir; it takes"):
        build("serpapi", index_dir=tmp_path)


class Echo:
    name = "echo"
    actions = frozenset({"echo"})

    async def __call__(self, action, argument, state):
        return argument

    async def aclose(self):
        pass


def test_tool_spec_checks_what_its_factory_gives():
    assert (
        asyncio.run(ToolSpec("echo", Echo, frozenset({"echo"})).build()("echo", "hi", ToolState()))
        == "hi"
    )
    with pytest.raises(
        FireactError, match=r"tool echo: its factory gave Echo, not a Tool answering \['say'\]"
    ):
        ToolSpec("echo", Echo, frozenset({"say"})).build()
    with pytest.raises(FireactError, match="tool echo: its factory gave str"):
        ToolSpec("echo", lambda: "echo", frozenset({"echo"})).build()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (ToolSpec("echo", Echo, frozenset()), "tool 'echo': missing actions"),
        (ToolSpec("echo", Echo, frozenset({"finish"})), "must not include finish"),
        (ToolSpec("echo", "no_colon", frozenset({"echo"})), "factory must be a function"),
        (ToolSpec("local", Echo, frozenset({"echo"})), "tool 'local' is registered twice"),
    ],
)
def test_a_bad_tool_is_refused_at_registration(spec, message):
    with pytest.raises(FireactError, match=message):
        TOOL_REGISTRY.register(spec)


# ------------------------------------------------------------------ LLM backends


def test_llm_backends_are_registered_by_prefix():
    from fireact.llm import LLM_REGISTRY, LLMSpec, llm_spec, spec_help

    assert LLM_REGISTRY.names() == ("openai", "vllm", "hf", "scripted")
    assert spec_help() == (
        "use openai:MODEL, vllm:PATH_OR_ID[:ADAPTER], hf:PATH[:ADAPTER] or scripted:FILE"
    )
    assert llm_spec("hf").syntax == "hf:PATH[:ADAPTER]"
    with pytest.raises(FireactError, match="syntax 'claude' must start with 'claude:'"):
        LLM_REGISTRY.register(LLMSpec("claude", lambda spec, target: None, "claude"))
    with pytest.raises(FireactError, match="model backend 'scripted' is registered twice"):
        LLM_REGISTRY.register(LLMSpec("scripted", lambda spec, target: None, "scripted:X"))


def test_listing_names_imports_no_backend():
    code = (
        "import sys, fireact.tools as t, fireact.llm as l, fireact.tasks as k\n"
        "t.names(); l.LLM_REGISTRY.names(); list(k.TASKS)\n"
        "heavy = ['fireact.tools.local', 'fireact.tools.serpapi', 'fireact.tools.wikipedia',\n"
        "         'fireact.llm.openai_backend', 'fireact.llm.hf', 'httpx', 'openai', 'torch']\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"

"""Where fireact behaves unlike FireAct's code, one behaviour per test.

Each test pins a row of ``docs/fireact-vs-paper.md`` that no other test pins; the last two pin
behaviours that match FireAct and that nothing else pins. Each docstring says what FireAct's
code (``generation.py``, ``models/``, ``tasks/``, ``finetune/``) does with the same input.
"""

from __future__ import annotations

import asyncio
import json
import time

from fireact.agent import RunOptions
from fireact.agent import run as run_options
from fireact.agent.episode import Agent, run_episode
from fireact.agent.parse import parse_turn
from fireact.agent.prompts import ALPACA_TEMPLATE, fewshot_prompt
from fireact.llm.openai_backend import OpenAILLM
from fireact.resources import resource
from fireact.tasks import load_task
from fireact.tasks.base import Example, Task, score_strategyqa
from fireact.train.config import load_config
from tests.helpers.agents import (
    EXAMPLE,
    GOOD,
    GOOD_TRAJECTORY,
    HEAD,
    NIXON,
    QUESTION,
    DictTool,
    RecordingLLM,
    make_agent,
    run,
)
from tests.helpers.openai_server import OpenAIServer

STOP = ["\nObservation:"]
NIXON_OBSERVATION = "Milhouse is named after U.S. president Richard Nixon. He is a character."


def test_a_reask_repeats_the_prompt_ending_in_thought_and_its_stop():
    """FireAct re-asks with the prompt *without* the trailing "Thought:" and with stop=None."""
    llm = RecordingLLM({"q1": [" Hmm.", *GOOD]})
    ep = run(make_agent(llm, DictTool(NIXON)))
    assert ep.reasks == 1 and ep.trajectory == GOOD_TRAJECTORY
    assert llm.prompts[0] == llm.prompts[1] == HEAD + QUESTION + "\nThought:"
    assert llm.stops[0] == llm.stops[1] == STOP


def test_an_action_marker_without_a_space_is_an_action():
    """FireAct looks for "Action: " (with the space): "Action:search[...]" is re-asked there."""
    outputs = [" I need to search Milhouse.\nAction:search[Milhouse]", GOOD[1]]
    ep = run(make_agent(RecordingLLM({"q1": outputs}), DictTool(NIXON)))
    assert (ep.reasks, ep.llm_calls) == (0, 2)
    assert ep.steps[0].action == "search[Milhouse]"
    assert ep.trajectory == GOOD_TRAJECTORY


def test_an_output_ending_in_the_action_marker_is_reasked():
    """FireAct counts "...\\nAction: " as having an action (no re-ask), then finds none after
    stripping and makes its one "Thought: ...\\nAction:" continuation call instead."""
    llm = RecordingLLM({"q1": [" I need to search Milhouse.\nAction: ", *GOOD]})
    ep = run(make_agent(llm, DictTool(NIXON)))
    assert (ep.reasks, ep.llm_calls) == (1, 3)
    assert llm.prompts[1] == HEAD + QUESTION + "\nThought:"  # the re-ask, not a continuation
    assert ep.trajectory == GOOD_TRAJECTORY


def test_an_action_marker_inside_a_line_keeps_the_thought_before_it():
    """FireAct, finding "Action: " not after a newline, sets the thought to "" and the action to
    the output minus its first 8 characters (here " need to search. Action: search[Milhouse]")."""
    turn = parse_turn(" I need to search. Action: search[Milhouse]")
    assert turn == ("I need to search. ", "search[Milhouse]")


def test_only_the_action_finish_ends_the_episode():
    """FireAct ends the episode on any action whose name contains "finish" ("finished[x]")."""
    outputs = [" Done.\nAction: finished[Richard Nixon]", GOOD[1]]
    ep = run(make_agent(RecordingLLM({"q1": outputs}), DictTool(NIXON)))
    assert ep.steps[0].observation == (
        "Invalid action: finished[Richard Nixon]. Use one of: finish[...], lookup[...], "
        "search[...]."
    )
    assert (len(ep.steps), ep.finished, ep.prediction) == (2, True, "Richard Nixon")


def test_a_step_without_a_thought_has_no_thought_line():
    """FireAct writes "Thought: " (an empty thought) before such an action."""
    outputs = ["Action: search[Milhouse]", "Thought: Found it.\nAction: finish[Richard Nixon]"]
    ep = run(make_agent(RecordingLLM({"q1": outputs}), DictTool(NIXON), format="alpaca"))
    assert ep.trajectory == (
        f"Action: search[Milhouse]\nObservation: {NIXON_OBSERVATION}\n"
        "Thought: Found it.\nAction: finish[Richard Nixon]\n"
        "Observation: Episode finished, reward = True\n"
    )


def test_chat_format_stops_at_observation_and_keeps_the_parsed_turn():
    """FireAct sends chat calls with stop=None and stores the raw output as the assistant turn
    (its action would then run on to the next line: "search[Milhouse]\\nThought: ...")."""
    outputs = [
        "Thought: I need to search Milhouse.\nAction: search[Milhouse]\nThought: then finish",
        "Thought: Milhouse is named after Nixon.\nAction: finish[Richard Nixon]",
    ]
    llm = RecordingLLM({"q1": outputs})
    ep = run(make_agent(llm, DictTool(NIXON), format="chat"))
    assert llm.stops == [STOP, STOP]
    assert ep.messages[1] == {
        "role": "assistant",
        "content": "Thought: I need to search Milhouse.\nAction: search[Milhouse]",
    }
    assert ep.tool_calls[0]["argument"] == "Milhouse" and ep.em


def test_the_question_is_right_stripped_in_alpaca_and_kept_in_chat_as_fireact_does():
    """FireAct's alpaca prompt strips only the right end (q.rstrip()); its chat message keeps the
    question as it is. (fireact does the same: not a departure, pinned here.)"""
    raw = "  Who was Milhouse named after?\n"
    example = Example("q1", raw, "Richard Nixon")
    outputs = ["Thought: Guess.\nAction: finish[Richard Nixon]"]
    for fmt in ("alpaca", "chat"):
        llm = RecordingLLM({"q1": outputs})
        ep = run(make_agent(llm, DictTool(NIXON), examples=[example], format=fmt), example)
        if fmt == "alpaca":
            assert llm.prompts[0] == ALPACA_TEMPLATE.format(question=raw.rstrip()) + "Thought:"
        else:
            assert ep.messages[0] == {"role": "user", "content": raw}


def test_a_multiline_observation_is_put_on_one_line():
    """FireAct puts the tool's text into the prompt as it is, line breaks included."""
    pages = {"Milhouse": ["Milhouse is named after\nRichard Nixon."]}
    outputs = [GOOD[0], GOOD[1]]
    ep = run(make_agent(RecordingLLM({"q1": outputs}), DictTool(pages)))
    assert ep.steps[0].observation == "Milhouse is named after Richard Nixon."
    assert "Observation: Milhouse is named after Richard Nixon.\n" in ep.trajectory


def test_a_request_the_server_rejects_ends_the_episode_with_an_error():
    """FireAct turns an InvalidRequestError (HTTP 400) into an empty output, which is re-asked
    and then becomes ``finish[]``: a finished episode with an empty answer."""
    with OpenAIServer({"a key no prompt contains": ["unused"]}) as server:

        async def go():
            llm = OpenAILLM("gpt-4", base_url=server.base_url, max_retries=0)
            try:
                return await run_episode(EXAMPLE, make_agent(llm, DictTool(NIXON)))
            finally:
                await llm.aclose()

        ep = asyncio.run(go())
        statuses = [r.status for r in server.requests]
    assert statuses == [400]
    assert ep.error is not None and ep.error.startswith("LLMError: openai:gpt-4 failed: HTTP 400")
    assert (ep.finished, ep.prediction, ep.steps) == (False, None, [])


def test_the_full_fine_tuning_recipe_uses_the_papers_epochs_and_a_full_fine_tuning_rate(tmp_path):
    """FireAct's README trains the full model 30 epochs at learning rate 2e-3 (Stanford Alpaca's
    trainer, 4 GPUs, bf16, cosine, 3% warmup, batch 4 x 8 accumulation x 4 GPUs = 128)."""
    recipe = resource("configs", "llama2-7b-full-fsdp.yaml")
    config = load_config(recipe, ["--output_dir", str(tmp_path / "out")])
    assert (config.method, config.precision, config.lr_scheduler) == ("full", "bf16", "cosine")
    assert (config.learning_rate, config.epochs, config.warmup_steps) == (2e-5, 3.0, 0.03)
    assert (config.batch_size, config.micro_batch_size) == (128, 4)


class DelayedLLM(RecordingLLM):
    """The scripted model, answering each episode after its own delay; remembers when."""

    def __init__(self, outputs, delays):
        super().__init__(outputs)
        self.delays = delays
        self.answered: list[tuple[str, float]] = []

    async def complete(self, prompt, *, stop=None, max_tokens=256, temperature=0.0, key=None):
        await asyncio.sleep(self.delays[key])
        out = await super().complete(prompt, stop=stop, max_tokens=max_tokens, key=key)
        self.answered.append((key, time.perf_counter()))
        return out


def test_an_episode_takes_its_next_step_without_waiting_for_the_others(tmp_path):
    """FireAct runs a step of every live episode before any episode starts its next step, so the
    fast episode's second call would wait for the slow episode's first."""
    data = tmp_path / "questions.json"
    rows = [
        {"_id": "slow", "question": "Slow question?", "answer": "x"},
        {"_id": "fast", "question": QUESTION, "answer": "Richard Nixon"},
    ]
    data.write_text(json.dumps(rows))
    outputs = {"slow": [" Guess.\nAction: finish[x]"], "fast": [GOOD[0], GOOD[0], GOOD[1]]}
    llm = DelayedLLM(outputs, {"slow": 0.5, "fast": 0.01})
    values = {"task": "hotpotqa", "data": data, "model": "scripted:unused", "out": tmp_path / "o"}
    run_options(RunOptions(**values, concurrency=2, progress=False), llm=llm, tool=DictTool(NIXON))
    slow_at = next(at for key, at in llm.answered if key == "slow")
    fast_at = [at for key, at in llm.answered if key == "fast"]
    assert len(fast_at) == 3 and max(fast_at) < slow_at
    lines = (tmp_path / "o" / "episodes.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["fast", "slow"]


def test_an_mmlu_option_reading_none_stays_the_text_none():
    """FireAct reads MMLU with pandas: 1.5 (its pinned version) keeps "None"; pandas 2 reads it
    as NaN and the option becomes "D. nan" (12 options of the val and test splits)."""
    ex = load_task("mmlu", "test", subject="electrical_engineering").examples[41]
    assert ex.id == "mmlu/test/electrical_engineering/41"
    assert ex.question.endswith("\nC. Both SRAM and DRAM\nD. None")


def test_a_strategyqa_finish_observation_prints_the_reward_as_an_int():
    """As FireAct's tasks return it: a bool for HotpotQA/Bamboogle, an int for these two."""
    example = Example("s1", "Is water wet?", True)
    task = Task("strategyqa", "dev", [example], score_strategyqa, "strategyqa")
    llm = RecordingLLM({"s1": [" Water is wet.\nAction: finish[yes]"]})
    agent = Agent(llm, DictTool({}), task, head=fewshot_prompt("react", "strategyqa"))
    ep = asyncio.run(run_episode(example, agent))
    assert ep.trajectory == (
        "Thought: Water is wet.\nAction: finish[yes]\nObservation: Episode finished, reward = 1\n"
    )

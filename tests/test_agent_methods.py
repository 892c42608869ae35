"""The agent's methods on scripted model outputs: exact prompts, trajectories, rewards, rules."""

from __future__ import annotations

from fireact.agent.prompts import ALPACA_TEMPLATE, REFLECTION_PROMPT, fewshot_prompt
from fireact.agent.replay import ReplayTool, split_trajectory
from fireact.tasks.base import Example, score_strategyqa
from tests.helpers.agents import (
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


def test_react_fewshot_exact_prompts_and_trajectory():
    llm = RecordingLLM({"q1": GOOD})
    ep = run(make_agent(llm, DictTool(NIXON)))
    assert ep.trajectory == GOOD_TRAJECTORY
    assert (ep.finished, ep.prediction, ep.em, ep.f1) == (True, "Richard Nixon", True, 1.0)
    assert llm.prompts == [
        HEAD + QUESTION + "\nThought:",
        HEAD + QUESTION + "\n" + GOOD_TRAJECTORY.split("Thought: Milhouse")[0] + "Thought:",
    ]
    assert llm.stops == [["\nObservation:"], ["\nObservation:"]]
    assert [s.action for s in ep.steps] == ["search[Milhouse]", "finish[Richard Nixon]"]
    assert ep.tool_calls[0]["action"] == "search" and ep.tool_calls[0]["argument"] == "Milhouse"
    assert (ep.llm_calls, ep.reasks, len(ep.tool_calls)) == (2, 0, 1)
    assert abs(ep.cost_usd - 0.002) < 1e-12
    assert ep.messages[0] == {"role": "user", "content": QUESTION}
    assert ep.messages[-1] == {
        "role": "user",
        "content": "Observation: Episode finished, reward = True",
    }


def test_react_wrong_answer_scores_false_with_partial_f1():
    llm = RecordingLLM({"q1": [" Guess.\nAction: finish[Nixon]"]})
    ep = run(make_agent(llm, DictTool(NIXON)))
    assert (
        ep.trajectory
        == "Thought: Guess.\nAction: finish[Nixon]\nObservation: Episode finished, reward = False\n"
    )
    assert (ep.finished, ep.prediction, ep.em, round(ep.f1, 4)) == (True, "Nixon", False, 0.6667)


def test_alpaca_format_prompts():
    outputs = [
        "Thought: I need to search Milhouse.\nAction: search[Milhouse]",
        "Thought: Milhouse is named after Nixon.\nAction: finish[Richard Nixon]",
    ]
    llm = RecordingLLM({"q1": outputs})
    ep = run(make_agent(llm, DictTool(NIXON), format="alpaca"))
    assert ep.trajectory == GOOD_TRAJECTORY
    head = ALPACA_TEMPLATE.format(question=QUESTION)
    second = head + GOOD_TRAJECTORY.split("Thought: Milhouse")[0] + "Thought:"
    assert llm.prompts == [head + "Thought:", second]
    # FireAct's prepare_prompt(question) followed by "Thought:", to the character
    assert llm.prompts[0] == (
        "Below is an instruction that describes a task. Write a response that appropriately "
        "completes the request.\n\n### Instruction:\nWho was Milhouse named after?\n\n"
        "### Response:\nThought:"
    )


def test_chat_format_messages():
    outputs = [
        "Thought: I need to search Milhouse.\nAction: search[Milhouse]",
        "Thought: Milhouse is named after Nixon.\nAction: finish[Richard Nixon]",
    ]
    llm = RecordingLLM({"q1": outputs})
    ep = run(make_agent(llm, DictTool(NIXON), format="chat"))
    first_turn = {"role": "assistant", "content": outputs[0]}
    observation = {
        "role": "user",
        "content": "Observation: Milhouse is named after U.S. president Richard Nixon. He is a character.",
    }
    assert llm.prompts == [
        [{"role": "user", "content": QUESTION}],
        [{"role": "user", "content": QUESTION}, first_turn, observation],
    ]
    assert ep.messages[1:3] == [first_turn, observation]
    assert len(ep.messages) == 5 and ep.trajectory == GOOD_TRAJECTORY


def test_reask_until_an_action_appears():
    outputs = [" Hmm.", " Still thinking.", GOOD[0], GOOD[1]]
    llm = RecordingLLM({"q1": outputs})
    ep = run(make_agent(llm, DictTool(NIXON)))
    assert ep.trajectory == GOOD_TRAJECTORY
    assert (ep.reasks, ep.llm_calls, ep.steps[0].llm_calls) == (2, 4, 3)
    assert llm.prompts[0] == llm.prompts[1] == llm.prompts[2]  # a re-ask repeats the prompt


def test_reasks_exhausted_then_one_call_ending_in_action():
    outputs = [" t0"] * 5 + [
        " I should search Milhouse.\nMore words.",
        " search[Milhouse]",
        GOOD[1],
    ]
    llm = RecordingLLM({"q1": outputs})
    ep = run(make_agent(llm, DictTool(NIXON)))
    assert (
        ep.steps[0].thought == "I should search Milhouse."
        and ep.steps[0].action == "search[Milhouse]"
    )
    assert llm.prompts[6] == HEAD + QUESTION + "\nThought: I should search Milhouse.\nAction:"
    assert llm.stops[6] == ["\n"]
    assert (ep.reasks, ep.llm_calls, ep.em) == (5, 8, True)


def test_no_action_at_all_becomes_finish_empty():
    llm = RecordingLLM({"q1": [" thinking"] * 6 + [""]})
    ep = run(make_agent(llm, DictTool(NIXON)))
    assert (
        ep.trajectory
        == "Thought: thinking\nAction: finish[]\nObservation: Episode finished, reward = False\n"
    )
    assert (ep.finished, ep.prediction, ep.em, ep.llm_calls) == (True, "", False, 7)


def test_chat_skips_the_action_continuation_call():
    llm = RecordingLLM({"q1": ["Thought: thinking"] * 6})
    ep = run(make_agent(llm, DictTool(NIXON), format="chat", max_reasks=5))
    assert ep.steps[0].action == "finish[]" and ep.llm_calls == 6


def test_unknown_and_malformed_actions_are_observations():
    outputs = [" a\nAction: google[Milhouse]", " b\nAction: search Milhouse", GOOD[1]]
    ep = run(make_agent(RecordingLLM({"q1": outputs}), DictTool(NIXON)))
    valid = "Use one of: finish[...], lookup[...], search[...]."
    assert [s.observation for s in ep.steps[:2]] == [
        f"Invalid action: google[Milhouse]. {valid}",
        f"Invalid action: search Milhouse. {valid}",
    ]
    assert ep.tool_calls == [] and ep.em


def test_tool_error_and_timeout_are_observations():
    outputs = [" a\nAction: search[boom]", " b\nAction: search[Milhouse]", GOOD[1]]
    tool = DictTool(NIXON, fail=["boom"], slow=0.5)
    ep = run(make_agent(RecordingLLM({"q1": outputs}), tool, tool_timeout=0.05))
    assert ep.steps[0].observation == "Tool error: RuntimeError: backend down"
    assert ep.steps[1].observation == "Tool error: search[Milhouse] timed out after 0.05 s."
    assert ep.finished and ep.em and len(ep.tool_calls) == 2


def test_step_cap_leaves_the_episode_unfinished():
    outputs = [f" try {i}\nAction: search[x{i}]" for i in range(5)]
    ep = run(make_agent(RecordingLLM({"q1": outputs}), DictTool(NIXON), max_steps=3))
    assert (ep.finished, ep.prediction, ep.em, ep.f1, len(ep.steps)) == (False, None, False, 0.0, 3)
    assert ep.trajectory.count("Action: search[") == 3 and "Episode finished" not in ep.trajectory


def test_model_failure_ends_the_episode_with_an_error():
    ep = run(make_agent(RecordingLLM({"q1": [GOOD[0]]}), DictTool(NIXON)))
    assert ep.error and "exhausted" in ep.error
    assert (ep.finished, ep.prediction, len(ep.steps)) == (False, None, 1)


def test_cot():
    llm = RecordingLLM(
        {"q1": [" Milhouse was named after U.S. president Richard Nixon.\nAnswer: Richard Nixon"]}
    )
    ep = run(make_agent(llm, method="cot"))
    assert llm.prompts == [fewshot_prompt("cot", "hotpotqa") + QUESTION + "\nThought:"]
    assert llm.stops == [["\n\n"]]
    assert ep.trajectory == (
        "Thought: Milhouse was named after U.S. president Richard Nixon.\n"
        "Action: finish[Richard Nixon]\nObservation: Episode finished, reward = True\n"
    )
    assert (ep.prediction, ep.em, len(ep.steps)) == ("Richard Nixon", True, 1)


def test_cot_without_answer_continues_the_thought():
    llm = RecordingLLM({"q1": [" so it is Nixon"] * 6 + [" Nixon"]})
    ep = run(make_agent(llm, method="cot"))
    head = fewshot_prompt("cot", "hotpotqa") + QUESTION + "\nThought:"
    assert llm.prompts[-1] == head + " so it is Nixon\nAnswer:"
    assert (ep.prediction, ep.reasks, ep.em) == ("Nixon", 5, False)


def test_io():
    llm = RecordingLLM({"q1": [" Richard Nixon"]})
    ep = run(make_agent(llm, method="io"))
    assert llm.prompts == [fewshot_prompt("io", "hotpotqa") + QUESTION + "\nAnswer:"]
    assert llm.stops == [["\n"]]
    assert (
        ep.trajectory
        == "Action: finish[Richard Nixon]\nObservation: Episode finished, reward = True\n"
    )
    assert ep.messages[1] == {"role": "assistant", "content": "Action: finish[Richard Nixon]"}


def test_strategyqa_scoring_through_finish():
    example = Example("s1", "Yes or no: Is water wet?", True)
    llm = RecordingLLM({"s1": [" Obviously.\nAction: finish[Yes, it is]"]})
    ep = run(make_agent(llm, DictTool({}), examples=[example], scorer=score_strategyqa), example)
    assert (ep.prediction, ep.em, ep.f1) == ("Yes, it is", True, 1.0)


def test_reflexion_retries_after_a_failure_with_the_reflection():
    outputs = [
        " Guess.\nAction: finish[Nixon]",
        " I answered with a partial name. Next time search first and give the full name.",
        GOOD[0],
        GOOD[1],
    ]
    llm = RecordingLLM({"q1": outputs})
    ep = run(make_agent(llm, DictTool(NIXON), method="reflexion", reflexion_tries=3))
    failed = (
        "Thought: Guess.\nAction: finish[Nixon]\nObservation: Episode finished, reward = False\n"
    )
    assert llm.prompts[1] == REFLECTION_PROMPT.format(question=QUESTION, trajectory=failed)
    reflection = "I answered with a partial name. Next time search first and give the full name."
    block = (
        "You have tried to answer the following question before and failed. The reflections "
        "below give a plan to avoid failing in the same way; use them to improve your "
        f"strategy.\nReflections:\n- {reflection}\n\n"
    )
    assert llm.prompts[2] == HEAD + block + QUESTION + "\nThought:"
    assert ep.trajectory == GOOD_TRAJECTORY and ep.em and ep.tries == 2
    assert ep.reflections == [reflection]
    assert ep.attempts == [
        {
            "trajectory": failed,
            "prediction": "Nixon",
            "finished": True,
            "em": False,
            "f1": 2 / 3,
            "steps": 1,
            "reflection": reflection,
        }
    ]
    assert ep.messages[0]["content"] == block + QUESTION
    assert ep.tool_state.calls == 1


def test_reflexion_stops_after_the_last_try():
    outputs = [" a\nAction: finish[x]", "r1", " b\nAction: finish[y]"]
    ep = run(
        make_agent(
            RecordingLLM({"q1": outputs}), DictTool(NIXON), method="reflexion", reflexion_tries=2
        )
    )
    assert (ep.tries, ep.prediction, ep.em, ep.llm_calls) == (2, "y", False, 3)


def test_react_with_the_local_search_tool():
    from fireact.tools.local import LocalSearch

    question = "Were Scott Derrickson and Ed Wood of the same nationality?"
    example = Example("d0", question, "yes")
    outputs = [
        " Search.\nAction: search[Scott Derrickson nationality]",
        " Both American.\nAction: finish[yes]",
    ]
    tool = LocalSearch(style="google")
    ep = run(make_agent(RecordingLLM({"d0": outputs}), tool, examples=[example]), example)
    assert ep.em and ep.tool_calls[0]["observation"]
    assert "Derrickson" in ep.tool_calls[0]["observation"]
    assert not ep.tool_calls[0]["observation"].startswith(("Tool error", "Invalid"))


# ---------------------------------------------------------------- replaying FireAct trajectories

FIREACT_RECORD = {
    "instruction": 'Who was once considered the best kick boxer in the world, however he has been involved in a number of controversies relating to his "unsportsmanlike conducts" in the sport and crimes of violence outside of the ring.',
    "output": "Thought: I need to search for the best kick boxer in the world who has been involved in unsportsmanlike conducts and crimes of violence outside of the ring.\nAction: search[best kick boxer in the world unsportsmanlike conducts crimes of violence]\nObservation: Badr Hari (born 8 December 1984) is a Moroccan-Dutch kickboxer. He is a former K-1 Heavyweight World Champion (2007–2008), It's Showtime Heavyweight World ...\nThought: Badr Hari is the person who fits the description.\nAction: finish[Badr Hari]\nObservation: Episode finished, reward = True\n",
}


def test_replaying_a_fireact_trajectory_reproduces_it():
    turns, observations = split_trajectory(FIREACT_RECORD["output"])
    assert observations[-1] == "Episode finished, reward = True"
    gold = turns[-1].split("finish[", 1)[1].rstrip("]")
    example = Example("r0", FIREACT_RECORD["instruction"], gold)
    llm = RecordingLLM({"r0": turns})
    tool = ReplayTool({"r0": observations[:-1]})
    ep = run(make_agent(llm, tool, examples=[example], format="alpaca"), example)
    assert ep.trajectory == FIREACT_RECORD["output"]
    assert (ep.prediction, ep.em) == ("Badr Hari", True)
    assert llm.prompts[0] == ALPACA_TEMPLATE.format(question=example.question) + "Thought:"

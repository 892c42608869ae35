"""Runs → alpaca JSON / chat JSONL (fireact.data.convert), byte for byte FireAct's shapes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fireact.data.convert import (
    Block,
    convert,
    import_fireact_trajectories,
    parse_blocks,
)
from fireact.errors import FireactError
from tests.helpers.paths import SHARED_DATA

FINETUNE = SHARED_DATA / "finetune"


def episode(id_: str, question: str, trajectory: str, em: bool, **extra: Any) -> dict[str, Any]:
    record = {
        "id": id_,
        "task": "hotpotqa",
        "split": "train",
        "method": "react",
        "format": "fewshot",
        "question": question,
        "gold": "x",
        "prediction": "x",
        "finished": True,
        "em": em,
        "f1": float(em),
        "steps": trajectory.count("Action:"),
        "trajectory": trajectory,
        "messages": [],
    }
    record.update(extra)
    return record


PARIS = episode(
    "1",
    "Which city is the capital of France?",
    "Thought: I need to search France.\nAction: search[capital of France]\n"
    "Observation: Paris is the capital of France.\nThought: The answer is Paris.\n"
    "Action: finish[Paris]\nObservation: Episode finished, reward = True\n",
    True,
)
HAMLET = episode(
    "2",
    "Who wrote Hamlet?",
    "Thought: I think it is Marlowe.\nAction: finish[Marlowe]\n"
    "Observation: Episode finished, reward = False\n",
    False,
)
WATER = episode("3", "Is water wet?", "Answer: yes", True, task="strategyqa", method="io")

ALPACA = (
    "[\n"
    "    {\n"
    '        "instruction": "Which city is the capital of France?",\n'
    '        "input": "",\n'
    '        "output": "Thought: I need to search France.\\nAction: search[capital of France]\\n'
    "Observation: Paris is the capital of France.\\nThought: The answer is Paris.\\n"
    'Action: finish[Paris]\\nObservation: Episode finished, reward = True\\n"\n'
    "    },\n"
    "    {\n"
    '        "instruction": "Is water wet?",\n'
    '        "input": "",\n'
    '        "output": "Action: finish[yes]\\nObservation: Episode finished, reward = 1"\n'
    "    }\n"
    "]"
)
CHAT_ALL = (
    '{"messages": [{"role": "user", "content": "Which city is the capital of France?"}, '
    '{"role": "assistant", "content": "Thought: I need to search France.\\nAction: '
    'search[capital of France]"}, {"role": "user", "content": "Observation: Paris is the '
    'capital of France."}, {"role": "assistant", "content": "Thought: The answer is Paris.\\n'
    'Action: finish[Paris]"}, {"role": "user", "content": "Observation: Episode finished, '
    'reward = True"}]}\n'
    '{"messages": [{"role": "user", "content": "Who wrote Hamlet?"}, {"role": "assistant", '
    '"content": "Thought: I think it is Marlowe.\\nAction: finish[Marlowe]"}, {"role": "user", '
    '"content": "Observation: Episode finished, reward = False"}]}\n'
    '{"messages": [{"role": "user", "content": "Is water wet?"}, {"role": "assistant", '
    '"content": "Action: finish[yes]"}, {"role": "user", "content": "Observation: Episode '
    'finished, reward = 1"}]}\n'
)


def write_run(folder: Path, records: list[Any], name: str = "episodes.jsonl") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    (folder / name).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return folder


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return write_run(tmp_path / "run", [PARIS, HAMLET, WATER])


def test_alpaca_exact(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "train.json"
    stats = convert([run_dir], "alpaca", out)
    assert out.read_text(encoding="utf-8") == ALPACA
    assert stats == {
        "out": str(out),
        "format": "alpaca",
        "inputs": 1,
        "episodes": 3,
        "kept": 2,
        "dropped_failed": 1,
        "dropped_method": 0,
        "dropped_duplicate": 0,
        "dropped_empty": 0,
        "by_method": {"io": 1, "react": 1},
        "by_task": {"hotpotqa": 1, "strategyqa": 1},
    }


def test_chat_exact_keep_all(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "train.jsonl"
    stats = convert([run_dir / "episodes.jsonl"], "chat", out, keep="all")
    assert out.read_text(encoding="utf-8") == CHAT_ALL
    assert (stats["kept"], stats["dropped_failed"]) == (3, 0)


def test_chat_success_only_drops_the_failure(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "train.jsonl"
    convert([run_dir], "chat", out)
    lines = CHAT_ALL.splitlines(keepends=True)
    assert out.read_text(encoding="utf-8") == lines[0] + lines[2]


def test_method_filter_and_cot_text(tmp_path: Path) -> None:
    cot = episode(
        "4",
        "Is 7 prime?",
        "Thought: 7 has no divisors but 1 and 7.\nAnswer: yes",
        True,
        method="cot",
    )
    run = write_run(tmp_path / "run", [PARIS, cot, WATER])
    out = tmp_path / "cot.json"
    stats = convert([run], "alpaca", out, methods={"cot"})
    assert json.loads(out.read_text()) == [
        {
            "instruction": "Is 7 prime?",
            "input": "",
            "output": "Thought: 7 has no divisors but 1 and 7.\nAction: finish[yes]\n"
            "Observation: Episode finished, reward = 1",
        }
    ]
    assert (stats["kept"], stats["dropped_method"]) == (1, 2)


def test_runner_cot_text_gets_fireacts_reward_and_no_final_newline(tmp_path: Path) -> None:
    text = (
        "Thought: 7 is prime.\nAction: finish[yes]\nObservation: Episode finished, reward = True\n"
    )
    run = write_run(tmp_path / "run", [episode("5", "Is 7 prime?", text, True, method="cot")])
    out = tmp_path / "x.json"
    convert([run], "alpaca", out)
    assert json.loads(out.read_text())[0]["output"] == (
        "Thought: 7 is prime.\nAction: finish[yes]\nObservation: Episode finished, reward = 1"
    )


@pytest.mark.parametrize(
    ("task", "word"),
    [
        ("hotpotqa", "True"),
        ("bamboogle", "True"),
        ("strategyqa", "1"),
        ("mmlu", "1"),
        ("tableqa", "1"),
        ("mine", "True"),  # not a registered task: kept as the run wrote it
    ],
)
def test_react_reward_is_written_as_fireacts_task_prints_it(
    tmp_path: Path, task: str, word: str
) -> None:
    run = write_run(tmp_path / "run", [dict(PARIS, task=task)])
    convert([run], "alpaca", tmp_path / "x.json")
    output = json.loads((tmp_path / "x.json").read_text())[0]["output"]
    assert output.endswith(
        f"Action: finish[Paris]\nObservation: Episode finished, reward = {word}\n"
    )


def test_io_failure_ends_reward_0(tmp_path: Path) -> None:
    text = "Action: finish[no]\nObservation: Episode finished, reward = False\n"
    run = write_run(tmp_path / "run", [episode("6", "Is ice hot?", text, False, method="io")])
    convert([run], "chat", tmp_path / "x.jsonl", keep="all")
    messages = json.loads((tmp_path / "x.jsonl").read_text())["messages"]
    assert messages[-1] == {"role": "user", "content": "Observation: Episode finished, reward = 0"}


def test_chat_question_is_stripped(tmp_path: Path) -> None:
    run = write_run(
        tmp_path / "run", [dict(PARIS, question=" Which city is the capital of France? ")]
    )
    convert([run], "chat", tmp_path / "x.jsonl")
    messages = json.loads((tmp_path / "x.jsonl").read_text())["messages"]
    assert messages[0] == {"role": "user", "content": "Which city is the capital of France?"}


# A Reflexion record as the runner writes it: two failed tries (the first ended on a wrong
# finish, the second ran out of steps and began without a thought), then the solved one.
HAMLET_TRIES = [
    (
        "Thought: I think it is Marlowe.\nAction: finish[Marlowe]\n"
        "Observation: Episode finished, reward = False\n",
        "I answered from memory without searching.",
    ),
    (
        "Action: search[Hamlet author]\nObservation: Hamlet is a tragedy.\n",
        "I should search the play itself.",
    ),
]
REFLEXION = episode(
    "7",
    "Who wrote Hamlet?",
    "Thought: Search the play.\nAction: search[Hamlet]\n"
    "Observation: Hamlet was written by William Shakespeare.\n"
    "Thought: It is Shakespeare.\nAction: finish[Shakespeare]\n"
    "Observation: Episode finished, reward = True\n",
    True,
    method="reflexion",
    tries=3,
    reflections=[reflection for _, reflection in HAMLET_TRIES],
    attempts=[
        {"trajectory": text, "prediction": None, "finished": False, "em": False, "f1": 0.0,
         "steps": 1, "reflection": reflection}
        for text, reflection in HAMLET_TRIES
    ],
)  # fmt: skip


def test_reflexion_keeps_every_try_with_its_reflection_inline(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", [REFLEXION])
    convert([run], "alpaca", tmp_path / "x.json")
    assert json.loads((tmp_path / "x.json").read_text())[0]["output"] == (
        "Thought: I answered from memory without searching.\n"
        "Action: search[Hamlet author]\nObservation: Hamlet is a tragedy.\n"
        "Thought: I should search the play itself. Search the play.\nAction: search[Hamlet]\n"
        "Observation: Hamlet was written by William Shakespeare.\n"
        "Thought: It is Shakespeare.\nAction: finish[Shakespeare]\n"
        "Observation: Episode finished, reward = True\n"
    )


def test_reflexion_chat_turns(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", [REFLEXION])
    convert([run], "chat", tmp_path / "x.jsonl")
    messages = json.loads((tmp_path / "x.jsonl").read_text())["messages"]
    assert [m["content"] for m in messages] == [
        "Who wrote Hamlet?",
        "Thought: I answered from memory without searching.\nAction: search[Hamlet author]",
        "Observation: Hamlet is a tragedy.",
        "Thought: I should search the play itself. Search the play.\nAction: search[Hamlet]",
        "Observation: Hamlet was written by William Shakespeare.",
        "Thought: It is Shakespeare.\nAction: finish[Shakespeare]",
        "Observation: Episode finished, reward = True",
    ]


def test_reflexion_reflection_falls_back_to_the_reflections_list(tmp_path: Path) -> None:
    attempts = [{k: v for k, v in a.items() if k != "reflection"} for a in REFLEXION["attempts"]]
    run = write_run(tmp_path / "run", [dict(REFLEXION, attempts=attempts)])
    convert([run], "alpaca", tmp_path / "x.json")
    output = json.loads((tmp_path / "x.json").read_text())[0]["output"]
    assert output.startswith("Thought: I answered from memory without searching.\nAction: ")


def test_reflexion_bad_attempts_name_the_line(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", [PARIS, dict(REFLEXION, attempts=[{"reflection": "r"}])])
    with pytest.raises(FireactError) as err:
        convert([run], "alpaca", tmp_path / "x.json")
    assert str(err.value) == (
        f"{run / 'episodes.jsonl'}:2: attempts[0] must be an object with a 'trajectory' text"
    )


def test_mix_dedupe_by_method_and_question(tmp_path: Path) -> None:
    again = dict(
        PARIS,
        id="9",
        trajectory="Action: finish[Paris]\nObservation: Episode finished, reward = True\n",
    )
    as_cot = dict(again, method="cot")
    run_a = write_run(tmp_path / "a", [PARIS, WATER])
    run_b = write_run(tmp_path / "b", [again, as_cot])
    out = tmp_path / "mix.jsonl"
    stats = convert([run_a, run_b], "chat", out)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["messages"][1]["content"] for r in rows] == [
        "Thought: I need to search France.\nAction: search[capital of France]",
        "Action: finish[yes]",
        "Action: finish[Paris]",
    ]
    assert (stats["kept"], stats["dropped_duplicate"], stats["inputs"]) == (3, 1, 2)
    out2 = tmp_path / "mix2.jsonl"
    assert convert([run_a, run_b], "chat", out2, dedupe=False)["kept"] == 4


def test_shuffle_is_seeded(tmp_path: Path) -> None:
    records = [episode(str(i), f"Question {i}?", "Action: finish[a]\n", True) for i in range(6)]
    run = write_run(tmp_path / "run", records)
    orders = []
    for name in ("a.json", "b.json"):
        convert([run], "alpaca", tmp_path / name, shuffle_seed=233)
        orders.append([r["instruction"] for r in json.loads((tmp_path / name).read_text())])
    expected = [f"Question {i}?" for i in (2, 0, 3, 4, 1, 5)]  # random.Random(233).shuffle
    assert orders[0] == orders[1] == expected


def test_refuses_to_overwrite(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "train.json"
    out.write_text("keep me")
    with pytest.raises(FireactError, match="already exists"):
        convert([run_dir], "alpaca", out)
    assert out.read_text() == "keep me"
    convert([run_dir], "alpaca", out, overwrite=True)
    assert out.read_text() == ALPACA


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            [PARIS, {k: v for k, v in HAMLET.items() if k != "trajectory"}],
            ":2: episode has no 'trajectory' field",
        ),
        (
            [{k: v for k, v in PARIS.items() if k != "question"}],
            ":1: episode has no 'question' field",
        ),
        ([PARIS, "{not json"], ":2: malformed JSON line"),
        ([dict(PARIS, trajectory=None)], ":1: field 'trajectory' must be a string, got null"),
        (["[1, 2]"], ":1: expected a JSON object (an episode), got list"),
        (
            [{k: v for k, v in PARIS.items() if k != "em"}],
            ":1: episode has no 'em' or 'reward' field",
        ),
        ([], ": no episodes in this file"),
    ],
)
def test_input_errors_name_file_and_line(tmp_path: Path, lines: list[Any], message: str) -> None:
    run = write_run(tmp_path / "run", lines)
    with pytest.raises(FireactError) as err:
        convert([run], "chat", tmp_path / "out.jsonl")
    assert str(err.value).startswith(str(run / "episodes.jsonl") + message)
    assert not (tmp_path / "out.jsonl").exists()


def test_nothing_kept_is_a_clear_error(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", [HAMLET])
    with pytest.raises(FireactError) as err:
        convert([run], "chat", tmp_path / "out.jsonl")
    assert str(err.value) == (
        "nothing to write: all 1 episodes were dropped (1 failed)"
        " (keep='all' keeps failed episodes too)"
    )
    with pytest.raises(FireactError, match=r"\(1 method\) \(methods \['cot'\] matched none\)"):
        convert([run], "chat", tmp_path / "out.jsonl", keep="all", methods={"cot"})


def test_bad_inputs_and_options(tmp_path: Path) -> None:
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(FireactError, match="no episodes.jsonl or trajectories.jsonl"):
        convert([tmp_path / "empty_dir"], "chat", tmp_path / "o.jsonl")
    with pytest.raises(FireactError, match="not found"):
        convert([tmp_path / "missing"], "chat", tmp_path / "o.jsonl")
    with pytest.raises(FireactError, match="unknown format 'csv'"):
        convert([tmp_path], "csv", tmp_path / "o.csv")  # type: ignore[arg-type]
    with pytest.raises(FireactError, match="unknown keep 'some'"):
        convert([tmp_path], "chat", tmp_path / "o.jsonl", keep="some")  # type: ignore[arg-type]


def test_trajectories_jsonl_of_generate_is_read(tmp_path: Path) -> None:
    run = write_run(tmp_path / "gen", [PARIS], name="trajectories.jsonl")
    assert convert([run], "chat", tmp_path / "o.jsonl")["kept"] == 1


def test_parse_blocks_keeps_continuation_lines() -> None:
    assert parse_blocks("Thought: a\nb\nAction:\nObservation: c\n\n") == [
        Block("Thought", "a\nb"),
        Block("Action", ""),
        Block("Observation", "c"),
    ]
    assert parse_blocks("") == []


# ---------------------------------------------------------------- FireAct trajectories


def fireact_fewshot_trajs(records: list[dict[str, str]]) -> dict[str, Any]:
    """FireAct generation.py's output for few-shot runs: traj = question + "\\n" + steps."""
    trajs = {}
    for i, record in enumerate(records):
        traj = record["instruction"] + "\n" + record["output"]
        trajs[str(i)] = {
            "reward": True,
            "em": True,
            "f1": 1.0,
            "gt": "g",
            "pred": "g",
            "prompt": "FEW-SHOT EXAMPLES\n",
            "traj": traj,
            "traj_by_line": traj.split("\n"),
        }
    return trajs


def test_fireact_hotpotqa_round_trip_is_byte_identical(tmp_path: Path) -> None:
    shipped = (FINETUNE / "alpaca_format" / "hotpotqa.json").read_text(encoding="utf-8")
    src = tmp_path / "hotpotqa_train_0_500_gpt-4_0.0_2023.json"
    src.write_text(json.dumps(fireact_fewshot_trajs(json.loads(shipped))), encoding="utf-8")
    out = tmp_path / "hotpotqa.json"
    stats = convert([src], "alpaca", out)
    assert stats["kept"] == 500 and stats["by_task"] == {"hotpotqa": 500}
    assert out.read_text(encoding="utf-8") == shipped
    chat = tmp_path / "hotpotqa.jsonl"
    convert([src], "chat", chat)
    ours = chat.read_text(encoding="utf-8").splitlines()
    theirs = (FINETUNE / "gpt_format" / "hotpotqa.jsonl").read_text(encoding="utf-8").splitlines()
    differ = [i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b]
    # Chat questions are stripped, as in FireAct's other chat sets; hotpotqa.jsonl alone keeps
    # the trailing whitespace of 26 questions. Everything else is identical.
    spaced = [5, 10, 17, 28, 54, 101, 139, 144, 192, 235, 271, 273, 302, 308, 335, 341, 363]
    assert differ == [*spaced, 381, 384, 406, 412, 425, 466, 470, 471, 492]
    for i in differ:
        a, b = json.loads(ours[i])["messages"], json.loads(theirs[i])["messages"]
        assert a[0]["content"] == b[0]["content"].rstrip() != b[0]["content"] and a[1:] == b[1:]


def test_import_fireact_text_alpaca_and_chat_forms(tmp_path: Path) -> None:
    steps = "Thought: t\nAction: finish[Seth MacFarlane]\nObservation: Episode finished, reward = True\n"
    head = (
        "Below is an instruction that describes a task. Write a response that appropriately"
        " completes the request.\n\n### Instruction:\nWho created American Dad?\n\n### Response:\n"
    )
    mmlu_q = "Question: Which is a gas?\nA. ice\nB. steam\nC. rock\nD. wood"
    data = {
        "6238": {"reward": True, "em": True, "f1": 1.0, "gt": "seth macfarlane",
                 "pred": "seth macfarlane", "prompt": "", "traj": head + steps},
        "17": {"reward": False, "em": False, "f1": 0, "gt": "b", "pred": "a", "prompt": [],
               "traj": [
                   {"role": "user", "content": "Who created American Dad?"},
                   {"role": "assistant", "content": "Thought: t\nAction: finish[Seth MacFarlane]"},
                   {"role": "user", "content": "Observation: Episode finished, reward = True"},
               ]},
        "3": {"reward": True, "em": True, "f1": 1.0, "gt": "b", "pred": "b", "prompt": "P",
              "traj": mmlu_q + "\nThought: steam.\nAction: finish[B]\nObservation: Episode finished, reward = True\n"},
    }  # fmt: skip
    src = tmp_path / "mmlu_dev_0_3_gpt-4.json"
    src.write_text(json.dumps(data))
    records = import_fireact_trajectories(src)
    assert [r["question"] for r in records] == ["Who created American Dad?"] * 2 + [mmlu_q]
    assert records[0]["trajectory"] == records[1]["trajectory"] == steps
    assert records[0] == {
        "id": "6238",
        "task": "mmlu",
        "method": "react",
        "format": "text",
        "question": "Who created American Dad?",
        "gold": "seth macfarlane",
        "prediction": "seth macfarlane",
        "finished": True,
        "reward": True,
        "em": True,
        "f1": 1.0,
        "steps": 1,
        "trajectory": steps,
        "messages": [
            {"role": "user", "content": "Who created American Dad?"},
            {"role": "assistant", "content": "Thought: t\nAction: finish[Seth MacFarlane]"},
            {"role": "user", "content": "Observation: Episode finished, reward = True"},
        ],
    }
    assert records[1]["format"] == "chat" and records[1]["em"] is False
    assert records[1]["messages"] == data["17"]["traj"]
    assert records[2]["trajectory"].startswith("Thought: steam.")


def test_import_fireact_errors(tmp_path: Path) -> None:
    src = tmp_path / "t.json"
    src.write_text("[]")
    with pytest.raises(FireactError, match="expected a JSON object mapping ids"):
        import_fireact_trajectories(src)
    src.write_text('{"5": {"em": true}}')
    with pytest.raises(FireactError, match=r"t\.json \(entry 5\): no 'traj' field"):
        import_fireact_trajectories(src)
    src.write_text("{}")
    with pytest.raises(FireactError, match="no episodes"):
        import_fireact_trajectories(src)

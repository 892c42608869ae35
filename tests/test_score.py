"""`fireact score` on FireAct's trajectory JSON and on our run JSONL."""

import json

import pytest

from fireact.errors import FireactError
from fireact.report.score import detect_format, score_file
from tests.clirun import run_cli


def fireact_episode(question: str, steps: list[tuple[str, str, str]], gt, pred) -> dict:
    """A record as FireAct's generation script saves it (its trajectory text included)."""
    traj = question + "\n"
    for thought, action, observation in steps:
        traj += f"Thought: {thought}\nAction: {action}\nObservation: {observation}\n"
    finished = steps and steps[-1][1].startswith("finish[")
    em = pred is not None and finished and pred.lower() == str(gt).lower()
    return {
        "reward": em,
        "em": em,
        "f1": 1.0 if em else 0.0,
        "gt": gt,
        "pred": pred,
        "prompt": "Solve a question answering task ...",
        "traj": traj,
        "traj_by_line": traj.split("\n"),
    }


@pytest.fixture
def fireact_file(tmp_path):
    data = {
        "0": fireact_episode(
            "Musician and satirist Allie Goertz wrote a song about Milhouse, named after who?",
            [
                ("I need to search Milhouse.", "search[Milhouse named after]", "Richard Nixon"),
                ("I find the answer.", "finish[Richard Nixon]", "Episode finished, reward = True"),
            ],
            "Richard Nixon",
            "Richard Nixon",
        ),
        "1": fireact_episode(
            "Who was the 37th president?",
            [("I know it.", "finish[Nixon]", "Episode finished, reward = False")],
            "Richard Nixon",
            "Nixon",
        ),
        "2": fireact_episode(
            "Which is older?",
            [("Search A.", "search[A]", "None")] * 3,  # ran out of steps: no finish
            "A",
            None,
        ),
    }
    path = tmp_path / "trajs.json"
    path.write_text(json.dumps(data, indent=2))
    return path


def run_line(**fields) -> str:
    base = {"id": "x", "task": "hotpotqa", "question": "q", "finished": True}
    return json.dumps({**base, **fields})


@pytest.fixture
def run_file(tmp_path):
    lines = [
        run_line(id="a", gold="The Beatles", prediction="beatles"),
        run_line(id="b", gold="1,800 to 7,000 ft", prediction="1,800 ft"),
        run_line(id="c", gold="yes", prediction=None, finished=False),
        run_line(id="d", task="strategyqa", gold=False, prediction="No."),
    ]
    path = tmp_path / "run.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_fireact_format_scores(fireact_file):
    result = score_file(fireact_file)
    assert (result.format, result.task, result.n) == ("fireact", "hotpotqa", 3)
    assert (result.finished, result.unfinished, result.correct) == (2, 1, 1)
    assert result.em == 1 / 3
    assert result.f1 == (1.0 + 2 / 3 + 0.0) / 3


def test_run_jsonl_scores_with_each_episodes_task(run_file):
    result = score_file(run_file)
    assert (result.format, result.task, result.n) == ("jsonl", "hotpotqa,strategyqa", 4)
    assert (result.finished, result.unfinished, result.correct) == (3, 1, 2)
    assert result.em == 2 / 4
    assert result.f1 == (1.0 + 2 / 3 + 0.0 + 1.0) / 4


def test_denominator_counts_dropped_episodes_as_unfinished(run_file):
    result = score_file(run_file, denominator=10)
    assert (result.denominator, result.unfinished, result.em) == (10, 7, 2 / 10)


def test_denominator_smaller_than_file_is_refused(run_file):
    with pytest.raises(FireactError, match="--denominator 3 is smaller than the 4 episodes"):
        score_file(run_file, denominator=3)


def test_single_line_fireact_object_is_not_mistaken_for_jsonl(tmp_path):
    path = tmp_path / "one.json"
    path.write_text(json.dumps({"0": {"gt": "a", "pred": "a", "traj": ""}}))
    assert detect_format(path) == "fireact"
    assert score_file(path).em == 1.0


def test_cli_table_and_json(fireact_file, run_file):
    table = run_cli("score", str(fireact_file), str(run_file))
    assert table.returncode == 0, table.stderr
    assert "33.33" in table.stdout and "50.00" in table.stdout
    as_json = run_cli("score", "--json", str(run_file))
    assert json.loads(as_json.stdout)[0]["em"] == 0.5


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "file is empty"),
        ('{"prediction": "a", "gold": "a"}\n{"prediction": ', ":2: malformed JSON line"),
        ('{"gold": "a"}\n', ":1: missing field 'prediction'"),
        ('{"prediction": 3, "gold": "a"}\n', ":1: field 'prediction' should be a string or null"),
        ('{"prediction": "a", "gold": "a", "task": "trivia"}\n', "unknown task 'trivia'"),
        ('{"0": {"gt": "a"}}', "episode 0: missing field 'pred'"),
        ("[1, 2]\n", ":1: expected a JSON object per line"),
    ],
)
def test_cli_bad_files_one_line_exit_2(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    result = run_cli("score", str(path))
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr

"""`fireact score` on FireAct's trajectory JSON and on our run JSONL."""

import gzip
import json
from pathlib import Path

import pytest

from fireact.errors import FireactError
from fireact.report.score import detect_format, score_file, task_from_golds
from tests.helpers.clirun import run_cli

TRAJS = Path(__file__).parent / "fixtures" / "fireact_trajs"
LLAMA_7B = (
    TRAJS / "hotpotqa_dev_0_500_llama_models_lora_llama-2-7b-d_1000_0.7_2023-09-19-00-49-36.json.gz"
)
LLAMA_13B = (
    TRAJS
    / "hotpotqa_dev_0_500_llama_models_lora_llama-2-13b-d_1000_0.7_2023-09-18-13-40-08.json.gz"
)
GPT35 = (
    TRAJS
    / "hotpotqa_dev_0_500_ft_gpt-3.5-turbo-0613_princeton-nlp__7woQRsdi_0.0_2023-09-21-16-19-51.json.gz"
)


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


def test_fireacts_released_trajectories_score_as_in_the_paper():
    """FireAct's Table: Llama-2-7B LoRA 26.2, Llama-2-13B LoRA 34.4, fine-tuned GPT-3.5 40.0."""
    result = run_cli("score", str(LLAMA_7B), str(LLAMA_13B), str(GPT35))
    assert result.returncode == 0, result.stderr
    out_of = "out of 500: range 0-500 of hotpotqa dev in the file name"
    assert result.stdout.splitlines() == [
        f"{LLAMA_7B}  [hotpotqa, fireact; {out_of}]",
        "  EM 26.20 = 131/500; 500 records; F1 38.01",
        f"{LLAMA_13B}  [hotpotqa, fireact; {out_of}]",
        "  EM 34.40 = 172/500; 499 records, 1 missing counted wrong; F1 47.91",
        f"{GPT35}  [hotpotqa, fireact; {out_of}]",
        "  EM 40.00 = 200/500; 465 records, 35 missing counted wrong; F1 54.21",
    ]


def test_renamed_fireact_file_gets_its_range_from_the_ids(tmp_path):
    # the ids are HotpotQA dev indices, all among the first 500 after the Random(233) shuffle
    path = tmp_path / "llama13b.json"
    path.write_bytes(gzip.decompress(LLAMA_13B.read_bytes()))
    result = score_file(path)
    assert (result.n, result.denominator, result.missing, result.correct) == (499, 500, 1, 172)
    assert result.denominator_from == "ids: the paper's 500 shuffled hotpotqa dev questions"
    assert (result.finished, result.unfinished) == (499, 1)


def test_denominator_option_overrides_the_range():
    result = score_file(GPT35, denominator=1000)
    assert (result.em, result.missing, result.denominator_from) == (0.2, 535, "--denominator")
    assert result.count_line().startswith("EM 20.00 = 200/1000; 465 records, 535 missing")


def test_fireact_format_scores(fireact_file):
    result = score_file(fireact_file)
    assert (result.format, result.task, result.n) == ("fireact", "hotpotqa", 3)
    assert (result.denominator, result.denominator_from) == (3, "records in the file")
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
        ('{"prediction": "a", "gold": "a"}\n{"prediction": \n', ":2: malformed JSON line"),
        ('{"prediction": "a", "gold": "a"}\n{"prediction": ', ":2: the last line is cut short"),
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


def fireact_records(golds_preds: dict[str, tuple]) -> dict:
    """A FireAct file's records with just gt / pred (and a finished trajectory)."""
    return {
        key: {"gt": gt, "pred": pred, "traj": f"Action: finish[{pred}]\nEpisode finished"}
        for key, (gt, pred) in golds_preds.items()
    }


def write_fireact(path: Path, golds_preds: dict[str, tuple]) -> Path:
    path.write_text(json.dumps(fireact_records(golds_preds)))
    return path


@pytest.mark.parametrize(
    ("golds", "task"),
    [
        ([True, False], "strategyqa"),  # FireAct's StrategyQA stores booleans
        (["yes", "No"], "strategyqa"),
        (["a", "D", "c"], "mmlu"),  # FireAct's MMLU stores the letter lower-cased
        (["Richard Nixon", "yes", "A"], "hotpotqa"),
        ([True, "yes"], None),
        ([None], None),
    ],
)
def test_task_from_golds(golds, task):
    assert task_from_golds(golds) == task


def test_mmlu_and_strategyqa_files_use_their_own_rules(tmp_path):
    mmlu = write_fireact(tmp_path / "a.json", {"0": ("b", "b. paris"), "1": ("c", "a")})
    assert (score_file(mmlu).task, score_file(mmlu).correct) == ("mmlu", 1)  # prefix rule
    sqa = write_fireact(tmp_path / "b.json", {"0": (True, "yes, it is"), "1": (False, "yes")})
    assert (score_file(sqa).task, score_file(sqa).correct) == ("strategyqa", 1)


def test_task_that_golds_cannot_tell_needs_task_option(tmp_path):
    path = write_fireact(tmp_path / "mixed.json", {"0": (True, "yes"), "1": ("no", "no")})
    result = run_cli("score", str(path))
    assert result.returncode == 2
    assert result.stderr == (
        f"error: {path}: cannot tell the task from the golds (field 'gt'): "
        "pass --task hotpotqa | bamboogle | strategyqa | mmlu | tableqa | arith\n"
    )
    assert score_file(path, task="strategyqa").correct == 2


def test_file_name_task_must_agree_with_the_golds(tmp_path):
    path = write_fireact(tmp_path / "hotpotqa_dev_0_2_gpt-4_0.0_x.json", {"0": ("a", "a")})
    with pytest.raises(FireactError, match="the file name says hotpotqa but the golds look like"):
        score_file(path)


def test_file_name_range_is_cut_at_the_end_of_the_split(tmp_path):
    # generation.py --task bamboogle --task_end_index 500 runs the 125 questions there are
    name = "bamboogle_test_0_500_gpt-4_0.0_2023-10-01-00-00-00.json"
    path = write_fireact(tmp_path / name, {"0": ("Jimmy Carter", "jimmy carter")})
    result = score_file(path)
    assert (result.task, result.denominator, result.correct) == ("bamboogle", 125, 1)
    assert result.denominator_from == "range 0-125 of bamboogle test in the file name"


def test_file_name_range_must_hold_the_ids(tmp_path):
    name = "strategyqa_dev_0_10_gpt-4_0.0_x.json"
    path = write_fireact(tmp_path / name, {"0": (True, "yes"), "200": (False, "no")})
    result = run_cli("score", str(path))
    assert result.stderr == (
        f"error: {path}: ids outside the range 0-10 of strategyqa dev in the file name "
        "(shuffled or not): 200; pass --denominator N\n"
    )
    # a split we do not ship (HotpotQA train): the size still has to hold the records
    small = tmp_path / "hotpotqa_train_0_1_gpt-4_0.0_x.json"
    write_fireact(small, {"0": ("Paris", "Paris"), "1": ("Rome", "Rome")})
    with pytest.raises(FireactError, match="2 records but the range 0-1 of hotpotqa train in the"):
        score_file(small)
    assert score_file(small, denominator=2).em == 1.0


def write_run(folder: Path, lines: list[str], **files: dict) -> Path:
    folder.mkdir()
    (folder / "episodes.jsonl").write_text("\n".join(lines) + "\n")
    for name, data in files.items():
        (folder / f"{name}.json").write_text(json.dumps(data))
    return folder


RUN_LINES = [
    run_line(id="a", gold="The Beatles", prediction="beatles"),
    run_line(id="b", gold="yes", prediction=None, finished=False),
]


def test_run_folder_divides_by_the_requested_n(tmp_path):
    run = write_run(tmp_path / "run", RUN_LINES, summary={"n": 5}, config={"n": 4})
    result = score_file(run)  # the folder means its episodes.jsonl
    assert (result.denominator, result.denominator_from, result.missing) == (
        5,
        "n in summary.json",
        3,
    )
    assert result.count_line() == (
        "EM 20.00 = 1/5; 2 records (1 unfinished), 3 missing counted wrong; F1 20.00"
    )
    (run / "summary.json").unlink()  # a run still going: config.json, written at the start
    assert score_file(run / "episodes.jsonl").denominator_from == "n in config.json"
    (run / "config.json").unlink()
    assert score_file(run).count_line() == "EM 50.00 = 1/2; 2 records (1 unfinished); F1 50.00"


def test_run_summary_with_fewer_than_its_records_is_refused(tmp_path):
    run = write_run(tmp_path / "run", RUN_LINES, summary={"n": 1})
    with pytest.raises(FireactError, match="2 records but the n in summary.json gives 1"):
        score_file(run)
    (run / "summary.json").write_text('{"n": "all"}')
    with pytest.raises(FireactError, match="summary.json: field 'n' should be a positive integer"):
        score_file(run)


def test_gzipped_run_and_broken_gzip(tmp_path):
    path = tmp_path / "run.jsonl.gz"
    path.write_bytes(gzip.compress("\n".join(RUN_LINES).encode()))
    assert score_file(path).correct == 1
    bad = tmp_path / "bad.json.gz"
    bad.write_bytes(b"not gzip")
    result = run_cli("score", str(bad))
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {bad}: not a readable gzip file")

"""Loading the paper's tasks: sizes, ids, question text and gold answers, episode selection."""

import json

import pytest

from fireact.errors import FireactError
from fireact.tasks import load_task, select_indices


@pytest.mark.parametrize(
    ("task", "split", "size"),
    [
        ("hotpotqa", "dev", 7405),
        ("hotpotqa", "test", 7405),
        ("bamboogle", "test", 125),
        ("strategyqa", "dev", 229),
        ("strategyqa", "test", 490),
        ("strategyqa", "train_filtered", 2821),
        ("mmlu", "dev", 285),
        ("mmlu", "val", 1531),
        ("mmlu", "test", 14042),
    ],
)
def test_split_sizes(task, split, size):
    assert len(load_task(task, split).examples) == size


def test_hotpotqa_dev_first_example():
    ex = load_task("hotpotqa", "dev").examples[0]
    assert ex.id == "hotpotqa/dev/0"
    assert ex.question == "Were Scott Derrickson and Ed Wood of the same nationality?"
    assert ex.answer == "yes"


def test_hotpotqa_test_has_no_gold():
    assert load_task("hotpotqa", "test").examples[0].answer is None


def test_bamboogle_reads_question_and_answer_columns():
    ex = load_task("bamboogle").examples[0]
    assert (
        ex.question
        == "Who was president of the United States in the year that Citibank was founded?"
    )
    assert ex.answer == "james madison"


def test_strategyqa_gold_is_bool_and_id_is_qid():
    ex = load_task("strategyqa", "dev").examples[0]
    assert ex.id == "e0044a7b4d146d611e73"
    assert ex.answer is False
    assert load_task("strategyqa", "test").examples[0].answer is None


def test_mmlu_question_text_lists_the_options():
    ex = load_task("mmlu", "dev", subject="anatomy").examples[0]
    assert ex.id == "mmlu/dev/anatomy/0"
    assert ex.question == (
        "Question: What is the embryological origin of the hyoid bone?\n"
        "A. The first pharyngeal arch\n"
        "B. The first and second pharyngeal arches\n"
        "C. The second pharyngeal arch\n"
        "D. The second and third pharyngeal arches"
    )
    assert ex.answer == "D"


def test_mmlu_one_subject_vs_all():
    assert len(load_task("mmlu", "dev", subject="anatomy").examples) == 5
    first = load_task("mmlu", "dev").examples[0]
    assert first.id == "mmlu/dev/abstract_algebra/0"  # subjects in name order


def test_task_scores_with_its_rule():
    assert load_task("hotpotqa").score("The Beatles", "beatles").em is True
    assert load_task("strategyqa").score("Yes", True).em is True
    assert load_task("mmlu", "dev").score("c", "C").f1 == 1.0
    assert load_task("hotpotqa").score("anything", None).em is False  # unlabelled test split


def test_random_selection_is_the_papers():
    # random.Random(233).shuffle over range(7405), then [0:5]
    assert select_indices(7405, 0, 5, shuffle=True) == [3687, 6238, 5388, 3522, 3824]
    ids = [ex.id for ex in load_task("hotpotqa", "dev").select(0, 3, shuffle=True)]
    assert ids == ["hotpotqa/dev/3687", "hotpotqa/dev/6238", "hotpotqa/dev/5388"]


def test_plain_selection_is_a_slice():
    assert select_indices(10, 2, 5) == [2, 3, 4]
    assert select_indices(4) == [0, 1, 2, 3]


def test_distractor_file_loads_as_hotpotqa(tmp_path):
    records = [
        {"_id": "5a8b57f25542995d1e6f1371", "question": "Q1?", "answer": "A1", "context": []},
        {"question": "Q2?", "answer": "A2", "context": [["T", ["s."]]]},
    ]
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(records))
    task = load_task("hotpotqa", path=path)
    assert [ex.id for ex in task.examples] == ["5a8b57f25542995d1e6f1371", "hotpotqa/mine/1"]
    assert task.examples[1].answer == "A2"


def test_shipped_distractor_file_matches_dev_order():
    from fireact.resources import resource

    distractor = load_task("hotpotqa", path=resource("hotpotqa", "dev_distractor_first100.json"))
    dev = load_task("hotpotqa", "dev").examples[:100]
    assert [e.question for e in distractor.examples] == [e.question for e in dev]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: load_task("triviaqa"), "unknown task 'triviaqa'"),
        (lambda: load_task("hotpotqa", "train"), "unknown split 'train' for task hotpotqa"),
        (lambda: load_task("mmlu", "dev", subject="astrology"), "unknown MMLU subject 'astrology'"),
        (lambda: load_task("hotpotqa", subject="anatomy"), "--subject applies to mmlu only"),
        (lambda: select_indices(100, 5, 5), "--start 5 must be smaller than --end 5"),
        (lambda: select_indices(100, 0, 101), "--end 101 is beyond the split, which has 100"),
        (lambda: select_indices(100, -1, 5), "must not be negative"),
    ],
)
def test_bad_names_and_ranges(call, message):
    with pytest.raises(FireactError, match=message):
        call()


@pytest.mark.parametrize(
    ("task", "name", "content", "message"),
    [
        ("hotpotqa", "bad.json", '[{"question": "x"', "bad.json:1: malformed JSON"),
        ("hotpotqa", "empty.json", "", "empty.json: file is empty"),
        ("hotpotqa", "obj.json", '{"question": "x"}', "expected a JSON list of questions"),
        (
            "hotpotqa",
            "noq.json",
            '[{"answer": "x"}]',
            "noq.json: record 0: missing field 'question'",
        ),
        ("hotpotqa", "num.json", '[{"question": 3}]', "field 'question' should be str, got int"),
        ("strategyqa", "sq.json", '[{"question": "q", "answer": "yes"}]', "should be true/false"),
        ("bamboogle", "b.csv", "Q,A\nx,y\n", "b.csv:1: header must name columns"),
        (
            "bamboogle",
            "short.csv",
            "Question,Answer\nonly one\n",
            "short.csv:2: expected 2 columns",
        ),
        ("mmlu", "m.csv", "q,a,b,c,d\n", "m.csv:1: expected 6 columns"),
        ("mmlu", "l.csv", "q,a,b,c,d,E\n", "l.csv:1: answer must be A, B, C or D"),
    ],
)
def test_bad_files_name_file_and_problem(tmp_path, task, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(FireactError, match=message):
        load_task(task, path=path)


def test_missing_file(tmp_path):
    with pytest.raises(FireactError, match="nope.json: file not found"):
        load_task("hotpotqa", path=tmp_path / "nope.json")

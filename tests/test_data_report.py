"""`fireact data report`: counts on FireAct's shipped sets, checked against independent counts.

The expected numbers were read from the data and checked by hand-written counts that do not use
the report's code (the test's own method rule, FireAct's final-newline shape; a plain tokenizer
call on the alpaca text for the token lengths).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fireact.data.report import infer_method, report
from fireact.trajectory import alpaca_prompt
from tests.helpers.clirun import run_cli
from tests.helpers.tiny_models import train_tokenizer

FINETUNE = Path(__file__).resolve().parents[1] / "src/fireact/resources/finetune"
HOTPOTQA = FINETUNE / "alpaca_format/hotpotqa.json"
MM_ALPACA = FINETUNE / "alpaca_format/multitask_multimethod.json"
MM_CHAT = FINETUNE / "gpt_format/multitask_multimethod.jsonl"
CUE = "Now that I haven't solved the task within"


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tok")
    train_tokenizer(out)
    return out


def _independent_method(output: str) -> str:
    if CUE in output:
        return "reflexion"
    if output.endswith("\n"):
        return "react"
    first = min(i for i in (output.find("Thought:"), output.find("Action:")) if i >= 0)
    return "cot" if output[first:].startswith("Thought:") else "io"


def test_methods_and_tasks_of_multitask_multimethod(tmp_path: Path) -> None:
    result = report([MM_ALPACA, MM_CHAT], cutoff=512, out_dir=tmp_path)
    alpaca, chat = result["files"][str(MM_ALPACA)], result["files"][str(MM_CHAT)]
    expected = {"react": 1344, "cot": 646, "reflexion": 71, "io": 2}
    assert alpaca["by_method"] == expected
    rows = json.loads(MM_ALPACA.read_text(encoding="utf-8"))
    independent: dict[str, int] = {}
    for row in rows:
        method = _independent_method(row["output"])
        independent[method] = independent.get(method, 0) + 1
        assert infer_method(row) == method
    assert independent == expected
    # chat cannot tell a one-step react from cot: they are counted together, said so
    assert chat["by_method"] == {"react": 1017, "react|cot": 975, "reflexion": 71}
    # 712 MMLU records, as `convert --check` finds (its MMLU-options warning)
    for part in (alpaca, chat):
        assert part["by_task"] == {"mmlu": 712, "hotpotqa": 710, "strategyqa": 641}
    # the known duplicate pair of the multimethod chat set; the alpaca one has one too
    assert chat["duplicates"]["groups"] == [[f"{MM_CHAT}:36", f"{MM_CHAT}:116"]]
    assert alpaca["duplicates"]["extra_copies"] == 1
    # parse failures carry file:line; the first one is an assistant turn without an action
    assert len(chat["parse_failures"]) == 22 and len(alpaca["parse_failures"]) == 10
    assert chat["parse_failures"][0]["where"] == f"{MM_CHAT}:240"
    assert "whitespace" in result["tokenizer"]
    assert {p.name for p in tmp_path.iterdir()} == {"report.json", "report.md", "tokens.png"}
    assert (tmp_path / "tokens.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "report.json").read_text())["overall"]["examples"] == 4126
    assert "| method cot | 646 | 0 | 646 |" in (tmp_path / "report.md").read_text()


def test_tokens_and_truncation_with_a_local_tokenizer(tokenizer_dir: Path) -> None:
    from transformers import AutoTokenizer

    result = report([HOTPOTQA], tokenizer=tokenizer_dir, cutoff=256)
    part = result["files"][str(HOTPOTQA)]
    assert part["by_method"] == {"react": 500} and part["by_task"] == {"hotpotqa": 500}
    assert part["duplicates"]["extra_copies"] == 0 and part["parse_failures"] == []
    # independent: the tokenizer on the whole text, BOS included, + EOS
    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    rows = json.loads(HOTPOTQA.read_text(encoding="utf-8"))
    lengths = [
        len(tok(alpaca_prompt(r["instruction"], r["input"]) + r["output"]).input_ids) + 1
        for r in rows
    ]
    assert part["tokens"]["max"] == max(lengths) == 1023
    assert part["tokens"]["total"] == sum(lengths) == 214159
    assert part["cutoff"]["over"] == sum(n > 256 for n in lengths) == 470
    assert part["cutoff"]["lose_supervised"] == 459
    assert part["cutoff"]["dropped"] == 7
    assert part["supervised"]["share"] == pytest.approx(0.4207)
    assert str(tokenizer_dir) in result["tokenizer"]


def test_cli_prints_summary_and_writes_files(tmp_path: Path) -> None:
    done = run_cli("data", "report", str(MM_CHAT), "--cutoff", "512", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert first.startswith("data: 2063 examples, mean 149.5 tokens")
    assert "48 over cutoff 512" in first and "supervised share 53.3%" in first
    assert (tmp_path / "report.md").is_file() and (tmp_path / "tokens.png").is_file()


def test_cli_bad_file_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('[{"instruction": "q"}]', encoding="utf-8")
    done = run_cli("data", "report", str(bad), "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "bad.json:1" in done.stderr

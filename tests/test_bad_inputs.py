"""A catalogue of bad inputs: each gives one line on stderr naming the problem, exit 2, no
traceback, and writes or overwrites nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fireact.resources import resource
from tests.helpers.clirun import run_cli
from tests.helpers.runs import snapshot

DISTRACTOR = str(resource("hotpotqa", "dev_distractor_first100.json"))
TINY_RECIPE = (
    "model: {{build_tiny: {{hidden_size: 32, layers: 1, heads: 2, vocab_size: 300}}}}\n"
    "dataset: fireact:finetune/alpaca_format/hotpotqa.json\nmax_examples: 2\nmethod: full\n"
    "output_dir: {t}/model\n"
)
GOOD_CHAT = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}


def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def script(tmp: Path) -> str:
    outputs = {"hotpotqa/dev/0": [" Done.\nAction: finish[yes]"]}
    return "scripted:" + write(tmp / "script.json", json.dumps(outputs))


def run_args(tmp: Path, *extra: str, out: str = "out") -> list[str]:
    base = ["run", "--task", "hotpotqa", "--end", "1", "--model", script(tmp)]
    return [*base, "--out", str(tmp / out), *extra]


def finished_run(tmp: Path) -> Path:
    """A real, finished run folder (made before the snapshot)."""
    out = tmp / "done"
    assert run_cli(*run_args(tmp, out="done")).returncode == 0
    return out


@dataclass
class Case:
    name: str
    args: Callable[[Path], list[str]]
    says: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)


CASES = [
    Case("malformed task JSON", lambda t: run_args(t, "--data", write(t / "q.json", '[{"question": "a"')), ("q.json:1: malformed JSON",)),
    Case("empty task JSON", lambda t: run_args(t, "--data", write(t / "q.json", "")), ("q.json: file is empty",)),
    Case("task file not found", lambda t: run_args(t, "--data", str(t / "nope.json")), ("nope.json: file not found",)),
    Case("missing question field", lambda t: run_args(t, "--data", write(t / "q.json", '[{"answer": "a"}]')), ("record 0: missing field 'question'",)),
    Case("question of the wrong type", lambda t: run_args(t, "--data", write(t / "q.json", '[{"question": 7}]')), ("field 'question' should be str, got int",)),
    Case("malformed bamboogle CSV", lambda t: ["run", "--task", "bamboogle", "--model", script(t), "--out", str(t / "o"), "--data", write(t / "b.csv", "Q,A\nx,y\n")], ("b.csv:1: header must name columns",)),
    Case("MMLU row with 5 columns", lambda t: ["run", "--task", "mmlu", "--model", script(t), "--out", str(t / "o"), "--data", write(t / "m.csv", "q,a,b,c,d\n")], ("m.csv:1: expected 6 columns",)),
    Case("unknown task", lambda t: ["run", "--task", "triviaqa", "--model", script(t), "--out", str(t / "o")], ("unknown task 'triviaqa'",)),
    Case("unknown split", lambda t: run_args(t, "--split", "train"), ("unknown split 'train' for task hotpotqa",)),
    Case("unknown MMLU subject", lambda t: ["run", "--task", "mmlu", "--subject", "astrology", "--model", script(t), "--out", str(t / "o")], ("unknown MMLU subject 'astrology'",)),
    Case("unknown method", lambda t: run_args(t, "--method", "tot"), ("method",)),
    Case("unknown tool", lambda t: run_args(t, "--tool", "bing"), ("tool",)),
    Case("unknown backend", lambda t: ["run", "--task", "hotpotqa", "--model", "claude:x", "--out", str(t / "o")], ("'claude:x'", "openai:MODEL")),
    Case("start after end", lambda t: run_args(t, "--start", "5", "--end", "2"), ("start",)),
    Case("end beyond the split", lambda t: ["run", "--task", "bamboogle", "--end", "500", "--model", script(t), "--out", str(t / "o")], ("--end 500 is beyond the split, which has 125",)),
    Case("noise probability above 1", lambda t: run_args(t, "--noise", "random", "--noise-p", "2"), ("noise_p",)),
    Case("zero concurrency", lambda t: run_args(t, "--concurrency", "0"), ("concurrency",)),
    Case("output folder is a file", lambda t: run_args(t, out="afile/sub") if write(t / "afile", "x") else [], ("cannot write to", "afile/sub")),
    Case("existing run without --overwrite", lambda t: run_args(t, out="done") if finished_run(t) else [], ("is not empty", "--resume", "--overwrite")),
    Case("missing OpenAI key", lambda t: ["run", "--task", "hotpotqa", "--model", "openai:gpt-4", "--out", str(t / "o")], ("OPENAI_API_KEY is not set",), {"OPENAI_API_KEY": ""}),
    Case("missing SerpAPI key", lambda t: run_args(t, "--tool", "serpapi"), ("SERPAPI_API_KEY is not set",), {"SERPAPI_API_KEY": ""}),
    Case("unreachable endpoint", lambda t: ["run", "--task", "hotpotqa", "--model", "openai:gpt-4", "--base-url", "http://127.0.0.1:9/v1", "--out", str(t / "o")], ("cannot reach http://127.0.0.1:9/v1",)),
    Case("model path that does not exist", lambda t: ["run", "--task", "hotpotqa", "--model", f"hf:{t / 'no-model'}", "--format", "alpaca", "--out", str(t / "o")], ("no-model", "does not exist")),
    Case("scripted file that does not exist", lambda t: ["run", "--task", "hotpotqa", "--model", f"scripted:{t / 's.json'}", "--out", str(t / "o")], ("s.json", "does not exist")),
    Case("empty run JSONL", lambda t: ["score", write(t / "r.jsonl", "")], ("r.jsonl: file is empty",)),
    Case("malformed run JSONL", lambda t: ["score", write(t / "r.jsonl", '{"prediction": "a", "gold": "a"}\n{\n')], ("r.jsonl:2: malformed JSON line",)),
    Case("quickstart with no questions", lambda t: ["quickstart", "--questions", "0", "--out", str(t / "qs")], ("--questions 0: give 1 to 7405",)),
    Case("quickstart with too many examples", lambda t: ["quickstart", "--train-examples", "900", "--out", str(t / "qs")], ("--train-examples 900: give 1 to 500",)),
    Case("run JSONL torn by a kill", lambda t: ["score", write(t / "r.jsonl", '{"prediction": "a", "gold": "a"}\n{')], ("r.jsonl:2: the last line is cut short", "--resume")),
    Case("run line without prediction", lambda t: ["score", write(t / "r.jsonl", '{"gold": "a"}\n')], ("r.jsonl:1: missing field 'prediction'",)),
    Case("denominator below the file's episodes", lambda t: ["score", "--denominator", "1", write(t / "r.jsonl", '{"prediction": "a", "gold": "a"}\n' * 2)], ("--denominator 1 is smaller",)),
    Case("corpus with no text", lambda t: ["index", "build", write(t / "c.jsonl", '{"title": "A"}\n'), "--out", str(t / "ix")], ("c.jsonl line 1", "missing 'text'")),
    Case("corpus with no paragraphs", lambda t: ["index", "build", write(t / "c.json", "[]"), "--out", str(t / "ix")], ("no paragraphs found in",)),
    Case("index over an existing folder", lambda t: ["index", "build", DISTRACTOR, "--out", str(Path(write(t / "ix" / "keep.txt", "mine")).parent)], ("already exists", "--overwrite")),
    Case("chat file that breaks OpenAI's rules", lambda t: ["convert", "--check", write(t / "c.jsonl", "\n".join([json.dumps(GOOD_CHAT)] * 10 + ['{"messages": [{"role": "robot", "content": 1}]}']))], ("fine-tuning files break the format",)),
    Case("convert over an existing file", lambda t: ["convert", str(finished_run(t)), "--out", write(t / "train.json", "[]")], ("train.json",)),
    Case("convert without --out", lambda t: ["convert", str(finished_run(t))], ("--out FILE is required",)),
    Case("view of a folder without a run", lambda t: ["view", str(t)], ("no episodes.jsonl",)),
    Case("report of a missing run", lambda t: ["report", str(t / "nope"), "--out", str(t / "rep")], ("nope",)),
    Case("malformed YAML recipe", lambda t: ["train", write(t / "r.yaml", "model: [unclosed\n")], ("r.yaml", "malformed YAML")),
    Case("unknown config key", lambda t: ["train", write(t / "r.yaml", TINY_RECIPE.format(t=t) + "learning_rat: 1\n")], ("learning_rat",)),
    Case("config value of the wrong type", lambda t: ["train", write(t / "r.yaml", TINY_RECIPE.format(t=t)), "--epochs", "many"], ("epochs",)),
    Case("missing dataset file", lambda t: ["train", write(t / "r.yaml", TINY_RECIPE.format(t=t)), "--dataset", str(t / "none.json")], ("none.json", "not found")),
    Case("empty dataset", lambda t: ["train", write(t / "r.yaml", TINY_RECIPE.format(t=t)), "--dataset", write(t / "empty.json", "[]")], ("empty.json",)),
    Case("base model path that does not exist", lambda t: ["train", write(t / "r.yaml", TINY_RECIPE.format(t=t)), "--model", str(t / "no-model")], ("no-model",)),
    Case("unknown command", lambda t: ["trian"], ("No such command 'trian'",)),
    Case("option of the wrong type", lambda t: ["run", "--task", "hotpotqa", "--end", "ten", "--model", "x", "--out", "o"], ("Invalid value for '--end'",)),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, case):
    args = case.args(tmp_path)
    before = snapshot(tmp_path)
    result = run_cli(*args, env=case.env)
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in case.says:
        assert fragment in lines[0], lines[0]
    assert snapshot(tmp_path) == before


def test_catalogue_covers_at_least_25_kinds():
    assert len(CASES) >= 25

"""SFT data: the loss mask on real FireAct records, packing, and config errors.

All offline: a byte-level BPE tokenizer and a tiny Llama are built in tmp_path from
`tests/helpers/tiny_models.py`. FireAct's own fine-tuning sets come from shared/data/finetune (or
the copies shipped in the package).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fireact.agent.prompts import ALPACA_TEMPLATE
from fireact.errors import FireactError
from fireact.train import load_config
from fireact.train.dataset import (
    IGNORE,
    DataStats,
    Example,
    build_examples,
    output_segments,
    read_records,
)
from fireact.train.packing import PackedCollator, fit_to_cutoff, pack
from tests.helpers.paths import SHARED_DATA
from tests.helpers.tiny_models import build_tiny_llama, train_tokenizer

FINETUNE = SHARED_DATA / "finetune"
ALPACA = FINETUNE / "alpaca_format/hotpotqa.json"
MULTITASK = FINETUNE / "alpaca_format/multitask.json"
CHAT = FINETUNE / "gpt_format/hotpotqa.jsonl"

FIRST_MODEL_TEXT = (
    "Thought: I need to search for the best kick boxer in the world who has been involved in "
    "unsportsmanlike conducts and crimes of violence outside of the ring.\n"
    "Action: search[best kick boxer in the world unsportsmanlike conducts crimes of violence]\n"
    "Thought: Badr Hari is the person who fits the description.\n"
    "Action: finish[Badr Hari]\n"
)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return train_tokenizer(tmp_path_factory.mktemp("tok"))


def supervised_text(example: Example, tokenizer) -> str:
    return tokenizer.decode([t for t in example.labels if t != IGNORE])


def thought_action_lines(output: str) -> str:
    lines = output.splitlines(keepends=True)
    return "".join(line for line in lines if line.startswith(("Thought:", "Action:")))


# -- the loss mask ---------------------------------------------------------------------------
def test_supervised_tokens_are_exactly_the_thought_and_action_lines(tokenizer):
    records = read_records(ALPACA, "alpaca")[:50]
    stats = DataStats()
    examples = build_examples(records, tokenizer, stats=stats)
    assert supervised_text(examples[0], tokenizer) == FIRST_MODEL_TEXT
    for record, example in zip(records, examples, strict=True):
        assert supervised_text(example, tokenizer) == thought_action_lines(record["output"])
    assert stats.inexact_boundaries == 0 and stats.split_boundaries == 0


def test_masking_does_not_change_the_tokens(tokenizer):
    """Ids are those of the whole text tokenised at once (as the agent's prompt is), plus EOS."""
    record = read_records(ALPACA, "alpaca")[0]
    (example,) = build_examples([record], tokenizer)
    text = ALPACA_TEMPLATE.format(question=record["instruction"]) + record["output"]
    assert example.input_ids == tokenizer(text).input_ids + [tokenizer.eos_token_id]
    assert example.labels[-1] == IGNORE  # EOS follows the masked final observation


@pytest.mark.parametrize("mask", ["output", "none"])
def test_other_masks(tokenizer, mask):
    record = read_records(ALPACA, "alpaca")[0]
    (example,) = build_examples([record], tokenizer, mask=mask)
    decoded = tokenizer.decode([t for t in example.labels if t != IGNORE], skip_special_tokens=True)
    prompt = ALPACA_TEMPLATE.format(question=record["instruction"])
    assert decoded == (record["output"] if mask == "output" else prompt + record["output"])


def test_learn_stop_supervises_the_observation_label_only(tokenizer):
    record = read_records(ALPACA, "alpaca")[0]
    (example,) = build_examples([record], tokenizer, learn_stop=True)
    expected = FIRST_MODEL_TEXT.replace("]\n", "]\nObservation:")
    assert supervised_text(example, tokenizer) == expected


def test_mmlu_options_at_the_start_of_output_are_counted_and_masked(tokenizer):
    records = [
        r for r in read_records(MULTITASK, "alpaca") if not r["output"].startswith("Thought")
    ]
    assert records, "FireAct's multitask set has MMLU records with the options in output"
    stats = DataStats()
    examples = build_examples(records[:5], tokenizer, stats=stats)
    assert stats.output_preamble == 5
    for record, example in zip(records, examples, strict=False):
        assert supervised_text(example, tokenizer) == thought_action_lines(record["output"])


def test_segments_keep_multiline_thoughts_together():
    output = "Thought: a\nstill a\nAction: finish[x]\nObservation: ok\nmore\n"
    assert output_segments(output) == [
        ("Thought: a\nstill a\nAction: finish[x]\n", "model"),
        ("Observation: ok\nmore\n", "observation"),
    ]


def test_chat_plain_rendering_supervises_assistant_turns(tokenizer):
    records = read_records(CHAT, "chat")[:20]
    stats = DataStats()
    examples = build_examples(records, tokenizer, stats=stats)
    for record, example in zip(records, examples, strict=True):
        turns = [m["content"] for m in record["messages"] if m["role"] == "assistant"]
        assert supervised_text(example, tokenizer) == "".join(t + "\n" for t in turns)
    # "assistant: " + "Thought" shares a token in one piece: the text is split there, as the
    # agent's prompt ends with "assistant: ".
    assert stats.split_boundaries > 0 and stats.inexact_boundaries == 0


CHATML = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
STRICT = (
    "{% for m in messages %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('roles must alternate user/assistant') }}{% endif %}{% endfor %}" + CHATML
)


def test_chat_template_supervises_assistant_turns_and_their_end(tokenizer):
    tokenizer.chat_template = CHATML
    try:
        records = read_records(CHAT, "chat")[:10]
        examples = build_examples(records, tokenizer)
    finally:
        tokenizer.chat_template = None
    for record, example in zip(records, examples, strict=True):
        turns = [m["content"] for m in record["messages"] if m["role"] == "assistant"]
        assert supervised_text(example, tokenizer) == "".join(t + "<|end|>\n" for t in turns)


def test_records_the_template_rejects_are_skipped_and_counted(tokenizer):
    good = {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}
    bad = {"messages": [{"role": "assistant", "content": "A"}, {"role": "user", "content": "Q"}]}
    tokenizer.chat_template = STRICT
    stats = DataStats()
    try:
        examples = build_examples([good, bad], tokenizer, stats=stats)
    finally:
        tokenizer.chat_template = None
    assert len(examples) == 1
    assert list(stats.skipped.values()) == [1] and "alternate" in next(iter(stats.skipped))


# -- packing ---------------------------------------------------------------------------------
def test_packed_loss_equals_token_weighted_unpacked_losses(tmp_path):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is fastest
    try:
        check_packed_loss(tmp_path)
    finally:
        torch.set_num_threads(threads)


def check_packed_loss(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = build_tiny_llama(tmp_path / "tiny")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    examples = build_examples(read_records(ALPACA, "alpaca")[:6], tokenizer)
    rows = pack(examples, 1024)
    assert len(rows) < len(examples)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        batch = PackedCollator(tokenizer.eos_token_id, "mask4d")([{"row": r} for r in rows])
        packed = model(**batch).loss.item()
        single = PackedCollator(tokenizer.eos_token_id, "padded")
        losses = [model(**single([{"row": [e]}])).loss.item() * e.supervised for e in examples]
    unpacked = sum(losses) / sum(e.supervised for e in examples)
    assert abs(packed - unpacked) < 1e-5


def test_pack_places_every_example_once_within_the_cutoff():
    examples = [Example([1] * n, [1] * n) for n in (500, 300, 200, 600, 100, 24, 1000)]
    rows = pack(examples, 1024)
    assert sorted(id(e) for row in rows for e in row) == sorted(id(e) for e in examples)
    assert all(sum(len(e.input_ids) for e in row) <= 1024 for row in rows)
    assert len(rows) == 3


def test_overlong_examples_are_truncated_or_dropped():
    examples = [Example([1] * 10, [IGNORE] + [1] * 9), Example([1] * 30, [IGNORE] * 20 + [1] * 10)]
    kept, report = fit_to_cutoff(examples, 16, "truncate")
    assert [len(e.input_ids) for e in kept] == [10] and report.truncated == 1
    assert report.dropped == 1  # truncated to nothing supervised → dropped
    kept, report = fit_to_cutoff(examples, 25, "drop")
    assert len(kept) == 1 and report.dropped == 1 and report.truncated == 0


def test_collator_isolates_examples_and_masks_their_first_label():
    rows = [[Example([5, 6, 7], [5, 6, 7]), Example([8, 9], [8, 9])], [Example([4], [4])]]
    batch = PackedCollator(0, "mask4d")([{"row": r} for r in rows])
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1], [0, 0, 1, 2, 3]]
    assert batch["labels"].tolist() == [[IGNORE, 6, 7, IGNORE, 9], [IGNORE] * 5]
    mask = batch["attention_mask"][0, 0].int().tolist()
    assert mask[3] == [0, 0, 0, 1, 0] and mask[4] == [0, 0, 0, 1, 1]


# -- config ----------------------------------------------------------------------------------
def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def base_yaml(tmp_path) -> str:
    return f"model: {{build_tiny: {{}}}}\ndataset: {ALPACA}\noutput_dir: {tmp_path / 'out'}\n"


def test_config_loads_with_overrides(tmp_path, base_yaml):
    config = load_config(
        write(tmp_path, base_yaml), ["--lora.r", "16", "--packing=false", "--learning_rate", "1e-4"]
    )
    assert (config.lora.r, config.packing, config.learning_rate) == (16, False, 1e-4)
    assert config.gradient_accumulation == 32 and config.mask == "model_turns"


@pytest.mark.parametrize(
    ("extra", "overrides", "named"),
    [
        ("lerning_rate: 1e-4\n", [], "lerning_rate"),
        ("", ["--lora.rank", "4"], "lora.rank"),
        ("", ["--epochs", "many"], "epochs"),
        ("mask: everything\n", [], "mask"),
        ("batch_size: 10\n", [], "micro_batch_size"),
    ],
)
def test_config_errors_name_the_key(tmp_path, base_yaml, extra, overrides, named):
    with pytest.raises(FireactError, match=named.replace(".", r"\.")):
        load_config(write(tmp_path, base_yaml + extra), overrides)


def test_missing_dataset_and_model_paths_are_named(tmp_path, base_yaml):
    with pytest.raises(FireactError, match=r"dataset: file not found: .*nope\.json"):
        load_config(write(tmp_path, base_yaml), ["--dataset", str(tmp_path / "nope.json")])
    with pytest.raises(FireactError, match=r"model: .*'\./no/such/model' does not exist"):
        load_config(write(tmp_path, base_yaml), ["--model", "./no/such/model"])


def test_empty_dataset_is_an_error(tmp_path, base_yaml):
    from fireact.train.sft import load_records

    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    config = load_config(write(tmp_path, base_yaml), ["--dataset", str(empty)])
    with pytest.raises(FireactError, match=r"empty\.json: dataset is empty"):
        load_records(config)


def test_saved_config_round_trips(tmp_path, base_yaml):
    config = load_config(write(tmp_path, base_yaml), ["--lora.target_modules", "[q_proj,k_proj]"])
    again = load_config(write(tmp_path, config.to_yaml()))
    assert again == config
    assert json.loads(again.model_dump_json())["lora"]["target_modules"] == ["q_proj", "k_proj"]


def test_varlen_collation_flattens_the_micro_batch_into_one_row():
    rows = [[Example([5, 6, 7], [5, 6, 7])], [Example([8, 9], [8, 9]), Example([4], [4])]]
    batch = PackedCollator(0, "varlen")([{"row": r} for r in rows])
    assert "attention_mask" not in batch
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1, 0]]
    assert batch["labels"].tolist() == [[IGNORE, 6, 7, IGNORE, 9, IGNORE]]

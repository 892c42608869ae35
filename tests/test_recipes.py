"""Run recipes (`fireact.recipes`, configs/run/) and the training recipes for each paper setting.

Every shipped run recipe loads into a valid `RunOptions` and `describe` prints (and round-trips)
its resolved settings; every LoRA recipe loads through `fireact.train.load_config` with its
dataset in place; every GPT-3.5 recipe goes through `openai_ft.run_recipe` with the network
calls replaced. Nothing trains and nothing calls a model or a search API.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fireact import overrides as shared_overrides
from fireact.agent.runner import RunOptions
from fireact.errors import FireactError
from fireact.recipes import describe, load_run_recipe, packaged_run_recipes, recipe_path
from fireact.resources import resource
from fireact.train import config as train_config
from fireact.train import load_config, openai_ft
from fireact.train.dataset import read_records

CONFIGS = resource("configs")
RUN_DIR = resource("configs", "run")
DOC = Path(__file__).resolve().parents[1] / "docs" / "paper-results.md"

TASKS = ("hotpotqa", "bamboogle", "strategyqa", "mmlu")
BASES = {
    "llama2-7b": "meta-llama/Llama-2-7b-hf",
    "llama2-13b": "meta-llama/Llama-2-13b-hf",
    "codellama-7b": "codellama/CodeLlama-7b-hf",
    "codellama-13b": "codellama/CodeLlama-13b-hf",
    "codellama-34b": "codellama/CodeLlama-34b-hf",
}
FT_GPT35_HOTPOTQA = "openai:ft:gpt-3.5-turbo-0613:YOUR_ORG::HOTPOTQA_ID"
FT_GPT35_MTMM = "openai:ft:gpt-3.5-turbo-0613:YOUR_ORG::MTMM_ID"

RUN_NAMES = sorted(
    [f"gpt4-{m}-{t}" for m in ("react", "cot", "io", "reflexion") for t in TASKS]
    + ["gpt35-react-hotpotqa", "gpt35-react-bamboogle"]
    + ["gpt35-react-hotpotqa-noise-none", "gpt35-react-hotpotqa-noise-random"]
    + [f"ft-gpt35-{t}" for t in TASKS]
    + ["ft-gpt35-hotpotqa-noise-none", "ft-gpt35-hotpotqa-noise-random"]
    + [f"{b}-react-hotpotqa" for b in BASES]
    + [f"ft-{b}-{t}" for b in BASES for t in TASKS]
)

# Paper numbers (SPEC §6) each recipe reproduces.
PAPER = {
    "gpt4-io-hotpotqa": 37.2,
    "gpt4-cot-hotpotqa": 45.0,
    "gpt4-react-hotpotqa": 42.0,
    "gpt35-react-hotpotqa": 31.4,
    "ft-gpt35-hotpotqa": 39.2,
    "llama2-7b-react-hotpotqa": 14.8,
    "ft-llama2-7b-hotpotqa": 26.2,
    "llama2-13b-react-hotpotqa": 21.2,
    "ft-llama2-13b-hotpotqa": 34.4,
    "codellama-7b-react-hotpotqa": 17.4,
    "ft-codellama-7b-hotpotqa": 27.8,
    "codellama-13b-react-hotpotqa": 20.8,
    "ft-codellama-13b-hotpotqa": 29.0,
    "codellama-34b-react-hotpotqa": 22.2,
    "ft-codellama-34b-hotpotqa": 27.8,
    "ft-gpt35-hotpotqa-noise-none": 33.6,
    "ft-gpt35-hotpotqa-noise-random": 37.2,
    "gpt35-react-hotpotqa-noise-none": 20.8,
    "gpt35-react-hotpotqa-noise-random": 22.6,
    "ft-gpt35-bamboogle": 44.0,
    "gpt35-react-bamboogle": 40.8,
}
HOTPOTQA_500 = {"split": "dev", "random": True, "start": 0, "end": 500}
SELECTION = {
    "hotpotqa": HOTPOTQA_500,
    "bamboogle": {"split": "test", "random": True, "start": 0, "end": None},
    "strategyqa": {"split": "dev", "random": True, "start": 0, "end": None},
    "mmlu": {"split": "test", "random": True, "start": 0, "end": 500},
}
FIELDS = ("task", "split", "random", "start", "end", "method", "format", "model", "tool")
FIELDS += ("noise", "noise_p", "temperature", "max_tokens")


def expected(name: str) -> dict:
    """What each run recipe resolves to, written out from the paper's settings."""
    task = next(t for t in TASKS if f"-{t}" in name)
    noise = "none" if name.endswith("noise-none") else "random" if "noise-random" in name else "off"
    want = {"task": task, **SELECTION[task], "noise": noise, "noise_p": 0.5, "max_tokens": 1000}
    want |= {"method": "react", "tool": "serpapi"}
    if name.startswith("gpt4-"):  # prompted: FireAct's temperature 0.7
        method = name.split("-")[1]
        tool = "serpapi" if method in ("react", "reflexion") else "local"  # cot / io: no tool
        prompted = {"format": "fewshot", "model": "openai:gpt-4", "temperature": 0.7}
        return want | {"method": method, "tool": tool} | prompted
    if name.startswith("gpt35-"):
        return want | {"format": "fewshot", "model": "openai:gpt-3.5-turbo", "temperature": 0.7}
    if name.startswith("ft-gpt35-"):  # FireAct's README: chat format, temperature 0
        model = FT_GPT35_HOTPOTQA if task in ("hotpotqa", "bamboogle") else FT_GPT35_MTMM
        return want | {"format": "chat", "model": model, "temperature": 0.0}
    stem = name.removeprefix("ft-").removesuffix(f"-{task}").removesuffix("-react")
    if not name.startswith("ft-"):  # prompted open model: greedy, as FireAct's llama backend
        return want | {"format": "fewshot", "model": f"hf:{BASES[stem]}", "temperature": 0.0}
    data = "" if task in ("hotpotqa", "bamboogle") else "-multitask-multimethod"
    model = f"hf:{BASES[stem]}:runs/{stem}-lora{data}"  # FireAct's README: alpaca, greedy
    return want | {"format": "alpaca", "model": model, "temperature": 0.0}


# ---------------------------------------------------------------- run recipes


def test_the_shipped_run_recipes_are_one_per_setting():
    assert sorted(p.stem for p in packaged_run_recipes()) == RUN_NAMES
    assert len(RUN_NAMES) == 51


@pytest.mark.parametrize("name", RUN_NAMES)
def test_run_recipe_loads_into_run_options(name, tmp_path):
    values = load_run_recipe(RUN_DIR / f"{name}.yaml", ["--out", str(tmp_path / "out")])
    options = RunOptions(**values)
    assert options.out == tmp_path / "out"
    assert {field: getattr(options, field) for field in FIELDS} == expected(name)
    assert options.max_steps == 11
    assert options.llm_cache == "auto"
    assert options.api == "auto"


@pytest.mark.parametrize("name", RUN_NAMES)
def test_run_recipe_names_its_result_and_command(name):
    text = (RUN_DIR / f"{name}.yaml").read_text()
    assert text.startswith("# Paper result: ")
    assert f"fireact run configs/run/{name}.yaml" in text
    assert f"out: runs/eval/{name}\n" in text
    found = re.match(r"# Paper result: (\d+\.\d) ", text)
    assert (float(found.group(1)) if found else None) == PAPER.get(name)
    assert all(len(line) <= 100 for line in text.splitlines() if not line.startswith("#   "))


def test_every_paper_number_is_in_the_results_table():
    doc = DOC.read_text()
    rows = [line for line in doc.splitlines() if line.startswith("| ") and "configs/run/" in line]
    for name, number in PAPER.items():
        row = next(r for r in rows if re.search(rf"configs/run/{name}\.yaml", r))
        assert f"| {number} |" in row, name
    # a fine-tuned model's row starts with its training command
    assert (
        "`fireact train configs/llama2-13b-lora.yaml`, then `fireact run configs/run/ft-llama2-13b-hotpotqa.yaml`"
        in doc
    )
    assert (
        "`fireact openai-ft run configs/gpt35-hotpotqa.yaml`, then `fireact run configs/run/ft-gpt35-hotpotqa.yaml"
        in doc
    )


@pytest.mark.parametrize("name", RUN_NAMES)
def test_describe_prints_the_resolved_settings_and_loads_back(name, tmp_path):
    values = load_run_recipe(RUN_DIR / f"{name}.yaml", ["--out", str(tmp_path / "out")])
    text = describe(values)
    want = expected(name)
    lines = text.splitlines()
    assert lines[0] == (
        "# fireact run: resolved settings (# default: not set by the recipe or an override)"
    )
    assert f"task: {want['task']}" in lines
    assert f"model: {want['model']}" in lines
    assert f"out: {tmp_path / 'out'}" in lines
    assert "max_tokens: 1000  # default" in lines
    assert f"temperature: {want['temperature']}" in [line.split("  #")[0] for line in lines]
    again = tmp_path / "resolved.yaml"
    again.write_text(text)
    assert RunOptions(**load_run_recipe(again, [])) == RunOptions(**values)


def test_describe_of_the_gpt4_react_recipe():
    values = load_run_recipe("fireact:configs/run/gpt4-react-hotpotqa.yaml", ["--out", "o"])
    lines = describe(values).splitlines()
    assert lines[1:12] == [
        "task: hotpotqa",
        "split: dev",
        "data: null  # default",
        "subject: null  # default",
        "start: 0",
        "end: 500",
        "random: true",
        "method: react",
        "format: fewshot",
        "prompt: null  # default",
        "model: openai:gpt-4",
    ]
    assert "temperature: 0.7  # default" in lines
    assert "noise: 'off'  # default" in lines
    assert "tool: serpapi" in lines
    assert not [line for line in lines if line.startswith("# note")]


def test_describe_flags_placeholders_and_missing_adapters(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    gpt = describe(load_run_recipe(RUN_DIR / "ft-gpt35-hotpotqa.yaml", []))
    assert gpt.splitlines()[-1] == (
        f"# note: model {FT_GPT35_HOTPOTQA} is a placeholder: put the name of your fine-tuned"
        " model (fireact openai-ft run prints it), e.g. --model openai:ft:gpt-3.5-turbo-0125:..."
    )
    llama = describe(load_run_recipe(RUN_DIR / "ft-llama2-7b-hotpotqa.yaml", []))
    assert llama.splitlines()[-1] == (
        "# note: adapter runs/llama2-7b-lora does not exist yet: train it first (see the recipe's"
        " comment)"
    )
    (tmp_path / "runs" / "llama2-7b-lora").mkdir(parents=True)
    llama = describe(load_run_recipe(RUN_DIR / "ft-llama2-7b-hotpotqa.yaml", []))
    assert "# note" not in llama


def test_describe_rejects_an_invalid_combination():
    values = load_run_recipe(RUN_DIR / "gpt4-cot-hotpotqa.yaml", ["--format", "chat"])
    with pytest.raises(FireactError, match="method cot uses the few-shot cot_\\* prompt"):
        describe(values)


# ---------------------------------------------------------------- overrides


def test_overrides_are_typed_as_yaml(tmp_path):
    values = load_run_recipe(
        RUN_DIR / "gpt4-react-hotpotqa.yaml",
        ["--temperature", "0.5", "--end=50", "--noise-p", "0.25", "--noise", "off", "--resume"],
    )
    assert values["temperature"] == 0.5
    assert type(values["temperature"]) is float
    assert values["end"] == 50
    assert type(values["end"]) is int
    assert values["noise_p"] == 0.25
    assert values["noise"] == "off"
    assert values["resume"] is True
    options = RunOptions(**values)
    assert (options.temperature, options.end, options.noise, options.resume) == (
        0.5,
        50,
        "off",
        True,
    )


def test_model_names_and_urls_stay_strings():
    model = "openai:ft:gpt-3.5-turbo-0125:my-org:fireact-hotpotqa:abc123"
    values = load_run_recipe(
        RUN_DIR / "ft-gpt35-hotpotqa.yaml",
        ["--model", model, "--base_url", "http://localhost:8000/v1", "--split", "dev"],
    )
    assert (values["model"], values["base_url"], values["split"]) == (
        model,
        "http://localhost:8000/v1",
        "dev",
    )
    values = load_run_recipe(
        RUN_DIR / "ft-llama2-7b-hotpotqa.yaml", ["--model", "hf:fireact/llama-2-7b-lora"]
    )
    assert RunOptions(**values).model == "hf:fireact/llama-2-7b-lora"


def test_a_null_override_means_the_default(tmp_path):
    values = load_run_recipe(RUN_DIR / "gpt4-react-hotpotqa.yaml", ["--end", "null"])
    assert values["end"] is None
    assert RunOptions(**values).end is None
    values = load_run_recipe(RUN_DIR / "gpt4-react-hotpotqa.yaml", ["--random", "null"])
    assert "random" not in values  # random cannot be None: null leaves it to the default
    assert RunOptions(**values).random is False
    values = load_run_recipe(RUN_DIR / "ft-gpt35-hotpotqa.yaml", ["--temperature", "null"])
    assert values["temperature"] is None
    assert RunOptions(**values).temperature == 0.0  # the chat-format default
    values = load_run_recipe(RUN_DIR / "gpt4-react-hotpotqa.yaml", ["--tool_timeout", "null"])
    assert RunOptions(**values).tool_timeout is None  # None is a value here: no timeout


def test_yaml_words_are_words_and_bools_still_parse(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("task: hotpotqa\nmodel: openai:gpt-4\nnoise: off\nrandom: yes\nout: o\n")
    values = load_run_recipe(recipe, ["--overwrite", "on", "--cache", "none"])
    assert values["noise"] == "off"
    options = RunOptions(**values)
    assert (options.noise, options.random, options.overwrite, options.cache) == (
        "off",
        True,
        True,
        "none",
    )


def test_api_and_llm_cache_overrides():
    if not {"api", "llm_cache"} <= set(RunOptions.model_fields):
        pytest.skip("RunOptions has no api / llm_cache fields yet")
    values = load_run_recipe(
        RUN_DIR / "gpt4-react-hotpotqa.yaml", ["--api", "chat", "--llm_cache", "/tmp/calls.db"]
    )
    options = RunOptions(**values)
    assert (options.api, options.llm_cache) == ("chat", "/tmp/calls.db")
    values = load_run_recipe(RUN_DIR / "ft-llama2-7b-hotpotqa.yaml", ["--api", "completions"])
    with pytest.raises(FireactError, match="only the openai: and vllm: backends have APIs"):
        RunOptions(**values)


def test_packaged_paths_in_path_settings():
    values = load_run_recipe(
        RUN_DIR / "gpt4-react-hotpotqa.yaml", ["--data", "fireact:hotpotqa/dev.json"]
    )
    assert values["data"] == str(resource("hotpotqa", "dev.json"))


def test_the_override_parser_is_shared_with_train_configs():
    assert train_config.parse_overrides is shared_overrides.parse_overrides
    assert shared_overrides.parse_overrides(["--lr", "1e-4", "--packing=false"]) == [
        ("lr", "1e-4"),
        ("packing", False),
    ]
    assert shared_overrides.parse_overrides(["--noise", "off"]) == [("noise", False)]
    assert shared_overrides.parse_overrides(
        ["--noise", "off"], loader=shared_overrides.WordsLoader
    ) == [("noise", "off")]


# ---------------------------------------------------------------- errors


def test_an_unknown_key_is_a_one_line_error_naming_the_file(tmp_path):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("task: hotpotqa\nmodel: openai:gpt-4\ntemprature: 0.5\n")
    with pytest.raises(FireactError) as err:
        load_run_recipe(recipe, [])
    assert str(err.value) == f"{recipe}: unknown key 'temprature' (did you mean 'temperature'?)"


def test_an_unknown_override_is_an_error_naming_the_file():
    recipe = RUN_DIR / "gpt4-react-hotpotqa.yaml"
    with pytest.raises(FireactError) as err:
        load_run_recipe(recipe, ["--temprature", "0.5"])
    assert str(err.value) == (
        f"{recipe}: override --temprature: unknown run option (did you mean 'temperature'?)"
    )
    with pytest.raises(FireactError) as err:
        load_run_recipe(recipe, ["--zzz", "1"])
    assert (
        str(err.value) == f"{recipe}: override --zzz: unknown run option; see `fireact run --help`"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- task\n", "{file}: expected a mapping of run settings, got list"),
        (
            "task: [hotpotqa\n",
            "{file}:2: malformed YAML (expected ',' or ']', but got '<stream end>')",
        ),
    ],
)
def test_a_bad_file_is_an_error_naming_it(tmp_path, text, message):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(text)
    with pytest.raises(FireactError) as err:
        load_run_recipe(recipe, [])
    assert str(err.value) == message.format(file=recipe)


def test_a_missing_recipe_and_a_missing_override_value(tmp_path):
    with pytest.raises(FireactError) as err:
        load_run_recipe(tmp_path / "nope.yaml", [])
    assert str(err.value) == f"{tmp_path / 'nope.yaml'}: file not found"
    with pytest.raises(FireactError) as err:
        load_run_recipe(RUN_DIR / "gpt4-react-hotpotqa.yaml", ["--end"])
    assert str(err.value) == "override --end: missing its value"


def test_recipe_paths(tmp_path, monkeypatch):
    shipped = RUN_DIR / "gpt4-react-hotpotqa.yaml"
    assert recipe_path("fireact:configs/run/gpt4-react-hotpotqa.yaml") == shipped
    monkeypatch.chdir(tmp_path)  # no configs/ here: the shipped recipe is used
    assert recipe_path("configs/run/gpt4-react-hotpotqa.yaml") == shipped
    local = tmp_path / "configs" / "run" / "gpt4-react-hotpotqa.yaml"
    local.parent.mkdir(parents=True)
    local.write_text("task: bamboogle\nmodel: openai:gpt-4\n")
    assert recipe_path("configs/run/gpt4-react-hotpotqa.yaml") == Path(
        "configs/run/gpt4-react-hotpotqa.yaml"
    )
    assert load_run_recipe("configs/run/gpt4-react-hotpotqa.yaml", [])["task"] == "bamboogle"


# ---------------------------------------------------------------- training recipes

DATASETS = {
    "": ("hotpotqa.json", 500),
    "-multitask": ("multitask.json", 1344),
    "-multitask-multimethod": ("multitask_multimethod.json", 2063),
}
LORA = [(base, data) for base in BASES for data in DATASETS]


@pytest.mark.parametrize(("base", "data"), LORA)
def test_lora_recipe_loads_with_its_dataset(base, data, tmp_path):
    name = f"{base}-lora{data}"
    config = load_config(CONFIGS / f"{name}.yaml", ["--output_dir", str(tmp_path / "out")])
    file, count = DATASETS[data]
    assert config.model == BASES[base]
    assert config.dataset == resource("finetune", "alpaca_format", file)
    assert len(read_records(config.dataset, "alpaca")) == count
    assert (config.method, config.qlora_bits) == (
        ("qlora", 8) if base == "codellama-34b" else ("lora", 4)
    )
    assert config.lora.model_dump() == {
        "r": 8,
        "alpha": 16,
        "dropout": 0.05,
        "target_modules": ["q_proj", "v_proj"],
    }
    assert (config.learning_rate, config.epochs, config.batch_size) == (3e-4, 3.0, 128)
    assert (config.micro_batch_size, config.cutoff_len, config.packing) == (4, 512, False)
    assert (config.mask, config.lr_scheduler, config.warmup_steps) == (
        "model_turns",
        "linear",
        0.03,
    )
    assert config.gradient_checkpointing is (base not in ("llama2-7b", "codellama-7b"))
    text = (CONFIGS / f"{name}.yaml").read_text()
    for line in ("packing_mask: auto", "use_liger_kernel: auto", "torch_compile: false"):
        assert f"\n{line}\n" in text, line  # the speed defaults, stated where they are chosen
    assert f"output_dir: runs/{name}\n" in text


@pytest.mark.parametrize("data", ["-multitask", "-multitask-multimethod"])
def test_new_lora_recipes_say_where_the_paper_is_silent(data):
    text = (CONFIGS / f"llama2-7b-lora{data}.yaml").read_text()
    assert "epochs: 3, the paper's appendix (SPEC §5)" in text
    assert "train 30 epochs" in text
    assert "The paper does not say." in text
    assert f"fireact train configs/llama2-7b-lora{data}.yaml" in text


GPT35 = {
    "gpt35-hotpotqa": ("hotpotqa.jsonl", "fireact-hotpotqa", None, 500),
    "gpt35-multitask": ("multitask.jsonl", "fireact-multitask", 3, 1344),
    "gpt35-multitask-multimethod": ("multitask_multimethod.jsonl", "fireact-mtmm", 3, 2063),
}


@pytest.mark.parametrize("name", list(GPT35))
def test_gpt35_recipe_reads_through_openai_ft_without_network(name, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # nothing here may reach the API
    recipe = openai_ft.read_recipe(CONFIGS / f"{name}.yaml")
    file, suffix, epochs, count = GPT35[name]
    assert recipe.model_dump() == {
        "model": "gpt-3.5-turbo",
        "suffix": suffix,
        "n_epochs": epochs,
        "seed": 42,
        "poll_s": 30.0,
        "training_file": f"fireact:finetune/gpt_format/{file}",
        "validation_file": None,
    }
    training = resource("finetune", "gpt_format", file)
    openai_ft.check_upload(training, recipe.model)  # the check run_recipe does before uploading
    assert len(read_records(training, "chat")) == count

"""FireAct's model zoo: `fireact models`, `hf:fireact/NAME` specs, the offline download hint.

Nothing here downloads: resolution is table → spec, and the Hugging Face cache is a tmp folder.
"""

from pathlib import Path

import pytest

from fireact.errors import FireactError
from fireact.llm import load_llm
from fireact.llm.zoo import ZOO, download_hint_on_failure, find, resolve_hf
from tests.helpers.clirun import run_cli
from tests.helpers.hub import unreachable_hub

LLAMA_7B_LORA_HINT = (
    "fireact/llama-2-7b-lora needs meta-llama/Llama-2-7b-hf and forestai/fireact_llama_2_7b_lora, "
    "not in the Hugging Face cache ({cache}) and {why}: run {commands} online{gated}, "
    "or pass --model hf:/path/to/base:/path/to/adapter"
)
GATED = " (meta-llama repos need their licence accepted and HF_TOKEN)"


@pytest.fixture
def online(monkeypatch, tmp_path):
    """Downloads allowed, an empty Hugging Face cache."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return tmp_path / "hf" / "hub"


@pytest.fixture
def offline(online, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return online


def put_in_cache(cache: Path, repo: str, weights: str = "model.safetensors") -> None:
    snapshot = cache / f"models--{repo.replace('/', '--')}" / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (snapshot / weights).write_bytes(b"\0")


@pytest.mark.parametrize(
    ("spec", "model", "adapter"),
    [
        ("fireact/llama-2-7b-lora", "meta-llama/Llama-2-7b-hf", "forestai/fireact_llama_2_7b_lora"),
        (
            "fireact/llama-2-13b-lora",
            "meta-llama/Llama-2-13b-hf",
            "forestai/fireact_llama_2_13b_lora",
        ),
        (
            "fireact/codellama-7b-lora",
            "codellama/CodeLlama-7b-hf",
            "forestai/fireact_codellama_7b_lora",
        ),
        (
            "fireact/codellama-13b-lora",
            "codellama/CodeLlama-13b-hf",
            "forestai/fireact_codellama_13b_lora",
        ),
        (
            "fireact/codellama-34b-lora",
            "codellama/CodeLlama-34b-hf",
            "forestai/fireact_codellama_34b_lora",
        ),
        ("fireact/llama-2-7b", "forestai/fireact_llama_2_7b", None),
        # the adapter's own repo alone gets its base too
        (
            "forestai/fireact_llama_2_7b_lora",
            "meta-llama/Llama-2-7b-hf",
            "forestai/fireact_llama_2_7b_lora",
        ),
        # anything else passes through unchanged
        ("forestai/fireact_llama_2_7b", "forestai/fireact_llama_2_7b", None),
        ("/models/base:/models/adapter", "/models/base", "/models/adapter"),
        ("gpt2", "gpt2", None),
    ],
)
def test_resolve(online, spec, model, adapter):
    assert resolve_hf(spec) == (model, adapter)


def test_table_specs():
    assert {name: m.spec for name, m in ZOO.items()} == {
        "llama-2-7b-lora": "hf:meta-llama/Llama-2-7b-hf:forestai/fireact_llama_2_7b_lora",
        "llama-2-13b-lora": "hf:meta-llama/Llama-2-13b-hf:forestai/fireact_llama_2_13b_lora",
        "codellama-7b-lora": "hf:codellama/CodeLlama-7b-hf:forestai/fireact_codellama_7b_lora",
        "codellama-13b-lora": "hf:codellama/CodeLlama-13b-hf:forestai/fireact_codellama_13b_lora",
        "codellama-34b-lora": "hf:codellama/CodeLlama-34b-hf:forestai/fireact_codellama_34b_lora",
        "llama-2-7b": "hf:forestai/fireact_llama_2_7b",
    }


def test_unknown_name_and_second_adapter_are_refused(online):
    with pytest.raises(FireactError, match=r"unknown FireAct model 'fireact/llama-3-8b': choose"):
        load_llm("hf:fireact/llama-3-8b")
    with pytest.raises(FireactError, match="fireact/llama-2-7b-lora already names its adapter"):
        load_llm("hf:fireact/llama-2-7b-lora:/my/adapter")


def test_local_folder_called_fireact_is_not_a_zoo_name(tmp_path, monkeypatch):
    (tmp_path / "fireact" / "my-model").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert find("fireact/my-model") is None
    assert resolve_hf("fireact/my-model") == ("fireact/my-model", None)


def test_offline_without_weights_says_what_to_download(offline):
    with pytest.raises(FireactError) as err:
        load_llm("hf:fireact/llama-2-7b-lora")
    commands = (
        "`hf download meta-llama/Llama-2-7b-hf` and `hf download forestai/fireact_llama_2_7b_lora`"
    )
    assert str(err.value) == LLAMA_7B_LORA_HINT.format(
        cache=offline, why="HF_HUB_OFFLINE is set", commands=commands, gated=GATED
    )


def test_offline_names_only_what_is_missing(offline):
    put_in_cache(offline, "meta-llama/Llama-2-7b-hf")
    put_in_cache(offline, "forestai/fireact_llama_2_7b_lora", "adapter_config.json")  # no weights
    with pytest.raises(FireactError) as err:
        resolve_hf("fireact/llama-2-7b-lora")
    assert str(err.value) == LLAMA_7B_LORA_HINT.format(
        cache=offline,
        why="HF_HUB_OFFLINE is set",
        commands="`hf download forestai/fireact_llama_2_7b_lora`",
        gated="",
    )


def test_offline_full_model_hint(offline):
    with pytest.raises(FireactError) as err:
        resolve_hf("fireact/llama-2-7b")
    assert str(err.value) == (
        f"fireact/llama-2-7b needs forestai/fireact_llama_2_7b, not in the Hugging Face cache "
        f"({offline}) and HF_HUB_OFFLINE is set: run `hf download forestai/fireact_llama_2_7b` "
        "online, or pass --model hf:/path/to/model"
    )


def test_offline_with_cached_weights_resolves(offline):
    put_in_cache(offline, "meta-llama/Llama-2-7b-hf")
    put_in_cache(offline, "forestai/fireact_llama_2_7b_lora", "adapter_model.safetensors")
    assert resolve_hf("fireact/llama-2-7b-lora") == (
        "meta-llama/Llama-2-7b-hf",
        "forestai/fireact_llama_2_7b_lora",
    )


def test_failed_download_becomes_the_hint(online):
    with pytest.raises(FireactError) as err, download_hint_on_failure("fireact/llama-2-7b-lora"):
        raise FireactError("cannot load model 'meta-llama/Llama-2-7b-hf': 401 Client Error ...")
    assert str(err.value).startswith(
        "fireact/llama-2-7b-lora needs meta-llama/Llama-2-7b-hf and "
        "forestai/fireact_llama_2_7b_lora, not in the Hugging Face cache"
    )
    assert "and the download failed: run `hf download meta-llama/Llama-2-7b-hf`" in str(err.value)
    # cached weights, or not a zoo model: the original error stays
    put_in_cache(online, "meta-llama/Llama-2-7b-hf")
    put_in_cache(online, "forestai/fireact_llama_2_7b_lora")
    kept = pytest.raises(FireactError, match="cannot load model")
    with kept, download_hint_on_failure("fireact/llama-2-7b-lora"):
        raise FireactError("cannot load model 'meta-llama/Llama-2-7b-hf': out of memory")
    not_zoo = pytest.raises(FireactError, match="cannot load model 'gpt2'")
    with not_zoo, download_hint_on_failure("gpt2"):
        raise FireactError("cannot load model 'gpt2': offline")


def test_cli_lists_the_six_models(tmp_path):
    result = run_cli("models", env={"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "model                       base           method  hub id                               base hub id",
        "fireact/llama-2-7b-lora     Llama2-7B      LoRA    forestai/fireact_llama_2_7b_lora     meta-llama/Llama-2-7b-hf",
        "fireact/llama-2-13b-lora    Llama2-13B     LoRA    forestai/fireact_llama_2_13b_lora    meta-llama/Llama-2-13b-hf",
        "fireact/codellama-7b-lora   CodeLlama-7B   LoRA    forestai/fireact_codellama_7b_lora   codellama/CodeLlama-7b-hf",
        "fireact/codellama-13b-lora  CodeLlama-13B  LoRA    forestai/fireact_codellama_13b_lora  codellama/CodeLlama-13b-hf",
        "fireact/codellama-34b-lora  CodeLlama-34B  LoRA    forestai/fireact_codellama_34b_lora  codellama/CodeLlama-34b-hf",
        "fireact/llama-2-7b          Llama2-7B      full    forestai/fireact_llama_2_7b          -",
        "run one with --model hf:fireact/NAME (the base model and the adapter come from the "
        "Hugging Face hub on first use)",
    ]


def test_cli_run_offline_is_one_line(tmp_path):
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    args = ["--task", "hotpotqa", "--end", "1", "--out", str(tmp_path / "run")]
    result = run_cli("run", "--model", "hf:fireact/codellama-34b-lora", *args, env=env)
    assert result.returncode == 2
    assert result.stderr == (
        "error: fireact/codellama-34b-lora needs codellama/CodeLlama-34b-hf and "
        "forestai/fireact_codellama_34b_lora, not in the Hugging Face cache "
        f"({tmp_path / 'hf' / 'hub'}) and HF_HUB_OFFLINE is set: run "
        "`hf download codellama/CodeLlama-34b-hf` and "
        "`hf download forestai/fireact_codellama_34b_lora` online, "
        "or pass --model hf:/path/to/base:/path/to/adapter\n"
    )
    assert not (tmp_path / "run").exists()


# --- any hf: hub id, not only the zoo's -------------------------------------------------------
ANY_HINT = (
    "hf:acme/agent-7b: acme/agent-7b not in the Hugging Face cache ({cache}) and {why}: run "
    "`hf download acme/agent-7b` where the hub is reachable, or pass --model "
    "hf:/path/to/a/local/folder"
)


def test_an_uncached_hub_id_offline_is_one_line_at_once(offline):
    with pytest.raises(FireactError) as err:
        load_llm("hf:acme/agent-7b")
    assert str(err.value) == ANY_HINT.format(cache=offline, why="HF_HUB_OFFLINE is set")


def test_an_uncached_hub_id_with_the_hub_unreachable_is_one_line_at_once(online, monkeypatch):
    import time

    why = unreachable_hub(monkeypatch)
    started = time.monotonic()
    with pytest.raises(FireactError) as err:
        load_llm("hf:acme/agent-7b")
    assert time.monotonic() - started < 5  # not a minute of retries
    assert str(err.value) == ANY_HINT.format(cache=online, why=why)


def test_a_cached_hub_id_or_a_local_folder_needs_no_hub(offline, tmp_path):
    from fireact.llm.zoo import check_hub_repos

    put_in_cache(offline, "acme/agent-7b")
    (tmp_path / "adapter").mkdir()
    assert check_hub_repos("x", ["acme/agent-7b", str(tmp_path / "adapter"), None]) is None


def test_an_uncached_zoo_model_keeps_its_own_hint_when_the_hub_is_unreachable(online, monkeypatch):
    unreachable_hub(monkeypatch)
    with pytest.raises(FireactError) as err:
        load_llm("hf:fireact/llama-2-7b")
    assert str(err.value).startswith(
        "fireact/llama-2-7b needs forestai/fireact_llama_2_7b, not in the Hugging Face cache"
    )

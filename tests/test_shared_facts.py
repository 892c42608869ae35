"""Facts kept once and shared: the cache root and shipped files (`fireact.home`), the OpenAI
connection and key scrubber (`fireact.openai_client`) and precision names
(`fireact.train.precision`), each used by every module that needs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from fireact import home, openai_client
from fireact.errors import FireactError


def test_home_and_resources(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from fireact import resources
    from fireact.tools import local_index

    monkeypatch.setenv("FIREACT_HOME", str(tmp_path))
    assert home.fireact_home() == tmp_path == local_index.fireact_home()  # the old import works
    monkeypatch.delenv("FIREACT_HOME")
    assert home.fireact_home() == Path("~/.cache/fireact").expanduser()
    assert resources.resource is home.resource and resources.ROOT == home.RESOURCES
    shipped = home.packaged("fireact:hotpotqa/dev_distractor_first100.json")
    assert shipped is not None and shipped.is_file()
    assert home.packaged("data/train.json") is None


def test_one_key_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    local, remote = "http://127.0.0.1:8000/v1", openai_client.OPENAI_BASE_URL
    assert openai_client.api_key(None, local, local_dummy=True) == openai_client.LOCAL_DUMMY_KEY
    for url, dummy in [(local, False), (remote, True)]:
        with pytest.raises(FireactError, match="^OPENAI_API_KEY is not set"):
            openai_client.api_key(None, url, local_dummy=dummy)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    assert openai_client.api_key(None, remote) == "sk-env"
    assert openai_client.api_key("sk-given", remote) == "sk-given"


def test_one_key_scrubber() -> None:
    from fireact.llm.openai_errors import describe
    from fireact.train import openai_ft

    assert openai_ft.scrub is openai_client.scrub
    text = describe(ValueError("key MYKEY and sk-abcdefghijkl\nleaked"), "http://x/v1", "MYKEY")
    assert text == "ValueError: key *** and sk-abc*** leaked"


def test_one_precision_map() -> None:
    torch = pytest.importorskip("torch")
    from fireact.train.precision import DTYPE_NAMES, torch_dtype

    assert set(DTYPE_NAMES) == {"bf16", "fp16", "fp32"}
    assert torch_dtype("bf16") is torch.bfloat16 is torch_dtype("bfloat16")
    assert torch_dtype("fp16") is torch.float16 and torch_dtype("fp32") is torch.float32

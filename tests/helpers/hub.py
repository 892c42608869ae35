"""The Hugging Face hub as the tests switch it off: an endpoint on a 127.0.0.1 port nothing
listens on, so huggingface_hub's one reachability request is refused at once."""

from __future__ import annotations

import pytest

from tests.helpers.launch import free_port


def unreachable_hub(monkeypatch: pytest.MonkeyPatch) -> str:
    """Point huggingface_hub at a refused port (this test only); the reason fireact gives."""
    from huggingface_hub import constants

    endpoint = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    return f"{endpoint} cannot be reached ([Errno 111] Connection refused)"

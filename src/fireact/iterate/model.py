"""The model a round hands on to the next: its agent spec and where its weights are.

Owns `Model`: the agent spec as the loop's files store it (``hf:ROUND_0/train/base:ROUND_1/train``,
paths inside the loop folder relative to it, `fireact.iterate.state.stored`), the runnable spec
(`Model.spec`: those paths found in the loop folder where it is now), and what a next round's
training starts from (`Model.parts`: the weights folder and, for LoRA, the adapter on it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fireact.iterate.state import located, stored


@dataclass
class Model:
    """A round's model: `agent` (the stored spec) in the loop folder `loop`."""

    agent: str
    loop: Path

    @classmethod
    def trained(cls, loop: Path, base: str, adapter: str | None) -> Model:
        """The model a training stage saved: full weights `base`, or `adapter` on `base`."""
        paths = [stored(loop, base)] + ([stored(loop, adapter)] if adapter else [])
        return cls("hf:" + ":".join(paths), loop)

    def spec(self) -> str:
        """The agent spec to run, its loop paths found where the loop folder is now."""
        base, adapter = self.parts()
        if base is None:
            return self.agent
        return f"hf:{base}" + (f":{adapter}" if adapter else "")

    def parts(self) -> tuple[str | None, str | None]:
        """(weights, adapter) of an ``hf:PATH[:ADAPTER]`` model; (None, None) for another
        backend (``scripted:``, ``openai:``, ...): a next round then trains the config's model."""
        kind, _, rest = self.agent.partition(":")
        if kind != "hf":
            return None, None
        path, _, adapter = rest.partition(":")
        return located(self.loop, path), located(self.loop, adapter) if adapter else None

    def tokenizer(self) -> str | None:
        """The folder of the tokenizer the model was trained with (the adapter's when saved)."""
        base, adapter = self.parts()
        if adapter and (Path(adapter) / "tokenizer_config.json").is_file():
            return adapter
        return base

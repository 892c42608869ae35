"""`fireact rl RECIPE.yaml`: multi-turn GRPO through TRL on a fireact environment (`fireact.rl`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from fireact.errors import FireactError


def rl(
    recipe: Annotated[Path, typer.Argument(help="An rl recipe YAML (configs/rl/tiny-arith.yaml).")],
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default: the recipe's).")
    ] = None,
) -> None:
    """GRPO (TRL) where every rollout is a fireact episode; rewards per step in OUT/rewards.jsonl."""
    from fireact.rl.config import load_rl_config
    from fireact.rl.train import run_rl

    config = load_rl_config(recipe, {"output_dir": out_dir} if out_dir else None)
    if (config.output_dir / "rewards.jsonl").exists():  # named as this command's user sets it
        raise FireactError(
            f"{config.output_dir} already holds an rl run: choose another --out (output_dir)"
        )
    print(json.dumps(run_rl(config), indent=2))

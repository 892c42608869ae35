"""`fireact rl` benchmarks: rollout throughput and the learning run, on a CPU.

``throughput`` (default): episodes/s and sampled tokens/s of `fireact.rl.rollout.run_group` —
the path TRL's ``rollout_func`` takes, every episode a fireact ReAct episode with the real
``calculate`` tool, the episodes of a batch generated together (one left-padded ``generate``
per round of turns) — against the same episodes generated one at a time (`run_group` on one
episode each, as a loop over episodes would). The policy is the tiny Llama of
``configs/rl/tiny-arith.yaml`` after its SFT warm start (built once into ``--work``), sampling at
temperature 1 with the recipe's limits (3 steps, 24 tokens a turn), on arith training questions;
the same seed for both systems; ``generate_steps`` counts decoding steps (a batch ends when its
last row meets its stop). Results: ``benchmarks/results/rl-<host kind>.json``.

``learning``: the whole recipe ``configs/rl/tiny-arith.yaml`` (warm start, then GRPO through
TRL), seeded; the mean reward of the first and the last 20 steps, every step's reward and the
wall time. Results: ``benchmarks/results/rl-learning-<host kind>.json``.

Run from the repository root: ``.venv/bin/python -m benchmarks.rl_bench [throughput|learning]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if not __package__:  # run as `python benchmarks/rl_bench.py`: the package's root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import format_table, host_kind, run_info, write_results  # noqa: E402
from fireact.home import resource  # noqa: E402

RECIPE = resource("configs", "rl", "tiny-arith.yaml")
PACKAGES = ("torch", "transformers", "trl", "accelerate")


def warm_policy(work: Path) -> tuple[Any, Any, Any]:
    """(policy, agent, examples): the recipe's warm-started model as a `PolicyLLM`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fireact.rl.config import load_rl_config
    from fireact.rl.policy import PolicyLLM
    from fireact.rl.rollout import agent_for
    from fireact.rl.warm import warm_start
    from fireact.tasks import load_task
    from fireact.tools import build

    config = load_rl_config(RECIPE, {"output_dir": work})
    folder = warm_start(config)["outputs"]["model"]
    model = AutoModelForCausalLM.from_pretrained(folder)
    policy = PolicyLLM(model, AutoTokenizer.from_pretrained(folder),
                       max_tokens=config.max_tokens, temperature=config.temperature)  # fmt: skip
    task = load_task(config.task, config.split)
    agent = agent_for(policy, task, build(config.tool), "", config)
    return policy, agent, task.select(config.start, config.end)


def measure(policy: Any, agent: Any, examples: list[Any], batched: bool, seed: int) -> dict:
    """Play `examples` as one batch (or one at a time); wall time, episodes, tokens, rewards."""
    import torch

    from fireact.rl.rollout import run_group

    torch.manual_seed(seed)
    groups = [examples] if batched else [[e] for e in examples]
    calls, steps, tokens, rewards = policy.generate_calls, policy.generate_steps, 0, []
    started = time.perf_counter()
    for group in groups:
        out = asyncio.run(run_group(policy, agent, group, format_penalty=0.0))
        tokens += sum(sum(mask) for mask in out["env_mask"])
        rewards += out["env_reward"]
    wall = time.perf_counter() - started
    return {
        "system": "batched (fireact rl)" if batched else "one at a time",
        "episodes": len(examples), "wall_s": round(wall, 3),
        "episodes_per_s": round(len(examples) / wall, 2), "sampled_tokens": tokens,
        "sampled_tokens_per_s": round(tokens / wall, 1),
        "generate_calls": policy.generate_calls - calls,
        "generate_steps": policy.generate_steps - steps,
        "mean_reward": round(sum(rewards) / len(rewards), 3),
    }  # fmt: skip


def throughput(args: argparse.Namespace) -> dict[str, Any]:
    policy, agent, examples = warm_policy(args.work)
    measure(policy, agent, examples[:2], batched=True, seed=args.seed)  # warm-up, not recorded
    rows = []
    for size in args.batch:
        chosen = examples[:size]
        one = measure(policy, agent, chosen, batched=False, seed=args.seed)
        many = measure(policy, agent, chosen, batched=True, seed=args.seed)
        many["speedup"] = round(many["episodes_per_s"] / one["episodes_per_s"], 2)
        rows += [one, many]
    header = ["system", "episodes", "wall_s", "episodes_per_s", "sampled_tokens_per_s"]
    print(format_table([[r[h] for h in header] for r in rows], header))
    return {"workload": {"recipe": str(RECIPE), "batches": args.batch, "seed": args.seed},
            "rows": rows}  # fmt: skip


def learning(args: argparse.Namespace) -> dict[str, Any]:
    from fireact.rl.config import load_rl_config
    from fireact.rl.train import run_rl

    out = args.work / "learning"
    shutil.rmtree(out, ignore_errors=True)
    config = load_rl_config(RECIPE, {"output_dir": out})
    started = time.perf_counter()
    summary = run_rl(config)
    wall = time.perf_counter() - started
    steps = [json.loads(line) for line in Path(summary["rewards"]).read_text().splitlines()]
    print(json.dumps({k: summary[k] for k in ("first_mean_reward", "last_mean_reward")}))
    return {"recipe": str(RECIPE), "config": json.loads(config.model_dump_json()),
            "wall_s": round(wall, 1), "summary": summary, "steps": steps}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", nargs="?", choices=["throughput", "learning"], default="throughput")
    parser.add_argument("--batch", type=int, nargs="+", default=[8, 32, 64])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()) / "fireact-rl-bench"
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    info = run_info(PACKAGES)
    results = throughput(args) if args.what == "throughput" else learning(args)
    name = "rl" if args.what == "throughput" else "rl-learning"
    out = args.out or Path(__file__).parent / "results" / f"{name}-{host_kind()}.json"
    print(write_results(name, info, results, out))


if __name__ == "__main__":
    main()

"""`fireact rl`'s run: the environment, the policy and TRL's `GRPOTrainer`, wired together.

The model is a tiny random-initialised Llama built here (``model: tiny``, its BPE tokenizer
trained on the environment's own prompt and questions) or a model folder; ``lora: true`` trains
a PEFT adapter. Each optimisation step TRL asks for ``prompts_per_step × num_generations``
rollouts (its sampler repeats each question once per group member); `rollout.rollout_func`
plays them as fireact episodes; TRL computes the group-relative advantages, the KL term
(``beta``) and the loss over the mask (`policy`). One JSON line per step in
``OUTPUT_DIR/rewards.jsonl`` (TRL's mean reward and its standard deviation); the final model in
``OUTPUT_DIR/model``. Scale-out is TRL's: ``accelerate launch -m fireact.rl.train RECIPE``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from fireact.errors import FireactError
from fireact.rl.config import RLConfig, load_rl_config


def build_policy_model(config: RLConfig, texts: list[str]) -> tuple[Any, Any]:
    """(model, tokenizer): the warm start's fine-tuned model, the tiny random Llama (seeded) or
    the folder's model."""
    from fireact.train.tiny import build_llama, train_bpe_tokenizer

    warm = None
    if config.warm_start is not None:
        from fireact.rl.warm import warm_start

        warm = warm_start(config)["outputs"]["model"]
    if warm is not None or config.model != "tiny":
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(warm or config.model)
        if not path.is_dir():
            raise FireactError(f"model: {path} is not a model folder (or use 'tiny')")
        return AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    tokenizer = train_bpe_tokenizer(texts, vocab_size=400)
    model = build_llama(
        tokenizer, seed=config.seed, hidden_size=config.tiny_hidden, layers=config.tiny_layers,
        heads=4, max_positions=2048,
    )  # fmt: skip
    return model, tokenizer


def _reward_log(path: Path) -> Any:
    from transformers import TrainerCallback

    class RewardLog(TrainerCallback):
        """One JSON line per logged step: TRL's mean reward and its standard deviation."""

        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict | None = None, **kw: Any
        ) -> None:
            if not logs or "reward" not in logs or not state.is_world_process_zero:
                return
            row = {"step": state.global_step, "reward": logs["reward"],
                   "reward_std": logs.get("reward_std")}  # fmt: skip
            with path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(row) + "\n")

    return RewardLog()


def run_rl(config: RLConfig) -> dict[str, Any]:
    """Train; the summary (rewards of the first and last steps, paths)."""
    trainer, tokenizer = build_trainer(config)
    out = Path(config.output_dir)
    trainer.train()
    trainer.save_model(str(out / "model"))  # every rank takes part; the main one writes
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(out / "model"))
    trainer.accelerator.wait_for_everyone()
    processes = {"processes": trainer.accelerator.num_processes,
                 "process_index": trainer.accelerator.process_index}  # fmt: skip
    return {**summarise(out / "rewards.jsonl"), **processes}


def build_trainer(config: RLConfig) -> tuple[Any, Any]:
    """(TRL's GRPOTrainer with fireact's rollouts and reward, the tokenizer)."""
    import torch
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from fireact.agent.prompts import user_prompt
    from fireact.rl.policy import PolicyLLM
    from fireact.rl.rollout import agent_for, env_reward, group_examples, rollout_func
    from fireact.tasks import load_task, task_spec
    from fireact.tools import build

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    torch.manual_seed(config.seed)
    task = load_task(config.task, config.split)
    examples = group_examples(task, config.start, config.end)
    if not examples:
        raise FireactError(
            f"no questions in {config.task} {config.split}[{config.start}:{config.end}]"
        )
    head = ""
    if config.prompt_format == "fewshot":
        own = task_spec(config.task).prompts.get("react")
        if own is None:
            raise FireactError(f"task {config.task} ships no ReAct prompt of its own for rl")
        head = user_prompt(str(own))
    out = Path(config.output_dir)
    if (out / "rewards.jsonl").exists():
        raise FireactError(f"{out} already holds an rl run: choose another output_dir")
    out.mkdir(parents=True, exist_ok=True)
    model, tokenizer = build_policy_model(config, [head] + [e.question for e in examples])
    policy = PolicyLLM(
        model, tokenizer, max_tokens=config.max_tokens, temperature=config.temperature
    )
    agent = agent_for(policy, task, build(config.tool), head, config)
    by_question = {e.question: e for e in examples}
    peft_config = None
    if config.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(r=config.lora_r, lora_alpha=2 * config.lora_r,
                                 target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")  # fmt: skip
    args = GRPOConfig(
        output_dir=str(out / "trainer"), per_device_train_batch_size=config.prompts_per_step * config.num_generations,
        num_generations=config.num_generations, beta=config.beta, learning_rate=config.learning_rate,
        max_steps=config.max_steps, logging_steps=1, save_strategy="no", report_to=[], seed=config.seed,
        temperature=config.temperature, use_cpu=not torch.cuda.is_available(), bf16=False,
        max_completion_length=config.max_episode_steps * (config.max_tokens + 64), disable_tqdm=True,
    )  # fmt: skip
    dataset = Dataset.from_list([{"prompt": e.question} for e in examples])
    trainer = GRPOTrainer(
        model=model, reward_funcs=[env_reward], args=args, train_dataset=dataset,
        processing_class=tokenizer, peft_config=peft_config,
        rollout_func=rollout_func(policy, agent, by_question, config.format_penalty),
        callbacks=[_reward_log(out / "rewards.jsonl")],
    )  # fmt: skip
    return trainer, tokenizer


def summarise(rewards: Path, window: int = 20) -> dict[str, Any]:
    """Mean reward over the first and the last `window` steps of a run's rewards.jsonl."""
    rows = [json.loads(line) for line in rewards.read_text().splitlines() if line.strip()]
    first, last = rows[:window], rows[-window:]
    mean = lambda part: sum(r["reward"] for r in part) / len(part) if part else None  # noqa: E731
    return {"steps": len(rows), "first_mean_reward": mean(first), "last_mean_reward": mean(last),
            "window": window, "rewards": str(rewards)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """``python -m fireact.rl.train RECIPE.yaml`` (what ``accelerate launch`` runs)."""
    argv = sys.argv[1:] if argv is None else argv
    try:  # each process of a launch: one line, exit 2, as `fireact.train.sft.main`
        summary = json.dumps(run_rl(load_rl_config(Path(argv[0]) if argv else None)))
    except FireactError as err:  # one write: the ranks' lines must not interleave
        sys.stderr.write(f"error: {err}\n")
        sys.stderr.flush()
        return 2
    sys.stdout.flush()  # the processes of a launch share stdout: the summary in one write
    print(summary, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The policy as a fireact `LLM`: the model being trained answers the episodes' calls, in
batches, and every episode's token sequence is kept with its loss mask.

An episode's calls come as text prompts (fireact's episode renders head + trajectory +
``Thought:``). `EpisodeTokens` keeps the ids the episode has seen so far: a new prompt that
extends them is appended as environment tokens (mask 0: the rendering and the observation); a
prompt that departs from them (a re-ask, or a turn the episode rewrote) first drops the tokens
that are not a prefix of it. The model's sampled tokens are appended with mask 1 and their log
probabilities. So the final sequence is exactly what the model saw at its last turn plus its
answer, and the loss covers the model's own surviving tokens only — the SFT rule.

Concurrent calls are generated together: a call waits until every live episode is waiting on
the model (tools answer in between), then one left-padded ``generate`` serves them all; it ends
as soon as every row has met its stop string, EOS or token limit (`fireact.rl.stops`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from fireact.llm.base import Completion, Prompt
from fireact.llm.hf_static import left_pad
from fireact.llm.hf_stops import StopCriteriaCache
from fireact.rl.stops import RowStops, cut, prefixes_grow, walk_cut


@dataclass
class EpisodeTokens:
    """The token ids one episode has seen, with mask (1 = sampled by the policy) and logprobs."""

    prompt_ids: list[int] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)  # after the prompt
    mask: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)


class PolicyLLM:
    """The model being trained, answering fireact episodes (see the module doc)."""

    def __init__(self, model: Any, tokenizer: Any, *, max_tokens: int, temperature: float) -> None:
        self.name = "policy"
        self.model, self.tokenizer = model, tokenizer
        self.max_tokens, self.temperature = max_tokens, temperature
        self.episodes: dict[str, EpisodeTokens] = {}
        self.live = 0  # episodes still running (the rollout sets and counts them down)
        self.generate_calls = 0
        self.generate_steps = 0  # decoding steps over all generate calls (rows stop early)
        self._criterion = StopCriteriaCache(tokenizer)  # stop set -> StopStringCriteria
        self._pending: list[tuple[EpisodeTokens, list[str] | None, int, asyncio.Future]] = []

    # ---------------------------------------------------------------- token bookkeeping

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def extend(self, key: str, prompt: str) -> EpisodeTokens:
        """Bring episode `key`'s ids up to `prompt` (the first prompt becomes prompt_ids)."""
        ep = self.episodes.get(key)
        if ep is None:
            ep = self.episodes[key] = EpisodeTokens(prompt_ids=self._encode(prompt))
            return ep
        head = self._decode(ep.prompt_ids)
        if not prompt.startswith(head):
            raise ValueError(f"episode {key}: a prompt that changes the episode's head")
        while ep.ids and not prompt.startswith(self._decode(ep.prompt_ids + ep.ids)):
            ep.ids.pop(), ep.mask.pop(), ep.logprobs.pop()
        rest = prompt[len(self._decode(ep.prompt_ids + ep.ids)) :]
        added = self._encode(rest) if rest else []
        ep.ids += added
        ep.mask += [0] * len(added)
        ep.logprobs += [0.0] * len(added)
        return ep

    # ---------------------------------------------------------------- the LLM protocol

    async def complete(
        self,
        prompt: Prompt,
        *,
        stop: list[str] | None = None,
        max_tokens: int = 256,
        temperature: float = 0.0,
        key: str | None = None,
    ) -> Completion:
        if not isinstance(prompt, str) or key is None:
            raise ValueError("the policy answers text prompts of keyed episodes")
        ep = self.extend(key, prompt)
        done: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending.append((ep, stop, min(max_tokens, self.max_tokens), done))
        self.maybe_generate()
        return await done

    def episode_ended(self) -> None:
        """One episode finished: the others may now be all that is waiting."""
        self.live -= 1
        self.maybe_generate()

    def maybe_generate(self) -> None:
        """Serve the waiting calls once every live episode is waiting on the model."""
        if self._pending and len(self._pending) >= self.live:
            batch, self._pending = self._pending, []
            try:
                results = self._generate(batch)
            except Exception as err:  # every waiting episode sees the failure
                for *_, done in batch:
                    done.set_exception(err)
                return
            for (*_, done), result in zip(batch, results, strict=True):
                done.set_result(result)

    async def aclose(self) -> None:
        return None

    # ---------------------------------------------------------------- generation

    def _generate(self, batch: list) -> list[Completion]:
        import torch
        from transformers import StoppingCriteriaList

        self.generate_calls += 1
        rows = [ep.prompt_ids + ep.ids for ep, *_ in batch]
        width = max(map(len, rows))
        pad = self.tokenizer.pad_token_id
        pad = self.tokenizer.eos_token_id if pad is None else pad
        input_ids, attention = left_pad(rows, pad)
        new = max(limit for _, _, limit, _ in batch)
        stops = RowStops(
            self._decode, width, [(stop or (), limit) for _, stop, limit, _ in batch],
            self._criterion, self.tokenizer.eos_token_id,
        )  # fmt: skip
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad():
            out = self.model.generate(
                input_ids=input_ids, attention_mask=attention, max_new_tokens=new,
                do_sample=True, temperature=self.temperature, top_k=0, top_p=1.0,
                pad_token_id=pad, output_scores=True, return_dict_in_generate=True,
                stopping_criteria=StoppingCriteriaList([stops]),
            )  # fmt: skip
        if was_training:
            self.model.train()
        sampled = out.sequences[:, width:]
        self.generate_steps += sampled.shape[1]
        logps = torch.stack(out.scores, 1).float().log_softmax(-1)
        chosen = logps.gather(-1, sampled.unsqueeze(-1)).squeeze(-1)
        results = []
        for row, (ep, stop, limit, _) in enumerate(batch):
            ids = sampled[row, :limit].tolist()
            text, kept = self._cut(ids, stop)
            ep.ids += ids[:kept]
            ep.mask += [1] * kept
            ep.logprobs += chosen[row, :kept].tolist()
            reason = "length" if kept == limit and text == self._decode(ids[:kept]) else "stop"
            results.append(Completion(text, len(rows[row]), kept, finish_reason=reason))
        return results

    def _cut(self, ids: list[int], stop: list[str] | None) -> tuple[str, int]:
        """(text before the first stop string or EOS, how many sampled tokens are kept: up to
        the token that completes the stop); `fireact.rl.stops` has the rule."""
        stop = stop or []
        found = cut if prefixes_grow(self.tokenizer, stop) else walk_cut
        return found(self._decode, ids, stop, self.tokenizer.eos_token_id)

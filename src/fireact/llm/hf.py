"""The `hf` backend: a transformers causal LM (optionally with a PEFT adapter) in this process.

Owns model loading (bf16 on CUDA, fp32 on CPU, optional 4-bit on CUDA with bitsandbytes), prompt
rendering (the tokenizer's chat template for message lists when it has one, else the plain
"role: content" rendering of `base.render_chat`), and batching: concurrent `complete` calls from
many episodes queue up, and a background task gathers those that arrive within `batch_window_s`
(up to `max_batch_size`) into ONE left-padded `generate` call per temperature, run in a worker
thread so the event loop keeps serving other episodes. Each sequence stops at its own stop
strings and its own `max_tokens` (`hf_stops`); a row that stops gets pad tokens from then on and
the `generate` ends when its last row is done; greedy when temperature is 0, sampling otherwise.

Two decode paths: eager (a dynamic KV cache, stop strings checked on the host each step: the
default on the CPU) and compiled (`hf_static`: a static KV cache, `torch.compile`, bucketed batch
and cache shapes, stop strings checked on the device: the default on CUDA), chosen by `compile`
("auto" | "on" | "off"). Every `generate` runs in the backend's one worker thread (compiled CUDA
graphs are recorded per thread; one thread records each shape once).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fireact.errors import FireactError
from fireact.llm.base import Completion, LLMError, Prompt, cut_at_stop, render_chat
from fireact.llm.hf_load import (  # noqa: F401  (re-exported: the trainer checks paths)
    WEIGHT_FILES,
    check_source,
    check_weights,
    pick_device,
    quantization_config,
)
from fireact.llm.hf_static import StaticDecoder, compile_wanted, left_pad
from fireact.llm.hf_stops import HostStops
from fireact.train.precision import torch_dtype


@dataclass
class _Request:
    """One queued `complete` call."""

    ids: list[int]
    stop: list[str]
    max_tokens: int
    temperature: float
    future: asyncio.Future[Completion]
    queued_at: float = field(default_factory=time.perf_counter)


class HFLLM:
    """A local transformers model behind the `LLM` protocol, batching concurrent calls.

    Options: `adapter` (a PEFT adapter directory), `device` ("cuda", "cpu"; default: CUDA when
    available), `dtype` ("bfloat16", "float32", or "bf16"...: `fireact.train.precision`; default
    bf16 on CUDA, fp32 on CPU), `load_in_4bit`, `max_batch_size`, `batch_window_s` (how long the
    first request of a batch waits for company), `seed` (for sampling), `trust_remote_code`,
    `compile` ("auto": on with CUDA, off on the CPU, uncompiled if compiling fails; "on": such a
    failure is an error; "off"), `static_cache` (default: as
    `compile`; True with compile "off" runs the static-cache path eagerly), `cache_step` (the
    static cache's length is a multiple of it). Counters: `generate_calls` and `batch_sizes` (one
    entry per `generate`); `static.shapes` and `static.caches.made` on the static path.
    """

    def __init__(
        self,
        path: str,
        adapter: str | None = None,
        *,
        device: str | None = None,
        dtype: str | None = None,
        load_in_4bit: bool = False,
        max_batch_size: int = 32,
        batch_window_s: float = 0.005,
        seed: int = 0,
        trust_remote_code: bool = False,
        compile: str = "auto",
        static_cache: bool | None = None,
        cache_step: int = 512,
    ) -> None:
        self.path = check_source(path, "model")
        self.adapter = check_source(adapter, "adapter") if adapter else None
        self.name = f"hf:{path}" + (f":{adapter}" if adapter else "")
        self.device = pick_device(device)
        self.max_batch_size = max_batch_size
        self.batch_window_s = batch_window_s
        self.generate_calls = 0
        self.batch_sizes: list[int] = []
        compiled = compile_wanted(compile, self.device)
        self._load(dtype, load_in_4bit, seed, trust_remote_code)
        self.static: StaticDecoder | None = None
        if compiled or static_cache:
            self.static = StaticDecoder(
                self.model,
                self.tokenizer,
                compiled=compiled,
                max_batch_size=max_batch_size,
                cache_step=cache_step,
                fall_back=compile == "auto",
            )
        self._executor: ThreadPoolExecutor | None = None
        self._queue: asyncio.Queue[_Request] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- loading ----------------------------------------------------------------------------
    def _load(self, dtype: str | None, load_in_4bit: bool, seed: int, remote: bool) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        for folder in (self.path, self.adapter):  # a killed training run leaves none
            if folder is not None:
                check_weights(folder)
        torch.manual_seed(seed)
        weights = torch_dtype(dtype) if dtype else None
        if weights is None:
            weights = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        quant = quantization_config(load_in_4bit, self.device)
        kwargs: dict[str, Any] = {"dtype": weights, "trust_remote_code": remote}
        if quant is not None:
            kwargs.update(quantization_config=quant, device_map={"": self.device})
        try:
            model = AutoModelForCausalLM.from_pretrained(self.path, **kwargs)
        except OSError as exc:
            raise FireactError(f"cannot load model {self.path!r}: {exc}") from None
        if self.adapter:
            model = self._with_adapter(model)
        if quant is None:
            model = model.to(self.device)
        self.model = model.eval()
        self.tokenizer = self._load_tokenizer(AutoTokenizer, remote)

    def _with_adapter(self, model: Any) -> Any:
        try:
            from peft import PeftModel
        except ImportError:
            raise FireactError("loading an adapter needs peft: pip install peft") from None
        try:
            return PeftModel.from_pretrained(model, self.adapter)
        except (OSError, ValueError) as exc:
            raise FireactError(f"cannot load adapter {self.adapter!r}: {exc}") from None

    def _load_tokenizer(self, auto_tokenizer: Any, remote: bool) -> Any:
        """The adapter's tokenizer if it saved one, else the model's; left padding, a pad id."""
        source = self.path
        if self.adapter and (Path(self.adapter) / "tokenizer_config.json").is_file():
            source = self.adapter
        tokenizer = auto_tokenizer.from_pretrained(source, trust_remote_code=remote)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        return tokenizer

    # -- the LLM protocol -------------------------------------------------------------------
    def encode(self, prompt: Prompt) -> list[int]:
        """Token ids of a prompt (chat template for message lists when the tokenizer has one)."""
        if isinstance(prompt, str):
            return self.tokenizer(prompt).input_ids
        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(
                prompt, tokenize=False, add_generation_prompt=True
            )
            return self.tokenizer(text, add_special_tokens=False).input_ids
        return self.tokenizer(render_chat(prompt)).input_ids

    async def complete(
        self,
        prompt: Prompt,
        *,
        stop: list[str] | None = None,
        max_tokens: int = 256,
        temperature: float = 0.0,
        key: str | None = None,
    ) -> Completion:
        """Queue the prompt; it is generated in the next batch."""
        queue = self._ensure_worker()
        future: asyncio.Future[Completion] = asyncio.get_running_loop().create_future()
        ids = self.encode(prompt)
        await queue.put(_Request(ids, list(stop or []), max_tokens, temperature, future))
        return await future

    def _ensure_worker(self) -> asyncio.Queue[_Request]:
        """Start the batching task in the running loop (again, if the loop changed)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._worker is None or self._worker.done():
            self._loop = loop
            self._queue = asyncio.Queue()
            self._worker = loop.create_task(self._batch_loop())
        assert self._queue is not None
        return self._queue

    async def _batch_loop(self) -> None:
        assert self._queue is not None
        while True:
            batch = await self._collect(self._queue)
            groups: dict[float, list[_Request]] = defaultdict(list)
            for request in batch:
                if not request.future.done():  # skip cancelled callers
                    groups[request.temperature].append(request)
            for temperature, group in groups.items():
                await self._run_group(group, temperature)

    async def _collect(self, queue: asyncio.Queue[_Request]) -> list[_Request]:
        """The first waiting request plus those arriving within the window, up to the max."""
        batch = [await queue.get()]
        deadline = time.perf_counter() + self.batch_window_s
        while len(batch) < self.max_batch_size:
            if not queue.empty():
                batch.append(queue.get_nowait())
                continue
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(queue.get(), remaining))
            except TimeoutError:
                break
        return batch

    async def _run_group(self, group: list[_Request], temperature: float) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="fireact-hf")
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(
                self._executor, self.generate_batch, group, temperature
            )
        except Exception as exc:  # handed to every waiting caller; a FireactError (a setting
            # that cannot work, as a failed compile under "on") as it is: it stops the run
            error = exc
            if not isinstance(exc, FireactError):
                error = LLMError(f"{self.name}: generate failed: {type(exc).__name__}: {exc}")
            for request in group:
                if not request.future.done():
                    request.future.set_exception(error)
            return
        for request, completion in zip(group, results, strict=True):
            if not request.future.done():
                request.future.set_result(completion)

    # -- generation (worker thread) ---------------------------------------------------------
    def generate_batch(self, group: list[_Request], temperature: float) -> list[Completion]:
        """One `generate` for `group` (eager or static path); a Completion per request."""
        start = time.perf_counter()
        rows = [r.ids for r in group]
        stops = [r.stop for r in group]
        max_tokens = [r.max_tokens for r in group]
        config = self._generation_config(group, temperature)
        if self.static is not None:
            new_tokens, lengths = self.static.generate(rows, stops, max_tokens, config)
        else:
            new_tokens, lengths = self._generate_eager(rows, stops, max_tokens, config)
        self.generate_calls += 1
        self.batch_sizes.append(len(group))
        elapsed = time.perf_counter() - start
        return [
            self._completion(request, new_tokens[i], lengths[i], start, elapsed)
            for i, request in enumerate(group)
        ]

    def _generate_eager(
        self, rows: list[list[int]], stops: list[list[str]], max_tokens: list[int], config: Any
    ) -> tuple[list[list[int]], list[int | None]]:
        """One left-padded `generate` on the dynamic cache, stops checked on the host."""
        import torch
        from transformers import StoppingCriteriaList

        input_ids, attention = left_pad(rows, self.tokenizer.pad_token_id)
        width = input_ids.shape[1]
        criteria = HostStops(self.tokenizer, width, stops, max_tokens)
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=input_ids.to(self.model.device),
                attention_mask=attention.to(self.model.device),
                generation_config=config,
                stopping_criteria=StoppingCriteriaList([criteria]),
            )
        return output[:, width:].tolist(), criteria.lengths

    def _generation_config(self, group: list[_Request], temperature: float) -> Any:
        config = copy.deepcopy(self.model.generation_config)
        config.max_new_tokens = max(r.max_tokens for r in group)
        config.pad_token_id = self.tokenizer.pad_token_id
        config.eos_token_id = self._eos_ids()
        config.num_return_sequences = 1
        sampling = temperature > 0
        config.do_sample = sampling
        config.temperature = temperature if sampling else None
        config.top_p = 1.0 if sampling else None
        config.top_k = 0 if sampling else None  # sample from the whole distribution
        return config

    def _eos_ids(self) -> list[int]:
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        ids = eos if isinstance(eos, list) else [eos]
        return [i for i in ids if i is not None]

    def _completion(
        self, request: _Request, new: list[int], stopped_at: int | None, start: float, took: float
    ) -> Completion:
        """Trim a row's new tokens at eos / its own end, decode, and cut at its stop strings."""
        eos = set(self._eos_ids())
        end = min(
            (i + 1 for i, t in enumerate(new) if t in eos),
            default=len(new),
        )
        if stopped_at is not None:
            end = min(end, stopped_at)
        tokens = new[:end]
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        text, stopped = cut_at_stop(text, request.stop)
        ended = stopped or bool(tokens and tokens[-1] in eos)
        return Completion(
            text=text,
            prompt_tokens=len(request.ids),
            completion_tokens=len(tokens),
            finish_reason="stop" if ended else "length",
            latency_s=start + took - request.queued_at,
        )

    async def aclose(self) -> None:
        """Stop the batching task; waiting callers get cancelled."""
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await self._worker
        self._worker = None  # the generate thread stays: the next loop's calls reuse it

"""The `hf` backend: a transformers causal LM (optionally with a PEFT adapter) in this process.

Owns model loading (bf16 on CUDA, fp32 on CPU, optional 4-bit on CUDA with bitsandbytes), prompt
rendering (the tokenizer's chat template for message lists when it has one, else the plain
"role: content" rendering of `base.render_chat`), and batching: concurrent `complete` calls from
many episodes queue up, and a background task gathers those that arrive within `batch_window_s`
(up to `max_batch_size`) into ONE left-padded `generate` call per temperature, run in a worker
thread so the event loop keeps serving other episodes. Each sequence stops at its own stop
strings and its own `max_tokens`; greedy when temperature is 0, sampling otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fireact.errors import FireactError
from fireact.llm.base import Completion, LLMError, Prompt, cut_at_stop, render_chat
from fireact.train.precision import torch_dtype

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class _Request:
    """One queued `complete` call."""

    ids: list[int]
    stop: list[str]
    max_tokens: int
    temperature: float
    future: asyncio.Future[Completion]
    queued_at: float = field(default_factory=time.perf_counter)


def check_source(path: str, what: str) -> str:
    """A local directory, or a Hugging Face hub id; else a FireactError naming `path`."""
    if Path(path).expanduser().exists():
        return str(Path(path).expanduser())
    if _HUB_ID.match(path):
        return path
    raise FireactError(
        f"{what} path {path!r} does not exist: give a directory saved with save_pretrained"
    )


WEIGHT_FILES = ("*.safetensors", "*.bin")


def check_weights(path: str) -> None:
    """A local model (or adapter) folder must hold weights; a hub id is not checked here.

    The output folder of a training run that was killed (or stopped on a NaN loss) holds its
    config and checkpoints but no final model: say so, and where to go from there.
    """
    folder = Path(path).expanduser()
    if not folder.is_dir() or any(next(folder.glob(p), None) for p in WEIGHT_FILES):
        return
    checkpoints = sorted(
        (int(p.name.removeprefix("checkpoint-")), p)
        for p in folder.glob("checkpoint-*")
        if p.name.removeprefix("checkpoint-").isdigit() and (p / "trainer_state.json").is_file()
    )  # complete ones: the trainer state is written last
    if not checkpoints and not (folder / "fireact_config.yaml").is_file():
        raise FireactError(
            f"{folder} has no model weights (*.safetensors / *.bin): give a folder saved with"
            " save_pretrained"
        )
    latest = f" (the latest here: {checkpoints[-1][1]})" if checkpoints else ""
    raise FireactError(
        f"{folder} has no model weights (*.safetensors / *.bin): a training run that was killed"
        " leaves no final model; resume it with `fireact train CONFIG --resume true` or point"
        f" to a checkpoint-N folder{latest}"
    )


def pick_device(device: str | None) -> str:
    import torch

    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def quantization_config(load_in_4bit: bool, device: str) -> Any | None:
    """A 4-bit BitsAndBytesConfig, only on CUDA with bitsandbytes installed."""
    if not load_in_4bit:
        return None
    if not device.startswith("cuda"):
        raise FireactError("load_in_4bit needs a CUDA GPU: drop load_in_4bit on this machine")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise FireactError("load_in_4bit needs bitsandbytes: pip install bitsandbytes") from None
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.bfloat16)


class _StopCriteria:
    """Per-sequence stopping: each row stops at its own stop strings or its own max_tokens.

    Only the tail of each row's new tokens is decoded at each step (enough tokens to hold the
    longest stop string), in one device-to-host copy and one batched decode for the whole
    batch, so the check costs O(1) syncs per step whatever the batch size. `lengths[i]` records how many new
    tokens row i had when it was first marked done.
    """

    def __init__(self, tokenizer: Any, prompt_len: int, requests: list[_Request]) -> None:
        self.tokenizer = tokenizer
        self.prompt_len = prompt_len
        self.stops = [r.stop for r in requests]
        self.max_tokens = [r.max_tokens for r in requests]
        self.window = max((len(s) for r in requests for s in r.stop), default=0) + 4
        self.lengths: list[int | None] = [None] * len(requests)

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        new_len = input_ids.shape[1] - self.prompt_len
        live = [i for i, length in enumerate(self.lengths) if length is None]
        checked = [i for i in live if self.stops[i] and new_len < self.max_tokens[i]]
        if checked:  # one device-to-host copy and one batched decode per step, not per row
            width = min(new_len, self.window)
            tails = input_ids[checked, input_ids.shape[1] - width :].tolist()
            texts = self.tokenizer.batch_decode(tails, skip_special_tokens=True)
            stopped = {i for i, text in zip(checked, texts, strict=True) if self._hit(i, text)}
        else:
            stopped = set()
        for i in live:
            if new_len >= self.max_tokens[i] or i in stopped:
                self.lengths[i] = new_len
        done = [length is not None for length in self.lengths]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    def _hit(self, i: int, tail: str) -> bool:
        return any(s in tail for s in self.stops[i])


class HFLLM:
    """A local transformers model behind the `LLM` protocol, batching concurrent calls.

    Options: `adapter` (a PEFT adapter directory), `device` ("cuda", "cpu"; default: CUDA when
    available), `dtype` ("bfloat16", "float32", or "bf16"...: `fireact.train.precision`; default
    bf16 on CUDA, fp32 on CPU), `load_in_4bit`, `max_batch_size`, `batch_window_s` (how long the
    first request of a batch waits for company), `seed` (for sampling), `trust_remote_code`.
    Counters: `generate_calls` and `batch_sizes` (one entry per `generate`).
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
    ) -> None:
        self.path = check_source(path, "model")
        self.adapter = check_source(adapter, "adapter") if adapter else None
        self.name = f"hf:{path}" + (f":{adapter}" if adapter else "")
        self.device = pick_device(device)
        self.max_batch_size = max_batch_size
        self.batch_window_s = batch_window_s
        self.generate_calls = 0
        self.batch_sizes: list[int] = []
        self._load(dtype, load_in_4bit, seed, trust_remote_code)
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
        try:
            results = await asyncio.to_thread(self.generate_batch, group, temperature)
        except Exception as exc:  # handed to every waiting caller
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
        """One left-padded `generate` for `group`; returns a Completion per request."""
        import torch
        from transformers import StoppingCriteriaList

        start = time.perf_counter()
        pad_id = self.tokenizer.pad_token_id
        width = max(len(r.ids) for r in group)
        input_ids = torch.full((len(group), width), pad_id, dtype=torch.long)
        attention = torch.zeros((len(group), width), dtype=torch.long)
        for i, request in enumerate(group):
            input_ids[i, width - len(request.ids) :] = torch.tensor(request.ids)
            attention[i, width - len(request.ids) :] = 1
        criteria = _StopCriteria(self.tokenizer, width, group)
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=input_ids.to(self.model.device),
                attention_mask=attention.to(self.model.device),
                generation_config=self._generation_config(group, temperature),
                stopping_criteria=StoppingCriteriaList([criteria]),
            )
        self.generate_calls += 1
        self.batch_sizes.append(len(group))
        new_tokens = output[:, width:].tolist()
        elapsed = time.perf_counter() - start
        return [
            self._completion(request, new_tokens[i], criteria.lengths[i], start, elapsed)
            for i, request in enumerate(group)
        ]

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
        self._worker = None

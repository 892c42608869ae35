"""The `LLM` protocol every backend implements, its `Completion` result, and shared helpers.

A backend turns a prompt into text. A prompt is either a string (raw text / the completions
API) or a list of `{"role": ..., "content": ...}` messages (the chat API). Whatever the backend,
the returned text is cut at the first stop string, and the stop string itself is not included.
This module also owns the errors a call can raise at run time (`LLMError`), the whitespace token
count used by the test backends, and the plain "role: content" chat rendering used by models
without a chat template.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

Message = dict[str, str]
Prompt = str | list[Message]


@dataclass(frozen=True, slots=True)
class Completion:
    """One model answer with its accounting.

    `finish_reason` is "stop" (a stop string or end-of-sequence ended it) or "length"
    (`max_tokens` ran out). `latency_s` is the wall time of the call, retries included.
    """

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    finish_reason: str = "stop"
    latency_s: float = 0.0


@runtime_checkable
class LLM(Protocol):
    """What the agent needs from a language model."""

    name: str

    async def complete(
        self,
        prompt: Prompt,
        *,
        stop: list[str] | None = None,
        max_tokens: int = 256,
        temperature: float = 0.0,
        key: str | None = None,
    ) -> Completion:
        """Continue `prompt`; `key` identifies the episode (used by replaying backends)."""
        ...

    async def aclose(self) -> None:
        """Release connections, worker tasks and threads."""
        ...


class LLMError(RuntimeError):
    """A model call that failed at run time (retries exhausted, a script ran out, a bad reply).

    `retryable` says whether another server could answer it (the server was unreachable, timed
    out, overloaded or failed), as opposed to a request no server would answer.
    """

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class ScriptExhaustedError(LLMError):
    """A replaying backend was asked for more outputs than it was given for an episode."""


def cut_at_stop(text: str, stop: list[str] | None) -> tuple[str, bool]:
    """Cut `text` before the earliest occurrence of any stop string; say whether one was found."""
    if not stop:
        return text, False
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    if cut < 0:
        return text, False
    return text[:cut], True


_WORD = re.compile(r"\S+")


def whitespace_tokens(text: str) -> int:
    """Count whitespace-separated words: the token count of the scripted and test backends."""
    return len(text.split())


def truncate_words(text: str, max_words: int) -> tuple[str, bool]:
    """Keep the first `max_words` whitespace tokens of `text` (spacing kept); say if it was cut."""
    for n, match in enumerate(_WORD.finditer(text)):
        if n == max_words:
            return text[: match.start()].rstrip(), True
    return text, False


def prompt_text(prompt: Prompt) -> str:
    """The text of a prompt: the string itself, or the message contents joined by newlines."""
    if isinstance(prompt, str):
        return prompt
    return "\n".join(str(m.get("content", "")) for m in prompt)


def render_chat(messages: list[Message]) -> str:
    """Plain chat rendering for models without a chat template.

    Each message becomes a line "role: content", and the prompt ends with "assistant: " so that
    the model writes the next assistant turn.
    """
    lines = [f"{m['role']}: {m['content']}" for m in messages]
    return "\n".join(lines) + "\nassistant: "

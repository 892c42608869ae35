"""The calculator tool: ``calculate[expression]`` → the value, or ``Invalid expression: ...``.

This module owns `CalculatorTool` (name ``calculate``, one action ``calculate``): arithmetic and
common functions over numbers, evaluated safely (by `fireact.tools.calc_eval`, whose names are
re-exported here), with the result formatted for the agent. It
keeps no per-episode state (`ToolState` is not touched).

Library: simpleeval (PyPI ``simpleeval``, MIT, a single maintained module). It evaluates a Python
expression by walking its `ast` with an explicit whitelist of node types, operators, functions and
names: nothing is compiled or ``eval``-ed, and no object's attributes are reachable unless
allowed. Every part of that whitelist can be replaced, which is what the limits below need.
Alternatives looked at: asteval (interprets a whole Python subset, loops and definitions
included: far more surface than a calculator needs), numexpr (NumPy array expressions: no
integers beyond 64 bits, no round/min/max/factorial, evaluated in C with no hook for size
limits), cexprtk (C++ ExprTk: floats only).

Safety rules, in the order they apply:

1. Size: at most ``max_chars`` (1,000) characters, checked before anything is parsed, and a
   syntax tree at most `calc_eval.MAX_DEPTH` (100) levels deep, checked before it is evaluated
   (so the answer does not depend on Python's recursion limit, which libraries raise).
2. Grammar: one expression (``ast.parse(mode="eval")``: statements, assignments and imports do
   not parse). Allowed: int and float literals, ``True``/``False``, the names ``pi``, ``e``,
   ``tau``; ``+ - * / // % **`` (``^`` is read as ``**``), unary ``+ -``, comparisons,
   ``and or not``, ``a if c else b``; calls of the functions in `FUNCTIONS` by name; list and
   tuple literals (``sum([1, 2])``). Everything else is refused by node type: attributes
   (``(1).__class__``), subscripts, strings, f-strings, lambdas, comprehensions, ``*``/``**``
   unpacking, ``:=``, dicts, sets. Arithmetic takes numbers only (no ``[1] * 10**9``).
3. Numbers: integers of at most ``max_digits`` (300) decimal digits. Powers and
   ``factorial``/``comb``/``perm`` are sized before they are computed (``9**9**9`` never
   starts); every other result is checked after (cheap at that size); ``round``'s digits are
   bounded; floats must stay finite (overflow is refused, as are complex results).
4. Time: parsing and evaluation run in a worker thread (a small pool of this tool's own), awaited
   with ``timeout`` (1 s); the evaluator also checks the deadline at every node, so an evaluation
   that timed out stops by itself. A thread cannot be killed and a big-integer operation holds
   the GIL while it runs, so rule 3 is what keeps every single step short; the timeout is the
   backstop for the number of steps.
5. Errors: every failure is the observation ``Invalid expression: <reason>``, on one line;
   nothing raises out of the tool.

Percentages: a ``%`` right after a number, a name or a parenthesised group, and not followed by
an operand (a number, a name other than ``of``, ``(`` or ``[``), is a percentage: ``15%`` is
0.15, ``200 * 15%`` is 30, ``15% of 200`` is 30; ``7 % 3`` stays the remainder. ``×``, ``÷`` and
``−`` are read as ``*``, ``/`` and ``-``.

Output: integers in full, without separators (``1234567``); ``True``/``False``; floats rounded to
15 significant digits (what a float holds exactly, so the noise of binary fractions goes:
``0.1 + 0.2`` → ``0.3``), then written in Python's shortest form, integral values below 1e16
without ``.0`` (``sqrt(16)`` → ``4``, ``2 / 3`` → ``0.666666666666667``, ``1e20`` →
``1e+20``, ``0.00001`` → ``1e-05``); ``digits`` sets the precision, and ``digits=None`` writes
floats exactly as Python's ``repr`` does (``5240.700000000001``); a list as ``[a, b]``. A
top-level tuple is refused: it is almost always a thousands separator (``1,234`` is the tuple
``(1, 234)``).
"""

from __future__ import annotations

import ast
import asyncio
import functools
import io
import math
import time
import tokenize
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar

from simpleeval import InvalidExpression, OperatorNotDefined

from fireact.tools.base import ToolState
from fireact.tools.calc_eval import (
    FUNCTIONS,
    MAX_COMB_N,
    MAX_DIGITS,
    MAX_ROUND_DIGITS,
    NAMES,
    Refused,
    SafeCalculator,
    _TimedOut,
    check_number,
    make_functions,
)
from fireact.tools.threads import WorkerThreads

__all__ = [
    "DIGITS",
    "FUNCTIONS",
    "INVALID",
    "MAX_CHARS",
    "MAX_COMB_N",
    "MAX_DIGITS",
    "MAX_ROUND_DIGITS",
    "NAMES",
    "TIMEOUT_S",
    "CalculatorTool",
    "Refused",
    "SafeCalculator",
    "check_number",
    "evaluate",
    "format_number",
    "make_functions",
    "rewrite",
    "timed_out",
]

MAX_CHARS = 1000  # longest expression accepted
TIMEOUT_S = 1.0  # wall-clock limit of one evaluation
DIGITS = 15  # significant digits of a float result
INVALID = "Invalid expression:"

_SYMBOLS = {
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.Invert: "~",
    ast.MatMult: "@",
}
_UNICODE = str.maketrans({"×": "*", "·": "*", "÷": "/", "−": "-", "–": "-"})


# ------------------------------------------------------------------ text in, text out


def _is_operand_start(token: tokenize.TokenInfo) -> bool:
    if token.type == tokenize.NUMBER:
        return True
    if token.type == tokenize.NAME:
        return token.string != "of"
    return token.string in ("(", "[")


def rewrite(expression: str) -> str:
    """The calculator's notation in Python: ``×÷−``, ``^`` as ``**``, percentages (module doc)."""
    expression = expression.translate(_UNICODE)
    if "%" not in expression and "^" not in expression:
        return expression
    try:
        tokens = [
            t
            for t in tokenize.generate_tokens(io.StringIO(expression).readline)
            if t.type not in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER, tokenize.COMMENT)
            and t.type not in (tokenize.INDENT, tokenize.DEDENT)
        ]
    except (tokenize.TokenError, SyntaxError):
        return expression  # let the parser say what is wrong
    out: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        if token.string == "^":
            out.append("**")
        elif (
            token.string == "%" and out and (following is None or not _is_operand_start(following))
        ):
            start = _operand_start(out)
            if start is None:
                out.append("%")
            else:
                out[start:] = ["(", *out[start:], "/", "100", ")"]
                if following is not None and following.string == "of":
                    out.append("*")
                    i += 1
        else:
            out.append(token.string)
        i += 1
    return " ".join(out)


def _operand_start(out: list[str]) -> int | None:
    """Where the operand ending ``out`` starts: a number, a name, or a (called) group."""
    last = out[-1]
    if last == ")":
        depth = 0
        for j in range(len(out) - 1, -1, -1):
            depth += {")": 1, "(": -1}.get(out[j], 0)
            if depth == 0:
                return j - 1 if j > 0 and out[j - 1].isidentifier() else j
        return None
    if last[:1].isdigit() or last[:1] == "." or last.isidentifier():
        return len(out) - 1
    return None


def format_number(value: Any, digits: int | None = DIGITS) -> str:
    """A result as text: ints in full, floats to ``digits`` significant digits (module doc);
    ``digits=None``: floats exactly as Python's ``repr`` writes them."""
    if isinstance(value, bool | int):
        return str(value)
    if isinstance(value, float):
        if digits is None:
            return repr(value)
        rounded = float(f"{value:.{digits}g}")
        if rounded.is_integer() and abs(rounded) < 1e16:
            return str(int(rounded))
        return repr(rounded)
    if isinstance(value, list):
        return "[" + ", ".join(format_number(v, digits) for v in value) + "]"
    raise Refused(f"the result is a {type(value).__name__}, not a number")


def evaluate(
    expression: str,
    *,
    max_chars: int = MAX_CHARS,
    max_digits: int = MAX_DIGITS,
    digits: int | None = DIGITS,
    timeout: float = math.inf,
    started: float | None = None,
) -> str:
    """The observation for ``calculate[expression]`` (synchronous; never raises).

    The evaluation stops once ``timeout`` seconds have passed since ``started`` (a
    `time.monotonic` reading; default: now).
    """
    text = expression.strip()
    if not text:
        return f"{INVALID} empty expression; write e.g. calculate[2 * (3 + 4)]"
    if len(text) > max_chars:
        return f"{INVALID} too long ({len(text)} characters; at most {max_chars})"
    deadline = (time.monotonic() if started is None else started) + timeout
    try:
        value = SafeCalculator(max_digits, deadline).evaluate(rewrite(text))
        if isinstance(value, tuple):
            raise Refused(
                "a comma outside a function call makes a tuple; write numbers without "
                "thousands separators (1234567, not 1,234,567)"
            )
        return format_number(value, digits)
    except _TimedOut:
        return timed_out(timeout)
    except SyntaxError as exc:
        return f"{INVALID} {exc.msg}"
    except OperatorNotDefined as exc:
        symbol = _SYMBOLS.get(type(exc.attr), type(exc.attr).__name__)
        return f"{INVALID} operator {symbol} is not supported"
    except InvalidExpression as exc:
        return f"{INVALID} {exc}"
    except ZeroDivisionError:
        return f"{INVALID} division by zero"
    except OverflowError:
        return f"{INVALID} number too large"
    except (RecursionError, MemoryError):
        return f"{INVALID} too deeply nested"
    except (ArithmeticError, ValueError, TypeError) as exc:  # math domain errors, bad arguments
        return f"{INVALID} {exc}"
    except Exception as exc:  # noqa: BLE001 - whatever else a function raises is an answer too
        return f"{INVALID} {type(exc).__name__}: {exc}"


def timed_out(timeout: float) -> str:
    """The observation of an evaluation that ran out of time."""
    return f"{INVALID} evaluation timed out after {timeout:g} s"


# ------------------------------------------------------------------ the tool


@dataclass(eq=False, repr=False, kw_only=True)
class CalculatorTool:
    """``calculate[expression]``: the safe calculator of the module doc, shared by all episodes."""

    name: ClassVar[str] = "calculate"
    actions: ClassVar[frozenset[str]] = frozenset({"calculate"})

    max_chars: int = MAX_CHARS
    max_digits: int = MAX_DIGITS
    digits: int | None = DIGITS
    timeout: float = TIMEOUT_S
    workers: int = 2
    _threads: WorkerThreads = field(
        init=False, default_factory=lambda: WorkerThreads("fireact-calculate")
    )

    def _executor(self) -> ThreadPoolExecutor:
        return self._threads.executor(self.workers)

    async def __call__(self, action: str, argument: str, state: ToolState) -> str:
        if action not in self.actions:
            raise ValueError(f"calculate answers calculate[...], not {action}[...]")
        limits = {"max_chars": self.max_chars, "max_digits": self.max_digits, "digits": self.digits}
        if len(argument.strip()) > self.max_chars:  # refused here, without a thread hop
            return evaluate(argument, **limits)
        started = time.monotonic()
        job = functools.partial(evaluate, argument, **limits, timeout=self.timeout, started=started)
        future = asyncio.get_running_loop().run_in_executor(self._executor(), job)
        try:
            async with asyncio.timeout(self.timeout):
                return await future
        except TimeoutError:  # e.g. queued behind other evaluations; the worker stops by itself
            return timed_out(self.timeout)

    async def aclose(self) -> None:
        """Stop the worker threads (an evaluation still running stops at its deadline)."""
        self._threads.shutdown()

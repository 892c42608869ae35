"""The calculator tool: ``calculate[expression]`` → the value, or ``Invalid expression: ...``.

This module owns `CalculatorTool` (name ``calculate``, one action ``calculate``): arithmetic and
common functions over numbers, evaluated safely, with the result formatted for the agent. It
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

1. Size: at most ``max_chars`` (1,000) characters, checked before anything is parsed.
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
import statistics
import time
import tokenize
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from simpleeval import InvalidExpression, OperatorNotDefined, SimpleEval

from fireact.tools.base import ToolState

MAX_CHARS = 1000  # longest expression accepted
MAX_DIGITS = 300  # largest integer: this many decimal digits (about the range of a float)
TIMEOUT_S = 1.0  # wall-clock limit of one evaluation
DIGITS = 15  # significant digits of a float result
MAX_ROUND_DIGITS = 400  # |ndigits| of round(x, ndigits): round(5, -10**9) would build 10**10**9
MAX_COMB_N = 100_000  # n of comb/perm: sized with lgamma, exact enough below this
INVALID = "Invalid expression:"

NAMES: dict[str, Any] = {"pi": math.pi, "e": math.e, "tau": math.tau, "True": True, "False": False}

_SYMBOLS = {
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.Invert: "~",
    ast.MatMult: "@",
}
_REFUSED_NODES = {
    ast.Attribute: "attribute access is not allowed",
    ast.Subscript: "indexing is not allowed",
    ast.Slice: "indexing is not allowed",
    ast.Lambda: "lambda is not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "comprehensions are not allowed",
    ast.JoinedStr: "text is not supported, only numbers",
    ast.Starred: "* unpacking is not allowed",
    ast.NamedExpr: "assignment is not allowed",
    ast.Dict: "dicts are not supported",
    ast.Set: "sets are not supported",
}
_UNICODE = str.maketrans({"×": "*", "·": "*", "÷": "/", "−": "-", "–": "-"})


class Refused(InvalidExpression):
    """An expression this calculator will not evaluate; the message is the observation's reason."""


class _TimedOut(Exception):
    """The evaluation passed its deadline (raised inside the worker thread)."""


# ------------------------------------------------------------------ guarded arithmetic


def _number(x: Any, what: str) -> int | float:
    if isinstance(x, int | float):  # bool is an int
        return x
    raise Refused(f"{what} needs numbers, not {type(x).__name__}")


def check_number(value: Any, max_digits: int = MAX_DIGITS) -> Any:
    """Refuse integers over ``max_digits`` digits, infinite / NaN floats and complex numbers."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        # bit length first: the exact test builds 10**max_digits, needed only near the limit
        if abs(value).bit_length() > max_digits * 3.32 and abs(value) >= 10**max_digits:
            raise Refused(f"number too large (more than {max_digits} digits)")
    elif isinstance(value, float):
        if math.isinf(value):
            raise Refused("number too large")
        if math.isnan(value):
            raise Refused("result is not a number (NaN)")
    elif isinstance(value, complex):
        raise Refused("complex numbers are not supported")
    return value


def _power_guard(base: int | float, exponent: int | float, max_digits: int) -> None:
    """Refuse an integer power whose result would have over ``max_digits`` digits."""
    whole = isinstance(base, int) and isinstance(exponent, int)
    if whole and exponent > 0 and abs(base) > 1 and exponent * math.log10(abs(base)) > max_digits:
        raise Refused(f"number too large (more than {max_digits} digits)")


def _log10_factorial(n: int) -> float:
    return math.lgamma(n + 1) / math.log(10)


def _integer_argument(x: Any, name: str) -> int:
    if isinstance(x, float) and x.is_integer():
        x = int(x)
    if not isinstance(x, int):
        raise Refused(f"{name}() needs whole numbers")
    return x


class _Functions:
    """The calculator's functions, sized against ``max_digits`` before big results are built."""

    def __init__(self, max_digits: int) -> None:
        self.max_digits = max_digits

    def _too_large(self, log10_size: float) -> None:
        if log10_size > self.max_digits + 1:
            raise Refused(f"number too large (more than {self.max_digits} digits)")

    def power(self, a: Any, b: Any, mod: Any = None) -> Any:
        a, b = _number(a, "**"), _number(b, "**")
        if mod is not None:
            return pow(a, b, _number(mod, "pow"))
        _power_guard(a, b, self.max_digits)
        try:
            return a**b
        except OverflowError:
            raise Refused("number too large") from None

    def factorial(self, n: Any) -> int:
        n = _integer_argument(n, "factorial")
        if n > 0:
            self._too_large(_log10_factorial(n))
        return math.factorial(n)

    def comb(self, n: Any, k: Any) -> int:
        n, k = _integer_argument(n, "comb"), _integer_argument(k, "comb")
        if n > MAX_COMB_N:
            raise Refused(f"comb() needs n of at most {MAX_COMB_N}")
        if 0 <= k <= n:
            self._too_large(_log10_factorial(n) - _log10_factorial(k) - _log10_factorial(n - k))
        return math.comb(n, k)

    def perm(self, n: Any, k: Any = None) -> int:
        n = _integer_argument(n, "perm")
        k = n if k is None else _integer_argument(k, "perm")
        if n > MAX_COMB_N:
            raise Refused(f"perm() needs n of at most {MAX_COMB_N}")
        if 0 <= k <= n:
            self._too_large(_log10_factorial(n) - _log10_factorial(n - k))
        return math.perm(n, k)

    @staticmethod
    def round(x: Any, ndigits: Any = None) -> Any:
        x = _number(x, "round")
        if ndigits is None:
            return round(x)
        ndigits = _integer_argument(ndigits, "round")
        if abs(ndigits) > MAX_ROUND_DIGITS:
            raise Refused(f"round() needs at most {MAX_ROUND_DIGITS} digits")
        return round(x, ndigits)

    @staticmethod
    def log(x: Any, base: Any = None) -> float:
        return math.log(x) if base is None else math.log(x, base)


def _items(args: tuple[Any, ...], name: str) -> list[int | float]:
    """``f(1, 2, 3)`` and ``f([1, 2, 3])`` alike: the numbers given."""
    values = args[0] if len(args) == 1 and isinstance(args[0], list | tuple) else args
    if not values:
        raise Refused(f"{name}() needs at least one number")
    return [_number(v, name) for v in values]


def _aggregate(name: str, fn: Callable[[list[int | float]], Any]) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        return fn(_items(args, name))

    call.__name__ = name
    return call


def make_functions(max_digits: int = MAX_DIGITS) -> dict[str, Callable[..., Any]]:
    """The functions `calculate` offers, by name."""
    guarded = _Functions(max_digits)
    return {
        "abs": abs,
        "round": guarded.round,
        "min": _aggregate("min", min),
        "max": _aggregate("max", max),
        "sum": _aggregate("sum", sum),
        "mean": _aggregate("mean", statistics.mean),
        "median": _aggregate("median", statistics.median),
        "sqrt": math.sqrt,
        "cbrt": math.cbrt,
        "exp": math.exp,
        "log": guarded.log,
        "ln": math.log,
        "log10": math.log10,
        "log2": math.log2,
        "floor": math.floor,
        "ceil": math.ceil,
        "trunc": math.trunc,
        "pow": guarded.power,
        "factorial": guarded.factorial,
        "comb": guarded.comb,
        "perm": guarded.perm,
        "gcd": math.gcd,
        "lcm": math.lcm,
        "hypot": math.hypot,
        "sin": math.sin,
        "cos": math.cos,
        "tan": math.tan,
        "asin": math.asin,
        "acos": math.acos,
        "atan": math.atan,
        "atan2": math.atan2,
        "degrees": math.degrees,
        "radians": math.radians,
        "int": int,
        "float": float,
    }


FUNCTIONS = tuple(make_functions())  # the names offered, for documentation and hints


def _no_is(a: Any, b: Any) -> bool:
    raise Refused("'is' is not supported; compare numbers with ==")


def _operators(max_digits: int) -> dict[type, Callable[..., Any]]:
    guarded = _Functions(max_digits)

    def binary(symbol: str, fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        return lambda a, b: fn(_number(a, symbol), _number(b, symbol))

    def unary(symbol: str, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        return lambda a: fn(_number(a, symbol))

    return {
        ast.Add: binary("+", lambda a, b: a + b),
        ast.Sub: binary("-", lambda a, b: a - b),
        ast.Mult: binary("*", lambda a, b: a * b),
        ast.Div: binary("/", lambda a, b: a / b),
        ast.FloorDiv: binary("//", lambda a, b: a // b),
        ast.Mod: binary("%", lambda a, b: a % b),
        ast.Pow: guarded.power,
        ast.USub: unary("-", lambda a: -a),
        ast.UAdd: unary("+", lambda a: +a),
        ast.Not: lambda a: not a,
        ast.Eq: lambda a, b: a == b,
        ast.NotEq: lambda a, b: a != b,
        ast.Lt: lambda a, b: a < b,
        ast.LtE: lambda a, b: a <= b,
        ast.Gt: lambda a, b: a > b,
        ast.GtE: lambda a, b: a >= b,
        ast.In: lambda a, b: a in b,
        ast.NotIn: lambda a, b: a not in b,
        ast.Is: _no_is,
        ast.IsNot: _no_is,
    }


# ------------------------------------------------------------------ the evaluator


class SafeCalculator(SimpleEval):
    """simpleeval's evaluator narrowed to numbers (rules 2-4 of the module doc)."""

    def __init__(self, max_digits: int = MAX_DIGITS, deadline: float = math.inf) -> None:
        super().__init__(
            operators=_operators(max_digits),
            functions=make_functions(max_digits),
            names=dict(NAMES),
        )
        self.max_digits = max_digits
        self.deadline = deadline  # time.monotonic() after which evaluation stops
        self.nodes = {
            ast.Constant: self._eval_constant,
            ast.Name: self._eval_name,
            ast.UnaryOp: self._eval_unaryop,
            ast.BinOp: self._eval_binop,
            ast.BoolOp: self._eval_boolop,
            ast.Compare: self._eval_compare,
            ast.IfExp: self._eval_ifexp,
            ast.Call: self._eval_call,
            ast.List: self._eval_list,
            ast.Tuple: self._eval_tuple,
        }

    def evaluate(self, expression: str) -> Any:
        """Parse ``expression`` as one Python expression and evaluate it."""
        tree = ast.parse(expression, mode="eval")
        self.expr = expression
        return self._eval(tree.body)

    def _eval(self, node: ast.AST) -> Any:
        if time.monotonic() > self.deadline:
            raise _TimedOut
        handler = self.nodes.get(type(node))
        if handler is None:
            reason = _REFUSED_NODES.get(type(node), f"{type(node).__name__} is not allowed")
            raise Refused(reason)
        return check_number(handler(node), self.max_digits)

    def _eval_constant(self, node: ast.Constant) -> Any:  # type: ignore[override]
        value = node.value
        if isinstance(value, bool | int | float):
            return value
        if isinstance(value, complex):
            raise Refused("complex numbers are not supported")
        if isinstance(value, str | bytes):
            raise Refused("text is not supported, only numbers")
        raise Refused(f"{value!r} is not a number")

    def _eval_name(self, node: ast.Name) -> Any:
        if node.id in self.names:
            return self.names[node.id]
        if node.id in self.functions:
            raise Refused(f"{node.id} is a function: call it as {node.id}(...)")
        raise Refused(f"unknown name {node.id!r}")

    def _eval_call(self, node: ast.Call) -> Any:
        if not isinstance(node.func, ast.Name):
            if isinstance(node.func, ast.Attribute | ast.Lambda):
                raise Refused(_REFUSED_NODES[type(node.func)])
            raise Refused("only the calculator's functions can be called, by name")
        func = self.functions.get(node.func.id)
        if func is None:
            raise Refused(f"unknown function {node.func.id!r}; use one of: {', '.join(FUNCTIONS)}")
        args = [self._eval(a) for a in node.args]
        kwargs = {}
        for keyword in node.keywords:
            if keyword.arg is None:
                raise Refused(_REFUSED_NODES[ast.Starred])
            kwargs[keyword.arg] = self._eval(keyword.value)
        return func(*args, **kwargs)

    def _eval_list(self, node: ast.List) -> list[Any]:
        return [self._eval(x) for x in node.elts]

    def _eval_tuple(self, node: ast.Tuple) -> tuple[Any, ...]:
        return tuple(self._eval(x) for x in node.elts)


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


class CalculatorTool:
    """``calculate[expression]``: the safe calculator of the module doc, shared by all episodes."""

    name = "calculate"
    actions = frozenset({"calculate"})

    def __init__(
        self,
        *,
        max_chars: int = MAX_CHARS,
        max_digits: int = MAX_DIGITS,
        digits: int | None = DIGITS,
        timeout: float = TIMEOUT_S,
        workers: int = 2,
    ) -> None:
        self.max_chars = max_chars
        self.max_digits = max_digits
        self.digits = digits
        self.timeout = timeout
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="fireact-calculate")
        return self._pool

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
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

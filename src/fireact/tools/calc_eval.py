"""The evaluator of the ``calculate`` tool: guarded arithmetic on simpleeval's AST walker.

Owns `SafeCalculator` (the whitelist of nodes, names, operators and functions, and the deadline
checked at every node), `make_functions` / `FUNCTIONS`, `check_number` and the size guards that
keep every result a finite number of at most ``max_digits`` digits (the limits of
`fireact.tools.calculate`), and `Refused`, the error whose message is an observation's reason.
"""

from __future__ import annotations

import ast
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

from simpleeval import InvalidExpression, SimpleEval

MAX_DIGITS = 300  # largest integer: this many decimal digits (about the range of a float)
MAX_ROUND_DIGITS = 400  # |ndigits| of round(x, ndigits): round(5, -10**9) would build 10**10**9
MAX_DEPTH = 100  # deepest expression tree: the same answer whatever the recursion limit
MAX_COMB_N = 100_000  # n of comb/perm: sized with lgamma, exact enough below this

NAMES: dict[str, Any] = {"pi": math.pi, "e": math.e, "tau": math.tau, "True": True, "False": False}

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


def check_depth(root: ast.AST, limit: int = MAX_DEPTH) -> None:
    """Refuse a tree deeper than `limit` (walked without recursion), so that how deep an
    expression may be does not depend on how deep the caller's stack already is."""
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            raise Refused("too deeply nested")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


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
        check_depth(tree.body)
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

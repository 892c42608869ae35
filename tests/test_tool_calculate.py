"""The calculator tool: exact observations for valid, malformed and hostile expressions, its
limits (size, numbers, time) and how its observations reach the agent."""

from __future__ import annotations

import asyncio
import time

import pytest

from fireact.agent.episode import Agent, new_episode, run_episode, use_tool
from fireact.agent.parse import parse_action
from fireact.llm.scripted import ScriptedLLM
from fireact.tasks.base import Example, Task, score_qa
from fireact.tools.base import Tool, ToolState
from fireact.tools.calculate import CalculatorTool, evaluate

EXAMPLE = Example("q1", "What is 6 times 7?", "42")


def calc(expression: str, **options) -> str:
    async def go() -> str:
        tool = CalculatorTool(**options)
        try:
            return await tool("calculate", expression, ToolState(episode_id="q1"))
        finally:
            await tool.aclose()

    return asyncio.run(go())


VALID = [
    ("2 + 3", "5"),
    ("2 * (3 + 4)", "14"),
    ("  7 - 10  ", "-3"),
    ("10 / 4", "2.5"),
    ("10 // 4", "2"),
    ("7 % 3", "1"),
    ("0.1 + 0.2", "0.3"),  # 15 significant digits: the float noise goes
    ("2 / 3", "0.666666666666667"),
    ("1 / 3 * 3", "1"),
    ("sqrt(16)", "4"),  # integral floats as integers
    ("1e20", "1e+20"),
    ("0.00001", "1e-05"),
    ("123456789 * 1000", "123456789000"),  # no thousands separators
    ("2 ** 10", "1024"),
    ("2^10", "1024"),
    ("2^3 + 1", "9"),  # ^ is ** with its precedence
    ("-2 ** 2", "-4"),
    ("abs(-3.5)", "3.5"),
    ("round(3.14159, 2)", "3.14"),
    ("round(1.2345, ndigits=3)", "1.234"),
    ("round(2.5)", "2"),
    ("min(4, 2, 8)", "2"),
    ("max([1, 5, 3])", "5"),
    ("sum([1, 2, 3.5])", "6.5"),
    ("sum(1, 2, 3)", "6"),
    ("mean([1, 2, 4])", "2.33333333333333"),
    ("median([3, 1, 2])", "2"),
    ("log(100, 10)", "2"),
    ("log(e)", "1"),
    ("log10(1000)", "3"),
    ("exp(1)", "2.71828182845905"),
    ("floor(2.7) + ceil(2.1)", "5"),
    ("pow(2, 10)", "1024"),
    ("pow(3, 200, 7)", "2"),
    ("factorial(20)", "2432902008176640000"),
    ("comb(10, 3)", "120"),
    ("sin(pi / 2)", "1"),
    ("degrees(pi)", "180"),
    ("15%", "0.15"),
    ("200 * 15%", "30"),
    ("15% of 200", "30"),
    ("(10 + 5)% of 200", "30"),
    ("12 × 3 ÷ 4 − 1", "8"),
    ("3 > 2", "True"),
    ("1 if 2 > 3 else 0", "0"),
    ("[1 + 1, 2.5]", "[2, 2.5]"),
    ("1_000_000 + 1", "1000001"),
    ("2 ** 996", str(2**996)),  # 300 digits: the largest integers allowed
    ("10 ** 299", "1" + "0" * 299),
]


@pytest.mark.parametrize(("expression", "expected"), VALID)
def test_valid_expressions(expression, expected):
    assert calc(expression) == expected


MALFORMED = [
    ("", "Invalid expression: empty expression; write e.g. calculate[2 * (3 + 4)]"),
    ("2 +", "Invalid expression: invalid syntax"),
    ("(1 + 2", "Invalid expression: '(' was never closed"),
    ("1 +* 2", "Invalid expression: invalid syntax"),
    ("x = 1", "Invalid expression: invalid syntax"),
    ("1; 2", "Invalid expression: invalid syntax"),
    ("1/0", "Invalid expression: division by zero"),
    ("sqrt(-1)", "Invalid expression: math domain error"),
    ("log(0)", "Invalid expression: math domain error"),
    ("sqrt(1, 2)", "Invalid expression: math.sqrt() takes exactly one argument (2 given)"),
    ("sum([])", "Invalid expression: sum() needs at least one number"),
    ("foo", "Invalid expression: unknown name 'foo'"),
    ("max", "Invalid expression: max is a function: call it as max(...)"),
    (
        "1,234 + 1",
        "Invalid expression: a comma outside a function call makes a tuple; write numbers "
        "without thousands separators (1234567, not 1,234,567)",
    ),
    ("1 & 2", "Invalid expression: operator & is not supported"),
    ("1 << 4", "Invalid expression: operator << is not supported"),
    ("1 is 1", "Invalid expression: 'is' is not supported; compare numbers with =="),
    ("1j", "Invalid expression: complex numbers are not supported"),
    ("(-8) ** (1/3)", "Invalid expression: complex numbers are not supported"),
    ("None", "Invalid expression: None is not a number"),
]


@pytest.mark.parametrize(("expression", "expected"), MALFORMED)
def test_malformed_expressions_are_observations(expression, expected):
    assert calc(expression) == expected


FUNCTIONS_HINT = (
    "use one of: abs, round, min, max, sum, mean, median, sqrt, cbrt, exp, log, ln, log10, "
    "log2, floor, ceil, trunc, pow, factorial, comb, perm, gcd, lcm, hypot, sin, cos, tan, asin, "
    "acos, atan, atan2, degrees, radians, int, float"
)
TOO_LARGE = "Invalid expression: number too large (more than 300 digits)"
HOSTILE = [
    ("__import__('os')", f"Invalid expression: unknown function '__import__'; {FUNCTIONS_HINT}"),
    ("open('/etc/passwd')", f"Invalid expression: unknown function 'open'; {FUNCTIONS_HINT}"),
    ("(1).__class__", "Invalid expression: attribute access is not allowed"),
    (
        "().__class__.__bases__[0].__subclasses__()",
        "Invalid expression: attribute access is not allowed",
    ),
    ("(1).real", "Invalid expression: attribute access is not allowed"),
    ("[1][0]", "Invalid expression: indexing is not allowed"),
    ("lambda: 1", "Invalid expression: lambda is not allowed"),
    ("(lambda x: x)(1)", "Invalid expression: lambda is not allowed"),
    ("[x for x in [1, 2]]", "Invalid expression: comprehensions are not allowed"),
    ("'a' * 10**9", "Invalid expression: text is not supported, only numbers"),
    ("f'{1}'", "Invalid expression: text is not supported, only numbers"),
    ("max(*[1, 2])", "Invalid expression: * unpacking is not allowed"),
    ("(y := 1)", "Invalid expression: assignment is not allowed"),
    ("{1: 2}", "Invalid expression: dicts are not supported"),
    ("[1] * 10**9", "Invalid expression: * needs numbers, not list"),
    ("9**9**9", TOO_LARGE),  # sized before it is computed
    ("2 ** 1000", TOO_LARGE),
    ("10 ** 300", TOO_LARGE),
    ("pow(10, 10**6)", TOO_LARGE),
    ("factorial(10**6)", TOO_LARGE),
    ("comb(100000, 50000)", TOO_LARGE),
    ("10**299 * 10", TOO_LARGE),
    ("int(1e308)", TOO_LARGE),
    ("round(5, -10**9)", "Invalid expression: round() needs at most 400 digits"),
    ("1e308 * 10", "Invalid expression: number too large"),
    ("10.0 ** 400", "Invalid expression: number too large"),
    ("exp(1000)", "Invalid expression: number too large"),
    ("x" * 100_000, "Invalid expression: too long (100000 characters; at most 1000)"),
    ("-" * 990 + "1", "Invalid expression: too deeply nested"),
    ("(" * 300 + "1" + ")" * 300, "Invalid expression: too many nested parentheses"),
]


@pytest.mark.parametrize(("expression", "expected"), HOSTILE)
def test_hostile_expressions_are_refused(expression, expected):
    assert calc(expression) == expected


def test_size_limits_are_options():
    assert calc("1 + 1", max_chars=3) == "Invalid expression: too long (5 characters; at most 3)"
    assert calc("10 ** 20", max_digits=10) == (
        "Invalid expression: number too large (more than 10 digits)"
    )
    assert calc("2 ** 1000", max_digits=400) == str(2**1000)


def test_digits_sets_the_precision_of_floats():
    assert calc("1890.4 + 2210.8 + 1139.5") == "5240.7"
    assert calc("1890.4 + 2210.8 + 1139.5", digits=None) == "5240.700000000001"  # Python's repr
    assert calc("(1015.3 - 842.6) / 842.6 * 100", digits=None) == "20.49608355091383"
    assert calc("sqrt(16)", digits=None) == "4.0"
    assert calc("2 / 3", digits=4) == "0.6667"
    assert calc("6 * 7", digits=None) == "42"


def test_tool_shape_and_unknown_action():
    tool = CalculatorTool()
    assert isinstance(tool, Tool)
    assert (tool.name, tool.actions) == ("calculate", frozenset({"calculate"}))
    with pytest.raises(ValueError, match=r"not search\[\.\.\.\]"):
        asyncio.run(tool("search", "1", ToolState()))


def test_slow_evaluation_times_out_without_blocking_the_event_loop():
    # Raised limits let an expression take seconds of many short steps (4,000 powers of
    # ~42,000 digits); the default limits make any expression evaluate in microseconds.
    slow = "sum([" + "7**50000," * 4000 + "])"

    async def go() -> tuple[str, float, int, str]:
        tool = CalculatorTool(max_chars=50_000, max_digits=100_000, timeout=0.3, workers=1)
        ticks: list[float] = []

        async def ticker() -> None:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        ticking = asyncio.create_task(ticker())
        await asyncio.sleep(0)  # the ticker's first tick
        started = time.monotonic()
        out = await tool("calculate", slow, ToolState())
        finished = time.monotonic()
        ticking.cancel()
        # one worker: this answers only because the timed-out evaluation stopped by itself
        after = await tool("calculate", "6 * 7", ToolState())
        await tool.aclose()
        during = sum(started < t < finished for t in ticks)
        return out, finished - started, during, after

    out, elapsed, ticks_during, after = asyncio.run(go())
    assert out == "Invalid expression: evaluation timed out after 0.3 s"
    assert 0.3 <= elapsed < 1.5
    # evaluated on the loop, the ticker could not tick until the call returned (0 ticks); off
    # the loop it ticks every ~10 ms (about 20 here; 2 on a machine with both cores busy)
    assert ticks_during >= 1
    assert after == "42"


def test_evaluate_checks_its_deadline():
    assert evaluate("1 + 1", timeout=0.0) == "Invalid expression: evaluation timed out after 0 s"


# ------------------------------------------------------------------ as the agent sees it


def make_agent(llm, tool) -> Agent:
    task = Task("hotpotqa", "dev", [EXAMPLE], score_qa, "hotpotqa")
    return Agent(llm, tool, task, head="")


def test_observations_through_use_tool():
    agent = make_agent(ScriptedLLM({}), CalculatorTool())

    async def go() -> list[str]:
        ep = new_episode(EXAMPLE, agent)
        actions = ["calculate[6 * 7]", "calculate[__import__('os')]", "calculate[9**9**9]"]
        try:
            return [await use_tool(ep, agent, a, parse_action(a)) for a in actions]
        finally:
            await agent.tool.aclose()

    assert asyncio.run(go()) == [
        "42",
        f"Invalid expression: unknown function '__import__'; {FUNCTIONS_HINT}",
        TOO_LARGE,
    ]
    assert (agent.tool_ok, agent.tool_failed) == (3, 0)  # refusals are answers, not tool errors


def test_react_episode_with_the_calculator():
    llm = ScriptedLLM(
        {
            "q1": [
                " I multiply.\nAction: calculate[6 * 7]",
                " A typo.\nAction: calculate[6 * ]",
                " It is 42.\nAction: finish[42]",
            ]
        }
    )
    agent = make_agent(llm, CalculatorTool())
    ep = asyncio.run(run_episode(EXAMPLE, agent))
    assert ep.trajectory == (
        "Thought: I multiply.\nAction: calculate[6 * 7]\nObservation: 42\n"
        "Thought: A typo.\nAction: calculate[6 * ]\n"
        "Observation: Invalid expression: invalid syntax\n"
        "Thought: It is 42.\nAction: finish[42]\nObservation: Episode finished, reward = True\n"
    )
    assert [c["observation"] for c in ep.tool_calls] == ["42", "Invalid expression: invalid syntax"]
    asyncio.run(agent.tool.aclose())


def test_nesting_is_limited_the_same_whatever_the_recursion_limit():
    import sys

    before = sys.getrecursionlimit()
    sys.setrecursionlimit(100_000)  # as some libraries set it: the answer must not change
    try:
        assert evaluate("-" * 990 + "1") == "Invalid expression: too deeply nested"
        assert evaluate("-" * 99 + "1") == "-1"  # 100 levels: the deepest accepted
        assert evaluate("-" * 100 + "1") == "Invalid expression: too deeply nested"
    finally:
        sys.setrecursionlimit(before)

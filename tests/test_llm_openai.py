"""The openai backend against a real local OpenAI-compatible server (tests/helpers/openai_server.py)."""

from __future__ import annotations

import asyncio
import time

import pytest

from fireact.errors import FireactError
from fireact.llm import LLMError, load_llm
from fireact.llm.openai_backend import (
    HEDGE_HEADER,
    OpenAILLM,
    is_completion_model,
    quantile,
    resolve_api,
)
from fireact.llm.prices import Price, cost_usd, lookup_price, price_table
from tests.helpers.httpserver import Reply, serve
from tests.helpers.openai_server import OpenAIServer, ScriptRequest

STOP = ["\nObservation:"]
SECRET = "sk-test-SECRET-123"


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def run(coro):
    return asyncio.run(coro)


async def complete_and_close(llm: OpenAILLM, prompt, **kwargs):
    try:
        return await llm.complete(prompt, **kwargs)
    finally:
        await llm.aclose()


async def check_and_close(llm: OpenAILLM) -> list[str]:
    try:
        return await llm.check()
    finally:
        await llm.aclose()


def test_a_text_prompt_to_a_chat_model_is_one_user_message_on_the_chat_api() -> None:
    reply = "Thought: it is Paris\nAction: finish[Paris]\nObservation: Episode finished"
    prompt = "Question: capital of France?\nThought:"
    with OpenAIServer({"France": [reply]}) as server:
        llm = OpenAILLM("gpt-4", base_url=server.base_url)
        out = run(complete_and_close(llm, prompt, stop=STOP))
        body = server.requests[0].body
    assert server.requests[0].path == "/v1/chat/completions"
    assert body["messages"] == [{"role": "user", "content": prompt}]
    assert body["stop"] == STOP and body["max_tokens"] == 256 and body["temperature"] == 0.0
    assert out.text == "Thought: it is Paris\nAction: finish[Paris]"
    assert (out.prompt_tokens, out.completion_tokens) == (5, 6)
    assert out.cost_usd == pytest.approx((5 * 30 + 6 * 60) / 1e6, rel=1e-12)
    assert out.finish_reason == "stop" and out.latency_s > 0


@pytest.mark.parametrize(
    ("model", "api", "path"),
    [
        ("gpt-3.5-turbo-instruct", "auto", "/v1/completions"),
        ("davinci-002", "auto", "/v1/completions"),
        ("tiny", "completions", "/v1/completions"),
        ("tiny", "auto", "/v1/chat/completions"),
        ("tiny", "chat", "/v1/chat/completions"),
    ],
)
def test_which_api_a_text_prompt_goes_to(model: str, api: str, path: str) -> None:
    models = ("gpt-3.5-turbo-instruct", "davinci-002", "tiny")
    with OpenAIServer({"France": ["Paris"]}, models=models) as server:
        llm = OpenAILLM(model, base_url=server.base_url, api=api)  # type: ignore[arg-type]
        out = run(complete_and_close(llm, "capital of France?"))
        request = server.requests[0]
    assert (request.path, out.text) == (path, "Paris")
    if path == "/v1/completions":
        assert request.body["prompt"] == "capital of France?"


@pytest.mark.parametrize(
    ("api", "fmt", "expected"),
    [
        ("auto", "fewshot", "chat"),
        ("auto", "chat", "chat"),
        ("auto", "alpaca", "completions"),
        ("chat", "alpaca", "chat"),
        ("completions", "fewshot", "completions"),
    ],
)
def test_resolve_api_for_gpt4(api: str, fmt: str, expected: str) -> None:
    assert resolve_api(api, "gpt-4", fmt) == expected


def test_known_completion_models_and_their_fine_tunes() -> None:
    assert is_completion_model("gpt-3.5-turbo-instruct")
    assert is_completion_model("gpt-3.5-turbo-instruct-0914")
    assert is_completion_model("ft:davinci-002:my-org::abc123")
    assert not is_completion_model("gpt-3.5-turbo")
    assert not is_completion_model("ft:gpt-3.5-turbo-0613:org::id")


def test_chat_api_for_message_lists() -> None:
    messages = [
        {"role": "user", "content": "Who wrote Hamlet?"},
        {"role": "assistant", "content": "Thought: search\nAction: search[Hamlet]"},
        {"role": "user", "content": "Observation: a play by Shakespeare"},
    ]
    with OpenAIServer({"Hamlet": ["Action: finish[Shakespeare]"]}) as server:
        llm = OpenAILLM("gpt-4o-mini", base_url=server.base_url)
        out = run(complete_and_close(llm, messages, max_tokens=50, temperature=0.5))
        body = server.requests[0].body
    assert server.requests[0].path == "/v1/chat/completions"
    assert body["messages"] == messages and body["temperature"] == 0.5
    assert out.text == "Action: finish[Shakespeare]"
    assert (out.prompt_tokens, out.completion_tokens) == (12, 2)
    assert out.cost_usd == pytest.approx((12 * 0.15 + 2 * 0.60) / 1e6, rel=1e-12)


def test_more_than_four_stop_strings_are_applied_locally() -> None:
    stops = ["<a>", "<b>", "<c>", "<d>", "<e>"]
    with OpenAIServer({"q": ["one two <e> three <a>"]}) as server:
        llm = OpenAILLM("gpt-4", base_url=server.base_url)
        out = run(complete_and_close(llm, "q", stop=stops))
        assert server.requests[0].body["stop"] == stops[:4]
    assert out.text == "one two " and out.finish_reason == "stop"


def test_max_tokens_gives_length_finish() -> None:
    with OpenAIServer({"q": ["a b c d e f"]}) as server:
        llm = OpenAILLM("gpt-4", base_url=server.base_url)
        out = run(complete_and_close(llm, "q", max_tokens=3))
    assert out.text == "a b c" and out.finish_reason == "length" and out.completion_tokens == 3


def script(episodes: int, steps: int) -> dict[str, list[str]]:
    return {
        f"<q{i}>": [f"Thought: step {s} of q{i}\nAction: search[{i}-{s}]" for s in range(steps)]
        for i in range(episodes)
    }


async def run_episodes(llm: OpenAILLM, episodes: int, steps: int) -> list[list[str]]:
    async def episode(i: int) -> list[str]:
        prompt, texts = f"Question <q{i}>\n", []
        for _ in range(steps):
            out = await llm.complete(prompt, stop=STOP, max_tokens=64)
            texts.append(out.text)
            prompt += out.text + "\nObservation: ok\n"
        return texts

    try:
        return await asyncio.gather(*(episode(i) for i in range(episodes)))
    finally:
        await llm.aclose()


def test_retries_through_injected_faults_give_the_fault_free_outputs() -> None:
    episodes, steps = 30, 3
    with OpenAIServer(script(episodes, steps)) as clean:
        expected = run(run_episodes(OpenAILLM("gpt-4", base_url=clean.base_url), episodes, steps))
    with OpenAIServer(script(episodes, steps), fault_rate=0.2, seed=7, hang_s=1.0) as faulty:
        llm = OpenAILLM(
            "gpt-4", base_url=faulty.base_url, timeout=0.3, retry_base_delay=0.01, max_retries=10
        )
        got = run(run_episodes(llm, episodes, steps))
    assert got == expected
    assert set(faulty.faults) == {"429", "500", "503", "timeout", "drop"}
    assert llm.retries == sum(faulty.faults.values())
    assert sum(r.outcome == "ok" for r in faulty.requests) == episodes * steps


def test_retry_after_is_honoured() -> None:
    with OpenAIServer({"q": ["fine"]}, fault_schedule=["429"], retry_after=0.4) as server:
        llm = OpenAILLM("gpt-4", base_url=server.base_url, retry_base_delay=0.001)
        out = run(complete_and_close(llm, "q"))
        first, second = server.requests
    assert out.text == "fine" and llm.retries == 1
    assert first.outcome == "429" and second.outcome == "ok"
    assert second.arrived - first.arrived >= 0.4


def test_backoff_grows_exponentially_with_jitter() -> None:
    llm = OpenAILLM("gpt-4", base_url="http://127.0.0.1:1/v1", retry_base_delay=1.0, seed=3)
    delays = [llm.backoff_s(n) for n in range(6)]
    for n, delay in enumerate(delays):
        assert 0.5 * 2**n <= delay <= 2**n
    assert llm.backoff_s(20) <= llm.retry_max_delay


def test_gives_up_after_max_retries_without_leaking_the_key() -> None:
    with OpenAIServer({"q": ["x"]}, fault_rate=1.0, fault_kinds=("500",)) as server:
        llm = OpenAILLM("gpt-4", base_url=server.base_url, api_key=SECRET, max_retries=2)
        llm.retry_base_delay = 0.001
        with pytest.raises(LLMError, match="after 2 retries: HTTP 500") as info:
            run(complete_and_close(llm, "q"))
        assert len(server.requests) == 3
    assert SECRET not in str(info.value)


def test_concurrency_bound_is_respected() -> None:
    outputs = {f"<k{i}>": ["ok"] for i in range(24)}
    with OpenAIServer(outputs, latency=0.05) as server:
        llm = OpenAILLM("gpt-4", base_url=server.base_url, max_concurrency=4)

        async def fire() -> list[str]:
            try:
                outs = await asyncio.gather(*(llm.complete(f"<k{i}>") for i in range(24)))
                return [o.text for o in outs]
            finally:
                await llm.aclose()

        assert run(fire()) == ["ok"] * 24
    assert server.max_in_flight == 4


def test_missing_key_is_an_error_for_remote_servers_only() -> None:
    with pytest.raises(FireactError, match="OPENAI_API_KEY is not set"):
        OpenAILLM("gpt-4")
    with OpenAIServer({"q": ["local"]}) as server:
        llm = OpenAILLM("gpt-4", base_url=server.base_url)  # a local server: dummy key
        assert run(complete_and_close(llm, "q")).text == "local"


def test_wrong_key_is_a_clear_error_without_the_key() -> None:
    with OpenAIServer({"q": ["x"]}, api_key="right-key") as server:
        llm = OpenAILLM("gpt-4", base_url=server.base_url, api_key=SECRET)
        with pytest.raises(FireactError, match="rejected the API key") as info:
            run(complete_and_close(llm, "q"))
        assert len(server.requests) == 1  # not retried
    assert SECRET not in str(info.value)


def test_check_reports_an_unreachable_server() -> None:
    llm = OpenAILLM("gpt-4", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(
        FireactError, match=r"cannot reach http://127.0.0.1:9/v1: connection refused"
    ):
        run(check_and_close(llm))


def test_an_unlisted_model_is_a_warning_at_check_and_an_error_at_the_first_call() -> None:
    with OpenAIServer() as server:
        assert "gpt-4" in run(check_and_close(OpenAILLM("gpt-4", base_url=server.base_url)))
        llm = OpenAILLM("gpt-5-turbo", base_url=server.base_url)
        run(check_and_close(llm))
        assert len(llm.warnings) == 1
        assert "does not list 'gpt-5-turbo' (it lists: gpt-4" in llm.warnings[0]
        with pytest.raises(FireactError, match="'gpt-5-turbo' was not found"):
            run(complete_and_close(llm, "q"))


@pytest.mark.parametrize(
    ("reply", "warning"),
    [
        (Reply(404, "Not Found", "text/plain"), "/v1/models answered HTTP 404; cannot check"),
        (
            Reply(200, "<html><body>Welcome to the gateway</body></html>", "text/html"),
            "/v1/models did not answer a model list ('<html><body>Welcome to the gateway",
        ),
        (Reply(200, {"object": "list"}), "/v1/models did not answer a model list"),
        (Reply(200, ""), "/v1/models did not answer a model list (an empty body)"),
    ],
    ids=["404", "html", "no-data", "empty"],
)
def test_an_odd_model_list_is_one_warning_and_never_blocks(reply: Reply, warning: str) -> None:
    with serve(lambda path, query: reply) as gateway:
        llm = OpenAILLM("gpt-4", base_url=gateway.url + "/v1")
        assert run(check_and_close(llm)) == []
    assert len(llm.warnings) == 1 and warning in llm.warnings[0]
    assert "going on" in llm.warnings[0]


def test_a_404_on_the_first_call_suggests_the_missing_v1() -> None:
    with OpenAIServer({"q": "x"}) as server:
        llm = OpenAILLM("gpt-4", base_url=server.base_url.removesuffix("/v1"))
        with pytest.raises(FireactError) as info:
            run(complete_and_close(llm, "q"))
    message = str(info.value)
    assert "answered 404 Not Found for /chat/completions" in message
    assert "usually serve under .../v1" in message


def test_a_chat_model_refused_on_completions_says_which_api_to_use() -> None:
    with OpenAIServer({"q": "x"}) as server:
        llm = OpenAILLM("gpt-4", base_url=server.base_url, api="completions")
        with pytest.raises(
            FireactError, match=r"serves 'gpt-4' as a chat model only .* --api chat"
        ):
            run(complete_and_close(llm, "q"))
        assert len(server.requests) == 1  # a refusal is not retried


def test_a_completion_model_refused_on_chat_says_which_api_to_use() -> None:
    models = ("gpt-3.5-turbo-instruct",)
    with OpenAIServer({"q": "x"}, models=models) as server:
        llm = OpenAILLM("gpt-3.5-turbo-instruct", base_url=server.base_url, api="chat")
        with pytest.raises(FireactError, match=r"completion model only .* --api completions"):
            run(complete_and_close(llm, "q"))


def test_one_backend_object_works_across_event_loops() -> None:
    with OpenAIServer({"q": "same"}) as server:
        llm = OpenAILLM("gpt-4", base_url=server.base_url)
        assert run(complete_and_close(llm, "q")).text == "same"
        assert run(complete_and_close(llm, "q")).text == "same"


def test_load_llm_builds_the_openai_backend() -> None:
    with OpenAIServer({"q": ["spec"]}) as server:
        llm = load_llm("openai:gpt-3.5-turbo", base_url=server.base_url, max_concurrency=2)
        assert llm.name == "openai:gpt-3.5-turbo"
        assert run(complete_and_close(llm, "q")).text == "spec"
    with pytest.raises(FireactError, match="unknown model backend 'claude'"):
        load_llm("claude:opus")
    with pytest.raises(FireactError, match="bad model spec"):
        load_llm("gpt-4")
    with pytest.raises(FireactError, match="unexpected keyword argument 'colour'"):
        load_llm("openai:gpt-4", base_url="http://127.0.0.1:1/v1", colour="red")


def test_price_table_lookups() -> None:
    table = price_table()
    assert lookup_price("gpt-4-0613", table) == Price(30.0, 60.0)
    assert lookup_price("gpt-4o-mini-2024-07-18", table) == Price(0.15, 0.60)
    ft = "ft:gpt-3.5-turbo-0613:my-org::8abc"
    assert lookup_price(ft, table) == table["ft:gpt-3.5-turbo"]
    assert cost_usd("llama-2-7b", 1000, 1000, table) == 0.0
    assert cost_usd("gpt-3.5-turbo-0613", 1_000_000, 1_000_000, table) == pytest.approx(3.5)


def test_user_prices_from_a_dict_and_a_file(tmp_path) -> None:
    table = price_table({"my-model": {"input": 1, "output": 2}, "gpt-4": [10, 20]})
    assert table["my-model"] == Price(1.0, 2.0) and table["gpt-4"] == Price(10.0, 20.0)
    path = tmp_path / "prices.yaml"
    path.write_text("vllm-llama:\n  input: 0.1\n  output: 0.2\n")
    assert price_table(path)["vllm-llama"] == Price(0.1, 0.2)
    with pytest.raises(FireactError, match="price of 'bad'"):
        price_table({"bad": 3})
    with OpenAIServer({"q": ["a b"]}, models=("vllm-llama",)) as server:
        llm = OpenAILLM("vllm-llama", base_url=server.base_url, prices=path)
        out = run(complete_and_close(llm, "q"))
    assert out.cost_usd == pytest.approx((1 * 0.1 + 2 * 0.2) / 1e6)


def test_unknown_models_cost_nothing_but_count_tokens() -> None:
    with OpenAIServer({"q": ["a b c"]}, models=("local-model",)) as server:
        out = run(complete_and_close(OpenAILLM("local-model", base_url=server.base_url), "q x"))
    assert (out.prompt_tokens, out.completion_tokens, out.cost_usd) == (2, 3, 0.0)


def test_server_latency_is_lognormal_when_asked() -> None:
    with OpenAIServer({"q": "x"}, latency=(0.02, 0.5), seed=1) as server:
        llm = OpenAILLM("gpt-4", base_url=server.base_url)
        start = time.perf_counter()
        out = run(complete_and_close(llm, "q"))
    assert out.text == "x" and time.perf_counter() - start > 0.005


# -- hedged requests ------------------------------------------------------------------------

MESSAGES = [{"role": "user", "content": "q"}]


class Latency:
    """Per-request server latency by arrival order (`slow`: index -> seconds, else `fast_s`);
    it also notes which requests carried the hedge header."""

    def __init__(self, slow: dict[int, float], fast_s: float = 0.01) -> None:
        self.slow, self.fast_s = slow, fast_s
        self.hedge_flags: dict[int, bool] = {}

    def __call__(self, request: ScriptRequest) -> float:
        self.hedge_flags[request.index] = request.headers.get(HEDGE_HEADER) == "1"
        return self.slow.get(request.index, self.fast_s)


async def timed_complete(llm: OpenAILLM, prompt, **kwargs):
    start = time.perf_counter()
    try:
        out = await llm.complete(prompt, **kwargs)
        return out, time.perf_counter() - start
    finally:
        await llm.aclose()


@pytest.mark.parametrize("prompt", ["q", MESSAGES], ids=["completions", "chat"])
def test_a_slow_first_attempt_is_beaten_by_its_hedge(prompt) -> None:
    latency = Latency({0: 2.0})
    with OpenAIServer({"q": "a b c"}, latency=latency) as server:
        llm = OpenAILLM("gpt-4", base_url=server.base_url, hedge_after_s=0.1)
        out, wall = run(timed_complete(llm, prompt))
        assert len(server.requests) == 2
    assert out.text == "a b c" and out.completion_tokens == 3  # the winner's usage only
    assert (llm.hedges, llm.hedge_wins, llm.retries) == (1, 1, 0)
    assert latency.hedge_flags == {0: False, 1: True}
    assert 0.1 <= wall < 1.0  # well below the slow attempt's 2 s


def test_no_hedging_when_responses_are_fast() -> None:
    with OpenAIServer({"q": "fast"}, latency=0.01) as server:
        llm = OpenAILLM("gpt-4", base_url=server.base_url, hedge_after_s=0.5)

        async def ten() -> list[str]:
            try:
                return [(await llm.complete("q")).text for _ in range(10)]
            finally:
                await llm.aclose()

        assert run(ten()) == ["fast"] * 10
        assert len(server.requests) == 10
    assert (llm.hedges, llm.hedge_wins) == (0, 0)


def test_hedging_is_off_by_default() -> None:
    with OpenAIServer({"q": "slow"}, latency=Latency({0: 0.3})) as server:
        llm = OpenAILLM("gpt-4", base_url=server.base_url)
        out, wall = run(timed_complete(llm, "q"))
        assert len(server.requests) == 1
    assert llm.hedge_after_s is None and llm.hedge_threshold_s() is None
    assert out.text == "slow" and wall >= 0.3 and llm.hedges == 0


def test_a_failing_first_attempt_waits_for_its_hedge_without_a_retry() -> None:
    # the original fails (500 after 0.2 s) while its hedge (sent at 0.05 s) is still running
    latency = Latency({0: 0.2, 1: 0.4})
    with OpenAIServer({"q": "saved"}, latency=latency, fault_schedule=["500"]) as server:
        llm = OpenAILLM("gpt-4", base_url=server.base_url, hedge_after_s=0.05)
        out, _ = run(timed_complete(llm, "q"))
        outcomes = [r.outcome for r in server.requests]
    assert out.text == "saved" and outcomes == ["500", "ok"]
    assert (llm.hedges, llm.hedge_wins, llm.retries) == (1, 1, 0)


def test_a_failing_hedge_leaves_the_original_to_answer() -> None:
    latency = Latency({0: 0.3})  # the hedge (fast) draws the scheduled 500 first
    with OpenAIServer({"q": "original"}, latency=latency, fault_schedule=["500"]) as server:
        llm = OpenAILLM("gpt-4", base_url=server.base_url, hedge_after_s=0.05)
        out, _ = run(timed_complete(llm, "q"))
        outcomes = sorted(r.outcome for r in server.requests)
    assert out.text == "original" and outcomes == ["500", "ok"]
    assert (llm.hedges, llm.hedge_wins, llm.retries) == (1, 0, 0)


def test_when_both_fail_the_retry_logic_takes_over() -> None:
    latency = Latency({0: 0.2, 1: 0.05})  # the retry (request 2) is fast: no hedge
    with OpenAIServer({"q": "third"}, latency=latency, fault_schedule=["500", "503"]) as server:
        llm = OpenAILLM(
            "gpt-4", base_url=server.base_url, hedge_after_s=0.1, retry_base_delay=0.001
        )
        out, _ = run(timed_complete(llm, "q"))
        outcomes = [r.outcome for r in server.requests]
    assert out.text == "third" and outcomes == ["503", "500", "ok"]
    assert (llm.hedges, llm.hedge_wins, llm.retries) == (1, 0, 1)


def test_hedges_stay_in_their_originals_slots() -> None:
    def latency(request: ScriptRequest) -> float:  # every original is slow, every hedge fast
        return 0.02 if request.headers.get(HEDGE_HEADER) else 0.5

    outputs = {f"<k{i}>": "ok" for i in range(6)}
    with OpenAIServer(outputs, latency=latency) as server:
        llm = OpenAILLM("gpt-4", base_url=server.base_url, max_concurrency=2, hedge_after_s=0.05)

        async def fire() -> list[str]:
            try:
                return [o.text for o in await asyncio.gather(*(llm.complete(k) for k in outputs))]
            finally:
                await llm.aclose()

        assert run(fire()) == ["ok"] * 6
        assert 2 < server.max_in_flight <= 4  # max_concurrency + at most one hedge per slot
    assert llm.hedges == llm.hedge_wins == 6


def stepwise(request: ScriptRequest) -> str:
    """Deterministic output from the prompt alone (a duplicate cannot shift later answers)."""
    question = request.text.split(">", 1)[0]
    step = request.text.count("Observation: ok")
    return f"Thought: step {step} of {question}>\nAction: search[{step}]"


def test_outputs_are_identical_with_hedging_under_injected_faults() -> None:
    episodes, steps = 20, 3
    with OpenAIServer(stepwise, latency=(0.02, 1.0), seed=3) as clean:
        expected = run(run_episodes(OpenAILLM("gpt-4", base_url=clean.base_url), episodes, steps))
    with OpenAIServer(stepwise, latency=(0.02, 1.0), fault_rate=0.2, seed=7, hang_s=1.0) as faulty:
        llm = OpenAILLM(
            "gpt-4",
            base_url=faulty.base_url,
            timeout=0.3,
            retry_base_delay=0.01,
            max_retries=10,
            hedge_after_s=0.04,
        )
        got = run(run_episodes(llm, episodes, steps))
    assert got == expected
    assert len({t for texts in got for t in texts}) == episodes * steps
    assert sum(faulty.faults.values()) > 0 and llm.hedges > 0 and llm.hedge_wins > 0


def test_auto_hedging_starts_after_enough_latencies() -> None:
    llm = OpenAILLM("gpt-4", base_url="http://127.0.0.1:1/v1", hedge_after_s="auto")
    for i in range(49):
        llm._record_latency(0.01 * (i + 1))
    assert llm.hedge_threshold_s() is None  # too few samples: no hedging yet
    llm._record_latency(0.5)
    assert llm.hedge_threshold_s() == pytest.approx(0.45)  # p90 of 0.01 .. 0.49, 0.5
    assert quantile([3.0, 1.0, 2.0], 0.5) == 2.0 and quantile([1.0], 0.9) == 1.0


def test_auto_hedging_end_to_end() -> None:
    latency = Latency({60: 2.0}, fast_s=0.005)
    with OpenAIServer({"q": "x"}, latency=latency) as server:
        llm = OpenAILLM("gpt-4", base_url=server.base_url, hedge_after_s="auto")

        async def go() -> tuple[int, int, float | None, float]:
            try:
                while len(server.requests) < 60:  # warm-up: fast answers feed the p90
                    await llm.complete("q")
                before = (llm.hedges, llm.hedge_wins, llm.hedge_threshold_s())
                start = time.perf_counter()
                await llm.complete("q")  # request 60: slow, so hedged
                return *before, time.perf_counter() - start
            finally:
                await llm.aclose()

        hedges, wins, threshold, wall = run(go())
    assert threshold is not None and 0 < threshold < 0.5
    assert (llm.hedges - hedges, llm.hedge_wins - wins) == (1, 1) and wall < 1.0


@pytest.mark.parametrize("bad", [0, -1.0, "fast", True])
def test_bad_hedge_after_values_are_refused(bad) -> None:
    with pytest.raises(FireactError, match="hedge_after_s must be"):
        OpenAILLM("gpt-4", base_url="http://127.0.0.1:1/v1", hedge_after_s=bad)
    llm = load_llm("openai:gpt-4", base_url="http://127.0.0.1:1/v1", hedge_after_s=1)
    assert llm.hedge_after_s == 1.0  # type: ignore[attr-defined]

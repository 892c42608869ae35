"""The test fakes enforce the real services' contracts: raw HTTP against tests/helpers/openai_server.py
(OpenAI) and tests/helpers/fake_services.py (SerpAPI, MediaWiki), one test per rule breaking it and one
showing a valid request passing, then fireact's real search tools end to end on the fakes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from fireact.errors import FireactError
from fireact.tools.base import ToolState
from fireact.tools.serpapi import SerpAPISearch, build_params
from fireact.tools.wikipedia import WikipediaSearch, page_params, search_params
from tests.helpers.fake_services import (
    SERPAPI_PATH,
    WIKI_PATH,
    FakeSerpAPI,
    FakeWikipedia,
    saved_page,
    saved_titles,
)
from tests.helpers.httpserver import Server, fixture
from tests.helpers.openai_server import OpenAIServer, endpoints_for

MODELS = (
    "gpt-4",
    "gpt-4o-mini",
    "gpt-3.5-turbo-instruct",
    "davinci-002",
    "ft:gpt-3.5-turbo-0125:acme::abc123",
    "tiny",
)
ANSWER = "Thought: it is Paris\nAction: finish[Paris]"
CHAT_BODY = {"model": "gpt-4", "messages": [{"role": "user", "content": "capital of France?"}]}
COMPLETION_BODY = {"model": "davinci-002", "prompt": "Question: capital of France?\nThought:"}


def openai_error(message: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {
        "error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    }


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer(default=ANSWER, models=MODELS) as running:
        yield running


def post(server: OpenAIServer, path: str, body: Any) -> httpx.Response:
    return httpx.post(f"{server.base_url}{path}", json=body, timeout=10)


def chat(server: OpenAIServer, **fields: Any) -> httpx.Response:
    return post(server, "/chat/completions", {**CHAT_BODY, **fields})


def complete(server: OpenAIServer, **fields: Any) -> httpx.Response:
    return post(server, "/completions", {**COMPLETION_BODY, **fields})


def assert_ok(reply: httpx.Response) -> None:
    assert reply.status_code == 200, reply.text
    choice = reply.json()["choices"][0]
    assert choice.get("text", choice.get("message", {}).get("content")) == ANSWER


# -- OpenAI: which endpoint serves which model ------------------------------------------------


def test_endpoints_for_follows_openai_model_families() -> None:
    chat_only, completions_only, both = {"chat"}, {"completions"}, {"chat", "completions"}
    assert {
        model: set(endpoints_for(model))
        for model in (
            "gpt-4",
            "gpt-4-0613",
            "gpt-4-turbo",
            "gpt-4o",
            "gpt-4o-mini-2024-07-18",
            "gpt-3.5-turbo",
            "gpt-3.5-turbo-0125",
            "gpt-3.5-turbo-16k",
            "ft:gpt-3.5-turbo-0613:my-org::8abc",
            "ft:gpt-4o-mini-2024-07-18:acme:fireact:x1",
            "gpt-3.5-turbo-instruct",
            "gpt-3.5-turbo-instruct-0914",
            "davinci-002",
            "babbage-002",
            "ft:davinci-002:my-org::9xyz",
            "tiny",
            "my-model",
            "/models/llama-2-7b-fireact",
            "meta-llama/Llama-2-7b-hf",
        )
    } == {
        "gpt-4": chat_only,
        "gpt-4-0613": chat_only,
        "gpt-4-turbo": chat_only,
        "gpt-4o": chat_only,
        "gpt-4o-mini-2024-07-18": chat_only,
        "gpt-3.5-turbo": chat_only,
        "gpt-3.5-turbo-0125": chat_only,
        "gpt-3.5-turbo-16k": chat_only,
        "ft:gpt-3.5-turbo-0613:my-org::8abc": chat_only,
        "ft:gpt-4o-mini-2024-07-18:acme:fireact:x1": chat_only,
        "gpt-3.5-turbo-instruct": completions_only,
        "gpt-3.5-turbo-instruct-0914": completions_only,
        "davinci-002": completions_only,
        "babbage-002": completions_only,
        "ft:davinci-002:my-org::9xyz": completions_only,
        "tiny": both,
        "my-model": both,
        "/models/llama-2-7b-fireact": both,
        "meta-llama/Llama-2-7b-hf": both,
    }


def test_chat_model_is_refused_on_completions(server: OpenAIServer) -> None:
    for model in ("gpt-4", "gpt-4o-mini", "ft:gpt-3.5-turbo-0125:acme::abc123"):
        reply = complete(server, model=model)
        assert reply.status_code == 404
        assert reply.json() == openai_error(
            "This is a chat model and not supported in the v1/completions endpoint. "
            "Did you mean to use v1/chat/completions?",
            param="model",
        )


def test_chat_model_is_served_on_chat(server: OpenAIServer) -> None:
    for model in ("gpt-4", "gpt-4o-mini", "ft:gpt-3.5-turbo-0125:acme::abc123"):
        assert_ok(chat(server, model=model))


def test_completion_model_is_refused_on_chat(server: OpenAIServer) -> None:
    for model in ("gpt-3.5-turbo-instruct", "davinci-002"):
        reply = chat(server, model=model)
        assert reply.status_code == 404
        assert reply.json() == openai_error(
            "This is not a chat model and thus not supported in the v1/chat/completions "
            "endpoint. Did you mean to use v1/completions?",
            param="model",
        )


def test_completion_model_is_served_on_completions(server: OpenAIServer) -> None:
    for model in ("gpt-3.5-turbo-instruct", "davinci-002"):
        assert_ok(complete(server, model=model))


def test_other_models_are_served_on_both_endpoints_like_vllm(server: OpenAIServer) -> None:
    assert_ok(chat(server, model="tiny"))
    assert_ok(complete(server, model="tiny"))


def test_endpoints_override_restricts_a_model() -> None:
    with OpenAIServer(default=ANSWER, models=("tiny",), endpoints={"tiny": ["chat"]}) as only_chat:
        reply = complete(only_chat, model="tiny")
        assert reply.status_code == 404
        assert reply.json()["error"]["message"].startswith("This is a chat model")
        assert_ok(chat(only_chat, model="tiny"))
    with pytest.raises(ValueError, match="endpoints of 'tiny' must be among"):
        OpenAIServer(endpoints={"tiny": ["embeddings"]})


def test_unknown_model_is_not_found(server: OpenAIServer) -> None:
    reply = chat(server, model="gpt-5-turbo")
    assert reply.status_code == 404
    assert reply.json() == openai_error(
        "The model `gpt-5-turbo` does not exist or you do not have access to it.",
        code="model_not_found",
    )


def test_listed_models_are_found(server: OpenAIServer) -> None:
    assert_ok(chat(server, model="gpt-4"))


def test_model_list_is_openais_shape(server: OpenAIServer) -> None:
    reply = httpx.get(f"{server.base_url}/models")
    assert reply.status_code == 200
    assert reply.json() == {
        "object": "list",
        "data": [
            {"id": "gpt-4", "object": "model", "created": 1686935002, "owned_by": "openai"},
            {"id": "gpt-4o-mini", "object": "model", "created": 1686935002, "owned_by": "openai"},
            {
                "id": "gpt-3.5-turbo-instruct",
                "object": "model",
                "created": 1686935002,
                "owned_by": "openai",
            },
            {"id": "davinci-002", "object": "model", "created": 1686935002, "owned_by": "openai"},
            {
                "id": "ft:gpt-3.5-turbo-0125:acme::abc123",
                "object": "model",
                "created": 1686935002,
                "owned_by": "acme",
            },
            {"id": "tiny", "object": "model", "created": 1686935002, "owned_by": "system"},
        ],
    }


# -- OpenAI: the request body ------------------------------------------------------------------


def test_five_stop_strings_are_too_many(server: OpenAIServer) -> None:
    reply = chat(server, stop=["a", "b", "c", "d", "e"])
    assert reply.status_code == 400
    assert reply.json() == openai_error(
        "Invalid 'stop': array too long. Expected an array with maximum length 4, but got an "
        "array with length 5 instead.",
        param="stop",
        code="array_above_max_length",
    )


def test_four_stop_strings_or_one_string_pass(server: OpenAIServer) -> None:
    assert_ok(chat(server, stop=["\nObservation:", "<a>", "<b>", "<c>"]))
    assert_ok(complete(server, stop="\nObservation:"))


def test_unrecognized_argument_is_refused(server: OpenAIServer) -> None:
    reply = complete(server, messages=[{"role": "user", "content": "hi"}])
    assert reply.status_code == 400
    assert reply.json() == openai_error("Unrecognized request argument supplied: messages")
    reply = chat(server, best_of=2)  # a completions-only parameter
    assert reply.status_code == 400
    assert reply.json() == openai_error("Unrecognized request argument supplied: best_of")


def test_documented_arguments_and_nulls_pass(server: OpenAIServer) -> None:
    assert_ok(
        chat(
            server,
            temperature=0.7,
            top_p=1,
            n=1,
            max_tokens=1000,
            presence_penalty=0,
            frequency_penalty=0,
            logit_bias={},
            logprobs=False,
            user="fireact",
            seed=233,
            stop=None,
            response_format=None,
            tools=None,
        )
    )
    assert_ok(complete(server, suffix=None, echo=False, best_of=1, logprobs=None, stop=None))


def test_wrong_types_are_refused(server: OpenAIServer) -> None:
    cases = [
        (chat(server, max_tokens="3"), "max_tokens", "expected an integer, but got a string"),
        (chat(server, temperature="hot"), "temperature", "expected a decimal, but got a string"),
        (chat(server, top_p=True), "top_p", "expected a decimal, but got a boolean"),
        (complete(server, n=1.5), "n", "expected an integer, but got a decimal"),
        (chat(server, model=4), "model", "expected a string, but got an integer"),
        (chat(server, messages="hi"), "messages", "expected an array, but got a string"),
        (
            chat(server, stop=7),
            "stop",
            "expected one of a string or array of strings, but got an integer",
        ),
        (chat(server, stop=["x", 1]), "stop[1]", "expected a string, but got an integer"),
        (
            complete(server, prompt={"text": "q"}),
            "prompt",
            "expected one of a string, array of strings, array of integers, or array of arrays "
            "of integers, but got an object",
        ),
        (
            chat(server, messages=[{"role": "user", "content": 5}]),
            "messages[0].content",
            "expected one of a string or array of objects, but got an integer",
        ),
        (chat(server, messages=["hi"]), "messages[0]", "expected an object, but got a string"),
    ]
    for reply, param, expected in cases:
        assert reply.status_code == 400, param
        assert reply.json() == openai_error(
            f"Invalid type for '{param}': {expected} instead.", param=param, code="invalid_type"
        )


def test_right_types_pass(server: OpenAIServer) -> None:
    assert_ok(chat(server, max_tokens=30, temperature=0, top_p=0.5, n=1))
    assert_ok(complete(server, prompt=["Question: capital of France?\nThought:"]))
    assert_ok(complete(server, prompt=[1820, 374]))  # token ids
    parts = [{"type": "text", "text": "capital of France?"}]
    assert_ok(chat(server, messages=[{"role": "user", "content": parts}]))


def test_out_of_range_values_are_refused(server: OpenAIServer) -> None:
    cases = [
        (chat(server, max_tokens=0), "max_tokens", "integer below minimum value", ">= 1", "0"),
        (chat(server, n=0), "n", "integer below minimum value", ">= 1", "0"),
        (complete(server, logprobs=6), "logprobs", "integer above maximum value", "<= 5", "6"),
        (
            chat(server, temperature=2.5),
            "temperature",
            "decimal above maximum value",
            "<= 2",
            "2.5",
        ),
        (chat(server, temperature=-1), "temperature", "decimal below minimum value", ">= 0", "-1"),
        (complete(server, top_p=1.1), "top_p", "decimal above maximum value", "<= 1", "1.1"),
        (
            chat(server, presence_penalty=3),
            "presence_penalty",
            "decimal above maximum value",
            "<= 2",
            "3",
        ),
    ]
    codes = {
        "integer below minimum value": "integer_below_min_value",
        "integer above maximum value": "integer_above_max_value",
        "decimal below minimum value": "decimal_below_min_value",
        "decimal above maximum value": "decimal_above_max_value",
    }
    for reply, param, what, bound, got in cases:
        assert reply.status_code == 400, param
        assert reply.json() == openai_error(
            f"Invalid '{param}': {what}. Expected a value {bound}, but got {got} instead.",
            param=param,
            code=codes[what],
        )


def test_values_at_the_edges_of_their_range_pass(server: OpenAIServer) -> None:
    assert_ok(chat(server, max_tokens=1000, temperature=2, top_p=0, presence_penalty=-2))
    assert_ok(complete(server, temperature=0, top_p=1, logprobs=5))


def test_empty_and_malformed_messages_are_refused(server: OpenAIServer) -> None:
    reply = chat(server, messages=[])
    assert reply.status_code == 400
    assert reply.json() == openai_error("[] is too short - 'messages'")
    reply = chat(server, messages=[{"role": "bot", "content": "hi"}])
    assert reply.status_code == 400
    assert reply.json() == openai_error(
        "Invalid value: 'bot'. Supported values are: 'system', 'assistant', 'user', 'function', "
        "'tool', and 'developer'.",
        param="messages[0].role",
        code="invalid_value",
    )
    reply = chat(server, messages=[{"content": "hi"}])
    assert reply.status_code == 400
    assert reply.json() == openai_error(
        "Missing required parameter: 'messages[0].role'.",
        param="messages[0].role",
        code="missing_required_parameter",
    )


def test_a_whole_react_conversation_passes(server: OpenAIServer) -> None:
    messages = [
        {"role": "system", "content": "Solve the question with search and finish."},
        {"role": "user", "content": "Question: capital of France?"},
        {"role": "assistant", "content": "Thought: search it\nAction: search[France]"},
        {"role": "user", "content": "Observation: France's capital is Paris."},
        {"role": "developer", "content": "Answer briefly."},
    ]
    assert_ok(chat(server, messages=messages))


def test_missing_required_parameters_are_refused(server: OpenAIServer) -> None:
    reply = post(server, "/chat/completions", {"messages": CHAT_BODY["messages"]})
    assert reply.status_code == 400
    assert reply.json() == openai_error("you must provide a model parameter")
    reply = post(server, "/chat/completions", {"model": "gpt-4"})
    assert reply.status_code == 400
    assert reply.json() == openai_error(
        "Missing required parameter: 'messages'.",
        param="messages",
        code="missing_required_parameter",
    )
    reply = post(server, "/completions", {"model": "davinci-002"})
    assert reply.status_code == 400
    assert reply.json() == openai_error(
        "Missing required parameter: 'prompt'.", param="prompt", code="missing_required_parameter"
    )


def test_required_parameters_alone_pass(server: OpenAIServer) -> None:
    assert_ok(post(server, "/chat/completions", CHAT_BODY))
    assert_ok(post(server, "/completions", COMPLETION_BODY))


def test_a_body_that_is_not_json_is_refused(server: OpenAIServer) -> None:
    for body in (b"model=gpt-4&messages=hi", b"[1, 2]"):
        reply = httpx.post(
            f"{server.base_url}/chat/completions",
            content=body,
            headers={"Content-Type": "application/json"},
        )
        assert reply.status_code == 400
        assert reply.json() == openai_error(
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but "
            "what was sent was not valid JSON. If you have trouble figuring out how to fix this, "
            "please contact us through our help center at help.openai.com.)"
        )


def test_a_json_body_passes(server: OpenAIServer) -> None:
    reply = httpx.post(
        f"{server.base_url}/chat/completions",
        content=json.dumps(CHAT_BODY).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert_ok(reply)


def test_missing_or_wrong_key_is_refused() -> None:
    with OpenAIServer(default=ANSWER, api_key="sk-right") as keyed:
        reply = httpx.post(f"{keyed.base_url}/chat/completions", json=CHAT_BODY)
        assert reply.status_code == 401
        assert reply.json()["error"]["message"].startswith("You didn't provide an API key.")
        wrong = {"Authorization": "Bearer sk-wrong"}
        reply = httpx.post(f"{keyed.base_url}/chat/completions", json=CHAT_BODY, headers=wrong)
        assert reply.status_code == 401
        assert reply.json() == openai_error(
            "Incorrect API key provided. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            code="invalid_api_key",
        )
        right = {"Authorization": "Bearer sk-right"}
        assert_ok(httpx.post(f"{keyed.base_url}/chat/completions", json=CHAT_BODY, headers=right))


def test_rejected_requests_are_recorded_and_spend_no_fault() -> None:
    with OpenAIServer(default=ANSWER, fault_schedule=["500"]) as fresh:
        assert complete(fresh, model="gpt-4").status_code == 404
        assert chat(fresh, stop=list("abcde")).status_code == 400
        assert chat(fresh).status_code == 500  # the first valid request draws the fault
        assert_ok(chat(fresh))
    assert [(r.path, r.outcome, r.status) for r in fresh.requests] == [
        ("/v1/completions", "error", 404),
        ("/v1/chat/completions", "error", 400),
        ("/v1/chat/completions", "500", 500),
        ("/v1/chat/completions", "ok", 200),
    ]
    assert fresh.requests[0].reason == (
        "This is a chat model and not supported in the v1/completions endpoint. "
        "Did you mean to use v1/chat/completions?"
    )
    assert fresh.requests[0].body == {**COMPLETION_BODY, "model": "gpt-4"}
    assert fresh.requests[1].reason.startswith("Invalid 'stop': array too long.")


def test_the_official_sdk_gets_openais_errors_and_answers() -> None:
    with OpenAIServer(default=ANSWER) as sdk_server:
        client = openai.OpenAI(base_url=sdk_server.base_url, api_key="EMPTY", max_retries=0)
        with pytest.raises(openai.NotFoundError, match="This is a chat model"):
            client.completions.create(model="gpt-4", prompt="q", stop=None)
        with pytest.raises(openai.BadRequestError, match="array too long"):
            client.chat.completions.create(
                model="gpt-4", messages=CHAT_BODY["messages"], stop=list("abcde")
            )
        reply = client.chat.completions.create(
            model="gpt-4", messages=CHAT_BODY["messages"], stop=None, max_tokens=1000
        )
        client.close()
    assert reply.choices[0].message.content == ANSWER


# -- SerpAPI -----------------------------------------------------------------------------------

KEY = "serp-key-0123"
ANSWER_PAGE = fixture("serpapi_answer.json")
SERP_PARAMS = build_params("capital of france", KEY)


@pytest.fixture(scope="module")
def serp() -> Iterator[Server]:
    fake = FakeSerpAPI.from_fixtures(
        KEY,
        "serpapi_answer.json",
        "serpapi_snippet.json",
        "serpapi_highlighted.json",
        "serpapi_organic.json",
        "serpapi_no_results.json",
    )
    with fake.serve() as running:
        yield running


def serp_get(server: Server, params: dict[str, str]) -> httpx.Response:
    return httpx.get(server.url + SERPAPI_PATH, params=params)


def without(params: dict[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in params.items() if k != name}


def test_serpapi_refuses_a_missing_or_wrong_key(serp: Server) -> None:
    invalid = {
        "error": "Invalid API key. Your API key should be here: https://serpapi.com/manage-api-key"
    }
    for params in (without(SERP_PARAMS, "api_key"), {**SERP_PARAMS, "api_key": "wrong"}):
        reply = serp_get(serp, params)
        assert (reply.status_code, reply.json()) == (401, invalid)
    assert invalid == fixture("serpapi_invalid_key.json")


def test_serpapi_refuses_a_missing_query(serp: Server) -> None:
    for params in (without(SERP_PARAMS, "q"), {**SERP_PARAMS, "q": "  "}):
        reply = serp_get(serp, params)
        assert (reply.status_code, reply.json()) == (400, {"error": "Missing query `q` parameter."})


def test_serpapi_refuses_other_engines(serp: Server) -> None:
    reply = serp_get(serp, {**SERP_PARAMS, "engine": "bing"})
    assert (reply.status_code, reply.json()) == (
        400,
        {"error": "Unsupported `bing` search engine."},
    )


def test_serpapi_answers_fireacts_request_as_saved(serp: Server) -> None:
    reply = serp_get(serp, SERP_PARAMS)
    assert reply.status_code == 200
    page = reply.json()
    assert page["search_metadata"]["status"] == "Success"
    assert page["search_parameters"] == ANSWER_PAGE["search_parameters"]
    assert page["search_information"] == ANSWER_PAGE["search_information"]
    assert page["answer_box"] == ANSWER_PAGE["answer_box"]
    assert page["organic_results"] == ANSWER_PAGE["organic_results"]
    assert "error" not in page


def test_serpapi_no_results_is_a_success_with_an_error_field(serp: Server) -> None:
    reply = serp_get(serp, {**SERP_PARAMS, "q": "zzqqxxnothing"})
    assert reply.status_code == 200
    page = reply.json()
    saved = fixture("serpapi_no_results.json")
    assert page["error"] == "Google hasn't returned any results for this query."
    assert page["search_metadata"]["status"] == "Success"
    assert page["search_parameters"] == saved["search_parameters"]
    assert page["search_information"] == saved["search_information"]
    assert "organic_results" not in page and "answer_box" not in page


def test_serpapi_account_runs_out_of_searches() -> None:
    with FakeSerpAPI(KEY, {"capital of france": ANSWER_PAGE}, searches_left=1).serve() as quota:
        assert serp_get(quota, SERP_PARAMS).status_code == 200
        reply = serp_get(quota, SERP_PARAMS)
    assert (reply.status_code, reply.json()) == (
        429,
        {"error": "Your account has run out of searches."},
    )


# -- MediaWiki Action API ----------------------------------------------------------------------

FILM, FILM_TEXT = saved_page("wiki_page_redirect.json")
MERCURY, MERCURY_TEXT = saved_page("wiki_page_disambiguation.json")
DOCREF = (
    "See https://en.wikipedia.org/w/api.php for API usage. Subscribe to the "
    "mediawiki-api-announce mailing list at &lt;https://lists.wikimedia.org/postorius/lists/"
    "mediawiki-api-announce.lists.wikimedia.org/&gt; for notice of API deprecations and "
    "breaking changes."
)
SERVEDBY = "mw-api-ext.eqiad.main-7c9d5f8b46-x2x7q"
UA = {"User-Agent": "fireact-tests/1.0 (https://example.org/fireact; tests@example.org)"}


def fake_wiki(lag_s: int = 0) -> FakeWikipedia:
    return FakeWikipedia(
        {FILM: FILM_TEXT, MERCURY: MERCURY_TEXT},
        redirects={"Adam Clayton Powell (documentary)": FILM},
        disambiguation=[MERCURY],
        searches={
            "Adam Clayton Powell": saved_titles("wiki_search_adam.json"),
            "Mercury": saved_titles("wiki_search_mercury.json"),
        },
        lag_s=lag_s,
    )


@pytest.fixture(scope="module")
def wiki() -> Iterator[Server]:
    with fake_wiki().serve() as running:
        yield running


def wiki_get(server: Server, params: dict[str, str]) -> httpx.Response:
    return httpx.get(server.url + WIKI_PATH, params=params, headers=UA)


def test_wiki_without_format_json_answers_html(wiki: Server) -> None:
    reply = wiki_get(wiki, without(page_params(FILM), "format"))
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "text/html; charset=utf-8"
    assert "This is the HTML representation of the JSON format." in reply.text
    with pytest.raises(json.JSONDecodeError):
        reply.json()


def test_wiki_with_format_json_answers_json(wiki: Server) -> None:
    reply = wiki_get(wiki, page_params(FILM))
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json; charset=utf-8"
    assert reply.json() == {
        "batchcomplete": True,
        "query": {"pages": [{"pageid": 1, "ns": 0, "title": FILM, "extract": FILM_TEXT}]},
    }


def test_wiki_unknown_action_is_badvalue(wiki: Server) -> None:
    for version, docref_key in (("1", "*"), ("2", "docref")):
        reply = wiki_get(wiki, {"action": "serach", "format": "json", "formatversion": version})
        assert reply.status_code == 200  # the Action API reports errors in the body
        assert reply.headers["MediaWiki-API-Error"] == "badvalue"
        assert reply.json() == {
            "error": {
                "code": "badvalue",
                "info": 'Unrecognized value for parameter "action": serach.',
                docref_key: DOCREF,
            },
            "servedby": SERVEDBY,
        }


def test_wiki_action_query_passes(wiki: Server) -> None:
    reply = wiki_get(wiki, {"action": "query", "format": "json", "formatversion": "2"})
    assert (reply.status_code, reply.json()) == (200, {"batchcomplete": True})


def test_wiki_maxlag_error_as_the_real_api() -> None:
    with fake_wiki(lag_s=7).serve() as lagged:
        reply = wiki_get(lagged, {**page_params(FILM), "maxlag": "5"})
        assert reply.status_code == 200
        assert reply.headers["Retry-After"] == "5"
        assert reply.headers["X-Database-Lag"] == "7"
        assert reply.headers["MediaWiki-API-Error"] == "maxlag"
        assert reply.json() == {
            "error": {
                "code": "maxlag",
                "info": "Waiting for 10.64.16.7: 7 seconds lagged.",
                "host": "10.64.16.7",
                "lag": 7,
                "type": "db",
                "docref": DOCREF,
            },
            "servedby": SERVEDBY,
        }
        assert reply.json()["error"].keys() >= fixture("wiki_error_maxlag.json")["error"].keys()
        calm = wiki_get(lagged, {**page_params(FILM), "maxlag": "10"})
        assert calm.json()["query"]["pages"][0]["title"] == FILM


def test_wiki_missing_and_invalid_pages_in_both_formatversions(wiki: Server) -> None:
    v2 = wiki_get(wiki, {**page_params("Zzqx"), "titles": "Zzqx|[x]"}).json()
    assert v2 == {
        "batchcomplete": True,
        "query": {
            "pages": [
                {"ns": 0, "title": "Zzqx", "missing": True},
                {
                    "title": "[x]",
                    "invalidreason": 'The requested page title contains invalid characters: "[".',
                    "invalid": True,
                },
            ]
        },
    }
    assert v2["query"]["pages"][1] == fixture("wiki_page_invalid.json")["query"]["pages"][0]
    v1 = wiki_get(wiki, {**page_params("Adam Clayton Powell"), "formatversion": "1"}).json()
    assert v1 == fixture("wiki_page_missing_v1.json")


def test_wiki_existing_page_in_formatversion_1(wiki: Server) -> None:
    v1 = wiki_get(wiki, {**page_params(FILM), "formatversion": "1"}).json()
    assert v1 == {
        "batchcomplete": "",
        "query": {"pages": {"1": {"pageid": 1, "ns": 0, "title": FILM, "extract": FILM_TEXT}}},
    }


def test_wiki_redirects_and_normalisation(wiki: Server) -> None:
    followed = wiki_get(wiki, page_params("adam_Clayton Powell (documentary)")).json()
    assert followed["query"]["normalized"] == [
        {
            "fromencoded": False,
            "from": "adam_Clayton Powell (documentary)",
            "to": "Adam Clayton Powell (documentary)",
        }
    ]
    assert followed["query"]["redirects"] == [
        {"from": "Adam Clayton Powell (documentary)", "to": FILM}
    ]
    assert followed["query"]["pages"][0]["extract"] == FILM_TEXT
    not_followed = wiki_get(
        wiki, without(page_params("Adam Clayton Powell (documentary)"), "redirects")
    ).json()
    assert not_followed["query"]["pages"] == [
        {
            "pageid": 3,
            "ns": 0,
            "title": "Adam Clayton Powell (documentary)",
            "redirect": True,
            "extract": "",
        }
    ]


def test_wiki_disambiguation_page_has_its_pageprop(wiki: Server) -> None:
    (page,) = wiki_get(wiki, page_params(MERCURY)).json()["query"]["pages"]
    assert page["pageprops"] == {"disambiguation": ""}
    assert page == fixture("wiki_page_disambiguation.json")["query"]["pages"][0] | {"pageid": 2}


def test_wiki_search_needs_srsearch(wiki: Server) -> None:
    reply = wiki_get(wiki, without(search_params("Mercury"), "srsearch"))
    assert reply.headers["MediaWiki-API-Error"] == "missingparam"
    assert reply.json() == {
        "error": {
            "code": "missingparam",
            "info": 'The "srsearch" parameter must be set.',
            "docref": DOCREF,
        },
        "servedby": SERVEDBY,
    }
    bad_limit = wiki_get(wiki, {**search_params("Mercury"), "srlimit": "five"}).json()
    assert bad_limit["error"]["code"] == "badinteger"
    assert bad_limit["error"]["info"] == 'Invalid value "five" for integer parameter "srlimit".'


def test_wiki_search_answers_ranked_titles(wiki: Server) -> None:
    titles = saved_titles("wiki_search_mercury.json")
    assert wiki_get(wiki, search_params("Mercury")).json() == {
        "batchcomplete": True,
        "query": {
            "searchinfo": {"totalhits": 5},
            "search": [{"ns": 0, "title": t, "pageid": i} for i, t in enumerate(titles, 9)],
        },
    }
    first_two = wiki_get(wiki, {**search_params("Mercury"), "srlimit": "2"}).json()
    assert [hit["title"] for hit in first_two["query"]["search"]] == titles[:2]
    assert first_two["continue"] == {"sroffset": 2, "continue": "-||"}
    last = wiki_get(wiki, {**search_params("Mercury"), "sroffset": "4"}).json()
    assert [hit["title"] for hit in last["query"]["search"]] == titles[4:]
    assert "continue" not in last
    # without a fixed ranking: the pages whose title and text hold the query's words
    ranked = wiki_get(wiki, search_params("powell film kilberg")).json()
    assert ranked["query"]["search"] == [{"ns": 0, "title": FILM, "pageid": 1}]
    assert wiki_get(wiki, search_params("Zzqx")).json() == fixture("wiki_search_empty.json")


def test_wiki_warns_about_unknown_parameters_and_values(wiki: Server) -> None:
    reply = wiki_get(wiki, {**page_params(FILM), "prop": "extracts|pagepops", "exsentences5": "1"})
    assert reply.json()["warnings"] == {
        "main": {"warnings": "Unrecognized parameter: exsentences5."},
        "query": {"warnings": 'Unrecognized value for parameter "prop": pagepops.'},
    }


def test_fireacts_wiki_requests_draw_no_warnings(wiki: Server) -> None:
    for params in (page_params(FILM), page_params(MERCURY), search_params("Mercury")):
        body = wiki_get(wiki, params).json()
        assert "warnings" not in body and "error" not in body


def test_wiki_refuses_a_request_without_user_agent(wiki: Server) -> None:
    reply = httpx.get(wiki.url + WIKI_PATH, params=page_params(FILM), headers={"User-Agent": ""})
    assert reply.status_code == 403
    assert reply.text.startswith("Please set a user-agent and respect our robot policy")
    assert wiki_get(wiki, page_params(FILM)).status_code == 200


# -- fireact's real tools against the fakes ----------------------------------------------------


def run_tool(tool: SerpAPISearch | WikipediaSearch, actions: list[tuple[str, str]]) -> list[str]:
    state = ToolState(episode_id="e1")

    async def go() -> list[str]:
        try:
            return [await tool(action, argument, state) for action, argument in actions]
        finally:
            await tool.aclose()

    return asyncio.run(go())


def test_serpapi_tool_end_to_end(serp: Server) -> None:
    tool = SerpAPISearch(api_key=KEY, base_url=serp.url + SERPAPI_PATH, timeout=5)
    queries = ["capital of france", "Who wrote Hamlet", "tallest mountain", "obscure query", "zz"]
    assert run_tool(tool, [("search", q) for q in queries]) == [
        "Paris",
        "Hamlet is a tragedy written by William Shakespeare sometime between 1599 and 1601.",
        "Mount Everest",
        "First organic snippet.",
        "None",
    ]


def test_serpapi_tool_with_a_wrong_key_is_a_user_error(serp: Server) -> None:
    tool = SerpAPISearch(api_key="not-the-key", base_url=serp.url + SERPAPI_PATH, timeout=5)
    with pytest.raises(FireactError, match="SerpAPI rejected the API key .*Invalid API key"):
        run_tool(tool, [("search", "capital of france")])


def test_wikipedia_tool_end_to_end(wiki: Server) -> None:
    tool = WikipediaSearch(base_url=wiki.url + WIKI_PATH, timeout=5)
    observations = run_tool(
        tool,
        [
            ("search", "Adam Clayton Powell (documentary)"),
            ("lookup", "Kilberg"),
            ("search", "adam clayton powell (FILM)"),
            ("search", "Adam Clayton Powell"),
            ("search", "Mercury"),
        ],
    )
    assert observations == [
        "Adam Clayton Powell is a 1989 American documentary film directed by Richard Kilberg. "
        "The film is about the rise and fall of influential African-American politician Adam "
        "Clayton Powell Jr. It was later aired as part of the PBS series The American Experience. "
        "The film was nominated for the Academy Award for Best Documentary Feature. "
        "Kilberg spent three years gathering archival footage.",
        "(Result 1 / 3) Adam Clayton Powell is a 1989 American documentary film directed by "
        "Richard Kilberg.",
        observations[0],  # the search box's case-insensitive jump
        "Could not find [Adam Clayton Powell]. Similar: ['Adam Clayton Powell III', "
        "'Seventh Avenue (Manhattan)', 'Adam Clayton Powell Jr. State Office Building', "
        "'Isabel Washington Powell', 'Adam Powell'].",
        "Could not find [Mercury]. Similar: ['Mercury (planet)', 'Mercury (element)', "
        "'Freddie Mercury', 'Mercury (mythology)', 'Mercury program'].",
    ]

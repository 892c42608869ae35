"""The README's GPT-4 teacher example against servers that enforce the real contracts.

The OpenAI-compatible fake serves "gpt-4" on the chat API only (OpenAI's rule) and the SerpAPI
fake refuses requests without the right key, as the real services do. The run must complete,
and every model request must be what FireAct sends: the few-shot prompt as ONE user message,
temperature 0.7, max_tokens 1000, stop "\\nObservation:".
"""

from __future__ import annotations

import json

from fireact.agent.prompts import fewshot_prompt
from fireact.tasks import load_task
from tests.helpers.clirun import run_cli
from tests.helpers.fake_services import SERPAPI_PATH, FakeSerpAPI
from tests.helpers.openai_server import OpenAIServer, ScriptRequest

SERPAPI_KEY = "serp-test-key"


def teacher(request: ScriptRequest) -> str:
    """Search once, then answer: what a GPT-4 teacher writes after "Thought:"."""
    if request.text.rstrip().endswith("Observation: None\nThought:"):
        return " The search gave nothing; I will answer from memory.\nAction: finish[unknown]"
    return " I need to search the question.\nAction: search[the question]"


def test_readme_gpt4_teacher_example_follows_fireact_and_the_api_contract(tmp_path):
    serp = FakeSerpAPI(SERPAPI_KEY)
    with OpenAIServer(teacher) as server, serp.serve() as search:
        result = run_cli(
            "run", "--task", "hotpotqa", "--split", "dev", "--random", "--start", "0",
            "--end", "5", "--method", "react", "--model", "openai:gpt-4", "--tool", "serpapi",
            "--concurrency", "64", "--out", str(tmp_path / "gpt4-react"),
            env={
                "OPENAI_BASE_URL": server.base_url,
                "OPENAI_API_KEY": "sk-test",
                "SERPAPI_API_KEY": SERPAPI_KEY,
                "SERPAPI_BASE_URL": search.url + SERPAPI_PATH,
            },
        )  # fmt: skip
        requests = [r for r in server.requests if r.path != "/v1/models"]
        searches = len(search.requests)
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "gpt4-react" / "summary.json").read_text())
    assert (summary["n"], summary["finished"], summary["errors"]) == (5, 5, 0)
    assert searches == 5 and len(requests) == 10
    head = fewshot_prompt("react", "hotpotqa")
    questions = {ex.question for ex in load_task("hotpotqa", "dev").select(0, 5, shuffle=True)}
    for request in requests:
        assert request.path == "/v1/chat/completions" and request.outcome == "ok"
        body = request.body
        assert (body["model"], body["temperature"], body["max_tokens"]) == ("gpt-4", 0.7, 1000)
        assert body["stop"] == ["\nObservation:"]
        (message,) = body["messages"]
        assert message["role"] == "user"
        prompt = message["content"]
        assert prompt.startswith(head) and prompt.endswith("Thought:")
        question = prompt[len(head) :].split("\n", 1)[0]
        assert question in questions
    firsts = [r.body["messages"][0]["content"] for r in requests]
    assert (
        sum(p.endswith("\nThought:") and "Observation" not in p[len(head) :] for p in firsts) == 5
    )

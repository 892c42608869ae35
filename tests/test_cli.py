"""The `fireact` CLI as a user runs it: index build, search, tasks, quickstart, error lines."""

import json
from pathlib import Path

from fireact.resources import resource
from tests.helpers.clirun import run_cli

DISTRACTOR = str(resource("hotpotqa", "dev_distractor_first100.json"))


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_index_build_then_search_it(tmp_path):
    out = tmp_path / "ix"
    built = run_cli("index", "build", DISTRACTOR, "--out", str(out))
    assert built.returncode == 0, built.stderr
    stats = json.loads(built.stdout)
    assert (stats["paragraphs"], stats["titles"], stats["duplicates"]) == (992, 991, 1)
    found = run_cli("search", "Scott Derrickson", "--index", str(out))
    assert found.stdout.startswith("Scott Derrickson (born July 16, 1966) is an American director")


def test_index_build_refuses_to_overwrite(tmp_path):
    out = tmp_path / "ix"
    assert run_cli("index", "build", DISTRACTOR, "--out", str(out)).returncode == 0
    again = run_cli("index", "build", DISTRACTOR, "--out", str(out))
    assert_one_line_error(again, str(out), "--overwrite")
    assert run_cli("index", "build", DISTRACTOR, "--out", str(out), "--overwrite").returncode == 0


def test_index_build_corpus_without_paragraphs(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("")
    result = run_cli("index", "build", str(corpus), "--out", str(tmp_path / "ix"))
    assert_one_line_error(result, "no paragraphs found in", str(corpus))
    assert not (tmp_path / "ix").exists()


def test_index_build_record_without_text(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"title": "A", "text": "Alpha."}\n{"title": "B"}\n')
    result = run_cli("index", "build", str(corpus), "--out", str(tmp_path / "ix"))
    assert_one_line_error(result, f"{corpus} line 2", "missing 'text'")


def test_unknown_search_style():
    assert_one_line_error(run_cli("search", "x", "--style", "bing"), "unknown search style 'bing'")


def test_tasks_lists_sizes():
    result = run_cli("tasks")
    assert result.returncode == 0
    assert "7405" in result.stdout and "14042" in result.stdout


def test_debug_shows_the_traceback(tmp_path):
    result = run_cli("--debug", "score", str(tmp_path / "missing.jsonl"))
    assert result.returncode == 2
    assert "Traceback" in result.stderr and "file not found" in result.stderr


def test_quickstart_runs_the_whole_loop(tmp_path):
    out = tmp_path / "qs"
    result = run_cli("quickstart", "--out", str(out), "--questions", "3", "--train-examples", "8")
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["generate"] == {"episodes": 8, "kept": 8, "em": 1.0}
    assert summary["convert"]["examples"] == 8
    assert summary["train"]["steps"] > 0 and (out / "model" / "config.json").is_file()
    assert summary["run"]["episodes"] == 3
    lines = (out / "agent" / "episodes.jsonl").read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(line)["steps"] >= 1 for line in lines)
    again = run_cli("quickstart", "--out", str(out))
    assert_one_line_error(again, "is not empty", "--overwrite")


def write_script(tmp_path):
    script = {
        "hotpotqa/dev/0": [
            " I need to search Scott Derrickson.\nAction: search[Scott Derrickson]",
            " Both are American.\nAction: finish[yes]",
        ],
        "hotpotqa/dev/1": [" I guess.\nAction: finish[Chief of Protocol]"],
    }
    path = tmp_path / "script.json"
    path.write_text(json.dumps(script))
    return path


def test_run_then_score(tmp_path):
    script = write_script(tmp_path)
    out = tmp_path / "run"
    args = ["run", "--task", "hotpotqa", "--end", "2", "--model", f"scripted:{script}"]
    result = run_cli(*args, "--tool-style", "wiki", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["em"] == 1.0
    scored = json.loads(run_cli("score", "--json", str(out / "episodes.jsonl")).stdout)[0]
    assert (scored["n"], scored["correct"], scored["em"]) == (2, 2, 1.0)
    again = run_cli(*args, "--tool-style", "wiki", "--out", str(out))
    assert_one_line_error(again, "is not empty", "--resume", "--overwrite")


def test_run_without_openai_key(tmp_path):
    result = run_cli(
        "run", "--task", "hotpotqa", "--end", "2", "--model", "openai:gpt-4",
        "--out", str(tmp_path / "r"), env={"OPENAI_API_KEY": ""},
    )  # fmt: skip
    assert_one_line_error(result, "OPENAI_API_KEY is not set")
    assert not (tmp_path / "r").exists()


def test_run_against_unreachable_server(tmp_path):
    result = run_cli(
        "run", "--task", "hotpotqa", "--end", "2", "--model", "openai:gpt-4",
        "--base-url", "http://127.0.0.1:9/v1", "--out", str(tmp_path / "r"),
    )  # fmt: skip
    assert_one_line_error(result, "cannot reach http://127.0.0.1:9/v1")


def test_run_with_a_model_the_server_does_not_serve(tmp_path):
    from tests.helpers.openai_server import OpenAIServer

    with OpenAIServer({"x": ["y"]}) as server:
        result = run_cli(
            "run", "--task", "hotpotqa", "--end", "2", "--model", "openai:llama-9",
            "--base-url", server.base_url, "--out", str(tmp_path / "r"),
        )  # fmt: skip
    warning, error = result.stderr.strip().splitlines()
    assert result.returncode == 2
    assert warning.startswith("warning: ") and "does not list 'llama-9' (it lists: gpt-4" in warning
    assert (
        error == f"error: model 'llama-9' was not found at {server.base_url}: check the model name"
    )


def test_run_unknown_method(tmp_path):
    result = run_cli(
        "run", "--task", "hotpotqa", "--model", "openai:gpt-4", "--method", "tot",
        "--out", str(tmp_path / "r"),
    )  # fmt: skip
    assert_one_line_error(result, "method")


def test_convert_a_run_to_alpaca_and_chat(tmp_path):
    script = write_script(tmp_path)
    out = tmp_path / "run"
    args = ["run", "--task", "hotpotqa", "--end", "2", "--model", f"scripted:{script}"]
    assert run_cli(*args, "--tool-style", "wiki", "--out", str(out)).returncode == 0
    alpaca = tmp_path / "train.json"
    result = run_cli("convert", str(out), "--to", "alpaca", "--out", str(alpaca))
    assert result.returncode == 0, result.stderr
    records = json.loads(alpaca.read_text())
    assert [r["instruction"] for r in records] == [
        "Were Scott Derrickson and Ed Wood of the same nationality?",
        "What government position was held by the woman who portrayed Corliss Archer in the film"
        " Kiss and Tell?",
    ]
    assert records[0]["output"].endswith(
        "Action: finish[yes]\nObservation: Episode finished, reward = True\n"
    )
    chat = tmp_path / "train.jsonl"
    assert run_cli("convert", str(out), "--to", "chat", "--out", str(chat)).returncode == 0
    first = json.loads(chat.read_text().splitlines()[0])["messages"]
    assert first[0] == {"role": "user", "content": records[0]["instruction"]}
    assert first[-1] == {"role": "user", "content": "Observation: Episode finished, reward = True"}


def test_convert_check_lists_problems_by_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    good = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    lines = [json.dumps(good)] * 11 + [json.dumps({"messages": [{"role": "robot", "content": 1}]})]
    bad.write_text("\n".join(lines) + "\n")
    result = run_cli("convert", "--check", str(bad))
    assert result.returncode == 2
    assert f"{bad}:12: error:" in result.stdout
    assert_one_line_error(result, "fine-tuning files break the format", "bad.jsonl (")


def test_openai_ft_without_key(tmp_path):
    result = run_cli("openai-ft", "list", env={"OPENAI_API_KEY": ""})
    assert_one_line_error(result, "OPENAI_API_KEY is not set")


def test_openai_ft_upload_create_status_against_local_server(tmp_path):
    from tests.helpers.openai_ft_server import OpenAIFTServer

    data = tmp_path / "train.jsonl"
    good = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    data.write_text("\n".join([json.dumps(good)] * 10) + "\n")
    with OpenAIFTServer(api_key="sk-test") as server:
        env = {"OPENAI_API_KEY": "sk-test"}
        url = ["--base-url", server.base_url]
        uploaded = run_cli("openai-ft", "upload", str(data), *url, env=env)
        assert uploaded.returncode == 0, uploaded.stderr
        file_id = uploaded.stdout.strip()
        assert file_id.startswith("file-")
        created = run_cli(
            "openai-ft",
            "create",
            "--training-file",
            file_id,
            "--wait",
            "--poll-s",
            "0.05",
            *url,
            env=env,
        )
        assert created.returncode == 0, created.stderr
        job = json.loads(created.stdout[created.stdout.index("{") :])
        assert job["status"] == "succeeded" and job["fine_tuned_model"].startswith("ft:")
        listed = json.loads(run_cli("openai-ft", "list", *url, env=env).stdout)
        assert [j["id"] for j in listed] == [job["id"]]


def test_usage_errors_are_one_line_too():
    assert_one_line_error(run_cli("scor"), "No such command 'scor'")
    assert_one_line_error(run_cli("run", "--task", "hotpotqa"), "Missing option '--model'")
    bad = run_cli("score", "--denominator", "many", "x.jsonl")
    assert_one_line_error(bad, "Invalid value for '--denominator'")


def test_view_and_report_of_a_run(tmp_path):
    script = write_script(tmp_path)
    out = tmp_path / "run"
    args = ["run", "--task", "hotpotqa", "--end", "2", "--model", f"scripted:{script}"]
    assert run_cli(*args, "--tool-style", "wiki", "--out", str(out)).returncode == 0
    viewed = run_cli("view", str(out))
    assert viewed.returncode == 0, viewed.stderr
    assert (out / "view.html").read_text().count("Scott Derrickson") >= 1
    reported = run_cli("report", str(out), "--out", str(tmp_path / "rep"))
    assert reported.returncode == 0, reported.stderr
    rows = json.loads((tmp_path / "rep" / "compare.json").read_text())["runs"]
    assert (rows[0]["n"], rows[0]["em"]) == (2, 1.0)
    assert (tmp_path / "rep" / "em.png").stat().st_size > 1000


def test_openai_ft_run_recipe_against_local_server(tmp_path):
    from tests.helpers.openai_ft_server import OpenAIFTServer

    recipe = tmp_path / "gpt35.yaml"
    shipped = (resource("configs", "gpt35-hotpotqa.yaml")).read_text()
    recipe.write_text(shipped.replace("poll_s: 30", "poll_s: 0.01"))
    with OpenAIFTServer(api_key="sk-test") as server:
        result = run_cli(
            "openai-ft", "run", str(recipe), "--base-url", server.base_url,
            env={"OPENAI_API_KEY": "sk-test"},
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)
    assert job["status"] == "succeeded" and job["fine_tuned_model"].startswith("ft:gpt-3.5-turbo")
    assert "uploaded file-" in result.stderr


def test_openai_ft_recipe_with_an_unknown_key(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("training_file: x.jsonl\nmodel: gpt-3.5-turbo\nepochs: 3\n")
    result = run_cli("openai-ft", "run", str(recipe), env={"OPENAI_API_KEY": "sk-test"})
    assert_one_line_error(result, "r.yaml: unknown key(s) epochs")


def test_quickstart_with_a_real_model_uses_lora_and_runs_base_plus_adapter(tmp_path):
    from tests.helpers.tiny_models import build_tiny_llama

    base = build_tiny_llama(tmp_path / "base")
    out = tmp_path / "qs"
    result = run_cli(
        "quickstart", "--out", str(out), "--questions", "2", "--train-examples", "4",
        "--model", str(base),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (out / "model" / "adapter_config.json").is_file()
    run_config = json.loads((out / "agent" / "config.json").read_text())
    assert run_config["options"]["model"] == f"hf:{base}:{out / 'model'}"
    assert json.loads((out / "summary.json").read_text())["run"]["episodes"] == 2


def test_run_recipe_dry_run_prints_the_resolved_settings_and_runs_nothing(tmp_path):
    result = run_cli(
        "run", "configs/run/gpt4-react-hotpotqa.yaml", "--end", "20", "--dry-run",
        "--out", str(tmp_path / "r"), cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "model: openai:gpt-4" in lines and "tool: serpapi" in lines
    assert "end: 20" in lines and "random: true" in lines
    assert "temperature: 0.7  # default" in lines and "max_tokens: 1000  # default" in lines
    assert not (tmp_path / "r").exists()

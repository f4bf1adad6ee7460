"""The `citeqa` command as a user runs it: its exit codes and output, in process (`ui.cli.main`) where no process
boundary is tested, a real process where one is (a server, what a fresh process imports)."""

import contextlib
import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from service.feedback import FEEDBACK_FILE, FeedbackLog, Judgement, mark
from tests.conftest import ARTICLE, ROOT, SEEDS, SHARED_EVAL, free_port, running
from ui.cli import main

CITEQA = str(Path(sys.executable).parent / "citeqa")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return {**os.environ, "CITEQA_DATA_DIR": str(tmp_path_factory.mktemp("cli"))}


def run(env, *args, check=True) -> subprocess.CompletedProcess:
    """`citeqa ARGS` in this process, with `env`'s variables, its output and exit code as a process would give."""
    out, err = io.StringIO(), io.StringIO()
    said = logging.StreamHandler(err)  # what the command logs, where a process would write it
    logging.getLogger().addHandler(said)
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        for name in set(os.environ) - set(env):
            patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        try:
            code = main(list(args))
        except SystemExit as stopped:  # argparse's --help and usage errors
            code = stopped.code if isinstance(stopped.code, int) else 2
        finally:
            logging.getLogger().removeHandler(said)
    done = subprocess.CompletedProcess(["citeqa", *args], code, out.getvalue(), err.getvalue())
    if check:
        assert done.returncode == 0, done.stderr
    return done


def test_help_lists_commands_settings_and_examples(env):
    out = run(env, "--help").stdout
    for word in ("index", "ask", "eval", "serve", "CITEQA_DATA_DIR", "examples:"):
        assert word in out
    assert "--prune" in run(env, "index", "--help").stdout


def test_index_prints_one_summary_line_and_is_idempotent(env):
    first = run(env, "index", str(SEEDS))
    assert first.stdout.startswith("indexed 1 file: 21 chunks added, 0 kept, 0 removed")
    assert "embedding" in first.stderr
    again = run(env, "index")
    assert again.stdout.startswith("indexed 1 file: 0 chunks added, 21 kept, 0 removed")


def test_ask_prints_the_answer_and_its_quotes(env):
    run(env, "index", str(SEEDS))
    out = run(env, "ask", "When did Wagner come into Mali?").stdout
    assert "end of 2021" in out and f"[1] {ARTICLE.name} 4964-5084" in out


def test_ask_json_with_history_file(env, tmp_path):
    run(env, "index", str(SEEDS))
    history = tmp_path / "chat.json"
    history.write_text(json.dumps([{"role": "user", "content": "Who is Wassim Nasr?"},
                                   {"role": "assistant", "content": "A journalist at the Soufan Center."}]))
    reply = json.loads(run(env, "ask", "What did he say about Tchiani?", "--json", "--history", str(history)).stdout)
    assert reply["grounded"] and "chose his path" in reply["answer"]


def test_bad_input_exits_non_zero_with_a_clear_message(env, tmp_path):
    (tmp_path / "latin.txt").write_bytes("Caf\u00e9".encode("latin-1"))
    bad = run(env, "index", str(tmp_path), check=False)
    assert bad.returncode == 2 and "latin.txt: not valid UTF-8" in bad.stderr and "Traceback" not in bad.stderr
    empty = run(env, "ask", "   ", check=False)
    assert empty.returncode == 2 and "question is empty" in empty.stderr
    missing = run(env, "ask", "Who?", "--history", str(tmp_path / "none.json"), check=False)
    assert missing.returncode == 2 and "cannot read --history" in missing.stderr
    fresh = run({**env, "CITEQA_DATA_DIR": str(tmp_path / "empty")}, "ask", "Who?", check=False)
    assert fresh.returncode == 2 and "run `citeqa index` first" in fresh.stderr


@pytest.mark.skipif(not SHARED_EVAL.exists(), reason="shared eval set not beside the checkout")
def test_eval_prints_the_metrics(env):
    out = run(env, "eval", str(SHARED_EVAL), "--docs", str(SEEDS)).stdout
    summary = out.strip().splitlines()[-1]
    for metric in ("accuracy", "short", "cited", "abstain_ok", "false_abstain", "retrieval_recall", "not_verbatim 0",
                   "p50_ms", "p95_ms"):
        assert metric in summary


def test_serve_logs_why_each_answer_fell_back(env, tmp_path):
    """CITEQA_ANSWERER=openai with nothing listening at CITEQA_LLM_URL: answers still come, extractive-fallback,
    and the server's log (stderr, at the default level) gives the reason for each one."""
    run(env, "index", str(SEEDS))
    port, dead = free_port(), free_port()
    log = tmp_path / "serve.log"
    served = {**env, "CITEQA_ANSWERER": "openai", "CITEQA_LLM_URL": f"http://127.0.0.1:{dead}/v1",
              "CITEQA_LLM_TIMEOUT": "5"}
    with log.open("w") as stderr, running([CITEQA, "serve", "--port", str(port)], f"http://127.0.0.1:{port}/api/health",
                                          120, env=served, stderr=stderr):
        questions = ["How many French soldiers are in Niger?", "Who is France's foreign affairs minister?"]
        modes = [httpx.post(f"http://127.0.0.1:{port}/api/ask", json={"question": q}, timeout=60).json()["mode"]
                 for q in questions]
    assert modes == ["extractive-fallback"] * 2
    said = log.read_text(encoding="utf-8")
    assert "citeqa ready at" in said
    assert said.count("openai answerer failed (Connection error.); answering extractively") == 2, said


def test_feedback_round_trip_three_judged_answers_become_a_gold_file_eval_runs(env, seed_qa, tmp_path, monkeypatch,
                                                                               capsys):
    run(env, "index", str(SEEDS))
    judged = FeedbackLog(Path(env["CITEQA_DATA_DIR"]) / FEEDBACK_FILE)
    text = ARTICLE.read_text(encoding="utf-8")
    soldiers = "How many French soldiers are in Niger?"
    judged.add(Judgement(soldiers, seed_qa.invoke(soldiers).to_dict(), "up"))
    leader, name = "Who is the leader of Niger's junta?", text.index("Abdourahmane Tchiani")
    judged.add(Judgement(leader, seed_qa.invoke(leader).to_dict(), "down",
                         correct=mark(ARTICLE.name, name, name + len("Abdourahmane Tchiani"), {ARTICLE.name: text})))
    population = "What is the population of Niger?"
    judged.add(Judgement(population, seed_qa.invoke(population).to_dict(), "up"))
    judged.add(Judgement(soldiers, seed_qa.invoke(soldiers).to_dict(), "down", note="I expected more detail"))
    monkeypatch.setenv("CITEQA_DATA_DIR", env["CITEQA_DATA_DIR"])
    assert main(["feedback", "stats"]) == 0
    assert capsys.readouterr().out == "judged 4: up 2 down 2 (down 50%); passages marked 1; gold questions 3\n"
    gold = tmp_path / "judged.jsonl"
    assert main(["feedback", "export", str(gold)]) == 0
    said = capsys.readouterr().err
    assert "exported 3 gold questions" in said and "not exported" in said and soldiers in said
    cases = [json.loads(line) for line in gold.read_text(encoding="utf-8").splitlines()]
    assert [c["question"] for c in cases] == [soldiers, leader, population]
    assert cases[1]["evidence_spans"] == [[name, name + len("Abdourahmane Tchiani")]] and cases[2]["unanswerable"]
    summary = run(env, "eval", str(gold)).stdout.strip().splitlines()[-1]
    assert "cases 3" in summary and "not_verbatim 0" in summary and "abstain_ok 1.000" in summary


def test_a_running_server_holds_its_data_directory_and_index_goes_through_it(tmp_path):
    """The embedded store has one owner: a second server is refused, `citeqa index` sends the files through the
    running one (answered by the very next question), and `--rebuild` there is refused naming the server."""
    env = {**os.environ, "CITEQA_DATA_DIR": str(tmp_path / "data")}
    run(env, "index", str(SEEDS))
    other = tmp_path / "other"
    other.mkdir()
    (other / "harbour.txt").write_text("The harbour board approved 42 new cranes on Tuesday.\n", encoding="utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running([CITEQA, "serve", "--port", str(port)], f"{url}/api/health", 300, env=env):
        second = run(env, "serve", "--port", str(free_port()), check=False)
        assert second.returncode == 2 and f"is held by the citeqa server at {url} (pid " in second.stderr
        rebuild = run(env, "index", "--rebuild", check=False)
        assert rebuild.returncode == 2 and f"held by the citeqa server at {url}" in rebuild.stderr
        sent = run(env, "index", str(other))
        assert sent.stdout.startswith(f"indexed 1 file through the server at {url}: 1 chunk, 0 removed")
        reply = httpx.post(f"{url}/api/ask", json={"question": "How many cranes did the harbour board approve?"},
                           timeout=60).json()
        assert "42" in reply["answer"] and reply["citations"][0]["source"] == "harbour.txt"
    after = run(env, "index", str(other))  # the server is gone: the directory is free again
    assert after.stdout.startswith("indexed 1 file: 0 chunks added, 1 kept")


# A served answer and `citeqa ask` in a fresh process, then which of the heavy libraries it imported.
SERVED_IMPORTS = """
import sys
from fastapi.testclient import TestClient
from service.build import build
from ui.cli import main
from ui.server import create_app
from ui.settings import Settings

settings = Settings()
with TestClient(create_app(build(settings), settings.server)) as client:
    status = client.post("/api/ask", json={"question": "How many French soldiers are in Niger?"}).status_code
main(["ask", "Who is the leader of Niger's junta?"])
offline = ("torch", "transformers", "sentence_transformers", "sklearn", "lab.train", "lab.evaluate", "lab.finetune")
print(status, [m for m in offline if m in sys.modules])
"""


def test_answering_imports_neither_torch_nor_transformers_nor_the_offline_work(env):
    run(env, "index", str(SEEDS))  # exports the embedding model's ONNX graph if this machine has none yet
    done = subprocess.run([sys.executable, "-c", SERVED_IMPORTS], env=env, capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "200 []"

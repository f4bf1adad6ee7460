"""The `citeqa` command as a user runs it: real processes, real exit codes, real output."""

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import ARTICLE, SEEDS, SHARED_EVAL, free_port, running

CITEQA = str(Path(sys.executable).parent / "citeqa")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return {**os.environ, "CITEQA_DATA_DIR": str(tmp_path_factory.mktemp("cli"))}


def run(env, *args, check=True):
    done = subprocess.run([CITEQA, *args], env=env, capture_output=True, text=True, timeout=300)
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
    assert first.stdout.startswith("indexed 1 files: 21 chunks added, 0 kept, 0 removed")
    assert "embedding" in first.stderr
    again = run(env, "index")
    assert again.stdout.startswith("indexed 1 files: 0 chunks added, 21 kept, 0 removed")


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

"""Every route and every bad-input case, in process."""

import json
import re
import time

import pytest
from fastapi.testclient import TestClient

from service.feedback import FEEDBACK_FILE, FeedbackLog
from tests.conftest import ARTICLE
from ui.server import create_app
from ui.settings import ServerSettings


@pytest.fixture(scope="module")
def client(seed_qa):
    with TestClient(create_app(seed_qa, ServerSettings())) as test_client:
        yield test_client


def test_ask_answers_with_verbatim_citations(client):
    reply = client.post("/api/ask", json={"question": "How many French soldiers are in Niger?"})
    assert reply.status_code == 200
    body = reply.json()
    assert set(body) == {"answer", "grounded", "citations", "short_answer", "mode", "timing_ms"}
    assert body["grounded"] is True and body["mode"] == "extractive" and "1,500" in body["answer"]
    cite, text = body["citations"][0], ARTICLE.read_text(encoding="utf-8")
    assert set(cite) == {"id", "source", "start", "end", "quote", "score"}
    assert (cite["id"], cite["source"], cite["start"]) == (1, ARTICLE.name, text.index("France has 1,500 soldiers"))
    assert text[cite["start"]:cite["end"]] == cite["quote"]
    assert body["short_answer"] is None  # the rule-based selector (the default) points at no words
    assert set(body["timing_ms"]) == {"retrieve", "answer", "total"}


def test_ask_abstains_when_the_documents_do_not_say(client):
    body = client.post("/api/ask", json={"question": "What is the population of Niger?", "history": []}).json()
    assert (body["grounded"], body["citations"], body["short_answer"]) == (False, [], None)
    assert "documents do not say" in body["answer"]


def test_history_in_both_shapes_resolves_a_follow_up(client):
    for content in ("Wassim Nasr is a journalist at the Soufan Center.",
                    [{"type": "text", "text": "Wassim Nasr is a journalist at the Soufan Center."}]):
        history = [{"role": "user", "content": "Who is Wassim Nasr?"}, {"role": "assistant", "content": content}]
        body = client.post("/api/ask", json={"question": "What did he say about Tchiani?",
                                             "history": history}).json()
        assert "chose his path" in body["answer"]


@pytest.mark.parametrize(("payload", "message"), [
    ({"question": ""}, "question is empty"),
    ({"question": " \n\t "}, "question is empty"),
    ({"question": "x" * 2001}, "at most 2000 characters"),
    ({}, "question: Field required"),
    ({"question": 42}, "question: Input should be a valid string"),
    ({"question": "ok?", "history": "nope"}, "history: Input should be a valid list"),
    ({"question": "ok?", "history": [{"role": "system", "content": "x"}]}, "history.0.role"),
    ({"question": "ok?", "history": [{"role": "user"}]}, "history.0.content: Field required"),
    ({"question": "ok?", "history": [{"role": "user", "content": 5}]}, "history.0.content"),
])
def test_bad_input_is_a_422_that_says_what_is_wrong(client, payload, message):
    reply = client.post("/api/ask", json=payload)
    assert reply.status_code == 422
    assert message in reply.json()["detail"]


@pytest.mark.parametrize("body", ["not json", "{\"question\": ", "[1, 2]", "null"])
def test_malformed_bodies_are_422_never_500(client, body):
    reply = client.post("/api/ask", content=body, headers={"Content-Type": "application/json"})
    assert reply.status_code == 422 and reply.json()["detail"]


def test_stream_sends_deltas_then_the_full_reply(client):
    with client.stream("POST", "/api/ask/stream", json={"question": "When did Wagner come into Mali?"}) as reply:
        assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/event-stream")
        frames = [f for f in reply.read().decode().split("\n\n") if f]
    events = [(f.split("\n")[0].removeprefix("event: "), json.loads(f.split("\n")[1].removeprefix("data: ")))
              for f in frames]
    *deltas, (last_kind, final) = events
    assert {kind for kind, _ in deltas} == {"delta"} and last_kind == "answer"
    assert "".join(d["text"] for _, d in deltas) == final["answer"] and "2021" in final["answer"]
    assert client.post("/api/ask/stream", json={"question": ""}).status_code == 422


def test_health_and_sources(client, seed_qa):
    article = ARTICLE.read_text(encoding="utf-8")
    chunks = len(seed_qa.snapshot.chunks)
    assert chunks > 10
    assert client.get("/api/health").json() == {"status": "ok", "documents": 1, "chunks": chunks,
                                                "mode": "extractive"}
    assert client.get("/api/sources").json() == [{"source": ARTICLE.name, "chars": len(article), "chunks": chunks}]
    assert client.get(f"/api/sources/{ARTICLE.name}").json() == {"source": ARTICLE.name, "text": article}
    missing = client.get("/api/sources/missing.txt")
    assert missing.status_code == 404 and missing.json() == {"detail": "no indexed document named 'missing.txt'"}


def test_openapi_docs_and_chat_page_are_served(client):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/ask", "/api/ask/stream", "/api/health", "/api/sources"} <= set(paths)
    page = client.get("/")
    assert page.status_code == 200 and "gradio" in page.text.lower()


def test_feedback_is_stored_and_a_marked_passage_must_be_real(client, seed_qa):
    question = "How many French soldiers are in Niger?"
    reply = client.post("/api/ask", json={"question": question}).json()
    text = ARTICLE.read_text(encoding="utf-8")
    start = text.index("1,500")
    sent = client.post("/api/feedback", json={"question": question, "history": [], "reply": reply, "verdict": "down",
                                              "correct": {"source": ARTICLE.name, "start": start, "end": start + 5},
                                              "note": "the number alone"})
    assert sent.status_code == 201 and set(sent.json()) == {"id"}
    stored = {e.id: e for e in FeedbackLog(seed_qa.store.settings.data_dir / FEEDBACK_FILE).recorded()}
    judged = stored[sent.json()["id"]].judgement
    assert (judged.question, judged.verdict, judged.reply, judged.note) == (question, "down", reply, "the number alone")
    assert (judged.correct.source, judged.correct.start, judged.correct.text) == (ARTICLE.name, start, "1,500")
    for correct in ({"source": "nowhere.txt", "start": 0, "end": 5}, {"source": ARTICLE.name, "start": 9, "end": 9},
                    {"source": ARTICLE.name, "start": 0, "end": len(text) + 1}):
        refused = client.post("/api/feedback", json={"question": question, "reply": reply, "verdict": "down",
                                                     "correct": correct})
        assert refused.status_code == 422 and "not a passage of an indexed document" in refused.json()["detail"]
    for bad in ({"question": question, "reply": reply, "verdict": "meh"}, {"question": question, "verdict": "up"},
                {"question": " ", "reply": reply, "verdict": "up"},
                {"question": question, "reply": {}, "verdict": "up"}):
        assert client.post("/api/feedback", json=bad).status_code == 422
    assert len(FeedbackLog(seed_qa.store.settings.data_dir / FEEDBACK_FILE).recorded()) == len(stored)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_pages_load_every_asset_from_the_app_itself(client, page):
    html = client.get(page)
    assert html.status_code == 200
    assets = re.findall(r"""(?:src|href|spec-url)=["']([^"']+)["']""", html.text)
    assets += re.findall(r"url: ?'([^']+)'", html.text)  # Swagger UI's OpenAPI address
    assert assets and not [a for a in assets if a.startswith(("http:", "https:", "//"))], assets
    for asset in assets:
        assert client.get(asset).status_code == 200, asset


def health_until(client, status: str, seconds: float = 10) -> dict:
    deadline = time.monotonic() + seconds
    while (body := client.get("/api/health").json())["status"] != status:
        assert time.monotonic() < deadline, body
        time.sleep(0.1)
    return body


def test_health_says_stale_while_a_changed_index_cannot_be_read_and_answers_go_on(client, seed_qa, monkeypatch):
    def broken() -> bool:
        raise RuntimeError("Error executing plan: Internal error: Error finding id")

    monkeypatch.setattr(seed_qa, "refresh_if_changed", broken)
    stale = health_until(client, "stale")
    assert "could not re-read the changed index" in stale["reason"] and "Error finding id" in stale["reason"]
    assert stale["documents"] == 1 and client.get("/api/health").status_code == 200
    assert "1,500" in client.post("/api/ask", json={"question": "How many French soldiers are in Niger?"}).json()[
        "answer"]  # from the last good state
    monkeypatch.undo()
    assert set(health_until(client, "ok")) == {"status", "documents", "chunks", "mode"}

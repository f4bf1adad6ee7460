"""Out of process: `citeqa serve` as a user starts it, called over HTTP, by gradio_client and in Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.conftest import ARTICLE, ROOT, SEEDS, free_port, running
from tests.samples import HTML_PAGE, energy_docx, report_pdf, scanned_pdf

ARTIFACTS = ROOT / "tests" / "artifacts"
DOCS = ROOT / "docs"
# Seconds for `citeqa serve` to answer: ~10 s on an idle machine; 10 minutes measured on this 2-core machine while a
# training job ran at a higher priority. Waiting longer costs nothing when the server is quick.
SERVE_READY_S = 900
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


HOSTILE = ("The harbour board approved 42 new cranes <script>alert(3)</script> on Tuesday.\n\n"
           "Its chair said the vote <img src=x onerror=alert(4)> was unanimous.\n")


def serve_folder(tmp_path_factory, folder: Path):
    """A real server on a free port over `folder`, freshly indexed."""
    citeqa = str(Path(sys.executable).parent / "citeqa")
    port = free_port()
    env = {**os.environ, "CITEQA_DATA_DIR": str(tmp_path_factory.mktemp("live")), "CITEQA_PORT": str(port)}
    subprocess.run([citeqa, "index", str(folder)], env=env, check=True, capture_output=True)
    log = tmp_path_factory.mktemp("logs") / "serve.log"
    url = f"http://127.0.0.1:{port}"
    with log.open("w") as out, running([citeqa, "serve"], f"{url}/api/health", SERVE_READY_S, env=env, stdout=out,
                                       stderr=subprocess.STDOUT):
        yield url, log


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from serve_folder(tmp_path_factory, SEEDS)


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory):
    """A server over a document whose text carries markup that would run if it were not escaped."""
    folder = tmp_path_factory.mktemp("hostile")
    (folder / "hostile.txt").write_text(HOSTILE, encoding="utf-8")
    yield from serve_folder(tmp_path_factory, folder)


@pytest.fixture(scope="module")
def upload_server(tmp_path_factory):
    """A server of its own for uploads, so the documents it gains change no other test's answers."""
    yield from serve_folder(tmp_path_factory, SEEDS)


def test_server_logs_its_url_when_ready(server):
    url, log = server
    assert f"citeqa ready at {url}" in log.read_text()


def test_rest_over_http(server):
    url, _ = server
    reply = requests.post(f"{url}/api/ask", json={"question": "Who is France's foreign affairs minister?"},
                          timeout=30)
    assert reply.status_code == 200
    body = reply.json()
    assert "Catherine Colonna" in body["answer"]
    text = requests.get(f"{url}/api/sources/{ARTICLE.name}", timeout=10).json()["text"]
    assert all(text[c["start"]:c["end"]] == c["quote"] for c in body["citations"])
    bad = requests.post(f"{url}/api/ask", data="{", headers={"Content-Type": "application/json"}, timeout=10)
    assert bad.status_code == 422


def test_gradio_client_calls_the_named_endpoint(server):
    from gradio_client import Client

    client = Client(server[0], verbose=False)
    by_position = client.predict("How many French soldiers are in Niger?", [], api_name="/ask")
    by_name = client.predict(question="How many French soldiers are in Niger?", history=[], api_name="/ask")
    cited = by_position["citations"][0]
    assert by_name["citations"][0] == cited and "1,500" in cited["quote"]
    assert ARTICLE.read_text(encoding="utf-8")[cited["start"]:cited["end"]] == cited["quote"]
    follow_up = client.predict(question="What did he say about Tchiani?", api_name="/ask",
                               history=[{"role": "user", "content": "Who is Wassim Nasr?"},
                                        {"role": "assistant", "content": "A journalist at the Soufan Center."}])
    assert "chose his path" in follow_up["answer"]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: `make test` installs it with apt-get")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def open_chat(browser, url: str, **options) -> tuple:
    """A new page on the chat, ready for a question, and the list every alert it raises lands in."""
    page = browser.new_page(**options)
    alerts: list[str] = []
    page.on("dialog", lambda dialog: (alerts.append(dialog.message), dialog.dismiss()))
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector("textarea")
    return page, alerts


def ask_in_page(page, question: str) -> str:
    before = page.locator('[data-testid="bot"]').count()
    box = page.locator("textarea").first
    box.fill(question)
    box.press("Enter")
    page.wait_for_function(f"document.querySelectorAll('[data-testid=\"bot\"]').length > {before}")
    bot = page.locator('[data-testid="bot"]').nth(before)
    page.wait_for_function("el => el.innerText.includes('characters') || el.innerText.includes('Not in the')",
                           arg=bot.element_handle())
    return bot.inner_text()


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (390, 844)])
def test_chat_in_the_browser(server, browser, width, height):
    page = browser.new_page(viewport={"width": width, "height": height})
    outside: list[str] = []
    page.on("request", lambda request: outside.append(request.url)
            if not request.url.startswith((server[0], "data:", "blob:")) else None)
    page.goto(server[0], wait_until="domcontentloaded")
    page.wait_for_selector("textarea")
    answer = ask_in_page(page, "How many French soldiers are in Niger?")
    assert "1,500" in answer and "[1]" in answer
    highlight = page.locator("#source-panel mark.focus")
    assert "France has 1,500 soldiers in Niger" in highlight.inner_text()
    follow_up = ask_in_page(page, "And how many American personnel?")
    assert "1,100" in follow_up
    assert "1,100 military" in page.locator("#source-panel mark.focus").inner_text()
    page.wait_for_function("document.querySelector('#source-panel .source-text').scrollTop > 0")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"chat-{width}x{height}.png"), full_page=True)
    assert outside == [], "the page reached outside this machine"
    page.close()


def test_chat_escapes_markup_and_shows_abstention(server, browser):
    page, alerts = open_chat(browser, server[0])
    attack = "<img src=x onerror=alert(1)><script>alert(2)</script> What is the population of Niger?"
    answer = ask_in_page(page, attack)
    assert "Not in the documents" in answer
    user = page.locator('[data-testid="user"]').last.inner_text()
    assert "<img src=x onerror=alert(1)>" in user and "<script>alert(2)</script>" in user
    assert alerts == [] and page.locator("#chat img[src='x']").count() == 0
    page.close()


def test_upload_over_http_answers_at_once_and_delete_removes(upload_server):
    url, log = upload_server
    reply = requests.post(f"{url}/api/documents", files=[("file", ("energy.docx", energy_docx()))], timeout=60)
    assert reply.status_code == 201 and reply.json()[0]["source"] == "energy.docx"
    answer = requests.post(f"{url}/api/ask", json={"question": "How many megawatts does the Dosso solar farm "
                                                   "produce?"}, timeout=30).json()
    assert "18 megawatts" in answer["answer"] and answer["citations"][0]["source"] == "energy.docx"
    text = requests.get(f"{url}/api/sources/energy.docx", timeout=10).json()["text"]
    assert all(text[c["start"]:c["end"]] == c["quote"] for c in answer["citations"])
    refused = requests.post(f"{url}/api/documents", files=[("file", ("scan.pdf", scanned_pdf()))], timeout=30)
    assert refused.status_code == 422 and refused.json()["detail"].startswith("nothing was indexed: scan.pdf: has no")
    assert requests.delete(f"{url}/api/documents/energy.docx", timeout=30).status_code == 204
    assert "energy.docx" not in {s["source"] for s in requests.get(f"{url}/api/sources", timeout=10).json()}
    assert "added energy.docx" in log.read_text() and "removed energy.docx" in log.read_text()


def test_upload_in_the_browser_then_ask_about_it(upload_server, browser, tmp_path):
    url, _ = upload_server
    for name, raw in [("water-report.pdf", report_pdf()), ("scan.pdf", scanned_pdf()),
                      ("clinic.html", HTML_PAGE.encode("utf-8"))]:
        (tmp_path / name).write_bytes(raw)
    page, alerts = open_chat(browser, url, viewport={"width": 1280, "height": 900})
    page.locator("#upload input[type=file]").set_input_files([str(tmp_path / n) for n in
                                                              ("water-report.pdf", "scan.pdf", "clinic.html")])
    result = page.locator("#upload-result")
    result.filter(has_text="Indexed clinic.html:").wait_for(timeout=300_000)
    shown = result.inner_text()
    assert "Indexed water-report.pdf:" in shown and "Indexed clinic.html:" in shown
    assert "Refused scan.pdf: has no text layer (a scanned image?); run OCR on it first" in shown
    documents = page.locator("#documents").inner_text()
    assert "water-report.pdf" in documents and "clinic.html" in documents and "scan.pdf" not in documents
    panel = page.locator("#source-panel").inner_text()
    assert '<script>alert("doc")</script> was printed' in panel and "Buy cheap flights" not in panel
    answer = ask_in_page(page, "How many households does the Tillaberi water plant serve?")
    assert "42,000" in answer and "water-report.pdf" in answer
    assert "42,000 households" in page.locator("#source-panel mark.focus").inner_text()
    assert "water-report.pdf" in page.locator("#source-panel .source-title").inner_text()
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=str(DOCS / "upload.png"))
    assert alerts == []

    page.locator("#remove-choice input").fill("water-report.pdf")
    page.get_by_role("option", name="water-report.pdf").click()
    page.locator("#remove").click()
    result.filter(has_text="Removed water-report.pdf.").wait_for()
    assert "water-report.pdf" not in page.locator("#documents").inner_text()
    again = ask_in_page(page, "How many households does the Tillaberi water plant serve?")
    assert "water-report.pdf" not in again


def test_markup_in_a_cited_document_and_in_the_question_stays_text(hostile_server, browser):
    page, alerts = open_chat(browser, hostile_server[0])
    answer = ask_in_page(page, "<script>alert(5)</script> How many new cranes did the harbour board approve?")
    assert "42" in answer and "[1]" in answer
    panel = page.locator("#source-panel .source-text").inner_text()
    assert "<script>alert(3)</script>" in panel and "<img src=x onerror=alert(4)>" in panel
    assert "<script>alert(5)</script>" in page.locator('[data-testid="user"]').last.inner_text()
    page.wait_for_timeout(500)  # time for anything injected to have run
    assert alerts == [] and page.locator("img[src='x']").count() == 0
    assert page.locator("script", has_text="alert(").count() == 0
    page.close()

"""Out of process: `citeqa serve` as a user starts it, called over HTTP, by gradio_client and in Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest
import requests

from service.feedback import FEEDBACK_FILE, FeedbackLog
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


class Served(NamedTuple):
    url: str
    log: Path  # the server's stdout and stderr
    data: Path  # its data directory


def serve_folder(tmp_path_factory, folder: Path):
    """A real server on a free port over `folder`, freshly indexed."""
    citeqa = str(Path(sys.executable).parent / "citeqa")
    port, data = free_port(), tmp_path_factory.mktemp("live")
    env = {**os.environ, "CITEQA_DATA_DIR": str(data), "CITEQA_PORT": str(port)}
    subprocess.run([citeqa, "index", str(folder)], env=env, check=True, capture_output=True)
    log = tmp_path_factory.mktemp("logs") / "serve.log"
    url = f"http://127.0.0.1:{port}"
    with log.open("w") as out, running([citeqa, "serve"], f"{url}/api/health", SERVE_READY_S, env=env, stdout=out,
                                       stderr=subprocess.STDOUT):
        yield Served(url, log, data)


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


def test_the_api_answers_while_the_chat_loads_and_the_chat_page_waits_for_it(server):
    """The REST API takes requests before Gradio has loaded; a browser asking for the chat meanwhile is held until
    it is mounted, never sent a 404, and each step is logged with the server's URL."""
    url, log, _ = server
    assert f"citeqa answering at {url}/api (REST); the chat is loading" in log.read_text()
    page = requests.get(url, timeout=60)
    assert page.status_code == 200 and "gradio" in page.text.lower()
    assert f"citeqa ready at {url} (chat)" in log.read_text()


def test_rest_over_http(server):
    url, _, _ = server
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


def open_chat(browser, url: str, confirm: bool = True, **options) -> tuple:
    """A new page on the chat, ready for a question, and the list every dialog it raises lands in (alerts
    dismissed; a confirmation, as "confirm: …", answered with `confirm`)."""
    page = browser.new_page(**options)
    alerts: list[str] = []

    def answer(dialog) -> None:
        if dialog.type == "confirm":
            alerts.append(f"confirm: {dialog.message}")
            dialog.accept() if confirm else dialog.dismiss()
        else:
            alerts.append(dialog.message)
            dialog.dismiss()

    page.on("dialog", answer)
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector("textarea")
    return page, alerts


def ask_in_page(page, question: str) -> str:
    return answered_in_page(page, question).inner_text()


def answered_in_page(page, question: str):
    """The bot message that answers `question`, once it is complete."""
    before = page.locator('[data-testid="bot"]').count()
    box = page.locator("textarea").first
    box.fill(question)
    box.press("Enter")
    page.wait_for_function(f"document.querySelectorAll('[data-testid=\"bot\"]').length > {before}")
    bot = page.locator('[data-testid="bot"]').nth(before)
    page.wait_for_function("el => el.innerText.includes('characters') || el.innerText.includes('do not say')",
                           arg=bot.element_handle())
    return bot


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
    assert "The indexed documents do not say." in answer
    user = page.locator('[data-testid="user"]').last.inner_text()
    assert "<img src=x onerror=alert(1)>" in user and "<script>alert(2)</script>" in user
    assert alerts == [] and page.locator("#chat img[src='x']").count() == 0
    page.close()


# Selects the document text from the first occurrence of one string to the end of another's, across the marks.
SELECT_IN_PANEL = """([first, last]) => {
  const box = document.querySelector('#source-panel .source-text');
  const find = (words) => { const walker = document.createTreeWalker(box, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) { const i = n.data.indexOf(words);
      if (i >= 0) return [n, i]; } };
  const [a, i] = find(first), [b, j] = find(last);
  const range = document.createRange(); range.setStart(a, i); range.setEnd(b, j + last.length);
  window.getSelection().removeAllRanges(); window.getSelection().addRange(range);
}"""


def test_judging_an_answer_and_marking_the_right_passage_in_the_browser(server, browser):
    """A 👎 is kept; a passage selected across a cited span (its [1] label is not document text) is kept with the
    exact offsets of the words selected."""
    page, _ = open_chat(browser, server.url)
    question = "Who is the leader of Niger's junta?"
    ask_in_page(page, question)
    page.locator("#chat button[aria-label='Dislike']").last.click()
    page.wait_for_selector("text=Thanks: your judgement was recorded")
    page.evaluate(SELECT_IN_PANEL, ["a hostage", "Defense chiefs"])  # plain text, then into the cited span
    page.locator("#mark-passage").click()
    page.wait_for_function("document.querySelector('#mark-result').innerText.includes('Recorded')")
    text = ARTICLE.read_text(encoding="utf-8")
    start, end = text.index("a hostage"), text.index("Defense chiefs") + len("Defense chiefs")
    assert f"characters {start}–{end} of {ARTICLE.name}" in page.locator("#mark-result").inner_text()
    judged = [e.judgement for e in FeedbackLog(server.data / FEEDBACK_FILE).recorded() if e.judgement.question ==
              question]
    assert [j.verdict for j in judged] == ["down", "down"] and judged[0].reply["grounded"]
    assert (judged[1].correct.start, judged[1].correct.end, judged[1].correct.text) == (start, end, text[start:end])
    page.close()


def test_a_removal_the_user_does_not_confirm_removes_nothing(server, browser):
    page, alerts = open_chat(browser, server.url, confirm=False)
    page.locator("#remove-choice input").fill(ARTICLE.name)
    page.get_by_role("option", name=ARTICLE.name).click()
    page.locator("#remove").click()
    page.locator("#upload-result").filter(has_text=f"Nothing removed: {ARTICLE.name} stays indexed.").wait_for()
    assert alerts == [f"confirm: Remove {ARTICLE.name} from the index? It will no longer be cited."]
    assert ARTICLE.name in page.locator("#documents").inner_text()
    page.close()


# WCAG's contrast ratio of each highlight's text against the background it is drawn on.
CONTRASTS = """() => {
  const rgba = (colour) => colour.match(/[\\d.]+/g).map(Number);
  const channel = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  const luminance = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  const behind = (el) => { for (; el; el = el.parentElement) { const c = rgba(getComputedStyle(el).backgroundColor);
    if (c.length < 4 || c[3] > 0) return c; } return [255, 255, 255]; };
  return Array.from(document.querySelectorAll('#source-panel mark, #source-panel mark sup')).map((el) => {
    const a = luminance(rgba(getComputedStyle(el).color)), b = luminance(behind(el));
    return [el.tagName + '.' + el.className, (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)]; });
}"""


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_highlights_are_readable_in_both_themes(server, browser, theme):
    page, _ = open_chat(browser, f"{server.url}/?__theme={theme}")
    ask_in_page(page, "Who is the leader of Niger's junta?")
    contrasts = page.evaluate(CONTRASTS)
    assert {"MARK.cite focus", "MARK.short", "SUP."} <= {name for name, _ in contrasts}, contrasts
    assert all(ratio >= 4.5 for _, ratio in contrasts), contrasts
    page.close()


def test_the_conversation_survives_a_reload_and_every_answers_citations_open(server, browser):
    page, _ = open_chat(browser, server.url)
    first = answered_in_page(page, "How many French soldiers are in Niger?")
    answered_in_page(page, "Who is the leader of Niger's junta?")
    focus = page.locator("#source-panel mark.focus")
    assert "Abdourahmane Tchiani" in focus.inner_text()
    assert "do not say" in ask_in_page(page, "What is the population of Niger?")
    assert "Abdourahmane Tchiani" in focus.inner_text()  # an abstention leaves the panel where it was
    first.locator("a[href='#cite-1']").first.click()  # [1] of the first answer, two answers back
    focus.filter(has_text="France has 1,500 soldiers in Niger").wait_for()
    page.reload(wait_until="domcontentloaded")
    page.wait_for_function("document.querySelectorAll('[data-testid=\"bot\"]').length == 3")
    assert "1,500" in page.locator('[data-testid="bot"]').first.inner_text()
    page.locator('[data-testid="bot"]').nth(1).locator("a[href='#cite-1']").first.click()
    focus.filter(has_text="Abdourahmane Tchiani").wait_for()
    page.locator("#open-choice input").fill(ARTICLE.name)
    page.get_by_role("option", name=ARTICLE.name).click()
    page.wait_for_function("document.querySelectorAll('#source-panel mark').length == 0")
    page.locator("#clear").click()
    page.wait_for_function("document.querySelectorAll('[data-testid=\"bot\"]').length == 0")
    page.reload(wait_until="domcontentloaded")
    page.wait_for_selector("textarea")
    page.wait_for_timeout(1000)
    assert page.locator('[data-testid="bot"]').count() == 0
    page.close()


def test_upload_over_http_answers_at_once_and_delete_removes(upload_server):
    url, log, _ = upload_server
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
    url, _, _ = upload_server
    for name, raw in [("water-report.pdf", report_pdf()), ("scan.pdf", scanned_pdf()),
                      ("clinic.html", HTML_PAGE.encode("utf-8")), ("setup.exe", b"MZ\x90\x00")]:
        (tmp_path / name).write_bytes(raw)
    page, alerts = open_chat(browser, url, viewport={"width": 1280, "height": 900})
    page.locator("#upload input[type=file]").set_input_files([str(tmp_path / n) for n in
                                                              ("water-report.pdf", "scan.pdf", "clinic.html",
                                                               "setup.exe")])
    result = page.locator("#upload-result")
    result.filter(has_text="setup.exe").wait_for(timeout=300_000)
    shown = result.inner_text()
    assert "Indexed water-report.pdf:" in shown and "Indexed clinic.html:" in shown
    assert "Refused scan.pdf: has no text layer (a scanned image?); run OCR on it first" in shown
    assert "Refused setup.exe:" in shown and ".exe" in shown
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
    assert alerts == ["confirm: Remove water-report.pdf from the index? It will no longer be cited."]
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

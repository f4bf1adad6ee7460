"""The Gradio chat: a conversation per browser session, cited quotes, and the source with its spans marked."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from index.errors import CiteqaError
from index.formats import SUFFIXES
from index.pipeline import Added
from index.spans import Span
from qa.answer import Answer, Citation
from qa.chain import CitedQA
from qa.history import content_text
from qa.settings import MAX_QUESTION_CHARS
from service.feedback import FeedbackLog, Judgement, Marked, mark
from service.library import DocumentLibrary, Upload
from ui.render import added_markdown, answer_markdown, documents_markdown, refused_markdown, source_html

EXAMPLES = ["Who is the leader of Niger's junta?", "How many French soldiers are in Niger?",
            "Which of Niger's neighbours are also run by juntas?", "What is the population of Niger?"]
SCROLL_TO_HIGHLIGHT = """() => { setTimeout(() => {
  const box = document.querySelector('#source-panel .source-text');
  const mark = box && (box.querySelector('mark.focus') || box.querySelector('mark'));
  if (mark) box.scrollTop = mark.offsetTop - box.clientHeight / 3;
}, 50); }"""
# The selection in the source panel as offsets into the document's text: the marks' `[n]` labels are not document
# text and are skipped; lengths count code points as Python does. The selected text goes along so the server can
# check the offsets against the document (`picked_passage`).
SELECTION_JS = """(selection, latest, asked) => {
  const box = document.querySelector('#source-panel .source-text');
  const range = window.getSelection().rangeCount ? window.getSelection().getRangeAt(0) : null;
  if (!box || !range || range.collapsed || !box.contains(range.commonAncestorContainer)) return ['', latest, asked];
  const walker = document.createTreeWalker(box, NodeFilter.SHOW_TEXT);
  let offset = 0, start = null, end = null, text = '';
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.parentElement.closest('sup')) continue;
    const chars = Array.from(node.data);
    if (range.intersectsNode(node)) {
      const from = node === range.startContainer ? Array.from(node.data.slice(0, range.startOffset)).length : 0;
      const to = node === range.endContainer ? Array.from(node.data.slice(0, range.endOffset)).length : chars.length;
      if (start === null) start = offset + from;
      end = offset + to;
      text += chars.slice(from, to).join('');
    }
    offset += chars.length;
  }
  if (start === null || end <= start) return ['', latest, asked];
  return [JSON.stringify({source: box.dataset.source, start: start, end: end, text: text}), latest, asked];
}"""
# Asks before a document is removed; the answer goes to the hidden `confirmed` box.
CONFIRM_REMOVAL = """(source, confirmed) => [source, !!source && window.confirm(
  `Remove ${source} from the index? It will no longer be cited.`)]"""
# A click on any `[n]` in the conversation asks for that citation of that answer: "message index:n".
CITE_CLICKS = """() => {
  document.addEventListener('click', (event) => {
    const link = event.target.closest && event.target.closest('#chat a[href^="#cite-"]');
    if (!link) return;
    event.preventDefault();
    event.stopPropagation();
    const messages = Array.from(document.querySelectorAll(
      '#chat [data-testid="user"], #chat [data-testid="bot"]'));
    window.citeqaCite = `${messages.indexOf(link.closest('[data-testid="bot"]'))}:${link.hash.slice(6)}`;
    document.querySelector('#cite-open').click();
  }, true);
}"""
CITE_REQUEST = "(request, asked) => [window.citeqaCite || '', asked]"
CSS = """
#source-panel .source-text { position: relative; white-space: pre-wrap; max-height: 560px; overflow-y: auto;
  line-height: 1.55; font-size: 0.95rem; padding: 0.75rem; border-radius: 8px;
  border: 1px solid var(--border-color-primary); }
#source-panel .source-title { font-weight: 600; margin-bottom: 0.4rem; }
#source-panel mark.cite { background: #fff1a8; color: #1f1f1f; border-radius: 3px; padding: 0 1px; }
#source-panel mark.cite.focus { background: #ffd43b; outline: 2px solid #f59f00; }
#source-panel mark.short { background: #ffa94d; font-weight: 700; color: #1f1f1f; padding: 0; }
#source-panel mark sup { color: #7a3d00; font-weight: 700; margin-right: 2px; }
.offscreen { display: none !important; }
@media (max-width: 640px) { #source-panel .source-text { max-height: 320px; } }
"""


def plain_history(history: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Chat history as the chain reads it: plain text, with what the chat escaped for display unescaped."""
    return [{"role": m["role"], "content": html.unescape(content_text(m.get("content", "")))}
            for m in history or [] if m.get("role") in ("user", "assistant")]


def picked_passage(selection: str, texts: dict[str, str]) -> Marked | None:
    """The browser's selection (`SELECTION_JS`) as a passage of an indexed document. Offsets the browser counted
    differently from Python (a line break it normalized) are found again by the selected text nearest to them."""
    try:
        picked = json.loads(selection) if selection else None
        source, start, end, text = picked["source"], int(picked["start"]), int(picked["end"]), str(picked["text"])
    except (ValueError, TypeError, KeyError):
        return None
    marked = mark(source, start, end, texts)
    if marked is not None and marked.text == text:
        return marked
    document = texts.get(source, "")
    found = [m.start() for m in re.finditer(re.escape(text), document)] if text.strip() else []
    if not found:
        return None
    at = min(found, key=lambda offset: abs(offset - start))
    return mark(source, at, at + len(text), texts)


def embedding_progress(progress: gr.Progress, name: str) -> Callable[[int], Callable[[int], None]]:
    """The indexer's progress hook, shown as one bar for the file being indexed."""

    def start(total: int) -> Callable[[int], None]:
        done = 0
        progress((0, total), desc=f"{name}: embedding", unit="pieces")

        def tick(n: int) -> None:
            nonlocal done
            done += n
            progress((done, total), desc=f"{name}: embedding", unit="pieces")

        return tick

    return start


def build_chat(qa: CitedQA, library: DocumentLibrary, feedback: FeedbackLog) -> gr.Blocks:
    """The chat. Its conversation (the messages, and for each answer the question, history and reply a 👍/👎 or a
    marked passage judges, keyed by the answer's place in the conversation) lives in the browser and survives a
    reload; `shown` is the key of the answer whose citations the source panel shows."""

    def default_source() -> str:
        return next(iter(sorted(qa.texts)), "")

    def citation_choices(citations: list[Citation]) -> list[tuple[str, int]]:
        return [(f"[{c.id}] {c.quote[:70]}{'…' if len(c.quote) > 70 else ''}", c.id) for c in citations]

    def show(answer: Answer | None, chosen: int | None) -> str:
        """The source of the chosen citation of an answer, its quotes and short answer marked."""
        citations = answer.citations if answer else []
        picked = next((c for c in citations if c.id == chosen), citations[0] if citations else None)
        source = picked.source if picked else default_source()
        return source_html(source, qa.texts.get(source, ""), citations, picked.id if picked else None,
                           answer.short_answer if answer else None)

    def shown_answer(asked: dict[str, dict], shown: str | None) -> Answer | None:
        return Answer.from_dict(asked[shown]["reply"]) if shown in asked else None

    def citations_of(answer: Answer, chosen: int | None = None) -> tuple:
        """The picker and the panel for an answer; an abstention leaves the panel where it was."""
        picker = gr.update(choices=citation_choices(answer.citations), visible=bool(answer.citations),
                           value=chosen or (answer.citations[0].id if answer.citations else None))
        return picker, show(answer, chosen) if answer.citations else gr.update()

    def respond(message: str, history: list[dict[str, Any]], asked: dict[str, dict]) -> Iterator[tuple]:
        history = list(history or [])
        if not message or not message.strip():
            yield history, gr.update(), gr.update(), gr.update(), gr.update(), asked
            return
        asked_before = plain_history(history)
        history.append({"role": "user", "content": html.escape(message)})
        try:
            parts = qa.stream(message, asked_before)
            shown = ""
            for part in parts:
                if isinstance(part, Answer):
                    answer = part
                    break
                shown += part
                yield history + [{"role": "assistant", "content": html.escape(shown)}], "", gr.update(), \
                    gr.update(), gr.update(), asked
        except CiteqaError as error:
            refusal = {"role": "assistant", "content": f"**Cannot answer:** {html.escape(str(error))}"}
            yield history + [refusal], message, gr.update(), gr.update(), gr.update(), asked
            return
        history.append({"role": "assistant", "content": answer_markdown(answer)})
        key = str(len(history) - 1)
        asked = {**asked, key: {"question": message, "history": asked_before, "reply": answer.to_dict()}}
        yield history, "", *citations_of(answer), key, asked

    def open_citation(request: str, asked: dict[str, dict]) -> tuple:
        """A `[n]` clicked in any answer of the conversation (`CITE_CLICKS` sends "message:n")."""
        key, _, number = (request or "").partition(":")
        answer = shown_answer(asked, key)
        if answer is None or not number.isdigit():
            return gr.update(), gr.update(), gr.update()
        return *citations_of(answer, int(number)), key

    def judge(asked: dict[str, dict], event: gr.LikeData) -> None:
        """A 👍/👎 on an answer, kept as feedback (a click that takes one back is not a judgement)."""
        key = str(event.index if isinstance(event.index, int) else event.index[0])
        if key not in asked or event.liked not in (True, False):
            return
        entry = asked[key]
        feedback.add(Judgement(entry["question"], entry["reply"], "up" if event.liked else "down", entry["history"]))
        gr.Info("Thanks: your judgement was recorded." if event.liked else "Thanks: your judgement was recorded. "
                "To say what is right, select the passage that answers in the source panel and press “This "
                "passage answers it”.")

    def mark_passage(selection: str, asked: dict[str, dict], shown: str | None) -> str:
        """The passage selected in the source panel, kept as the right answer to the question shown."""
        answer = shown_answer(asked, shown)
        if answer is None:
            return "Ask a question first; then select the passage that answers it."
        marked = picked_passage(selection, qa.texts)
        if marked is None:
            return "Select the words that answer it in the source panel first, then press the button."
        entry = asked[shown]
        cited = any(Span(marked.source, marked.start, marked.end).within(c.span) for c in answer.citations)
        feedback.add(Judgement(entry["question"], entry["reply"], "up" if cited else "down", entry["history"],
                               marked))
        return (f"Recorded: characters {marked.start}–{marked.end} of {html.escape(marked.source)} answer "
                f"“{html.escape(entry['question'])}”.")

    def listed() -> tuple[str, dict, dict]:
        names = sorted(qa.texts)
        return (documents_markdown(qa.sources()), gr.update(choices=names, value=None),
                gr.update(choices=names, value=None))

    def add_files(paths: list[str] | None, progress: gr.Progress = gr.Progress()) -> tuple:  # noqa: B008
        """Each file on its own: read, then indexed with a progress bar; one refused file does not stop the rest."""
        lines, shown = [], None
        for path in map(Path, paths or []):
            progress(None, desc=f"{path.name}: reading")
            try:
                doc = library.read(Upload(path.name, path.stat().st_size, path.read_bytes))
                added: Added = library.add([doc], embedding_progress(progress, path.name))[0]
            except CiteqaError as error:
                lines.append(refused_markdown(path.name, str(error)))
                continue
            lines.append(added_markdown(added.source, added.chars, added.chunks, added.replaced))
            shown = added.source
        panel_html = source_html(shown, qa.texts[shown], []) if shown else gr.update()
        return "\n".join(lines), None, *listed(), panel_html

    def open_document(source: str | None) -> str | dict:
        return source_html(source, qa.texts[source], []) if source in qa.texts else gr.update()

    def remove_document(source: str | None, confirmed: bool) -> tuple:
        if not source:
            return "Pick a document to remove.", *listed(), gr.update()
        if not confirmed:
            return f"Nothing removed: {html.escape(source)} stays indexed.", gr.update(), gr.update(), \
                gr.update(), gr.update()
        try:
            removed = library.remove(source)
        except CiteqaError as error:
            return f"Nothing removed: {html.escape(str(error))}.", \
                gr.update(), gr.update(), gr.update(), gr.update()
        said = f"Removed {html.escape(source)}." if removed else f"{html.escape(source)} was not indexed."
        return said, *listed(), show(None, None)

    with gr.Blocks(title="citeqa: answers with their sources", analytics_enabled=False) as demo:
        gr.Markdown("## citeqa\nAsk about the documents. Every answer quotes the exact passages it stands on; "
                    "when the documents do not say, it tells you so.")
        asked = gr.State({})
        shown = gr.State(None)
        # Kept in the browser (encrypted with this server's key), so a reload keeps the conversation.
        saved = gr.BrowserState({"history": [], "asked": {}}, storage_key="citeqa-conversation")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=320):
                chatbot = gr.Chatbot(label="Conversation", elem_id="chat", height=520, buttons=["copy"],
                                     feedback_options=("Like", "Dislike"), placeholder="Ask a question to start.")
                question = gr.Textbox(placeholder="Ask about the documents… (Enter to send)", show_label=False,
                                      lines=1, max_lines=4, max_length=MAX_QUESTION_CHARS, elem_id="question",
                                      autofocus=True)
                with gr.Row():
                    send = gr.Button("Ask", variant="primary", elem_id="ask")
                    clear = gr.Button("Clear chat", elem_id="clear")
                gr.Examples(EXAMPLES, inputs=question, label="Try")
            with gr.Column(scale=2, min_width=300):
                documents = gr.Markdown(documents_markdown(qa.sources()), elem_id="documents")
                # Any file is taken and checked here, so a refused type gets its line like any other refusal.
                files = gr.File(label=f"Add documents ({', '.join(SUFFIXES)}; up to "
                                f"{library.max_bytes / 2**20:g} MB each)", file_count="multiple",
                                type="filepath", height=110, elem_id="upload")
                upload_result = gr.Markdown(elem_id="upload-result")
                with gr.Row(equal_height=True):
                    remove_choice = gr.Dropdown(sorted(qa.texts), value=None, label="Remove a document",
                                                scale=3, elem_id="remove-choice")
                    remove = gr.Button("Remove", variant="stop", scale=1, elem_id="remove")
                confirmed = gr.Checkbox(visible=False)
                open_choice = gr.Dropdown(sorted(qa.texts), value=None, label="Open a document",
                                          elem_id="open-choice")
                picker = gr.Radio(label="Citations of the answer shown", choices=[], visible=False,
                                  elem_id="citation-picker")
                panel = gr.HTML(show(None, chosen=None), elem_id="source-panel")
                with gr.Row(equal_height=True):
                    mark = gr.Button("This passage answers it", size="sm", scale=1, elem_id="mark-passage")
                    marked = gr.Markdown(elem_id="mark-result")
                selection = gr.Textbox(visible=False)
                cite_request = gr.Textbox(visible=False)
                cite_open = gr.Button(elem_id="cite-open", elem_classes="offscreen")

        def keep(history: list, asked: dict) -> dict:
            return {"history": history, "asked": asked}

        outputs = [chatbot, question, picker, panel, shown, asked]
        for trigger in (question.submit, send.click):
            trigger(respond, [question, chatbot, asked], outputs, api_visibility="private").then(
                keep, [chatbot, asked], saved, api_visibility="private").then(None, js=SCROLL_TO_HIGHLIGHT)
        picker.input(lambda asked, shown, chosen: show(shown_answer(asked, shown), chosen), [asked, shown, picker],
                     panel, api_visibility="private").then(None, js=SCROLL_TO_HIGHLIGHT)
        cite_open.click(open_citation, [cite_request, asked], [picker, panel, shown], js=CITE_REQUEST,
                        api_visibility="private").then(None, js=SCROLL_TO_HIGHLIGHT)
        clear.click(lambda: ([], "", gr.update(choices=[], value=None, visible=False), show(None, None), None, {},
                             {"history": [], "asked": {}}), None, [*outputs, saved], api_visibility="private")
        chatbot.clear(lambda: ({}, None, {"history": [], "asked": {}}), None, [asked, shown, saved],
                      api_visibility="private")
        chatbot.like(judge, asked, None, api_visibility="private")
        mark.click(mark_passage, [selection, asked, shown], marked, js=SELECTION_JS, api_visibility="private")
        files.upload(add_files, files, [upload_result, files, documents, remove_choice, open_choice, panel],
                     api_visibility="private", show_progress_on=files)
        remove.click(remove_document, [remove_choice, confirmed],
                     [upload_result, documents, remove_choice, open_choice, panel], js=CONFIRM_REMOVAL,
                     api_visibility="private")
        open_choice.input(open_document, open_choice, panel, api_visibility="private")
        demo.load(listed, None, [documents, remove_choice, open_choice], api_visibility="private")
        demo.load(lambda kept: (kept.get("history", []), kept.get("asked", {})), saved, [chatbot, asked],
                  api_visibility="private")

        def ask(question: str, history: list[dict] | None = None) -> dict:
            """Answer `question` (with optional `history` of {role, content} turns) as the /api/ask JSON."""
            try:
                return qa.invoke(question, history or []).to_dict()
            except CiteqaError as error:
                raise gr.Error(str(error)) from None

        gr.api(ask, api_name="ask")
    demo.queue(default_concurrency_limit=4)
    return demo

"""The Gradio chat: a conversation per browser session, cited quotes, and the source with its spans marked."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from index.formats import SUFFIXES
from index.load import IngestError
from index.pipeline import Added
from index.store import StoreUnavailable
from qa.answer import Answer, Citation
from qa.chain import CitedQA, QuestionError
from qa.documents import DocumentLibrary, Upload
from qa.history import content_text
from qa.settings import MAX_QUESTION_CHARS
from ui.render import added_markdown, answer_markdown, documents_markdown, refused_markdown, source_html

EXAMPLES = ["Who is the leader of Niger's junta?", "How many French soldiers are in Niger?",
            "Which of Niger's neighbours are also run by juntas?", "What is the population of Niger?"]
SCROLL_TO_HIGHLIGHT = """() => { setTimeout(() => {
  const box = document.querySelector('#source-panel .source-text');
  const mark = box && (box.querySelector('mark.focus') || box.querySelector('mark'));
  if (mark) box.scrollTop = mark.offsetTop - box.clientHeight / 3;
}, 50); }"""
CSS = """
#source-panel .source-text { position: relative; white-space: pre-wrap; max-height: 560px; overflow-y: auto;
  line-height: 1.55; font-size: 0.95rem; padding: 0.75rem; border-radius: 8px;
  border: 1px solid var(--border-color-primary); }
#source-panel .source-title { font-weight: 600; margin-bottom: 0.4rem; }
#source-panel mark.cite { background: #fff1a8; color: inherit; border-radius: 3px; padding: 0 1px; }
#source-panel mark.cite.focus { background: #ffd43b; outline: 2px solid #f59f00; }
#source-panel mark.short { background: #ffa94d; font-weight: 700; color: inherit; padding: 0; }
#source-panel mark sup { color: #b35c00; font-weight: 700; margin-right: 2px; }
@media (max-width: 640px) { #source-panel .source-text { max-height: 320px; } }
"""


def plain_history(history: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Chat history as the chain reads it: plain text, with what the chat escaped for display unescaped."""
    return [{"role": m["role"], "content": html.unescape(content_text(m.get("content", "")))}
            for m in history or [] if m.get("role") in ("user", "assistant")]


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


def build_chat(qa: CitedQA, library: DocumentLibrary) -> gr.Blocks:
    def default_source() -> str:
        return next(iter(sorted(qa.texts)), "")

    def citation_choices(citations: list[Citation]) -> list[tuple[str, int]]:
        return [(f"[{c.id}] {c.quote[:70]}{'…' if len(c.quote) > 70 else ''}", c.id) for c in citations]

    def show(latest: Answer | None, chosen: int | None) -> str:
        """The source of the chosen citation of the latest answer, its quotes and short answer marked."""
        citations = latest.citations if latest else []
        picked = next((c for c in citations if c.id == chosen), citations[0] if citations else None)
        source = picked.source if picked else default_source()
        return source_html(source, qa.texts.get(source, ""), citations, picked.id if picked else None,
                           latest.short_answer if latest else None)

    def respond(message: str, history: list[dict[str, Any]]) -> Iterator[tuple]:
        history = list(history or [])
        if not message or not message.strip():
            yield history, gr.update(), gr.update(), gr.update(), None
            return
        asked = plain_history(history)
        history.append({"role": "user", "content": html.escape(message)})
        try:
            parts = qa.stream(message, asked)
            shown = ""
            for part in parts:
                if isinstance(part, Answer):
                    answer = part
                    break
                shown += part
                yield history + [{"role": "assistant", "content": html.escape(shown)}], "", gr.update(), \
                    gr.update(), None
        except (QuestionError, StoreUnavailable) as error:
            refusal = {"role": "assistant", "content": f"**Cannot answer:** {html.escape(str(error))}"}
            yield history + [refusal], message, gr.update(), gr.update(), None
            return
        history.append({"role": "assistant", "content": answer_markdown(answer)})
        picker = gr.update(choices=citation_choices(answer.citations),
                           value=answer.citations[0].id if answer.citations else None,
                           visible=bool(answer.citations))
        yield history, "", picker, show(answer, None), answer

    def listed() -> tuple[str, dict]:
        return documents_markdown(qa.sources()), gr.update(choices=sorted(qa.texts), value=None)

    def add_files(paths: list[str] | None, progress: gr.Progress = gr.Progress()) -> tuple:  # noqa: B008
        """Each file on its own: read, then indexed with a progress bar; one refused file does not stop the rest."""
        lines, shown = [], None
        for path in map(Path, paths or []):
            progress(None, desc=f"{path.name}: reading")
            try:
                doc = library.read(Upload(path.name, path.stat().st_size, path.read_bytes))
                added: Added = library.add([doc], embedding_progress(progress, path.name))[0]
            except IngestError as error:
                lines.append(refused_markdown(str(error)))
                continue
            lines.append(added_markdown(added.source, added.chars, added.chunks, added.replaced))
            shown = added.source
        panel_html = source_html(shown, qa.texts[shown], []) if shown else gr.update()
        return "\n".join(lines), None, *listed(), panel_html

    def remove_document(source: str | None) -> tuple:
        if not source:
            return "Pick a document to remove.", *listed(), gr.update()
        removed = library.remove(source)
        said = f"Removed {html.escape(source)}." if removed else f"{html.escape(source)} was not indexed."
        return said, *listed(), show(None, None)

    with gr.Blocks(title="citeqa: answers with their sources", analytics_enabled=False) as demo:
        gr.Markdown("## citeqa\nAsk about the documents. Every answer quotes the exact passages it stands on; "
                    "when the documents do not say, it tells you so.")
        latest = gr.State(None)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=320):
                chatbot = gr.Chatbot(label="Conversation", elem_id="chat", height=520, feedback_options=None,
                                     buttons=["copy"], placeholder="Ask a question to start.")
                question = gr.Textbox(placeholder="Ask about the documents… (Enter to send)", show_label=False,
                                      lines=1, max_lines=4, max_length=MAX_QUESTION_CHARS, elem_id="question",
                                      autofocus=True)
                with gr.Row():
                    send = gr.Button("Ask", variant="primary", elem_id="ask")
                    clear = gr.Button("Clear chat", elem_id="clear")
                gr.Examples(EXAMPLES, inputs=question, label="Try")
            with gr.Column(scale=2, min_width=300):
                documents = gr.Markdown(documents_markdown(qa.sources()), elem_id="documents")
                files = gr.File(label=f"Add documents ({', '.join(SUFFIXES)}; up to "
                                f"{library.max_bytes / 2**20:g} MB each)", file_count="multiple",
                                file_types=list(SUFFIXES), type="filepath", height=110, elem_id="upload")
                upload_result = gr.Markdown(elem_id="upload-result")
                with gr.Row(equal_height=True):
                    remove_choice = gr.Dropdown(sorted(qa.texts), value=None, label="Remove a document",
                                                scale=3, elem_id="remove-choice")
                    remove = gr.Button("Remove", variant="stop", scale=1, elem_id="remove")
                picker = gr.Radio(label="Citations of the latest answer", choices=[], visible=False,
                                  elem_id="citation-picker")
                panel = gr.HTML(show(None, chosen=None), elem_id="source-panel")

        outputs = [chatbot, question, picker, panel, latest]
        for trigger in (question.submit, send.click):
            trigger(respond, [question, chatbot], outputs, api_visibility="private").then(
                None, js=SCROLL_TO_HIGHLIGHT)
        picker.input(show, [latest, picker], panel, api_visibility="private").then(None, js=SCROLL_TO_HIGHLIGHT)
        clear.click(lambda: ([], "", gr.update(choices=[], value=None, visible=False), show(None, None), None),
                    None, outputs, api_visibility="private")
        files.upload(add_files, files, [upload_result, files, documents, remove_choice, panel],
                     api_visibility="private", show_progress_on=files)
        remove.click(remove_document, remove_choice, [upload_result, documents, remove_choice, panel],
                     api_visibility="private")
        demo.load(listed, None, [documents, remove_choice], api_visibility="private")

        def ask(question: str, history: list[dict] | None = None) -> dict:
            """Answer `question` (with optional `history` of {role, content} turns) as the /api/ask JSON."""
            try:
                return qa.invoke(question, history or []).to_dict()
            except (QuestionError, StoreUnavailable) as error:
                raise gr.Error(str(error)) from None

        gr.api(ask, api_name="ask")
    demo.queue(default_concurrency_limit=4)
    return demo

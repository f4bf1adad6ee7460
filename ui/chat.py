"""The Gradio chat: a conversation per browser session, cited quotes, and the source with its spans marked."""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import Any

import gradio as gr

from index.store import StoreUnavailable
from qa.chain import CitedQA, QuestionError
from qa.history import content_text
from qa.model import Answer, Citation
from ui.render import answer_markdown, documents_markdown, source_html

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
#source-panel mark sup { color: #b35c00; font-weight: 700; margin-right: 2px; }
@media (max-width: 640px) { #source-panel .source-text { max-height: 320px; } }
"""


def plain_history(history: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Chat history as the chain reads it: plain text, with what the chat escaped for display unescaped."""
    return [{"role": m["role"], "content": html.unescape(content_text(m.get("content", "")))}
            for m in history or [] if m.get("role") in ("user", "assistant")]


def build_chat(qa: CitedQA) -> gr.Blocks:
    default_source = next(iter(sorted(qa.texts)), "")

    def citation_choices(citations: list[Citation]) -> list[tuple[str, int]]:
        return [(f"[{c.id}] {c.quote[:70]}{'…' if len(c.quote) > 70 else ''}", c.id) for c in citations]

    def show(citations: list[Citation], chosen: int | None) -> str:
        picked = next((c for c in citations if c.id == chosen), citations[0] if citations else None)
        source = picked.source if picked else default_source
        return source_html(source, qa.texts.get(source, ""), citations, picked.id if picked else None)

    def respond(message: str, history: list[dict[str, Any]]) -> Iterator[tuple]:
        history = list(history or [])
        if not message or not message.strip():
            yield history, gr.update(), gr.update(), gr.update(), []
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
                    gr.update(), []
        except (QuestionError, StoreUnavailable) as error:
            refusal = {"role": "assistant", "content": f"**Cannot answer:** {html.escape(str(error))}"}
            yield history + [refusal], message, gr.update(), gr.update(), []
            return
        history.append({"role": "assistant", "content": answer_markdown(answer)})
        picker = gr.update(choices=citation_choices(answer.citations),
                           value=answer.citations[0].id if answer.citations else None,
                           visible=bool(answer.citations))
        yield history, "", picker, show(answer.citations, None), answer.citations

    with gr.Blocks(title="citeqa: answers with their sources") as demo:
        gr.Markdown("## citeqa\nAsk about the documents. Every answer quotes the exact passages it stands on; "
                    "when the documents do not say, it tells you so.")
        citations = gr.State([])
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=320):
                chatbot = gr.Chatbot(label="Conversation", elem_id="chat", height=520, feedback_options=None,
                                     buttons=["copy"], placeholder="Ask a question to start.")
                question = gr.Textbox(placeholder="Ask about the documents… (Enter to send)", show_label=False,
                                      lines=1, max_lines=4, max_length=2000, elem_id="question", autofocus=True)
                with gr.Row():
                    send = gr.Button("Ask", variant="primary", elem_id="ask")
                    clear = gr.Button("Clear chat", elem_id="clear")
                gr.Examples(EXAMPLES, inputs=question, label="Try")
            with gr.Column(scale=2, min_width=300):
                gr.Markdown(documents_markdown(qa.sources()), elem_id="documents")
                picker = gr.Radio(label="Citations of the latest answer", choices=[], visible=False,
                                  elem_id="citation-picker")
                panel = gr.HTML(show(citations=[], chosen=None), elem_id="source-panel")

        outputs = [chatbot, question, picker, panel, citations]
        for trigger in (question.submit, send.click):
            trigger(respond, [question, chatbot], outputs, api_visibility="private").then(
                None, js=SCROLL_TO_HIGHLIGHT)
        picker.input(show, [citations, picker], panel, api_visibility="private").then(None, js=SCROLL_TO_HIGHLIGHT)
        clear.click(lambda: ([], "", gr.update(choices=[], value=None, visible=False), show([], None), []),
                    None, outputs, api_visibility="private")

        def ask(question: str, history: list[dict] | None = None) -> dict:
            """Answer `question` (with optional `history` of {role, content} turns) as the /api/ask JSON."""
            try:
                return qa.invoke(question, history or []).to_dict()
            except (QuestionError, StoreUnavailable) as error:
                raise gr.Error(str(error)) from None

        gr.api(ask, api_name="ask")
    demo.queue(default_concurrency_limit=4)
    return demo

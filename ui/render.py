"""HTML and Markdown for the chat: everything from a user or a document is escaped before it is shown."""

from __future__ import annotations

import html
import re

from index.text import counted
from qa.answer import Answer, Citation, ShortAnswer


def answer_markdown(answer: Answer) -> str:
    """The chat bubble: the answer first (its short answer in bold), each quote once with its `[n]`, then where each
    citation stands. An extractive answer is made of its quotes, so they are not printed again below it. Every
    `[n]` is a link the page turns into opening that citation in the source panel."""
    if not answer.grounded:
        return f"*{html.escape(answer.answer)}*"
    short = answer.short_answer
    text = html.escape(answer.answer)
    if short and answer.answer.startswith(short.text):
        text = f"**{html.escape(short.text)}**{html.escape(answer.answer[len(short.text):])}"
    ids = {c.id for c in answer.citations}
    text = re.sub(r"\[(\d+)\]", lambda m: cite_link(int(m[1])) if int(m[1]) in ids else m[0], text)
    quoted = answer.mode == "extractive" or answer.mode.endswith("-fallback")
    where = "  \n".join(f"<small>**{cite_link(c.id)}** {'' if quoted else '“' + html.escape(c.quote) + '” · '}"
                         f"{html.escape(c.source)} · characters {c.start}–{c.end}</small>" for c in answer.citations)
    return f"{text}\n\n{where}\n\n<small>{how(answer.mode)}</small>"


def cite_link(number: int) -> str:
    return f"[\\[{number}\\]](#cite-{number})"


def how(mode: str) -> str:
    """One line on how the answer was made, so a reader knows what to trust it for."""
    if mode == "extractive":
        return "Quoted from the documents."
    if mode.endswith("-fallback"):
        return "Quoted from the documents (the language model's answer did not pass the check)."
    return f"Written by the {html.escape(mode)} language model; its names and numbers were checked against the quotes."


def source_html(source: str, text: str, citations: list[Citation], chosen: int | None = None,
                short: ShortAnswer | None = None) -> str:
    """The document with the cited spans marked, the short answer marked again inside its quote; the chosen
    citation (or the first) is the one scrolled to."""
    spans = sorted((c for c in citations if c.source == source), key=lambda c: c.start)
    short = short if short and short.source == source else None
    pieces, cursor = [], 0
    for c in spans:
        start = max(c.start, cursor)
        if start >= c.end:
            continue
        focus = " focus" if c.id == chosen or (chosen is None and c is spans[0]) else ""
        pieces += [html.escape(text[cursor:start]),
                   f'<mark class="cite{focus}" data-cite="{c.id}" title="[{c.id}]">'
                   f'<sup>[{c.id}]</sup>{marked(text, start, c.end, short)}</mark>']
        cursor = c.end
    pieces.append(html.escape(text[cursor:]))
    title = f'<div class="source-title">{html.escape(source)}</div>'
    body = f'<div class="source-text" id="source-text" data-source="{html.escape(source)}">{"".join(pieces)}</div>'
    return title + body


def marked(text: str, start: int, end: int, short: ShortAnswer | None) -> str:
    """`text[start:end]` escaped, with the short answer in its own mark when it lies inside."""
    if short is None or not (start <= short.start and short.end <= end):
        return html.escape(text[start:end])
    return (f'{html.escape(text[start:short.start])}<mark class="short">{html.escape(text[short.start:short.end])}'
            f'</mark>{html.escape(text[short.end:end])}')


def documents_markdown(sources: list[dict]) -> str:
    rows = "\n".join(f"- `{html.escape(s['source'])}` · {counted(s['chars'], 'character')} · "
                     f"{counted(s['chunks'], 'chunk')}"
                     for s in sources)
    return f"**Indexed documents**\n\n{rows or '*none yet: add files below or run `citeqa index`*'}"


def added_markdown(source: str, chars: int, chunks: int, replaced: bool) -> str:
    """One uploaded file's result line; says when it took the place of a document of the same name."""
    note = " It replaced the document of the same name." if replaced else ""
    return f"- **Indexed** {html.escape(source)}: {counted(chars, 'character')}, {counted(chunks, 'chunk')}.{note}"


def refused_markdown(name: str, reason: str) -> str:
    """A refused file's line, naming the file once (a reason about the file itself already starts with its name)."""
    return f"- **Refused** {html.escape(reason if reason.startswith(name) else f'{name}: {reason}')}"

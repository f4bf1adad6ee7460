from qa.answer import NOT_IN_DOCUMENTS, Answer, Citation, ShortAnswer
from ui.chat import plain_history
from ui.render import answer_markdown, documents_markdown, source_html

TEXT = "Alpha <b>bold</b>. Beta <script>alert(1)</script> gamma."


def test_source_html_marks_spans_and_escapes_the_document():
    citations = [Citation(1, "a.txt", 0, 18, TEXT[0:18], 1.0), Citation(2, "a.txt", 19, 49, TEXT[19:49], 0.5)]
    rendered = source_html("a.txt", TEXT, citations, chosen=2)
    assert "<script>" not in rendered and "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered
    assert rendered.count("<mark") == 2 and 'class="cite focus" data-cite="2"' in rendered
    assert '<mark class="cite" data-cite="1" title="[1]"><sup>[1]</sup>Alpha &lt;b&gt;bold&lt;/b&gt;.</mark>' \
        in rendered


def test_answer_markdown_escapes_quotes_prints_each_once_and_marks_abstention():
    answer = Answer("Beta <script>alert(1)</script> [1]", True, [Citation(1, "a.txt", 19, 49, TEXT[19:49], 1.0)])
    shown = answer_markdown(answer)
    assert "<script>" not in shown and "a.txt · characters 19–49" in shown
    assert shown.count("[\\[1\\]](#cite-1)") == 2  # after the quote and before its place: links the page opens
    assert shown.count("alert(1)") == 1  # the extractive answer is its quote: not printed a second time
    assert shown.endswith("<small>Quoted from the documents.</small>")
    assert answer_markdown(Answer.abstain()) == f"*{NOT_IN_DOCUMENTS}*"
    assert "did not pass the check" in answer_markdown(Answer("x [1]", True, answer.citations, "extractive-fallback"))
    generated = answer_markdown(Answer("x [1]", True, answer.citations, "local"))
    assert "local language model" in generated and generated.count("alert(1)") == 1  # the quote, below the text


def test_documents_list_and_history_round_trip():
    assert "`a.txt` · 1,234 characters · 3 chunks" in documents_markdown([{"source": "a.txt", "chars": 1234,
                                                                            "chunks": 3}])
    history = [{"role": "user", "content": [{"type": "text", "text": "&lt;b&gt; Who?"}]},
               {"role": "assistant", "content": "It"}]
    assert plain_history(history) == [{"role": "user", "content": "<b> Who?"}, {"role": "assistant", "content": "It"}]


def test_the_short_answer_comes_first_in_bold_and_is_marked_inside_its_quote():
    quote = Citation(1, "a.txt", 19, 49, TEXT[19:49], 1.0)
    at = TEXT.index("alert(1)")
    short = ShortAnswer("alert(1)", "a.txt", at, at + 8)
    shown = answer_markdown(Answer(f"alert(1) — {quote.quote} [1]", True, [quote], short_answer=short))
    assert shown.startswith("**alert(1)** — Beta &lt;script&gt;alert(1)&lt;/script&gt; [\\[1\\]](#cite-1)\n\n")
    rendered = source_html("a.txt", TEXT, [quote], short=short)
    assert '<sup>[1]</sup>Beta &lt;script&gt;<mark class="short">alert(1)</mark>&lt;/script&gt;</mark>' in rendered

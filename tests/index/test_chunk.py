from hypothesis import given, settings
from hypothesis import strategies as st

from index.chunk import chunk_sentences
from index.segment import sentences
from index.text import normalize

TEXT = "One. Two.\n\nRecommended Videos\n\nThree. Four.\n\nFive."


def test_windows_of_whole_sentences_cross_paragraphs_and_skip_furniture():
    chunks = chunk_sentences(TEXT, sentences(TEXT, "t.txt"), size=2, overlap=1)
    assert [c.text for c in chunks] == ["One. Two.", "Two. Three.", "Three. Four.", "Four. Five."]
    second = chunks[1]
    assert (second.span.start, second.span.end) == (TEXT.index("Two."), TEXT.index("Three.") + len("Three."))
    assert [TEXT[s.start:s.end] for s in second.sentences] == ["Two.", "Three."]
    assert len({c.id for c in chunks}) == len(chunks)


def test_a_short_text_is_one_chunk():
    chunks = chunk_sentences("Only one.", sentences("Only one."), size=4, overlap=2)
    assert [c.text for c in chunks] == ["Only one."]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["Alpha beta.", "“Gamma” delta?", "NIAMEYNiger’s day.", "\n\n", " "]), max_size=25),
       st.integers(1, 5), st.integers(0, 4))
def test_every_content_sentence_is_in_a_chunk_and_chunks_are_exact(pieces, size, overlap):
    text = "".join(pieces)
    found = [s for s in sentences(text) if not s.furniture]
    chunks = chunk_sentences(text, found, size=size, overlap=min(overlap, size - 1))
    covered = {span for c in chunks for span in c.sentences}
    assert covered == {s.span for s in found}
    for c in chunks:
        assert c.span.start == c.sentences[0].start and c.span.end == c.sentences[-1].end
        assert c.text == normalize(" ".join(text[s.start:s.end] for s in c.sentences))

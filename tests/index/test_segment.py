from hypothesis import given, settings
from hypothesis import strategies as st

from index.segment import paragraphs, sentences
from index.text import normalize, terms
from tests.conftest import ARTICLE

TRICKY = st.sampled_from(["Gen. ", "U.S. ", "Mr. Smith. ", "“Quote.” ", "‘x’ ", "... ", "… ", "\n\n", "\n", ". ",
                          "? ", "! ", "(AP Photo/X) ", "NIAMEYNiger’s ", "Aug. 3, 2023. ", "Recommended Videos\n"])
TEXT = st.lists(st.one_of(st.text(min_size=0, max_size=12), TRICKY), max_size=30).map("".join)


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_every_sentence_is_an_exact_trimmed_slice_in_order(text):
    found = sentences(text, "doc.txt")
    cursor = 0
    for sentence in found:
        span = sentence.span
        piece = text[span.start:span.end]
        assert piece and piece == piece.strip()
        assert cursor <= span.start < span.end <= len(text)
        cursor = span.end


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_sentences_cover_every_visible_character(text):
    covered = set()
    for sentence in sentences(text):
        covered.update(range(sentence.span.start, sentence.span.end))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())


def split(text):
    return [text[s.span.start:s.span.end] for s in sentences(text)]


def test_abbreviations_and_initials_do_not_end_sentences():
    text = "A coup leader, Gen. Salifou Mody, went. The U.S. has 1,100 personnel. On Aug. 3, 2023, they marched."
    assert split(text) == ["A coup leader, Gen. Salifou Mody, went.", "The U.S. has 1,100 personnel.",
                           "On Aug. 3, 2023, they marched."]


def test_quotes_ellipses_and_no_trailing_newline():
    text = "“Coups are no longer appropriate ... It’s time to end it,” she said. “Really?” he asked"
    assert split(text) == ["“Coups are no longer appropriate ... It’s time to end it,” she said.",
                           "“Really?” he asked"]


def test_paragraphs_are_runs_of_lines_trimmed():
    text = "  First line\nsame paragraph.\n\n\n Second.  \n"
    assert [text[s:e] for s, e in paragraphs(text)] == ["First line\nsame paragraph.", "Second."]


def test_furniture_is_flagged_by_rule_not_by_listing():
    text = ("A headline without a full stop\n\nThe story starts here. (AP Photo/Jane Doe) (Jane Doe, Copyright 2023 "
            "The Associated Press. All rights reserved.)\n\nRecommended Videos\n\nREAD MORE: Another story\n\n"
            "Related Stories\n\nThe end.")
    flagged = {text[s.span.start:s.span.end]: s.furniture for s in sentences(text)}
    assert flagged == {
        "A headline without a full stop": False,
        "The story starts here.": False,
        "(AP Photo/Jane Doe) (Jane Doe, Copyright 2023 The Associated Press. All rights reserved.)": True,
        "Recommended Videos": True,
        "READ MORE: Another story": True,
        "Related Stories": True,
        "The end.": False,
    }


def test_seed_article_furniture_and_dateline():
    text = ARTICLE.read_text(encoding="utf-8")
    found = sentences(text, ARTICLE.name)
    furniture = [text[s.span.start:s.span.end] for s in found if s.furniture]
    assert furniture == ["(AP Photo/Sam Mednick) (Sam Mednick, Copyright 2023 The Associated Press. "
                         "All rights reserved.)", "Recommended Videos", "Recommended Videos"]
    dateline = next(s for s in found if text[s.span.start:].startswith("NIAMEY"))
    assert dateline.span.start == text.index("NIAMEY") and text[dateline.span.start - 1] == "\n"
    assert "niger" in terms(text[dateline.span.start:dateline.span.end])
    assert normalize("NIAMEYNiger’s new junta").startswith("NIAMEY Niger's")


def test_markdown_lists_and_headings_are_read_line_by_line():
    text = ("# Flood report\n\nThe river rose on Monday. Officials said:\n- 3,000 people were moved\n"
            "- Two bridges closed\n\n## Background\n\nImage caption: A flooded street\n\nRains began in May.")
    assert [(text[s.span.start:s.span.end], s.furniture) for s in sentences(text)] == [
        ("# Flood report", False), ("The river rose on Monday.", False), ("Officials said:", False),
        ("- 3,000 people were moved", False), ("- Two bridges closed", False), ("## Background", True),
        ("Image caption: A flooded street", True), ("Rains began in May.", False)]

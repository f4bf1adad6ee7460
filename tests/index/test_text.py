import pytest
from hypothesis import given
from hypothesis import strategies as st

from index.text import counted, normalize, stem, terms, token_terms, token_words, words


def test_quotes_dashes_and_datelines_normalize():
    assert normalize("“It’s” — NIAMEYNiger") == "\"It's\" - NIAMEY Niger"


@given(st.text())
def test_normalize_never_changes_letters(text):
    assert [c for c in normalize(text) if c.isalnum()] == [c for c in text.translate({0xA0: " "}) if c.isalnum()]


def test_numbers_stay_whole_and_words_fold():
    assert words("France has 1,500 soldiers; Niger’s junta.") == ["france", "has", "1500", "soldiers", "niger",
                                                                  "s", "junta"]


def test_stems_meet_halfway():
    assert stem("leads") == stem("leader") == "lead"
    assert stem("neighbours") == stem("neighbors")
    assert stem("contributed") == stem("contributes")


def test_terms_drop_stopwords_and_add_acronyms():
    assert terms("Which AP writers contributed?") == ["ap", "writ", "contribut"]
    assert "ap" in terms("Associated Press writers")
    assert terms("the Economic Community of West African States")[-1] == "ecwas"


@given(st.text())
def test_a_token_reads_as_its_text_does(text):
    """The remembered per-token forms are the functions' own results, for any token of any text."""
    for token in normalize(text).split():
        assert token_terms(token) == frozenset(terms(token)) and token_words(token) == tuple(words(token))


@pytest.mark.parametrize(("number", "noun", "said"), [(1, "file", "1 file"), (0, "chunk", "0 chunks"),
                                                      (2, "file", "2 files"), (1234, "character", "1,234 characters")])
def test_counted_puts_the_noun_in_the_right_number(number, noun, said):
    assert counted(number, noun) == said

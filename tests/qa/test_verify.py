import logging

from qa.answer import Answer, Citation, ShortAnswer
from qa.verify import verify

TEXTS = {"a.txt": "France has 1,500 soldiers in Niger. The U.S. has 1,100."}


def test_verbatim_citations_pass_untouched():
    answer = Answer("France has 1,500 soldiers in Niger [1]", True,
                    [Citation(1, "a.txt", 0, 34, "France has 1,500 soldiers in Niger", 1.0)])
    assert verify(answer, TEXTS) is answer


def test_a_citation_that_does_not_match_is_dropped_and_logged(caplog):
    answer = Answer("France has 1,500 soldiers in Niger. [1] The U.S. has 1,200. [2]", True,
                    [Citation(1, "a.txt", 0, 34, "France has 1,500 soldiers in Niger", 1.0),
                     Citation(2, "a.txt", 36, 55, "The U.S. has 1,200.", 0.9)])
    with caplog.at_level(logging.ERROR):
        checked = verify(answer, TEXTS)
    assert [c.id for c in checked.citations] == [1]
    assert checked.answer == "France has 1,500 soldiers in Niger. [1]"
    assert "not verbatim" in caplog.text


def test_nothing_verbatim_left_means_abstaining():
    answer = Answer("Made up [1]", True, [Citation(1, "gone.txt", 0, 4, "Made", 1.0)])
    checked = verify(answer, TEXTS)
    assert (checked.grounded, checked.citations) == (False, [])


def test_a_short_answer_stays_only_when_verbatim_and_inside_a_kept_citation(caplog):
    quote = Citation(1, "a.txt", 0, 34, "France has 1,500 soldiers in Niger", 1.0)
    good = ShortAnswer("1,500", "a.txt", 11, 16)
    assert verify(Answer("France has 1,500 soldiers in Niger [1]", True, [quote], short_answer=good), TEXTS) \
        .short_answer == good
    with caplog.at_level(logging.ERROR):
        for bad in (ShortAnswer("1,100", "a.txt", 11, 16), ShortAnswer("1,100", "a.txt", 49, 54)):
            checked = verify(Answer("France has 1,500 soldiers in Niger [1]", True, [quote], short_answer=bad), TEXTS)
            assert checked.short_answer is None and checked.citations == [quote]
    assert caplog.text.count("dropped a short answer") == 2

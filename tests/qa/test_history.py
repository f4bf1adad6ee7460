import pytest

from qa.answer import Turn
from qa.history import HistoryError, content_text, follow_up_context, turns


def test_gradio_and_plain_contents_read_the_same():
    assert content_text([{"type": "text", "text": "Who is"}, {"type": "text", "text": "Nasr?"}]) == "Who is Nasr?"
    assert content_text({"type": "text", "text": "Hi"}) == "Hi"
    assert turns([{"role": "user", "content": [{"type": "text", "text": "Q"}]},
                  {"role": "assistant", "content": "A"}]) == [Turn("user", "Q"), Turn("assistant", "A")]


@pytest.mark.parametrize("bad", [[{"role": "system", "content": "x"}], [{"content": "x"}], ["just text"],
                                 [{"role": "user", "content": 3}]])
def test_malformed_history_is_refused(bad):
    with pytest.raises(HistoryError, match=r"history\[0\]"):
        turns(bad)


def test_follow_up_leans_on_the_previous_turns_only_when_it_needs_to():
    history = [Turn("user", "Who is Wassim Nasr?"),
               Turn("assistant", "Wassim Nasr is a journalist at the Soufan Center.")]
    assert follow_up_context("What did he say about Tchiani?", history) == "Who is Wassim Nasr? Soufan Center"
    assert follow_up_context("How many French soldiers are in Niger?", history) == ""
    assert follow_up_context("What did he say?", []) == ""

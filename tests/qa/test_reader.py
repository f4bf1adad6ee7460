"""The reader's input and output plumbing: what the model reads, and how logits become a span of the sentence."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer

from index.embed import default_model_path
from qa.reader import MAX_ANSWER_TOKENS, MAX_TOKENS, Candidate, best_spans, encode

TOKENIZER = Tokenizer.from_file(str(default_model_path() / "tokenizer.json"))
TOKENIZER.no_padding()
TOKENIZER.no_truncation()


def test_a_pair_is_question_then_context_then_sentence():
    sentence = "France has 1,500 soldiers in Niger."
    batch = encode(TOKENIZER, "How many soldiers?", [Candidate(sentence, "Paris said so.")])
    tokens = [TOKENIZER.id_to_token(i) for i in batch.ids[0] if i]
    assert tokens[0] == "[CLS]" and tokens.count("[SEP]") == 3 and tokens[-1] == "[SEP]"
    assert tokens[1:5] == ["how", "many", "soldiers", "?"]
    spans = [sentence[a:b] for (a, b), inside in zip(batch.offsets[0], batch.answerable[0], strict=True) if inside]
    assert spans == ["France", "has", "1", ",", "500", "soldiers", "in", "Niger", "."]
    assert batch.types[0, :6].tolist() == [0] * 6 and batch.types[0, 6] == 1


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=300), st.text(max_size=200), st.text(min_size=1, max_size=400))
def test_offsets_always_point_into_the_sentence(question, context, sentence):
    batch = encode(TOKENIZER, question, [Candidate(sentence, context), Candidate("Short one.")])
    assert batch.ids.shape[1] <= MAX_TOKENS
    for row, text in enumerate((sentence, "Short one.")):
        inside = batch.offsets[row][batch.answerable[row]]
        assert ((inside >= 0) & (inside <= len(text))).all()
        assert (np.diff(inside[:, 0]) >= 0).all() and (inside[:, 0] <= inside[:, 1]).all()


def test_the_best_span_stays_inside_the_sentence_and_short():
    start = np.array([[9.0, 1.0, 5.0, 0.0, 0.0]])
    end = np.array([[9.0, 0.0, 0.0, 4.0, 0.0]])
    answerable = np.array([[False, True, True, True, True]])  # token 0 is the question: never an answer
    first, last, score = best_spans(start, end, answerable)
    assert (first[0], last[0], score[0]) == (2, 3, 9.0)
    wide = np.zeros((1, MAX_ANSWER_TOKENS + 5))
    wide[0, 0], wide[0, -1] = 5.0, 5.0
    first, last, _ = best_spans(wide, wide[:, ::-1].copy(), np.ones_like(wide, bool))
    assert last[0] - first[0] < MAX_ANSWER_TOKENS


def test_a_sentence_reads_the_same_whatever_is_read_beside_it():
    """Pairs run alone: in one padded int8 batch a pair's logits moved with its neighbours (activations are
    quantized with one scale per run), so the same sentence could rank differently in another shortlist."""
    from qa.reader import load_reader

    reader = load_reader()
    question = "Who finished the Quillon observatory?"
    target = Candidate("The observatory was finished in 1911 by the engineer Ada Brunel.", "It stands on Mount Harrow.")
    others = [Candidate("Its dome is 14 metres wide, and the road to it was paved much later, in the 1950s, "
                        "after a long campaign by the town council and the regional press."),
              Candidate("Visitors come in summer.")]
    alone = reader.read(question, [target])[0]
    beside = reader.read(question, [*others, target])[2]
    assert beside == alone
    assert 0 <= alone.start < alone.end <= len(target.sentence)

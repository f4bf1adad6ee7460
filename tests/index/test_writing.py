"""Writing plans: only rows new to the store are embedded, rows a document no longer has are removed."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from index.load import load_sources
from index.pipeline import Indexer
from index.spans import SourceText
from index.writing import mean_direction
from tests.conftest import ARTICLE


def test_an_unchanged_document_plans_nothing_and_an_edited_one_only_its_changes(store):
    indexer = Indexer(store)
    indexer.run([ARTICLE])
    doc = load_sources([ARTICLE])[0]
    same = indexer.prepare(doc)
    [plan] = store.writer.plans([(same.doc, same.chunks, same.sentences)])
    assert plan.to_embed == 0 and not plan.stale_chunks and not plan.stale_sentences
    cut = doc.text.index("\n\n") + 2  # the first paragraph gone: its rows stale, the rest kept where unchanged
    edited = indexer.prepare(SourceText(doc.source, doc.text[cut:]))
    [plan] = store.writer.plans([(edited.doc, edited.chunks, edited.sentences)])
    assert plan.stale_sentences and plan.new_sentences and plan.chunks == len(edited.chunks)
    assert len(plan.new_sentences) == len(edited.sentences)  # every offset moved: each sentence is a new row


@given(st.lists(st.lists(st.floats(-1, 1, allow_nan=False), min_size=3, max_size=3), min_size=1, max_size=5))
def test_a_chunk_direction_is_a_unit_vector_or_zero(vectors):
    units = [np.asarray(v) / (np.linalg.norm(v) or 1.0) for v in vectors]
    direction = mean_direction(units)
    norm = float(np.linalg.norm(direction))
    assert abs(norm - 1.0) < 1e-4 or norm < 1e-4

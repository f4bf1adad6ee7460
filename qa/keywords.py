"""Keyword search: Lucene's BM25 over each chunk's terms, kept as a sparse chunk × term count matrix so that a
refresh edits it (drops the changed documents' rows, appends their new ones) instead of building it again.

bm25s, used before, stores final scores and can only be rebuilt whole: 7.8 of the 12 s a one-document refresh took
at 100k chunks. Counts do not depend on the rest of the collection; the collection-wide parts (document frequency,
average length) are a column count and a mean, recomputed in C (scipy) after each edit.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from index.snapshot import stacked

# Lucene's defaults, as bm25s used them (k1: how fast repeats of a term stop counting; b: length normalization).
K1 = 1.5
B = 0.75


class KeywordIndex:
    """BM25 scores of every chunk for a query's terms; a query costs its terms' postings, not a pass over chunks."""

    def __init__(self, term_ids: dict[str, int], counts: sparse.csr_matrix):
        self.term_ids = term_ids  # term → column; grown by `merged`, never renumbered
        self.counts = counts  # chunk × term occurrences, the rows in the chunk table's order
        chunks = counts.shape[0]
        lengths = np.asarray(counts.sum(axis=1), dtype=np.float32).reshape(-1)
        by_term = counts.tocsc()
        by_term.sort_indices()
        frequency = np.diff(by_term.indptr).astype(np.float32)  # chunks holding each term
        idf = np.log1p((chunks - frequency + 0.5) / (frequency + 0.5))
        norm = K1 * (1 - B + B * lengths / max(float(lengths.mean()) if chunks else 1.0, 1e-9))
        tf = by_term.data.astype(np.float32)
        column = np.repeat(np.arange(by_term.shape[1]), np.diff(by_term.indptr))
        self._first, self._rows = by_term.indptr, by_term.indices
        self._weights = (idf[column] * tf / (norm[self._rows] + tf)).astype(np.float32)

    @classmethod
    def build(cls, tokenized: list[list[str]]) -> KeywordIndex:
        term_ids: dict[str, int] = {}
        return cls(term_ids, _counts(tokenized, term_ids))

    def __len__(self) -> int:
        return self.counts.shape[0]

    def __contains__(self, term: str) -> bool:
        """Whether some chunk has the term (a term whose chunks were all removed keeps its column, empty)."""
        column = self.term_ids.get(term)
        return column is not None and self._first[column + 1] > self._first[column]

    def scores(self, tokens: list[str]) -> np.ndarray:
        """Every chunk's BM25 for the tokens (a token repeated counts again); zeros where none is indexed."""
        columns = [self.term_ids[t] for t in tokens if t in self.term_ids]
        if not columns:
            return np.zeros(len(self), dtype=np.float32)
        postings = [slice(self._first[c], self._first[c + 1]) for c in columns]
        rows = np.concatenate([self._rows[p] for p in postings])
        weights = np.concatenate([self._weights[p] for p in postings])
        return np.bincount(rows, weights=weights, minlength=len(self)).astype(np.float32)

    def merged(self, origin: np.ndarray, fresh: list[list[str]]) -> KeywordIndex:
        """The index of a merged chunk table: row i of it comes from row `origin[i]` of this one when that is
        ≥ 0, else from `fresh[-1 - origin[i]]` (the origins `index.snapshot.merged` gives). This index is left as
        it was: a question still answering from it reads it unchanged."""
        term_ids = dict(self.term_ids)
        added = _counts(fresh, term_ids)
        old = self.counts.copy()
        old.resize(old.shape[0], len(term_ids))
        both = sparse.vstack([old, added], format="csr")
        return KeywordIndex(term_ids, both[stacked(origin, len(self))])


def _counts(tokenized: list[list[str]], term_ids: dict[str, int]) -> sparse.csr_matrix:
    """Rows of term counts, numbering terms not seen before after the others (in `term_ids`, which grows)."""
    lengths = np.fromiter(map(len, tokenized), np.int64, len(tokenized))
    columns = np.fromiter((term_ids.setdefault(t, len(term_ids)) for doc in tokenized for t in doc), np.int64,
                          int(lengths.sum()))
    rows = np.repeat(np.arange(len(tokenized)), lengths)
    counts = sparse.csr_matrix((np.ones(len(columns), dtype=np.float32), (rows, columns)),
                               shape=(len(tokenized), len(term_ids)))
    counts.sum_duplicates()
    return counts

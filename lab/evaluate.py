"""Runs a gold question file through the chain and measures it, as `eval/score.py` does over HTTP."""

from __future__ import annotations

import hashlib
import json
import re
import statistics
import string
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from index.embed import model_name
from qa.answer import Answer
from qa.chain import CitedQA
from qa.settings import Settings

SHORT_CHARS = 300


def fold(text: str) -> str:
    text = text.casefold().translate(str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'}))
    return re.sub(r"\s+", " ", re.sub(r"(?<=\d),(?=\d)", "", text)).strip()


@dataclass
class Report:
    answerable: int = 0
    correct: int = 0
    short: int = 0
    cited: int = 0
    false_abstain: int = 0
    unanswerable: int = 0
    abstain_ok: int = 0
    not_verbatim: int = 0
    retrieved: int = 0
    short_exact: float = 0.0
    short_f1: float = 0.0
    latencies: list[float] = field(default_factory=list)
    answer_chars: list[int] = field(default_factory=list)  # each answerable question's answer, markers aside
    first_tokens: list[float] = field(default_factory=list)
    modes: Counter = field(default_factory=Counter)
    misses: list[str] = field(default_factory=list)

    def rates(self) -> dict[str, float]:
        answerable, unanswerable = max(1, self.answerable), max(1, self.unanswerable)
        return {"accuracy": self.correct / answerable, "short": self.short / answerable,
                "cited": self.cited / answerable, "abstain_ok": self.abstain_ok / unanswerable,
                "false_abstain": self.false_abstain / answerable, "retrieval_recall": self.retrieved / answerable}

    def sa_em(self) -> float:
        return self.short_exact / max(1, self.answerable)

    def sa_f1(self) -> float:
        return self.short_f1 / max(1, self.answerable)

    def median_chars(self) -> int:
        """The median answer's length in characters, `[n]` markers aside: what `cited` costs in reading."""
        return round(statistics.median(self.answer_chars)) if self.answer_chars else 0

    def p50(self) -> float:
        return round(statistics.median(self.latencies), 1) if self.latencies else 0.0

    def summary(self) -> str:
        rates = " ".join(f"{name} {value:.3f}" for name, value in self.rates().items())
        line = (f"{rates} sa_em {self.sa_em():.3f} sa_f1 {self.sa_f1():.3f} not_verbatim {self.not_verbatim} "
                f"cases {self.answerable + self.unanswerable} answer_chars {self.median_chars()} "
                f"{percentiles('', self.latencies)}")
        if self.first_tokens:
            modes = ",".join(f"{mode}:{count}" for mode, count in sorted(self.modes.items()))
            line += f" {percentiles('first_token_', self.first_tokens)} modes {modes}"
        return line


def percentiles(prefix: str, values: list[float]) -> str:
    ordered = sorted(values) or [0.0]
    return (f"{prefix}p50_ms {statistics.median(ordered):.1f} "
            f"{prefix}p95_ms {ordered[int(0.95 * (len(ordered) - 1))]:.1f}")


def separate_store(settings: Settings, docs: Path) -> Settings:
    """Settings for an embedded store of its own for `docs` and the embedding model, kept between runs (only changes
    re-embed; runs with another model keep their own)."""
    identity = f"{docs.resolve()}\n{model_name(settings.index.embedding_model)}"
    key = hashlib.sha1(identity.encode()).hexdigest()[:10]
    index = settings.index.model_copy(update={"data_dir": settings.index.data_dir / "eval" / key, "chroma_url": None})
    return settings.model_copy(update={"index": index})


def squad_normal(text: str) -> list[str]:
    """SQuAD's answer normalization: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in string.punctuation)
    return re.sub(r"\b(a|an|the)\b", " ", text).split()


def squad_f1(predicted: str, gold: str) -> float:
    p, g = squad_normal(predicted), squad_normal(gold)
    common = sum((Counter(p) & Counter(g)).values())
    if not p or not g or not common:
        return float(p == g)
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def load_cases(path: Path) -> list[dict]:
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                case = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not JSON ({error.msg})") from None
            if not isinstance(case, dict) or not isinstance(case.get("question"), str):
                raise ValueError(f"{path}:{number}: needs a \"question\" string")
            cases.append(with_evidence(case))
    return cases


def with_evidence(case: dict) -> dict:
    """A case in either gold format: eval's (`evidence_spans`) or the training files' (`answer_spans`)."""
    if "evidence_spans" in case or "answer_spans" not in case:
        return case
    return {**case, "evidence_spans": case["answer_spans"],
            "answers": [] if case.get("unanswerable") else case.get("answers", [])}


def score(qa: CitedQA, cases: list[dict], texts: dict[str, str], warmup: int = 3,
          by: str | None = None) -> tuple[Report, list, dict[str, Report]]:
    """Every case once (after a few warm-up questions); also returns each (case, answer) for inspection, and with
    `by` (a case field such as "kind" or "genre") a report per value of that field."""
    for case in cases[:warmup]:
        qa.invoke(case["question"], case.get("history"))
    report, answers, groups = Report(), [], {}
    for case in cases:
        answer = qa.invoke(case["question"], case.get("history"))
        answers.append((case, answer))
        retrieved = bool(case.get("answers")) and evidence_retrieved(qa, case)
        for target in [report] + ([groups.setdefault(str(case.get(by, "?")), Report())] if by else []):
            _tally(target, case, answer, retrieved, texts)
    return report, answers, dict(sorted(groups.items()))


def evidence_retrieved(qa: CitedQA, case: dict) -> bool:
    """Whether one retrieved chunk holds a whole gold evidence span: the ceiling for span selection."""
    found = qa.retrieval.invoke({"question": case["question"], "history": case.get("history")})
    return any(c.span.start <= s and e <= c.span.end for c, _ in found.chunks
               for s, e in case.get("evidence_spans", []))


def _tally(report: Report, case: dict, answer: Answer, retrieved: bool, texts: dict[str, str]) -> None:
    report.retrieved += retrieved
    report.latencies.append(answer.timing_ms["total"])
    report.modes[answer.mode] += 1
    if "first_token" in answer.timing_ms:
        report.first_tokens.append(answer.timing_ms["first_token"])
    report.not_verbatim += sum(texts.get(c.source, "")[c.start:c.end] != c.quote for c in answer.citations)
    label = f"{case.get('id', '?')} {case['question']!r}"
    if not case.get("answers"):
        report.unanswerable += 1
        ok = not answer.grounded and not answer.citations
        report.abstain_ok += ok
        if not ok:
            report.misses.append(f"{label}: should abstain, said {answer.answer[:160]!r}")
        return
    report.answerable += 1
    correct = any(fold(alias) in fold(answer.answer) for alias in case["answers"])
    doc = case.get("doc")
    cited = any((doc is None or Path(c.source).name == Path(doc).name) and c.start < e and s < c.end
                for c in answer.citations for s, e in case.get("evidence_spans", []))
    length = len(re.sub(r"\s*\[\d+\]", "", answer.answer))
    report.answer_chars.append(length)
    report.correct += correct
    short = answer.short_answer
    if short is not None and answer.grounded:
        report.short_exact += max(float(squad_normal(short.text) == squad_normal(a)) for a in case["answers"])
        report.short_f1 += max(squad_f1(short.text, a) for a in case["answers"])
    report.short += correct and length <= SHORT_CHARS
    report.cited += cited
    report.false_abstain += not answer.grounded
    if not (correct and cited):
        why = ("" if correct else "wrong answer ") + ("" if cited else "uncited")
        report.misses.append(f"{label}: {why.strip()}: {answer.answer[:160]!r}")

import json

import pytest

from lab.evaluate import fold, load_cases, score


def test_fold_matches_the_scorer():
    assert fold("France has 1,500 “soldiers”  in Niger’s") == 'france has 1500 "soldiers" in niger\'s'


def test_bad_gold_lines_are_named(tmp_path):
    gold = tmp_path / "qa.jsonl"
    gold.write_text('{"question": "ok?"}\nnot json\n', encoding="utf-8")
    with pytest.raises(ValueError, match="qa.jsonl:2"):
        load_cases(gold)


def test_report_counts_answers_abstentions_and_misses(seed_qa, tmp_path):
    cases = [{"id": "a", "kind": "number", "question": "How many French soldiers are in Niger?", "answers": ["1,500"],
              "evidence_spans": [[5418, 5452]]},
             {"id": "b", "kind": "unanswerable", "question": "What is the population of Niger?", "answers": []},
             {"id": "c", "kind": "number", "question": "How many French soldiers are in Niger?", "answers": ["2,000"],
              "evidence_spans": [[6938, 6956]]}]
    gold = tmp_path / "qa.jsonl"
    gold.write_text("\n".join(json.dumps(c) for c in cases), encoding="utf-8")
    report, _, kinds = score(seed_qa, load_cases(gold), seed_qa.texts, warmup=0, by="kind")
    assert (report.answerable, report.correct, report.cited, report.unanswerable, report.abstain_ok) == \
        (2, 1, 1, 1, 1)
    assert report.retrieved == 1
    assert len(report.misses) == 1 and report.misses[0].startswith("c ")
    assert report.summary().startswith("accuracy 0.500 short 0.500 cited 0.500 abstain_ok 1.000")
    assert f" answer_chars {report.median_chars()} " in report.summary() and len(report.answer_chars) == 2
    assert {kind: (r.answerable, r.unanswerable, r.cited) for kind, r in kinds.items()} == \
        {"number": (2, 0, 1), "unanswerable": (0, 1, 0)}

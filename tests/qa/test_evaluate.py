import json

import pytest

from qa.evaluate import fold, load_cases, score


def test_fold_matches_the_scorer():
    assert fold("France has 1,500 “soldiers”  in Niger’s") == 'france has 1500 "soldiers" in niger\'s'


def test_bad_gold_lines_are_named(tmp_path):
    gold = tmp_path / "qa.jsonl"
    gold.write_text('{"question": "ok?"}\nnot json\n', encoding="utf-8")
    with pytest.raises(ValueError, match="qa.jsonl:2"):
        load_cases(gold)


def test_report_counts_answers_abstentions_and_misses(seed_qa, tmp_path):
    cases = [{"id": "a", "question": "How many French soldiers are in Niger?", "answers": ["1,500"],
              "evidence_spans": [[5418, 5452]]},
             {"id": "b", "question": "What is the population of Niger?", "answers": []},
             {"id": "c", "question": "How many French soldiers are in Niger?", "answers": ["2,000"],
              "evidence_spans": [[6938, 6956]]}]
    gold = tmp_path / "qa.jsonl"
    gold.write_text("\n".join(json.dumps(c) for c in cases), encoding="utf-8")
    report, _ = score(seed_qa, load_cases(gold), seed_qa.texts, warmup=0)
    assert (report.answerable, report.correct, report.cited, report.unanswerable, report.abstain_ok) == \
        (2, 1, 1, 1, 1)
    assert report.retrieved == 1
    assert len(report.misses) == 1 and report.misses[0].startswith("c ")
    assert report.summary().startswith("accuracy 0.500 short 0.500 cited 0.500 abstain_ok 1.000")

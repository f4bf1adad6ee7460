"""Questions about something no document mentions, made from labelled ones (`lab.absent`)."""

import json
import random
from collections import Counter

from index.text import stem, terms
from lab.absent import KIND, about_nothing, absent_questions, absent_words, main, wanted_for, word_uses

TEXTS = ["The Rhine rises in the Swiss Alps and flows to the North Sea. Barges carry coal and grain on the river.",
         "Basel is the first large city on the river. Its harbour handles coal, grain and containers."]
# Another collection: "volcano", "magma" and "lava" (three times each, in lower case) are words TEXTS never use;
# "river" is one they do, "Etna" a name, "ash" too short.
OTHER = ["The volcano sent magma and lava down the slope. The volcano is near Etna. Ash, magma and lava fell.",
         "A volcano erupts when magma rises; lava flows from it. Rivers of lava reached the river."]


def test_absent_words_are_lower_case_words_the_collection_never_uses():
    pool = absent_words(OTHER, word_uses(TEXTS))
    assert pool == ["magma", "volcano"]  # "lava" is too short; "river(s)" the collection uses; "Etna" a name
    assert not any(word_uses(TEXTS).get(stem(w)) for w in pool)


def test_the_rarest_words_are_swapped_and_the_question_becomes_unanswerable():
    question = {"id": "q1", "doc": "rhine.txt", "question": "What do barges carry on the Rhine river?",
                "answers": ["coal and grain"], "answer_spans": [[60, 74]], "unanswerable": False}
    made = about_nothing(question, ["magma", "volcano"], word_uses(TEXTS), random.Random(1))
    assert made["unanswerable"] is True and made["kind"] == KIND and made["id"] == "q1-absent"
    assert made["answers"] == [] and made["answer_spans"] == [] and made["doc"] == "rhine.txt"
    assert made["made_from"] == question["question"]
    kept = set(terms(made["question"])) & set(terms(question["question"]))
    # "barges" and "carry" (once each in TEXTS) are the rarest; "river" (twice) and the name "Rhine" stay
    assert kept == {stem("river"), stem("rhine")}
    assert all(word_uses(TEXTS).get(t) is None for t in set(terms(made["question"])) - kept)


def test_follow_ups_and_questions_with_too_few_words_make_nothing():
    uses = word_uses(TEXTS)
    follow_up = {"question": "What else do barges carry?", "history": [{"role": "user", "content": "Barges?"}]}
    assert about_nothing(follow_up, ["magma"], uses, random.Random(1)) is None
    assert about_nothing({"question": "Where is Basel?"}, ["magma"], uses, random.Random(1)) is None
    assert about_nothing({"question": "What do barges carry on the river?"}, [], uses, random.Random(1)) is None


def test_each_genre_gets_what_it_wants_the_same_every_time():
    answerable = [{"id": f"{genre}{n}", "genre": genre, "question": f"Which harbour handles coal and grain {n}?",
                   "unanswerable": False} for genre in ("news", "bio") for n in range(4)]
    questions = answerable + [{"genre": "news", "unanswerable": True}] * 2 + [{"genre": "bio", "unanswerable": True}]
    wanted = wanted_for(questions, share=1.0)
    assert wanted == {"news": 2, "bio": 1}
    made = absent_questions(answerable, wanted, TEXTS, OTHER, seed=5)
    assert Counter(q["genre"] for q in made) == {"news": 2, "bio": 1}
    assert made == absent_questions(answerable, wanted, TEXTS, OTHER, seed=5)
    assert len({q["id"] for q in made}) == 3


def test_the_command_writes_one_question_per_answerable_one(tmp_path, capsys):
    docs, other = tmp_path / "docs", tmp_path / "other"
    docs.mkdir()
    other.mkdir()
    for number, text in enumerate(TEXTS):
        (docs / f"squad_doc{number}.txt").write_text(text, encoding="utf-8")
    for number, text in enumerate(OTHER):
        (other / f"other{number}.txt").write_text(text, encoding="utf-8")
    gold = tmp_path / "qa.jsonl"
    gold.write_text("".join(json.dumps(q) + "\n" for q in [
        {"id": "a", "doc": "squad_doc0.txt", "question": "What do barges carry on the river?", "answers": ["coal"]},
        {"id": "b", "doc": "squad_doc1.txt", "question": "Which harbour handles containers?", "answers": ["Basel"]},
        {"id": "c", "doc": "squad_doc1.txt", "question": "Who built the harbour?", "answers": [],
         "unanswerable": True}]), encoding="utf-8")
    assert main([str(gold), "--docs", str(docs), "--other", str(other)]) == 0
    out, err = capsys.readouterr()
    made = [json.loads(line) for line in out.splitlines()]
    assert [q["id"] for q in sorted(made, key=lambda q: q["id"])] == ["a-absent", "b-absent"]
    assert all(q["unanswerable"] and q["question"] != q["made_from"] for q in made)
    assert "2 questions made from 2 answerable ones" in err

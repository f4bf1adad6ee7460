"""The fine-tuning stage's pieces: lessons on disk, batches of whole questions, the choose-or-abstain loss."""

import math
import subprocess
import sys

import torch

from qa.finetune import Lesson, Recipe, choice_loss, lesson_batches, load_lessons, save_lessons, sentences_of
from qa.reader import Candidate

ANSWERED = Lesson("How long is the Rhine?", Candidate("It flows 1,230 km to the North Sea.", "The Rhine rises."),
                  (9, 17), (Candidate("Basel is a city."), Candidate("Cologne has a cathedral."),
                            Candidate("Bronze tools replaced stone ones.")))
UNANSWERED = Lesson("Who discovered tin?", None, None, (Candidate("Tin is added to copper."),))


def test_lessons_survive_the_round_trip_through_a_file(tmp_path):
    path = tmp_path / "lessons.jsonl.gz"
    save_lessons(path, [ANSWERED, UNANSWERED])
    assert load_lessons(path) == [ANSWERED, UNANSWERED]


def test_a_question_gives_its_hardest_wrong_sentences_then_the_answering_one():
    pairs = sentences_of(ANSWERED, Recipe(negatives=2))
    assert [p.candidate.sentence for p in pairs] == ["Basel is a city.", "Cologne has a cathedral.",
                                                     "It flows 1,230 km to the North Sea."]
    assert [p.relevant for p in pairs] == [False, False, True] and pairs[-1].answer == (9, 17)
    assert [p.relevant for p in sentences_of(UNANSWERED, Recipe())] == [False]


def test_batches_hold_whole_questions_each_once():
    lessons = [ANSWERED, UNANSWERED] * 7
    batches = lesson_batches(lessons, Recipe(batch=10, negatives=4))
    assert sorted(len(b) for b in batches) == [2, 2, 2, 2, 2, 2, 2]  # 10 // (4 + 1) questions a batch
    assert sum(b.count(ANSWERED) for b in batches) == 7 and sum(b.count(UNANSWERED) for b in batches) == 7


def test_the_choice_loss_is_the_softmax_over_none_and_the_sentences():
    recipe = Recipe(negatives=3)
    no_answer = torch.tensor([0.5])
    relevance = torch.tensor([1.0, -1.0, 0.0, 2.0, 0.3])  # ANSWERED's 3 wrong + its answer, then UNANSWERED's one
    loss = choice_loss([ANSWERED, UNANSWERED], relevance, no_answer, recipe)
    answered = -math.log(math.exp(2.0) / sum(math.exp(v) for v in (0.5, 1.0, -1.0, 0.0, 2.0)))
    unanswered = -math.log(math.exp(0.5) / (math.exp(0.5) + math.exp(0.3)))
    assert math.isclose(float(loss), (answered + unanswered) / 2, rel_tol=1e-6)


def test_the_command_says_what_is_missing(tmp_path):
    run = subprocess.run([sys.executable, "-m", "qa.finetune", str(tmp_path / "none.jsonl.gz"), "--base",
                          str(tmp_path), "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert run.returncode == 2 and "citeqa train --lessons-only" in run.stderr

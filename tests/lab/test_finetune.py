"""The fine-tuning stage's pieces: lessons on disk, batches of whole questions, the choose-or-abstain loss, the
parts of the base model a recipe keeps, the rules that change a question into an unanswerable one."""

import json
import math
import random
import re
import subprocess
import sys

import torch

from index.embed import default_model_path
from lab.finetune import (
    LEARNED_FROM,
    Lesson,
    ReaderNet,
    Recipe,
    choice_loss,
    fine_tune,
    lesson_batches,
    load_lessons,
    perturbations,
    perturbed,
    save_lessons,
    sentences_of,
    write_learned_from,
)
from qa.reader import Candidate

ANSWERED = Lesson("How long is the Rhine?", Candidate("It flows 1,230 km to the North Sea.", "The Rhine rises."),
                  (9, 17), (Candidate("Basel is a city."), Candidate("Cologne has a cathedral."),
                            Candidate("Bronze tools replaced stone ones.")), "rivers.txt")
UNANSWERED = Lesson("Who discovered tin?", None, None, (Candidate("Tin is added to copper."),), "metals.txt")


def test_lessons_survive_the_round_trip_through_a_file(tmp_path):
    path = tmp_path / "lessons.jsonl.gz"
    save_lessons(path, [ANSWERED, UNANSWERED])
    assert load_lessons(path) == [ANSWERED, UNANSWERED]
    write_learned_from(tmp_path, [ANSWERED, UNANSWERED, ANSWERED])
    assert json.loads((tmp_path / LEARNED_FROM).read_text()) == ["metals.txt", "rivers.txt"]


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
    run = subprocess.run([sys.executable, "-m", "lab.finetune", str(tmp_path / "none.jsonl.gz"), "--base",
                          str(tmp_path), "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert run.returncode == 2 and "citeqa train --lessons-only" in run.stderr


def test_a_recipe_keeps_the_embeddings_and_lowest_layers_as_the_base_has_them():
    recipe = Recipe(batch=10, epochs=1, negatives=3, frozen=2)
    base = ReaderNet.from_base(default_model_path())
    tuned = fine_tune([ANSWERED, UNANSWERED] * 3, default_model_path(), recipe, lambda line: None)

    def same(part: str) -> bool:
        before, after = base.state_dict(), tuned.state_dict()
        names = [n for n in before if n.startswith(part)]
        return bool(names) and all(torch.equal(before[n], after[n]) for n in names)

    assert same("encoder.embeddings.") and same("encoder.encoder.layer.0.") and same("encoder.encoder.layer.1.")
    assert not same("encoder.encoder.layer.2.") and not same("relevance.")


HOMES = Lesson("How many homes had Sky+HD by 2012?", Candidate("By 2012, Sky+HD was in 4,222,000 homes."),
               (30, 39), (Candidate("Sky launched in 1989."),))
GRADE = Lesson("Who criticized the operations before the Select Committee?",
               Candidate("Michael Grade criticized the operations before the Select Committee."), (0, 13),
               (Candidate("The channels had little original programming."),))


def test_the_number_rule_changes_a_number_the_answer_sentence_holds():
    changed = perturbed(HOMES, [], random.Random(1))
    assert changed is not None and changed.answer is None and changed.span is None
    assert re.fullmatch(r"How many homes had Sky\+HD by 201\d\?", changed.question) and "2012" not in changed.question
    assert changed.wrong[0] == HOMES.answer  # the answer sentence is now the hardest wrong one


def test_the_name_rule_puts_a_name_from_elsewhere_in_place_of_one_the_answer_sentence_holds():
    changed = perturbed(GRADE, ["Amazon Basin", "Select Committee"], random.Random(1))
    assert changed is not None and changed.question == "Who criticized the operations before the Amazon Basin?"
    assert changed.wrong == (GRADE.answer, *GRADE.wrong)


def test_no_rule_applies_when_the_answer_sentence_holds_none_of_the_questions_names_or_numbers():
    lesson = Lesson("What did critics say?", Candidate("Critics said little."), (8, 19), ())
    assert perturbed(lesson, ["Amazon Basin"], random.Random(1)) is None
    assert perturbed(UNANSWERED, ["Amazon Basin"], random.Random(1)) is None


def test_a_share_of_the_answerable_lessons_is_changed_and_the_rest_left_alone():
    lessons = [HOMES, GRADE, UNANSWERED] * 20
    changed = perturbations(lessons, Recipe(perturbed=0.5))
    assert 10 <= len(changed) <= 30 and all(c.answer is None for c in changed)
    assert perturbations(lessons, Recipe(perturbed=0.0)) == []

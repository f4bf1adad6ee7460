"""`citeqa train` end to end on a handful of questions: proves the code path, not the shipped model's quality."""

import json

from index.settings import IndexSettings
from lab.finetune import Recipe
from lab.train import TrainConfig, reader_documents, train
from qa.reader import Candidate, Reader
from qa.settings import Settings

DOCS = {
    "rivers.txt": "The Rhine rises in the Swiss Alps. It flows 1,230 km to the North Sea.\n\n"
                  "Basel is the first large city on the river. Cologne has a famous cathedral by the Rhine.",
    "metals.txt": "Copper melts at 1,085 degrees Celsius. It was first smelted about 7,000 years ago.\n\n"
                  "Tin is added to copper to make bronze. Bronze tools replaced stone ones.",
    "birds.txt": "The swift spends most of its life flying. It can stay aloft for ten months.\n\n"
                 "Swifts nest in crevices of old buildings. They eat insects caught in the air.",
}
QUESTIONS = [
    ("rivers.txt", "How long is the Rhine?", "1,230 km"), ("rivers.txt", "Where does the Rhine rise?", "Swiss Alps"),
    ("rivers.txt", "What is the population of Basel?", None), ("metals.txt", "At what temperature does copper melt?",
                                                               "1,085 degrees Celsius"),
    ("metals.txt", "What is added to copper to make bronze?", "Tin"), ("metals.txt", "Who discovered tin?", None),
    ("birds.txt", "How long can a swift stay aloft?", "ten months"), ("birds.txt", "What do swifts eat?", "insects"),
    ("birds.txt", "How fast do swifts fly?", None),
]


def gold_file(folder):
    lines = []
    for number, (doc, question, answer) in enumerate(QUESTIONS):
        start = DOCS[doc].find(answer) if answer else -1
        lines.append({"id": f"t{number}", "doc": doc, "question": question, "history": [],
                      "answers": [answer] if answer else [], "unanswerable": answer is None,
                      "answer_spans": [[start, start + len(answer)]] if answer else []})
    (folder / "qa.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")


NEWS = "news-ferry.txt", "The island ferry sank on Tuesday. All 40 passengers were rescued by fishermen."


def gum_folder(data):
    """A GUM-shaped genre of one document (it lands in the measuring part: each genre measures at least 3)."""
    name, text = NEWS
    (data / "gum" / "docs").mkdir(parents=True)
    (data / "gum" / "docs" / name).write_text(text, encoding="utf-8")
    start = text.index("40")
    questions = [{"id": "n0", "doc": name, "kind": "number", "question": "How many passengers were rescued?",
                  "history": [], "answers": ["40"], "answer_spans": [[start, start + 2]], "unanswerable": False},
                 {"id": "n1", "doc": name, "kind": "unanswerable", "question": "Who owned the ferry?",
                  "history": [], "answers": [], "answer_spans": [], "unanswerable": True}]
    (data / "gum" / "qa-news.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions), encoding="utf-8")


def test_training_writes_a_reader_that_loads_answers_and_reports(tmp_path):
    data = tmp_path / "train"
    (data / "docs").mkdir(parents=True)
    for name, text in DOCS.items():
        (data / "docs" / name).write_text(text, encoding="utf-8")
    gold_file(data)
    gum_folder(data)
    config = TrainConfig(data, tmp_path / "reader", Recipe(batch=4, epochs=1), measure=("birds.txt",),
                         calibrate=("metals.txt",))
    said = []
    card = train(config, Settings(index=IndexSettings(data_dir=tmp_path / "data")), say=said.append)

    assert {p.name for p in config.out.iterdir()} == {"model.onnx", "reader.json", "tokenizer.json", "MODEL_CARD.md"}
    assert json.loads((config.out / "reader.json").read_text()) == json.loads(json.dumps(card))
    assert 0.0 < card["answerable"]["threshold"] < 1.0 and len(card["curve"]) > 5
    # too few words in the other collection to make questions about nothing here: the "about" check never fires
    assert card["absent"] == {} and card["about"]["threshold"] == 0.0
    assert set(card["measured"]) == {"wikipedia", "news"}
    assert all(set(m) >= {"cited", "abstain_ok", "false_abstain", "sa_em", "sa_f1"} for m in card["measured"].values())
    assert card["measured"]["news"]["documents"] == ["news-ferry.txt"]
    assert any(line.startswith("learning: step") for line in said)
    assert any(line.startswith("measured on wikipedia documents never learned from") for line in said)
    assert "| news |" in (config.out / "MODEL_CARD.md").read_text()
    # the decision is fitted on documents the reader never learned from, and the card says which
    assert card["learned_from"] == ["rivers.txt"]
    assert card["split"] == {"reader": {"wikipedia": 1}, "decision": {"wikipedia": 1}}
    assert "fitted on documents the reader never saw\n  (1 wikipedia document)" in \
        (config.out / "MODEL_CARD.md").read_text()

    sentence = "It flows 1,230 km to the North Sea."
    readings = Reader(config.out).read("How long is the Rhine?", [Candidate(sentence)])
    assert len(readings) == 1 and 0 <= readings[0].start <= readings[0].end <= len(sentence)


def test_the_decision_leaves_out_what_the_reader_learned_from(tmp_path):
    tagged = [("squad", {"doc": "squad_a.txt", "part": "learn"}),
              ("squad", {"doc": "squad_b.txt", "part": "calibrate"}),
              ("gum", {"doc": "news-x.txt", "part": "learn"})]
    learn = [tagged[0], tagged[2]]
    assert reader_documents(None, learn, tagged) == {"squad_a.txt", "news-x.txt"}  # fine-tuned here, from both
    reader = tmp_path / "reader"
    reader.mkdir()
    assert reader_documents(reader, learn, tagged) == {"squad_a.txt"}  # a reader from before the record: SQuAD's
    (reader / "reader.json").write_text(json.dumps({"learned_from": ["squad_a.txt", "news-x.txt"]}))
    assert reader_documents(reader, learn, tagged) == {"squad_a.txt", "news-x.txt"}
    (reader / "learned_from.json").write_text(json.dumps(["news-x.txt"]))
    assert reader_documents(reader, learn, tagged) == {"news-x.txt"}  # what `python -m lab.finetune` wrote

"""The fixed split by document: every genre keeps a measuring and a calibration part, whatever order the files
come in, and nothing is in two parts."""

from pathlib import Path

import pytest

from lab.split import GUM_CALIBRATE_MIN, GUM_MEASURE_MIN, collections, genre_of, gum_parts, parts_of

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "train"


def test_each_genre_has_its_own_measuring_and_calibration_documents_in_a_fixed_order():
    docs = [f"{genre}-{i}.txt" for genre in ("news", "bio") for i in range(10)]
    parts = gum_parts(docs)
    assert parts == gum_parts(list(reversed(docs)))  # the order files are listed in changes nothing
    for genre in ("news", "bio"):
        mine = [parts[d] for d in docs if genre_of(d) == genre]
        assert mine.count("measure") == GUM_MEASURE_MIN and mine.count("calibrate") == 2
        assert mine.count("learn") == 10 - GUM_MEASURE_MIN - 2


def test_a_small_genre_still_measures_before_it_learns():
    assert gum_parts(["voyage-a.txt", "voyage-b.txt"]) == {"voyage-a.txt": "measure", "voyage-b.txt": "measure"}
    parts = gum_parts([f"bio-{i}.txt" for i in range(GUM_MEASURE_MIN + GUM_CALIBRATE_MIN)])
    assert sorted(parts.values()) == ["calibrate"] + ["measure"] * GUM_MEASURE_MIN


def test_squad_articles_keep_the_split_they_always_had():
    parts = parts_of(["squad_Imperialism.txt", "squad_Amazon_rainforest.txt", "squad_Normans.txt"])
    assert parts == {"squad_Imperialism.txt": "measure", "squad_Amazon_rainforest.txt": "calibrate",
                     "squad_Normans.txt": "learn"}


@pytest.mark.skipif(not (SHARED / "gum").is_dir(), reason="needs ../shared/train/gum")
def test_the_shipped_data_splits_every_genre_three_ways():
    gum = next(c for c in collections(SHARED) if c.name == "gum")
    for genre in ("news", "interview", "bio", "voyage"):
        parts = {q["part"] for q in gum.questions if q["genre"] == genre}
        assert parts == {"measure", "calibrate", "learn"}, genre
    by_doc = {}
    for q in gum.questions:
        assert by_doc.setdefault(q["doc"], q["part"]) == q["part"]  # a document lies in one part

"""Crash safety: a real `citeqa index` killed with SIGKILL at several points, and a reader in the middle of a write."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from index.embed import model_name
from index.load import load_sources
from index.pipeline import Indexer
from index.settings import IndexSettings
from index.store import IndexStore
from index.writing import sentence_id
from qa.chain import CitedQA
from qa.settings import AnsweringSettings
from tests.conftest import ARTICLE, rows_only

CITEQA = str(Path(sys.executable).parent / "citeqa")
NOUNS = ("harbour bridge canal mill tower market school archive lighthouse quarry orchard station granary chapel "
         "foundry ferry museum library garden reservoir").split()
PLACES = ("Arlen Brisk Corvale Dunmore Eskby Fallow Garrow Hinton Ivel Jarrow Kesmor Lyndale Marrow Northam Oakry "
          "Pellam").split()
VERBS = "repaired opened closed enlarged sold painted rebuilt inspected".split()
FACT = "The Quillon observatory was finished in 1887 by the engineer Maren Tost."


def corpus(folder: Path, files: int = 48, sentences: int = 14) -> None:
    """Many small documents of plain sentences (seconds of embedding work), one of them holding FACT."""
    rng = random.Random(11)
    folder.mkdir()
    for n in range(files):
        lines = [f"The {rng.choice(NOUNS)} of {rng.choice(PLACES)} was {rng.choice(VERBS)} in "
                 f"{rng.randint(1700, 2020)} after {rng.randint(2, 900)} {rng.choice(NOUNS)}s were counted."
                 for _ in range(sentences)]
        if n == 29:
            lines.insert(5, FACT)
        paragraphs = [" ".join(lines[i:i + 4]) for i in range(0, len(lines), 4)]
        (folder / f"doc-{n:03d}.txt").write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")


def index_until(env: dict, folder: Path, fraction: float) -> int:
    """Runs `citeqa index` and SIGKILLs it once its progress bar passes `fraction` of its own total."""
    process = subprocess.Popen([CITEQA, "index", str(folder)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    seen = b""
    while chunk := process.stderr.read1(4096):
        seen = (seen + chunk)[-400:]
        progress = re.findall(rb"(\d+)/(\d+) \[", seen)
        if progress and int(progress[-1][1]) and int(progress[-1][0]) >= fraction * int(progress[-1][1]):
            process.send_signal(signal.SIGKILL)
            break
    process.stderr.close()
    return process.wait(120)


def test_index_killed_at_any_point_is_completed_exactly_by_the_next_run(tmp_path, embeddings):
    folder = tmp_path / "many"
    corpus(folder)
    env = {**os.environ, "CITEQA_DATA_DIR": str(tmp_path / "data")}
    for fraction in (0.05, 0.45, 0.85):  # in the vocabulary, then inside documents' rows, before their manifest
        assert index_until(env, folder, fraction) == -signal.SIGKILL, f"the run ended before {fraction:.0%}"
    done = subprocess.run([CITEQA, "index", str(folder)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    again = subprocess.run([CITEQA, "index", str(folder)], env=env, capture_output=True, text=True, timeout=300)
    assert re.match(r"indexed 48 files: 0 chunks added, \d+ kept, 0 removed", again.stdout), again.stdout

    settings = IndexSettings(data_dir=tmp_path / "data")
    store = IndexStore(settings, embeddings, model_name(None))
    indexer = Indexer(store)
    prepared = [indexer.prepare(doc) for doc in load_sources([folder])]
    assert set(store.chunks.get(include=[])["ids"]) == {c.id for p in prepared for c in p.chunks}
    assert store.chunks.count() == sum(len(p.chunks) for p in prepared)
    assert set(store.sentences.get(include=[])["ids"]) == {sentence_id(s, p.doc.text) for p in prepared
                                                           for s in p.sentences}
    assert store.writer.new_words([(p.doc, p.sentences) for p in prepared]) == []
    manifest = store.records.manifest()
    assert {s: e["sha256"] for s, e in manifest.sources.items()} == {p.doc.source: p.doc.sha256 for p in prepared}
    assert all(store.records.text(p.doc.source) == p.doc.text for p in prepared)
    answer = CitedQA(store, AnsweringSettings()).invoke("When was the Quillon observatory finished?")
    assert "1887" in answer.answer and answer.citations[0].source == "doc-029.txt"
    assert all(store.records.text(c.source)[c.start:c.end] == c.quote for c in answer.citations)


@pytest.mark.parametrize("settings", ["embedded", "server"], indirect=True)
def test_a_reader_never_sees_rows_of_a_version_whose_write_was_cut_short(settings, store, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / ARTICLE.name).write_text(ARTICLE.read_text(encoding="utf-8"), encoding="utf-8")
    Indexer(store).run([folder])
    changed = ARTICLE.read_text(encoding="utf-8").replace("France has 1,500 soldiers", "France has 2,500 soldiers")
    (folder / ARTICLE.name).write_text(changed, encoding="utf-8")
    prepared = Indexer(store).prepare(load_sources([folder])[0])
    [plan] = store.writer.plans([(prepared.doc, prepared.chunks, prepared.sentences)])
    rows_only(store.chunks, plan.new_chunks)  # the new version's rows, then the process died:
    rows_only(store.sentences, plan.new_sentences)  # stale rows, copy and manifest are the old

    snapshot = store.snapshot()
    old = ARTICLE.read_text(encoding="utf-8")
    assert snapshot.texts == {ARTICLE.name: old} and len(snapshot.chunks) == 21
    assert len(snapshot.sentences) == len(snapshot.sentence_vectors) == 43
    answer = CitedQA(store, AnsweringSettings()).invoke("How many French soldiers are in Niger?")
    assert "1,500" in answer.answer and all(old[c.start:c.end] == c.quote for c in answer.citations)

    Indexer(store).run([folder])  # the next run completes the write
    answer = CitedQA(store, AnsweringSettings()).invoke("How many French soldiers are in Niger?")
    assert "2,500" in answer.answer and all(changed[c.start:c.end] == c.quote for c in answer.citations)
    assert store.chunks.count() == len(prepared.chunks)

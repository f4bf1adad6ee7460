import pytest

from index.load import IngestError, TooLarge, UnsupportedType, check_upload, discover, load_sources, read_bytes
from tests.samples import (
    BOILERPLATE,
    DOCX_FACT,
    HTML_FACT,
    HTML_PAGE,
    PDF_FACT,
    encrypted_pdf,
    energy_docx,
    report_pdf,
    scanned_pdf,
    zip_bomb_docx,
)


def test_reads_txt_and_md_relative_to_the_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("Alpha.\r\nBeta.", encoding="utf-8")
    (tmp_path / "sub" / "b.md").write_text("# B\n\nText.", encoding="utf-8")
    (tmp_path / "skip.png").write_bytes(b"\x89PNG")
    loaded = load_sources([tmp_path])
    assert [(s.source, s.text) for s in loaded] == [("a.txt", "Alpha.\nBeta."), ("sub/b.md", "# B\n\nText.")]


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty"),
    (b"  \n\n ", "empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
    ("Caf\u00e9 in Niamey".encode("latin-1"), "not valid UTF-8"),
])
def test_bad_files_are_named_with_the_reason(tmp_path, content, message):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(content)
    (tmp_path / "good.txt").write_text("Fine.", encoding="utf-8")
    with pytest.raises(IngestError) as error:
        load_sources([tmp_path])
    assert str(bad) in str(error.value) and message in str(error.value)


def test_missing_paths_and_empty_folders_are_errors(tmp_path):
    with pytest.raises(IngestError, match="no such file"):
        discover([tmp_path / "nope"])
    with pytest.raises(IngestError, match="no files of a supported type"):
        discover([tmp_path])


def read(name: str, raw: bytes) -> str:
    return read_bytes(raw, name, name).text


def test_pdf_text_layer_is_read_page_by_page():
    text = read("report.pdf", report_pdf())
    assert PDF_FACT in text and "Niger river" in text
    assert text.index("Niger river") > text.index(PDF_FACT)
    assert text.startswith("Water report\n\nThe Tillaberi")  # a short line (the title) ends its paragraph
    assert "opened.\n\nThe plant draws" in text  # and so does a page


def test_docx_paragraphs_and_tables_are_read_in_order():
    text = read("energy.docx", energy_docx())
    assert text.startswith("Energy note\n\n" + DOCX_FACT)
    assert text.endswith("Site | Megawatts\n\nDosso | 18")


def test_html_keeps_the_article_and_drops_the_page_furniture():
    text = read("clinic.html", HTML_PAGE.encode("utf-8"))
    assert HTML_FACT in text and "two new wards" in text
    assert '<script>alert("doc")</script> was printed' in text  # text about markup is text, kept as written
    assert not [b for b in BOILERPLATE if b in text]


def test_index_reads_every_supported_format_from_a_folder(tmp_path):
    (tmp_path / "report.pdf").write_bytes(report_pdf())
    (tmp_path / "energy.docx").write_bytes(energy_docx())
    (tmp_path / "clinic.htm").write_text(HTML_PAGE, encoding="utf-8")
    (tmp_path / "note.txt").write_text("Plain.", encoding="utf-8")
    loaded = {s.source: s.text for s in load_sources([tmp_path])}
    assert set(loaded) == {"report.pdf", "energy.docx", "clinic.htm", "note.txt"}
    assert DOCX_FACT in loaded["energy.docx"] and HTML_FACT in loaded["clinic.htm"]


@pytest.mark.parametrize(("name", "raw", "error", "message"), [
    ("scan.pdf", scanned_pdf(), IngestError, "scan.pdf: has no text layer (a scanned image?)"),
    ("locked.pdf", encrypted_pdf(), IngestError, "locked.pdf: is encrypted (password-protected)"),
    ("broken.pdf", report_pdf()[:400], IngestError, "broken.pdf: is not a readable PDF"),
    ("broken.docx", energy_docx()[:300], IngestError, "broken.docx: is not a DOCX (not a zip archive)"),
    ("bomb.docx", zip_bomb_docx(), IngestError, "bomb.docx: would unpack to 20.8 MB from"),
    ("fake.docx", b"Just some text.", IngestError, "fake.docx: is not a DOCX"),
    ("blank.html", b"<html><head><script>var a = 1;</script></head><body><script>go()</script></body></html>",
     IngestError,
     "blank.html: no main text found"),
    ("tool.exe", b"MZ\x90\x00", UnsupportedType, "tool.exe: .exe is not a supported type (.txt, .md, .html"),
    ("README", b"text", UnsupportedType, "README: a file without an extension is not a supported type"),
])
def test_unreadable_files_are_refused_with_the_reason(name, raw, error, message):
    with pytest.raises(error) as refused:
        read_bytes(raw, name, name)
    assert message in str(refused.value)


def test_zip_bomb_is_refused_before_python_docx_opens_it(monkeypatch):
    import docx

    def never(*_):
        raise AssertionError("python-docx opened a zip bomb")

    bomb = zip_bomb_docx()
    monkeypatch.setattr(docx, "Document", never)
    with pytest.raises(IngestError, match="refused as a possible zip bomb"):
        read_bytes(bomb, "bomb.docx", "bomb.docx")


@pytest.mark.parametrize(("name", "message"), [
    ("../etc/passwd.txt", "path separators"),
    ("a\\b.txt", "path separators"),
    ("bad\nname.txt", "control"),
    ("evil\u202etxt.exe", "invisible formatting"),
    ("", "no name"),
    ("x" * 300 + ".txt", "longer than 250 bytes"),
])
def test_upload_names_that_could_climb_or_hide_are_refused(name, message):
    with pytest.raises(IngestError, match=message):
        check_upload(name, 10, 2**20)


def test_upload_over_the_size_limit_is_refused_by_size():
    with pytest.raises(TooLarge, match=r"big.txt: 2.0 MB is over the 1 MB upload limit"):
        check_upload("big.txt", 2 * 2**20, 2**20)

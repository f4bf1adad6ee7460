import pytest

from index.load import IngestError, discover, load_sources


def test_reads_txt_and_md_relative_to_the_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("Alpha.\r\nBeta.", encoding="utf-8")
    (tmp_path / "sub" / "b.md").write_text("# B\n\nText.", encoding="utf-8")
    (tmp_path / "skip.pdf").write_bytes(b"%PDF")
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
    with pytest.raises(IngestError, match="no .txt or .md files"):
        discover([tmp_path])

"""Finds the files to index and reads them as UTF-8 text, refusing what cannot be indexed."""

from collections.abc import Iterable
from pathlib import Path

from index.model import SourceText

SUFFIXES = (".txt", ".md")


class IngestError(ValueError):
    """A file or path that cannot be indexed; the message names every offending file."""


def discover(paths: Iterable[Path]) -> list[tuple[Path, str]]:
    """(file, source name) pairs; a source is named relative to the folder given, or by its file name."""
    found: list[tuple[Path, str]] = []
    problems: list[str] = []
    for root in paths:
        if root.is_dir():
            files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
            if not files:
                problems.append(f"{root}: no .txt or .md files in this folder")
            found += [(p, p.relative_to(root).as_posix()) for p in files]
        elif root.is_file():
            if root.suffix.lower() not in SUFFIXES:
                problems.append(f"{root}: not a .txt or .md file")
            found.append((root, root.name))
        else:
            problems.append(f"{root}: no such file or folder")
    if problems:
        raise IngestError("\n".join(problems))
    return found


def read_source(path: Path, source: str) -> SourceText:
    """The file's text exactly as offsets will count it (UTF-8, universal newlines, like `Path.read_text`)."""
    raw = path.read_bytes()
    if b"\0" in raw:
        raise IngestError(f"{path}: looks binary (contains NUL bytes); only UTF-8 text can be indexed")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise IngestError(f"{path}: not valid UTF-8 (byte {error.start}); re-save it as UTF-8") from None
    if not text.strip():
        raise IngestError(f"{path}: empty; nothing to index")
    return SourceText(source, text.replace("\r\n", "\n").replace("\r", "\n"))


def load_sources(paths: Iterable[Path]) -> list[SourceText]:
    """Every file under `paths`, or one error naming all the files that cannot be read."""
    loaded, problems = [], []
    for path, source in discover(paths):
        try:
            loaded.append(read_source(path, source))
        except IngestError as error:
            problems.append(str(error))
    if problems:
        raise IngestError("\n".join(problems))
    duplicates = sorted({s.source for s in loaded if [t.source for t in loaded].count(s.source) > 1})
    if duplicates:
        raise IngestError(f"two files share the source name {', '.join(duplicates)}; index them separately")
    return loaded

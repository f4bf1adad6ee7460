"""Finds the files to index and reads their text, refusing what cannot be indexed before anything is written."""

import unicodedata
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from index.errors import CiteqaError
from index.formats import COPY_SUFFIX, EXTRACTORS, SUFFIXES, Unreadable
from index.spans import SourceText

# ext4 and most file systems take names of up to 255 bytes; the document copy may add COPY_SUFFIX to the name.
MAX_NAME_BYTES = 255 - len(COPY_SUFFIX)


class IngestError(CiteqaError, ValueError):
    """A file or path that cannot be indexed; the message names every offending file."""

    http_status = 422


class UnsupportedType(IngestError):
    """A file whose type has no extractor."""

    http_status = 415


class TooLarge(IngestError):
    """A file over the upload size limit."""

    http_status = 413


def supported() -> str:
    return ", ".join(SUFFIXES)


def discover(paths: Iterable[Path]) -> list[tuple[Path, str]]:
    """(file, source name) pairs; a source is named relative to the folder given, or by its file name."""
    found: list[tuple[Path, str]] = []
    problems: list[str] = []
    for root in paths:
        if root.is_dir():
            files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
            if not files:
                problems.append(f"{root}: no files of a supported type ({supported()}) in this folder")
            found += [(p, p.relative_to(root).as_posix()) for p in files]
        elif root.is_file():
            if root.suffix.lower() not in SUFFIXES:
                problems.append(f"{root}: not a supported type ({supported()})")
            found.append((root, root.name))
        else:
            problems.append(f"{root}: no such file or folder")
    if problems:
        raise IngestError("\n".join(problems))
    return found


def read_bytes(raw: bytes, source: str, label: str) -> SourceText:
    """The file's text exactly as offsets will count it (universal newlines); `label` names the file in errors."""
    suffix = PurePosixPath(source).suffix.lower()
    extract = EXTRACTORS.get(suffix)
    if extract is None:
        raise UnsupportedType(f"{label}: {suffix or 'a file without an extension'} is not a supported type "
                              f"({supported()})")
    try:
        text = extract(raw)
    except Unreadable as why:
        raise IngestError(f"{label}: {why}") from None
    if not text.strip():
        raise IngestError(f"{label}: empty; nothing to index")
    return SourceText(source, text.replace("\r\n", "\n").replace("\r", "\n"))


def read_source(path: Path, source: str) -> SourceText:
    return read_bytes(path.read_bytes(), source, str(path))


def check_name(name: str) -> None:
    """An uploaded file's name becomes its source name as it is: one that could climb folders or hide characters
    is refused, not rewritten, so what a citation names is what the person sent."""
    shown = repr(name)
    if not name.strip() or name in (".", ".."):
        raise IngestError(f"{shown}: the file has no name")
    if "/" in name or "\\" in name:
        raise IngestError(f"{shown}: file names may not hold path separators (/ or \\); refused, not renamed")
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in name):
        raise IngestError(f"{shown}: file names may not hold control or invisible formatting characters; "
                          "refused, not renamed")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise IngestError(f"{name[:40]}…: file name longer than {MAX_NAME_BYTES} bytes")


def check_upload(name: str, size: int, max_bytes: int) -> None:
    """A sent file's name and size, checked before its bytes are read or parsed."""
    check_name(name)
    if size > max_bytes:
        raise TooLarge(f"{name}: {size / 2**20:.1f} MB is over the {max_bytes / 2**20:g} MB upload limit")


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

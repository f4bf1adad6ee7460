"""Plain text out of the formats people bring: UTF-8 text, HTML (the main article only), PDF (its text layer), DOCX.

What an extractor returns is the text offsets count: it is stored as the document's copy and served by
`/api/sources/{source}`. Paragraphs are separated by a blank line so the segmenter sees them. A file that cannot be
read raises `Unreadable` with the reason in words; a library's own exception never escapes, so a bad file is always
a clear refusal and never a crash.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterable

# A python-docx document of one paragraph holds 17 parts that unpack to 24x their zipped size (measured); Word XML
# of long text unpacks to 5-25x. 100x over the whole archive is only reached by padding: a zip bomb.
MAX_ZIP_RATIO = 100
# Declared unpacked size of a DOCX: a 20 MB upload that is mostly pictures unpacks to little more than 20 MB.
# zipfile never inflates a part past its declared size (a lying header fails the CRC check), so this bounds memory.
MAX_UNPACKED_BYTES = 128 * 2**20
MAX_ZIP_PARTS = 1000  # the blank python-docx template has 17; a long report with pictures a few hundred
MAX_PDF_PAGES = 2000  # a long book; past that extraction takes minutes on 2 cores
# pypdf ends every printed line with one newline. Lines of running text fill most of the width; a line under 60 % of
# the page's longest is a heading or a paragraph's last line, so a paragraph break follows it (the title of the test
# report, 12 characters beside lines of 90, was read into its first sentence without this).
SHORT_LINE = 0.6


class Unreadable(ValueError):
    """Why a file's text cannot be had, worded for the person who sent it (the caller adds the file name)."""


def paragraphs(blocks: Iterable[str]) -> str:
    """Non-blank blocks, trimmed, one blank line between them: how the segmenter tells paragraphs apart."""
    return "\n\n".join(block.strip() for block in blocks if block.strip())


def utf8_text(raw: bytes) -> str:
    if b"\0" in raw:
        raise Unreadable("looks binary (contains NUL bytes); only UTF-8 text can be indexed")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Unreadable(f"not valid UTF-8 (byte {error.start}); re-save it as UTF-8") from None


def html_text(raw: bytes) -> str:
    """The page's main text by trafilatura: navigation, related links, scripts, comments and footers left out."""
    import trafilatura

    try:
        text = trafilatura.extract(raw, include_comments=False, include_tables=True, include_images=False,
                                   include_links=False, deduplicate=False)
    except Exception as error:  # any parser failure on a sent file is a refusal
        raise Unreadable(f"cannot be read as HTML ({type(error).__name__})") from None
    if not text:
        raise Unreadable("no main text found in the HTML page")
    return paragraphs(text.splitlines())


def pdf_text(raw: bytes) -> str:
    """The text layer of every page, a blank line between pages; encrypted or image-only PDFs are refused."""
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted:
            raise Unreadable("is encrypted (password-protected); upload an unprotected copy")
        if len(reader.pages) > MAX_PDF_PAGES:
            raise Unreadable(f"has {len(reader.pages)} pages; at most {MAX_PDF_PAGES} can be indexed")
        pages = [page_paragraphs(page.extract_text() or "") for page in reader.pages]
    except Unreadable:
        raise
    except Exception as error:  # pypdf raises many types on damaged files
        raise Unreadable(f"is not a readable PDF ({type(error).__name__}: {error})") from None
    text = paragraphs(pages)
    if not text:
        raise Unreadable("has no text layer (a scanned image?); run OCR on it first")
    return text


def page_paragraphs(page: str) -> str:
    """A page's lines with a blank line after each short one (a heading, the end of a paragraph)."""
    lines = page.splitlines()
    longest = max((len(line.strip()) for line in lines), default=0)
    return "".join(line + ("\n\n" if len(line.strip()) < SHORT_LINE * longest else "\n") for line in lines)


def check_zip(raw: bytes) -> None:
    """Refuses an archive whose declared contents are too many, too big or too compressed, before any inflating."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            parts = archive.infolist()
    except zipfile.BadZipFile:
        raise Unreadable("is not a DOCX (not a zip archive); it may be corrupt") from None
    unpacked, packed = sum(p.file_size for p in parts), sum(p.compress_size for p in parts)
    if len(parts) > MAX_ZIP_PARTS:
        raise Unreadable(f"holds {len(parts)} parts (at most {MAX_ZIP_PARTS}): refused as a possible zip bomb")
    if unpacked > MAX_UNPACKED_BYTES or unpacked > MAX_ZIP_RATIO * max(packed, 1):
        raise Unreadable(f"would unpack to {unpacked / 2**20:.1f} MB from {packed / 2**10:.1f} kB (at most "
                         f"{MAX_UNPACKED_BYTES // 2**20} MB and {MAX_ZIP_RATIO}:1): refused as a possible zip bomb")
    if "word/document.xml" not in {p.filename for p in parts}:
        raise Unreadable("is a zip archive but not a Word document (no word/document.xml)")


def docx_text(raw: bytes) -> str:
    """Body paragraphs and table rows in document order (cells joined by " | "); headers and footers left out."""
    check_zip(raw)
    import docx
    from docx.table import Table

    try:
        blocks = []
        for block in docx.Document(io.BytesIO(raw)).iter_inner_content():
            if isinstance(block, Table):
                blocks += [" | ".join(dict.fromkeys(cell.text.strip() for cell in row.cells)) for row in block.rows]
            else:
                blocks.append(block.text)
    except Exception as error:  # python-docx and lxml raise many types
        raise Unreadable(f"is not a readable DOCX ({type(error).__name__}: {error})") from None
    return paragraphs(blocks)


EXTRACTORS: dict[str, Callable[[bytes], str]] = {
    ".txt": utf8_text, ".md": utf8_text, ".html": html_text, ".htm": html_text, ".pdf": pdf_text, ".docx": docx_text,
}
SUFFIXES = tuple(EXTRACTORS)
# The document copy of a source whose file is not text (report.pdf) is stored as report.pdf.text: a suffix that is
# never indexed, so no source's copy can take another's name.
TEXT_SUFFIXES = (".txt", ".md")
COPY_SUFFIX = ".text"

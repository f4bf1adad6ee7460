"""Splits a source text into paragraphs and sentences with exact offsets, and marks page furniture.

Every segment is a slice of the original text (`text[start:end]`), so citations built from segments are
verbatim by construction. Furniture (related-links lines, photo credits, "Recommended Videos") is kept as a
segment so offsets stay whole, but flagged so it is never indexed or cited.
"""

import re

from index.spans import Sentence, Span

# Bump when the rules below change what a sentence is: stored indexes made with other rules get rebuilt.
SEGMENTATION_VERSION = 2
_PARAGRAPH = re.compile(r"[^\n]*\S[^\n]*(?:\n[^\n]*\S[^\n]*)*")
# A sentence ends at terminal punctuation (and any closing quotes or brackets) followed by white space and
# something that can open a sentence: a capital, a digit, an opening quote or bracket.
_BOUNDARY = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]]*(?=\s+[\"'\u201c\u2018(\[]?[A-Z0-9])")
_TOKEN_BEFORE = re.compile(r"(\S+)$")
ABBREVIATIONS = frozenset("""
mr mrs ms dr prof gen lt col maj capt sgt cpl adm cmdr gov sen rep pres rev hon st jr sr sr mt ft jan feb mar
apr jun jul aug sep sept oct nov dec no nos vs etc inc corp co ltd dept univ approx est fig
""".split())
_INITIALS = re.compile(r"^[(\"'\u201c\u2018]?(?:[A-Za-z]\.)*[A-Za-z]$")
_TERMINAL = re.compile(r"[.!?:;\"'\u201d\u2019)\]]$")
_FURNITURE_LINE = re.compile(
    r"^(?:recommended|related|read more|read next|more from|see also|also read|advertisement|sponsored|"
    r"sign up|subscribe|follow us|share this|click here|watch:|listen:|photos?:|video:|image (?:caption|source)|"
    r"caption:|copyright|all rights reserved|\u00a9)", re.IGNORECASE)
# Lines that open a block of their own inside a paragraph: list items, headings, quotes (Markdown and plain).
_BLOCK_START = re.compile(r"^[ \t]*(?:[-*+\u2022]\s|\d{1,3}[.)]\s|#{1,6}\s|>)", re.MULTILINE)
_CREDIT = re.compile(r"^\(.*\b(?:photo|photograph|copyright|all rights reserved|getty images|file)\b.*\)$|"
                     r"^\((?:AP|Reuters|AFP)\b[^)]*\)$", re.IGNORECASE | re.DOTALL)


def paragraphs(text: str) -> list[tuple[int, int]]:
    """Runs of non-blank lines, trimmed of surrounding white space."""
    return [_trim(text, m.start(), m.end()) for m in _PARAGRAPH.finditer(text)]


def sentences(text: str, source: str = "") -> list[Sentence]:
    """All sentences of `text` in order, each flagged as furniture or not."""
    result: list[Sentence] = []
    for number, (start, end) in enumerate(paragraphs(text)):
        for b_start, b_end in blocks(text, start, end):
            line_furniture = is_furniture_paragraph(text[b_start:b_end], first=not result)
            for s_start, s_end in _split_paragraph(text, b_start, b_end):
                furniture = line_furniture or bool(_CREDIT.match(text[s_start:s_end]))
                result.append(Sentence(Span(source, s_start, s_end), number, furniture))
    return result


def blocks(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """A paragraph split before each list item, heading or quote line: each is read on its own."""
    cuts = [start] + [m.start() for m in _BLOCK_START.finditer(text, start, end) if m.start() > start] + [end]
    return [_trim(text, a, b) for a, b in zip(cuts, cuts[1:], strict=False) if text[a:b].strip()]


def is_furniture_paragraph(paragraph: str, first: bool = False) -> bool:
    """Page furniture: link and promo lines, and short label lines that are not sentences (the title is kept)."""
    if _FURNITURE_LINE.match(paragraph):
        return True
    label = "\n" not in paragraph and len(paragraph.split()) <= 3 and not _TERMINAL.search(paragraph)
    return label and not first


def _split_paragraph(text: str, start: int, end: int) -> list[tuple[int, int]]:
    pieces, cursor = [], start
    for match in _BOUNDARY.finditer(text, start, end):
        inside_brackets = text.count("(", cursor, match.start()) > text.count(")", cursor, match.start())
        if inside_brackets or _is_abbreviation(text, cursor, match.start(), match.group()):
            continue
        pieces.append(_trim(text, cursor, match.end()))
        cursor = match.end()
    if text[cursor:end].strip():
        pieces.append(_trim(text, cursor, end))
    return pieces


def _is_abbreviation(text: str, lower: int, dot: int, punctuation: str) -> bool:
    """True where the full stop belongs to a word ("Gen.", "U.S.") or elides inside a quote ("...")."""
    if punctuation.startswith(("..", "\u2026")):
        return True
    if not punctuation.startswith("."):
        return False
    token = _TOKEN_BEFORE.search(text, lower, dot)
    if token is None:
        return False
    word = token.group(1)
    return word.lower().strip("(\"'\u201c\u2018") in ABBREVIATIONS or bool(_INITIALS.match(word))


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end

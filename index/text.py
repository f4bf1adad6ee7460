"""Text normalization shared by the keyword index, the embeddings and the answerer.

Both sides of every comparison go through the same functions, so a question typed with straight quotes
matches a document set with curly ones, and a run-in dateline ("NIAMEYNiger’s") matches "Niger".
"""

import re
from functools import lru_cache

_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
                         "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',
                         "\u2013": "-", "\u2014": "-", "\u00a0": " "})
# An all-capitals place name glued to the first word of the story, as news pages render datelines.
_DATELINE_GLUE = re.compile(r"\b([A-Z]{3,})(?=[A-Z][a-z])")
_WORD = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*(?:-[a-z0-9]+)*")
STOPWORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below between both
but by can could did do does doing down during each few for from further had has have having he her here hers
herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off on
once only or other our ours out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were what when where
which while who whom why will with would you your yours also s t d ll re ve m o y said say says many much
""".split())


def normalize(text: str) -> str:
    """Search text: straight quotes and dashes, datelines unglued; meaning and word order unchanged."""
    return _DATELINE_GLUE.sub(r"\1 ", text.translate(_QUOTES))


# Distinct words whose stems stay remembered: words are Zipf-distributed, so a few tens of thousands cover nearly
# every word of an archive (and loading a 100k-chunk index stems ~10M words).
STEM_CACHE = 100_000


@lru_cache(maxsize=STEM_CACHE)
def stem(word: str) -> str:
    """A light suffix stripper: enough to meet plurals, tenses and agents halfway ("leads", "leader")."""
    for suffix, repl in (("ies", "y"), ("sses", "ss"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith(("ss", "us", "is")):
            word = word[: len(word) - len(suffix)] + repl
            break
    if len(word) >= 6 and word.endswith("er"):
        word = word[:-2]
    if len(word) > 5 and word.endswith("our"):
        word = word[:-2] + "r"
    return word[:-1] if len(word) >= 4 and word.endswith("e") else word


def words(text: str) -> list[str]:
    """Lower-cased words of the normalized text; numbers kept whole ("1,500" → "1500")."""
    return _words_of(normalize(text))


def _words_of(normal: str) -> list[str]:
    return [w.replace(",", "") for w in _WORD.findall(normal.lower())]


_CAPITALIZED_RUN = re.compile(r"\b[A-Z][a-z]+(?:\s+(?:of\s+)?[A-Z][a-z]+)+")


def _acronyms_of(normal: str) -> list[str]:
    """Initials of capitalized word runs, so "AP" meets "Associated Press" ("of" is skipped, as in "BoE")."""
    found = []
    for run in _CAPITALIZED_RUN.findall(normal):
        initials = [w[0] for w in run.split() if w.lower() not in STOPWORDS]
        if len(initials) > 1:
            found.append("".join(initials).lower())
    return found


def terms(text: str) -> list[str]:
    """Content-word stems, and the acronyms of names: what keyword search and overlap scoring compare."""
    normal = normalize(text)  # once for both (loading a 30k-chunk index spent 1.1 of 5.0 s normalizing twice)
    return [stem(w) for w in _words_of(normal) if w not in STOPWORDS] + _acronyms_of(normal)


@lru_cache(maxsize=STEM_CACHE)
def token_terms(token: str) -> frozenset[str]:
    """`terms` of one whitespace-separated token, remembered: the selector looks at the tokens of every retrieved
    sentence, and of each clause of the long ones, for each question (a third of an answer's time, read afresh)."""
    return frozenset(terms(token))


@lru_cache(maxsize=STEM_CACHE)
def token_words(token: str) -> tuple[str, ...]:
    """`words` of one whitespace-separated token, remembered (as `token_terms`)."""
    return tuple(words(token))


def counted(number: int, noun: str) -> str:
    """"1 file", "2 files", "1,234 chunks": a count with its noun in the right number (regular plurals only)."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"

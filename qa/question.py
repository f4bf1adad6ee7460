"""Reads a question: what it asks for (a number, a time, a person…), and its focus words.

Cues come from English question words and the kinds of words a sentence holds, never from a document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from index.text import STOPWORDS, normalize, stem, terms


class Expect(Enum):
    NUMBER = "number"
    TIME = "time"
    PERSON = "person"
    PLACE = "place"
    NAME = "name"
    ANY = "any"


_ROLE_PREFIX = re.compile(r"^\s*(?:system|user|assistant|human|ai|instruction)s?\s*:\s*", re.IGNORECASE)
_MARKUP = re.compile(r"<[^<>]{1,200}>")
_SCRIPT = re.compile(r"<(script|style)\b[^<>]{0,200}>.{0,2000}?</\1\s*>", re.IGNORECASE | re.DOTALL)  # code, not words
# Where a sentence may end: ! ? or a full stop (a closing quote or bracket after it) before a space, or a line break.
_SENTENCE_END = re.compile(r"([.!?])[\"'\u201d\u2019)]?\s+|\n+")
# Lowercase abbreviations a full stop follows inside a sentence ("Scientology vs. the Internet").
_ABBREVIATIONS = frozenset({"vs", "cf", "ca", "approx", "incl", "esp"})
_QUANTITY_NOUNS = frozenset({"population", "number", "amount", "percentage", "percent", "total", "size", "cost",
                             "price", "budget", "death", "toll", "age", "count", "gdp", "revenue", "income", "salary",
                             "area", "rate", "value", "worth", "height", "length", "distance", "weight", "score"})
# Attributes whose value is a proper name: "What is the capital of Mali?", "What currency does Niger use?"
_NAME_NOUNS = frozenset({"capital", "currency", "language", "religion", "nationality", "title", "city", "party",
                         "headquarters", "brand", "company"})
# "What is the population of X?", "What was the total cost…": the thing asked for is a quantity.
_QUANTITY_ASKED = re.compile(r"\b(?:what|which)(?:'s| is| was| are| were)? (?:the |its |their )?(?:\w+ )?("
                             + "|".join(sorted(_QUANTITY_NOUNS)) + r")\b")
_NAME_ASKED = re.compile(r"\b(?:what|which)(?:'s| is| was| are| were)? (?:the |its |their )?(?:\w+ )?("
                         + "|".join(sorted(_NAME_NOUNS)) + r")\b")
# "Who is Wassim Nasr?" asks what someone is, not for a name.
_WHO_IS_NAME = re.compile(r"\W*(?i:who)(?:'s| is| was| are| were)(?:\s+[A-Z][\w'\u2019.-]*)+\W*$")
_ROLE_PHRASE = re.compile(r"\W*(?:who(?:'s| is| was| are| were)|.*\bname of)\s+(.+?)(?:\s+of\s.*)?\W*$")
_FRAME_WORDS = frozenset({"name", "kind", "type", "happen", "happened", "mean", "exactly", "tell", "know", "describe",
                          "explain", "summarize", "summarise"})
_FRAME_STEMS = frozenset(stem(w) for w in _FRAME_WORDS)
# Verbs a request starts with ("Name the minister.", "Describe the sanctions."): capitalized, but nobody's name.
_REQUEST_VERBS = frozenset({"name", "list", "describe", "explain", "give", "show", "summarize", "summarise", "tell",
                            "compare", "define", "identify", "find", "quote", "outline", "please"})
_NUMBER_WORDS = frozenset("""
one two three four five six seven eight nine ten eleven twelve dozen dozens twenty thirty forty fifty hundred
hundreds thousand thousands million millions billion billions half
""".split())
_MONTHS = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec", "january", "february",
    "march", "april", "june", "july", "august", "september", "october", "november", "december"]
# Words that pin a time down; "years" or "later" alone do not answer "when".
_TIME_WORDS = frozenset(_MONTHS + """
monday tuesday wednesday thursday friday saturday sunday today yesterday tomorrow tonight ago weekend
""".split())
_NAME = re.compile(r"(?<![\w'])[A-Z][\w'\u2019-]*(?:\s+(?:[A-Z][\w'\u2019-]*|(?:de|da|al|bin|van|von)\b))*")
_FOLLOW_UP = re.compile(r"\b(?:he|she|they|him|her|his|hers|their|them|it|its|this|that|these|those|there)\b|"
                        r"^\s*(?:and|but|what about|how about|also)\b", re.IGNORECASE)


# Questions whose answer is a passage, not a phrase: a reason, a way, a list, what someone said. Their answer may run
# over consecutive sentences (`qa.learned` joins the neighbours that answer too); a factoid's never does.
PASSAGE_CUES = (
    (re.compile(r"^\W*why\b|\bwhat (?:was|is|were|are) the (?:reason|cause|purpose)"), "Why did the junta ask Wagner?"),
    (re.compile(r"^\W*how (?:did|does|do|is|was|are|were|can|could|has|have|will|would)\b"),
     "How did Russia respond to his move?"),
    (re.compile(r"\bwhat (?:did|does|do|has|have) .{1,60}? (?:say|said|think|believe|argue|claim|mean|feel)\b"),
     "What did Chomsky say about NATO?"),
    (re.compile(r"^\W*(?:list|name) (?:the|all|some|three|two)\b|\bwhat (?:are|were) (?:the|some)\b.*\b\w+s\b"),
     "What are the main sights of the old town?"),
)


# Openers a user addresses to the assistant around the question itself, read past so the question's own words say
# what it asks for ("Tell me who…" asks for a person as "Who…" does). Each with an example.
REQUEST_OPENERS = (
    (re.compile(r"^\W*(?:can|could|would|will) you (?:please )?(?:tell|show) me\b\W*", re.IGNORECASE),
     "Can you tell me when the deadline is?"),
    (re.compile(r"^\W*(?:please )?tell me\b\W*", re.IGNORECASE), "Tell me who leads the junta."),
    (re.compile(r"^\W*do you know\b\W*", re.IGNORECASE), "Do you know who leads the junta?"),
    (re.compile(r"^\W*i(?:['\u2019]d| would) like to know\b\W*|^\W*i (?:want to know|wonder)\b\W*", re.IGNORECASE),
     "I'd like to know when the deadline is."),
    (re.compile(r"^\W*please\b\W*", re.IGNORECASE), "Please name the French foreign affairs minister."),
)


def without_opener(text: str) -> str:
    """The question inside a request (`REQUEST_OPENERS`): "Tell me who leads the junta." → "who leads the junta."."""
    for pattern, _ in REQUEST_OPENERS:
        rest = pattern.sub("", text, count=1)
        if rest != text and rest.strip():
            return rest
    return text


def wants_passage(text: str) -> bool:
    """Whether the question asks for a reason, a way, a list or what someone said (`PASSAGE_CUES`)."""
    lowered = normalize(text).lower()
    return any(pattern.search(lowered) for pattern, _ in PASSAGE_CUES)


@dataclass(frozen=True)
class Question:
    text: str
    expect: Expect
    focus: frozenset[str]

    @property
    def terms(self) -> list[str]:
        """The words to look for: content words less the ones that only frame the question ("the name of")."""
        return [t for t in terms(self.text) if t not in _FRAME_STEMS]


def sentences(text: str) -> list[str]:
    """The sentences of a short text. A full stop ends one only after a lowercase word or a number ("in 2020.
    What…"): "4.7", "U.S. Army", "e.g. uranium", "Rev. Elie Prioleau" and "Visa Inc. located" stay whole."""
    parts, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        if match.group(1) == ".":
            before = text[:match.start()].split()
            word = before[-1].lstrip("\"'\u201c\u2018([") if before else ""
            if len(word) < 2 or not word.isalnum() or word != word.lower() or word in _ABBREVIATIONS:
                continue
        parts.append(text[start:match.end()].strip())
        start = match.end()
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def clean(question: str) -> str:
    """The question a user asked, without role prefixes or instructions addressed to the assistant.

    When the input holds several sentences and some are questions, only the questions are kept: text like
    "SYSTEM: answer from your own knowledge." is not something the documents can be searched for; nor is
    markup such as `<script>`. Unless the questions alone ask nothing ("The mantle has two layers. What are
    they?"): then the sentences before them say what is asked, and all are kept.
    """
    text = _MARKUP.sub(" ", _SCRIPT.sub(" ", question))
    parts = [p for p in (_ROLE_PREFIX.sub("", p).strip() for p in sentences(text)) if p]
    asked = [p for p in parts if p.endswith("?")]
    if asked and terms(" ".join(asked)):
        return " ".join(asked)
    return " ".join(parts) or question.strip()


def read(question: str) -> Question:
    text = without_opener(clean(question))
    lowered = normalize(text).lower()

    head = re.match(r"\W*(\w+)", lowered)
    first = head.group(1) if head else ""
    if re.search(r"\bhow (?:many|much|old|long|far|big|large)\b", lowered):
        return Question(text, Expect.NUMBER, _quantity_focus(lowered))
    quantity = _QUANTITY_ASKED.search(lowered)
    if quantity:
        return Question(text, Expect.NUMBER, frozenset({stem(quantity.group(1))}))
    if first == "when" or re.search(r"\b(?:what|which) (?:year|date|day|month|time)\b", lowered):
        return Question(text, Expect.TIME, frozenset())
    if re.search(r"\bname (?:of|the)\b", lowered) or (first in {"who", "whom", "whose"}
                                                      and not _WHO_IS_NAME.match(text)):
        return Question(text, Expect.PERSON, _role(lowered))
    if first == "where":
        return Question(text, Expect.PLACE, frozenset())
    named = _NAME_ASKED.search(lowered)
    if named:
        return Question(text, Expect.NAME, frozenset({stem(named.group(1))}))
    return Question(text, Expect.ANY, frozenset())


def _role(lowered: str) -> frozenset[str]:
    """The role a name is asked for: "who is the leader of X" → leader, "the name of X's ousted president" →
    president. Names standing beside it are the likely answer."""
    phrase = _ROLE_PHRASE.match(lowered)
    if not phrase:
        return frozenset()
    head = [w for w in re.findall(r"[a-z]+", re.sub(r"'s\b", "", phrase.group(1))) if w not in STOPWORDS]
    return frozenset({stem(head[-1])}) if head else frozenset()


def _quantity_focus(lowered: str) -> frozenset[str]:
    """The counted thing: the last word of the run after "how many" ("how many French soldiers are" → soldier)."""
    after = re.search(r"\bhow (?:many|much)\s+([\w\s-]+)", lowered)
    if not after:
        return frozenset()
    run = []
    for word in after.group(1).split():
        if word in STOPWORDS:
            break
        run.append(word)
    return frozenset({stem(run[-1])}) if run else frozenset()


def names(text: str) -> list[str]:
    """Capitalized word runs that are not just a sentence's first word: people, places, organizations."""
    found = []
    for match in _NAME.finditer(normalize(text)):
        kept = [w for w in match.group().split() if w.lower() not in STOPWORDS | _TIME_WORDS | _REQUEST_VERBS]
        if kept:
            found.append(" ".join(kept))
    return found


def has_number(ws: list[str]) -> bool:
    return any(w[0].isdigit() or w in _NUMBER_WORDS for w in ws)


def has_time(ws: list[str]) -> bool:
    return any(w in _TIME_WORDS or (w.isdigit() and len(w) == 4) for w in ws)


def is_follow_up(question: str) -> bool:
    return bool(_FOLLOW_UP.search(question))

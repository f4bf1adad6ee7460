"""Conversation history in any of the shapes clients send, and the retrieval context it gives a follow-up."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from index.errors import CiteqaError
from qa.answer import Turn
from qa.question import clean, is_follow_up, names

MAX_CONTEXT_CHARS = 600


class HistoryError(CiteqaError, ValueError):
    """History that is not a list of {role, content} turns."""

    http_status = 422


def content_text(content: Any) -> str:
    """Plain text from a string, Gradio's `[{"type": "text", "text": ...}]` parts, or one such part."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return content_text(content.get("text", content.get("content", "")))
    if isinstance(content, list | tuple):
        return " ".join(content_text(part) for part in content if isinstance(part, str | dict)).strip()
    return ""


def turns(history: Iterable[Any] | None) -> list[Turn]:
    """Validated turns, oldest first; raises HistoryError naming the first bad turn."""
    result = []
    for number, turn in enumerate(history or []):
        if isinstance(turn, Turn):
            result.append(turn)
            continue
        role = turn.get("role") if isinstance(turn, dict) else None
        if role not in ("user", "assistant"):
            raise HistoryError(f"history[{number}]: role must be 'user' or 'assistant'")
        content = turn.get("content")
        if not isinstance(content, str | list | dict):
            raise HistoryError(f"history[{number}]: content must be text")
        result.append(Turn(role, content_text(content)))
    return result


def previous_answer(question: str, history: list[Turn]) -> str:
    """The answer a follow-up comes after (empty for a question that stands alone)."""
    if not history or not is_follow_up(question):
        return ""
    return next((t.content for t in reversed(history) if t.role == "assistant"), "")


def follow_up_context(question: str, history: list[Turn]) -> str:
    """What a follow-up leans on: the previous question and the names in the previous answer.

    Empty for a question that stands alone, so history never drags retrieval away from a new topic.
    """
    if not history or not is_follow_up(question):
        return ""
    last_user = next((clean(t.content) for t in reversed(history) if t.role == "user"), "")
    last_answer = previous_answer(question, history)
    mentioned = [n for n in names(last_answer) if n not in question and n not in last_user]
    return " ".join([last_user, *dict.fromkeys(mentioned)])[:MAX_CONTEXT_CHARS]

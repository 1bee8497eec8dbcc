"""What the console API sends: the tools' result models as JSON, plus highlight segments for search results.

Highlights are sent as segments (text, matched) rather than offsets or markup: offsets differ between Python and
JavaScript strings outside the BMP, and markup would have to be parsed; segments are rendered as text nodes.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from mcp_server.schemas import MemoryOut, MessageOut, SessionOut
from repository.models import Memory, Message, Session, SessionSummary

if TYPE_CHECKING:
    from repository.textsearch import Analyzer

# What a word is for highlighting: the same pattern the search snippets mark (repository.search.snippets).
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def marked(analyzer: Analyzer, text: str | None, terms: list[str]) -> list[tuple[str, bool]]:
    """`text` cut into segments, each flagged when it is a word whose stem the search used."""
    if not text:
        return []
    wanted = set(terms)
    segments: list[tuple[str, bool]] = []
    cursor = 0
    for match in _WORD.finditer(text):
        if analyzer.word_stem(match.group(0)) in wanted:
            if match.start() > cursor:
                segments.append((text[cursor : match.start()], False))
            segments.append((match.group(0), True))
            cursor = match.end()
    if cursor < len(text):
        segments.append((text[cursor:], False))
    return segments


def memory_json(memory: Memory, preview: int | None = None) -> dict[str, Any]:
    return MemoryOut.of(memory, preview).model_dump(mode="json")


def session_json(session: Session | SessionSummary) -> dict[str, Any]:
    return SessionOut.of(session).model_dump(mode="json")


def message_json(message: Message, preview: int | None = None) -> dict[str, Any]:
    return MessageOut.of(message, preview).model_dump(mode="json")

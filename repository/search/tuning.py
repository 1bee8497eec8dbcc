"""The constants of the final ranking, in one value: the server uses `TUNING`; the LoCoMo harness
(bench/locomo_loo.py) scores others with the same ranking code, choosing each on four conversations and scoring the
fifth (docs/retrieval.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from repository.textsearch import CTX_WEIGHT, DATE_BOOST, K1, SPEAKER_BOOST, B


@dataclass(frozen=True)
class Tuning:
    k1: float = K1
    b: float = B
    ctx_weight: float = CTX_WEIGHT
    speaker_boost: float = SPEAKER_BOOST
    date_boost: float = DATE_BOOST
    # A row without a speaker of its own whose text opens with "Name: " counts as said by Name (memories stored as
    # "Caroline: ...", history sent without `name`).
    opening_speaker: bool = True
    # A "when" question multiplies rows whose words carry a time expression ("yesterday", "last week", "May").
    when_boost: float = 1.0
    # A message gains this share of the best score among the candidates of its session.
    session_weight: float = 0.0


TUNING = Tuning()

# "Name: text" at the start of a row: one to three capitalised words, then a colon.
_OPENING = re.compile(r"\s*([A-Z][\w'.-]{0,30}(?: [A-Z][\w'.-]{0,30}){0,2}):\s")
_WHEN = re.compile(r"\b(when|what (?:date|day|month|year|time)|how long ago)\b", re.IGNORECASE)

# Words of time expressions (folded, before stemming): relative days, calendar units, weekdays, months.
TIME_WORDS = frozenset(
    """
    yesterday today tomorrow tonight ago last next recently recent earlier later since
    week weeks weekend month months year years day days
    monday tuesday wednesday thursday friday saturday sunday
    january february march april may june july august september october november december
    """.split()
)


def opening_speaker(text: str | None) -> str | None:
    """The "Name" of a text opening with "Name: ", else None."""
    if not text:
        return None
    found = _OPENING.match(text)
    return found.group(1) if found else None


def asks_when(query: str) -> bool:
    return _WHEN.search(query) is not None

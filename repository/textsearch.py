"""Natural-language query handling shared by both backends.

A query becomes a list of lower-case content words: letters and digits only, so quotes, `*`, `-`, `:`, `NEAR(`,
parentheses and operator words can never reach FTS5 or to_tsquery as syntax.
"""

from __future__ import annotations

import re

MAX_QUERY_TERMS = 32

_WORD = re.compile(r"[^\W_]+", re.UNICODE)

# English function words and question words: they carry no topic, and OR-ing them matches almost every row.
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her here
    hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of
    off on once only or other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up very was we were what
    when where which while who whom why will with would you your yours yourself yourselves near""".split()
)


def query_terms(query: str) -> list[str]:
    """Distinct content words of `query`, in order, at most MAX_QUERY_TERMS."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(query.lower()):
        if word not in STOPWORDS and word not in seen:
            seen[word] = None
    return list(seen)[:MAX_QUERY_TERMS]


def term_matches(word: str, terms: list[str]) -> bool:
    """Whether a word of a text matches one of the query terms (same word, or the same stem by prefix)."""
    lowered = word.lower()
    return any(lowered == t or (len(t) >= 4 and lowered.startswith(t[: max(4, len(t) - 2)])) for t in terms)

"""Snippets: the passage of a text that best matches the query words, with those words marked."""

from __future__ import annotations

import re

from repository.textsearch import Analyzer

WINDOW_WORDS = 30
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


def snippet(analyzer: Analyzer, text: str | None, terms: list[str], window: int = WINDOW_WORDS) -> str:
    """Up to `window` words around the densest cluster of query stems, matching words wrapped in [brackets]."""
    if not text:
        return ""
    tokens = list(_TOKEN.finditer(text))
    if not tokens:
        return text[:200]
    wanted = set(terms)
    hits = [i for i, m in enumerate(tokens) if analyzer.word_stem(m.group(0)) in wanted]
    if not hits:
        start = 0
    else:
        # The start position whose window holds the most hits.
        start = max(hits, key=lambda h: sum(1 for o in hits if h <= o < h + window))
        start = max(0, min(start - 3, len(tokens) - window))
    end = min(len(tokens), start + window)
    lo, hi = tokens[start].start(), tokens[end - 1].end()
    marked, cursor = [], lo
    hit_set = set(hits)
    for i in range(start, end):
        m = tokens[i]
        if i in hit_set:
            marked.append(text[cursor : m.start()])
            marked.append(f"[{m.group(0)}]")
            cursor = m.end()
    marked.append(text[cursor:hi])
    prefix = "..." if lo > 0 else ""
    suffix = "..." if hi < len(text) else ""
    return prefix + "".join(marked) + suffix

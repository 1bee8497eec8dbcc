"""The final order of search candidates: BM25F over body and neighbour context, with speaker and date boosts.

The same Python code ranks on both backends, so SQLite and PostgreSQL order the same candidates the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from repository.search.types import Candidate, Stats
from repository.textsearch import CTX_WEIGHT, DATE_BOOST, K1, SPEAKER_BOOST, Analyzer, B, bm25f_scores


def rank(
    analyzer: Analyzer,
    rows: Sequence[Candidate],
    terms: Sequence[str],
    stats: Stats,
    periods: Sequence[tuple[datetime, datetime]] = (),
) -> list[tuple[Candidate, float]]:
    """Candidates by BM25F, times SPEAKER_BOOST when the question names the row's speaker and DATE_BOOST when the
    row was created in a period the question names (`periods`); rows without a matching word are dropped."""
    scores = bm25f_scores(
        dict.fromkeys(terms, 1.0),
        [(row.search_body, row.search_ctx) for row in rows],
        (1.0, CTX_WEIGHT),
        stats.df,
        max(stats.n_docs, 1),
        (stats.avg_body, stats.avg_ctx),
        k1=K1,
        b=B,
    )
    wanted = set(terms)
    named: dict[str, bool] = {}
    for i, row in enumerate(rows):
        if row.speaker:
            if row.speaker not in named:
                named[row.speaker] = not wanted.isdisjoint(analyzer.analyze(row.speaker))
            if named[row.speaker]:
                scores[i] *= SPEAKER_BOOST
        if any(start <= row.created_at < end for start, end in periods):
            scores[i] *= DATE_BOOST
    ranked = sorted(zip(rows, scores, strict=True), key=lambda pair: (-pair[1], -pair[0].seq))
    return [(row, score) for row, score in ranked if score > 0]

"""The final order of search candidates: BM25F over body and neighbour context, with speaker, date and "when"
boosts and an optional share of the session's best score.

The same Python code ranks on both backends, so SQLite and PostgreSQL order the same candidates the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from repository.search.tuning import TIME_WORDS, TUNING, Tuning, opening_speaker
from repository.search.types import Candidate, Stats
from repository.textsearch import Analyzer, bm25f_scores


def rank(
    analyzer: Analyzer,
    rows: Sequence[Candidate],
    terms: Sequence[str],
    stats: Stats,
    periods: Sequence[tuple[datetime, datetime]] = (),
    *,
    when: bool = False,
    tuning: Tuning = TUNING,
) -> list[tuple[Candidate, float]]:
    """Candidates by BM25F, times the speaker boost when the question names the row's speaker and the date boost
    when the row was created in a period the question names (`periods`), the "when" boost for a row with a time
    expression when the question asks when; rows without a matching word are dropped."""
    scores = bm25f_scores(
        dict.fromkeys(terms, 1.0),
        [(row.search_body, row.search_ctx) for row in rows],
        (1.0, tuning.ctx_weight),
        stats.df,
        max(stats.n_docs, 1),
        (stats.avg_body, stats.avg_ctx),
        k1=tuning.k1,
        b=tuning.b,
    )
    wanted = set(terms)
    named: dict[str, bool] = {}
    time_stems = _time_stems(analyzer) if when and tuning.when_boost != 1.0 else frozenset()
    for i, row in enumerate(rows):
        speaker = row.speaker or (opening_speaker(row.opening) if tuning.opening_speaker else None)
        if speaker:
            if speaker not in named:
                named[speaker] = not wanted.isdisjoint(analyzer.analyze(speaker))
            if named[speaker]:
                scores[i] *= tuning.speaker_boost
        if any(start <= row.created_at < end for start, end in periods):
            scores[i] *= tuning.date_boost
        if time_stems and not time_stems.isdisjoint(row.search_body.split()):
            scores[i] *= tuning.when_boost
    if tuning.session_weight:
        scores = _with_sessions(rows, scores, tuning.session_weight)
    ranked = sorted(zip(rows, scores, strict=True), key=lambda pair: (-pair[1], -pair[0].seq))
    return [(row, score) for row, score in ranked if score > 0]


def _with_sessions(rows: Sequence[Candidate], scores: list[float], weight: float) -> list[float]:
    """Each matching row plus `weight` times the best score in its session: a session about the question lifts its
    turns that share few words with it."""
    best: dict[object, float] = {}
    for row, score in zip(rows, scores, strict=True):
        if row.session is not None:
            best[row.session] = max(best.get(row.session, 0.0), score)
    return [
        score + weight * best[row.session] if score > 0 and row.session is not None else score
        for row, score in zip(rows, scores, strict=True)
    ]


def _time_stems(analyzer: Analyzer) -> frozenset[str]:
    return frozenset(analyzer.word_stem(word) for word in TIME_WORDS)

"""Which stems to ask the full-text index for, and how, so that no query scores more than a bounded number of rows.

The rarest stems are asked for, in order of document frequency, while their summed frequencies fit
`Bounds.candidate_postings`; stems in more than `Bounds.common_term_share` of all rows are never asked for. When
even the rarest stem is too common, the query instead takes the newest rows that hold every stem (the index walks
them in row order and stops at `Bounds.candidates`), topped up with the newest rows holding any of them. Left-out
stems still count in the final score (repository.search.ranking).
"""

from __future__ import annotations

from collections.abc import Sequence

from repository.runtime import Bounds
from repository.search.types import Plan, Stats


def plan(terms: Sequence[str], stats: Stats, bounds: Bounds) -> Plan | None:
    """The plan for these query stems; None when none of them occurs (nothing can match)."""
    present = sorted((t for t in terms if stats.df.get(t, 0) > 0), key=lambda t: (stats.df[t], t))
    if not present:
        return None
    share_limit = max(bounds.common_term_share * stats.n_docs, 1)
    chosen: list[str] = []
    postings = 0
    for term in present:
        df = stats.df[term]
        # The rarest stem is always worth ranking if it fits the budget, even when common in a small collection.
        if postings + df > bounds.candidate_postings or (chosen and df > share_limit):
            break
        chosen.append(term)
        postings += df
    if chosen:
        return Plan(sorted(chosen, key=terms.index), ranked=True)
    every = float(stats.n_docs)
    for term in present:
        every *= stats.df[term] / max(stats.n_docs, 1)
    anyone = float(min(stats.n_docs, sum(stats.df[t] for t in present)))
    return Plan(list(present), ranked=False, all_terms_estimate=every, any_term_estimate=anyone, n_docs=stats.n_docs)

"""PostgreSQL's half of search: statistics from the trigger-kept tables and tsquery conditions."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import ColumnElement, String, bindparam, column, func, literal, literal_column, select, table, union_all
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter

from repository.runtime import Runtime
from repository.search.corpus import Corpus, split_totals, totals
from repository.search.types import Match, Plan, Stats
from repository.textsearch import pg_tsquery

_search_terms = table("search_terms", column("kind"), column("term"), column("df"))


class PostgresSearch:
    """Statistics and full-text conditions on PostgreSQL (generated tsvector columns, GIN indexes)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def stats(self, session: Session, corpus: Corpus, terms: Sequence[str]) -> Stats:
        """Collection size, field lengths and document frequencies (the `search_terms` table), in one round trip."""
        asked = list(terms)
        found = session.connection().execute(_stats(corpus, bool(asked)), {"terms": asked} if asked else {}).all()
        n, body_len, ctx_len, df = split_totals(found)
        return Stats(n_docs=n, avg_body=body_len / n if n else 0.0, avg_ctx=ctx_len / n if n else 0.0, df=df)

    def match(
        self, corpus: Corpus, plan: Plan, *, every: bool, scope_tokens: Sequence[str] = (), partitioned: bool = False
    ) -> Match:
        """Rows holding any (or, with `every`, all) of the plan's terms, engine-ranked or newest first.

        `partitioned`: the newest-first walk runs once per visibility partition, each on its own key.
        """
        tsquery = {"tsquery": pg_tsquery(plan.terms, every=every)}
        if plan.ranked:
            return replace(_match(corpus, "ranked"), params=tsquery)
        # Newest first, PostgreSQL either walks a key backwards testing each row (about candidates * N / matches
        # rows read) or fetches every match through the GIN index and sorts (about `matches` rows read); its own
        # estimate for a rare stem is a fixed guess, and it walked far too long for a stem in few rows. We know
        # the frequencies: when the matches are few, `seq + 0` hides the key order and forces the fetch.
        matches = plan.all_terms_estimate if every else plan.any_term_estimate
        if matches * matches < self.runtime.bounds.candidates * plan.n_docs:
            return replace(_match(corpus, "fetch"), params=tsquery)
        # Each partition is walked on its own key: the function form of @@ is not an index condition, so the
        # planner cannot trade a walk for a GIN fetch of every match in the table (it did, per session, for
        # questions whose estimated matches were few). One walk over the whole table keeps the planner's choice.
        return replace(_match(corpus, "walk_partitions" if partitioned else "walk"), params=tsquery)


@functools.cache
def _stats(corpus: Corpus, with_terms: bool) -> Any:
    """The statistics statement: the totals, with the frequencies of the bound `terms` when asked."""
    if not with_terms:
        return totals(corpus)
    terms: BindParameter[str] = bindparam("terms", type_=String, expanding=True)
    counts = select(_search_terms.c.df, literal(0), literal(0), _search_terms.c.term).where(
        _search_terms.c.kind == corpus.kind, _search_terms.c.term.in_(terms)
    )
    return union_all(totals(corpus), counts)


@functools.cache
def _match(corpus: Corpus, way: str) -> Match:
    """The full-text condition and order of one way of finding candidates, the tsquery text a parameter."""
    rows = corpus.rows
    query = func.to_tsquery("simple", bindparam("tsquery", type_=String))
    vector: ColumnElement[Any] = literal_column(f"{corpus.name}.search_tsv")
    if way == "ranked":
        return Match(join=None, where=vector.op("@@")(query), order=func.ts_rank(vector, query, 1).desc(), shape=way)
    if way == "fetch":
        return Match(join=None, where=vector.op("@@")(query), order=(rows.seq + 0).desc(), shape=way)
    where = func.ts_match_vq(vector, query) if way == "walk_partitions" else vector.op("@@")(query)
    return Match(join=None, where=where, order=rows.seq.desc(), walks_key=True, shape=way)

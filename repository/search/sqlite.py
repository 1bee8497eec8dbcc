"""SQLite's half of search: FTS5 statistics (with a cache of common terms' frequencies) and MATCH conditions."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import ColumnElement, String, bindparam, column, literal, literal_column, select, table, text, union_all
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter

from repository.runtime import Runtime
from repository.search.corpus import Corpus, split_totals, totals
from repository.search.types import Match, Plan, Stats
from repository.textsearch import CTX_WEIGHT, fts5_match

# The FTS5 tables and their vocabularies (created by the migrations), as much of them as queries need.
_fts = {name: table(name, column("rowid")) for name in ("memories_fts", "messages_fts")}
_vocab = {name: table(f"{name}_vocab", column("term"), column("doc")) for name in ("memories_fts", "messages_fts")}


class SqliteSearch:
    """Statistics and full-text conditions on SQLite (FTS5)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def stats(self, session: Session, corpus: Corpus, terms: Sequence[str]) -> Stats:
        """Collection size, field lengths and document frequencies, in one round trip as a rule.

        FTS5's vocabulary table counts a term's documents by walking its whole posting list, paid on every search:
        frequencies of at least `Bounds.df_cache_min` are kept and reused until the collection has drifted by
        more than `Bounds.df_cache_drift` of its size; rarer terms are cheap to count and always counted afresh,
        so small collections stay exact.
        """
        cache = self.runtime.document_frequencies
        asked = [t for t in terms if (corpus.fts_name, t) not in cache]
        query = _stats(corpus, bool(asked))
        found = session.connection().execute(query, {"terms": asked} if asked else {}).all()
        n, body_len, ctx_len, fetched = split_totals(found)
        df = self._frequencies(session, corpus.fts_name, terms, n, asked, fetched)
        return Stats(n_docs=n, avg_body=body_len / n if n else 0.0, avg_ctx=ctx_len / n if n else 0.0, df=df)

    def _frequencies(
        self,
        session: Session,
        fts_name: str,
        terms: Sequence[str],
        n_docs: int,
        asked: Sequence[str],
        fetched: dict[str, int],
    ) -> dict[str, int]:
        """Frequencies of `terms`: `fetched` for the `asked` ones, cached for the rest unless the collection drifted."""
        bounds, cache = self.runtime.bounds, self.runtime.document_frequencies
        df: dict[str, int] = {}
        stale = []
        for term in terms:
            if term in asked:
                continue
            known = cache.get((fts_name, term))
            if known is not None and abs(n_docs - known[1]) <= bounds.df_cache_drift * known[1]:
                df[term] = known[0]
            else:
                stale.append(term)
        if stale:
            vocab = _vocab[fts_name]
            recount = select(vocab.c.term, vocab.c.doc).where(vocab.c.term.in_(stale))
            fetched = fetched | {term: int(count) for term, count in session.execute(recount).all()}
        for term in [*asked, *stale]:
            count = int(fetched.get(term, 0))
            df[term] = count
            if count >= bounds.df_cache_min:
                cache[(fts_name, term)] = (count, n_docs)
            else:
                cache.pop((fts_name, term), None)
        return {term: count for term, count in df.items() if count}

    def match(
        self, corpus: Corpus, plan: Plan, *, every: bool, scope_tokens: Sequence[str] = (), partitioned: bool = False
    ) -> Match:
        """Rows holding any (or, with `every`, all) of the plan's terms, engine-ranked or newest first.

        `scope_tokens`: the indexed visibility tokens, one of which a row must hold when walking newest first.
        """
        expression = fts5_match(plan.terms, every=every)
        newest_first = not plan.ranked
        if newest_first and scope_tokens:
            # The walk in rowid order then skips other users' rows inside the index (a small user's search among
            # many other rows paid for walking past them). Only here: with engine ranking the scope token costs more
            # (a large scope's posting list is merged in full) than the few matches it would filter.
            expression = "(" + " OR ".join(f'"{token}"' for token in scope_tokens) + f") AND ({expression})"
        return replace(_match(corpus, newest_first), params={"match": expression})


@functools.cache
def _stats(corpus: Corpus, with_terms: bool) -> Any:
    """The statistics statement: the totals, with the vocabulary counts of the bound `terms` when asked."""
    if not with_terms:
        return totals(corpus)
    vocab = _vocab[corpus.fts_name]
    terms: BindParameter[str] = bindparam("terms", type_=String, expanding=True)
    counts = select(vocab.c.doc, literal(0), literal(0), vocab.c.term).where(vocab.c.term.in_(terms))
    return union_all(totals(corpus), counts)


@functools.cache
def _match(corpus: Corpus, newest_first: bool) -> Match:
    """The full-text condition and order of one shape, the MATCH expression a parameter."""
    fts = _fts[corpus.fts_name]
    where = text(f"{corpus.fts_name} MATCH :match").bindparams(bindparam("match", type_=String))
    # FTS5 walks its index in rowid order itself, so LIMIT stops the walk early: no sort of every match.
    bm25: ColumnElement[float] = literal_column(f"bm25({corpus.fts_name}, 1.0, {CTX_WEIGHT})")
    order = fts.c.rowid.desc() if newest_first else bm25.asc()
    join = (fts, fts.c.rowid == corpus.rows.seq)
    return Match(join=join, where=where, order=order, shape=("sqlite", newest_first))

"""Ranked search over memories and messages: full-text candidates, then BM25F in Python, on both backends.

1. The question is reduced to stems (`textsearch.query_terms`); none left means no results, not an error.
2. Collection statistics (document frequencies, average field lengths) come from the database: `search_stats`,
   plus FTS5's own vocabulary table on SQLite and the trigger-kept `search_terms` table on PostgreSQL.
3. The candidate query never makes the engine score more than about CANDIDATE_POSTINGS index entries, whatever the
   collection size (`_plan`): the rarest stems are asked for, in order of document frequency, while their summed
   frequencies fit; stems in more than COMMON_TERM_SHARE of all rows are never asked for. When even the rarest stem
   is too common, the query instead takes the newest rows that hold every stem (the index walks them in row order
   and stops at CANDIDATES), topped up with the newest rows holding any of them. Left-out stems still count in
   the final score.
4. The full-text index returns at most CANDIDATES visible rows (stems only), ordered by the engine's cheap rank
   (or by recency, in the second case).
5. BM25F over body and neighbour context (`textsearch.bm25f_scores`) orders them, doubled for a message said by
   someone the question names and for a row created on a date the question names; the same code on both backends.
6. Only the winners are loaded in full.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    column,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
    text,
    union_all,
)
from sqlalchemy.orm import Session

from repository._sync import in_async_session
from repository.memories import (
    MEMORY_COLUMNS,
    not_expired,
    scope_kind_is,
    visibility_partitions,
    visibility_tokens,
    visible_to,
)
from repository.messages import MESSAGE_COLUMNS, session_token
from repository.models import Memory, Message
from repository.query_dates import query_periods
from repository.tables import MemoryRow, MessageRow, SearchStatsRow, SessionRow
from repository.textsearch import (
    B,
    CTX_WEIGHT,
    DATE_BOOST,
    K1,
    SPEAKER_BOOST,
    analyze,
    bm25f_scores,
    fts5_match,
    pg_tsquery,
    query_terms,
)

MAX_RESULTS = 100
CANDIDATES = 100
# Engine-ranked index entries per search at most: FTS5's bm25 costs ~1.5 us per matching row (150 ms for a question
# matching all of 100k rows), so OR-ing common words at 1M rows meant scoring most of the table (~1.1 s).
CANDIDATE_POSTINGS = 2_000
COMMON_TERM_SHARE = 0.25
MAX_SESSION_WALKS = 200

# The FTS5 tables and their vocabularies (created by the migrations), as much of them as queries need.
_fts = {name: table(name, column("rowid")) for name in ("memories_fts", "messages_fts")}
_vocab = {name: table(f"{name}_vocab", column("term"), column("doc")) for name in ("memories_fts", "messages_fts")}
_search_terms = table("search_terms", column("kind"), column("term"), column("df"))


@dataclass(frozen=True)
class MemoryHit:
    memory: Memory
    score: float


@dataclass(frozen=True)
class MessageHit:
    message: Message
    score: float


@dataclass(frozen=True)
class MemoryFilters:
    """Narrowing beyond the visibility rules: scopes, a session, metadata equality, a creation-time range."""

    scopes: frozenset[str] = frozenset({"user", "agent", "session", "global"})
    session_id: uuid.UUID | None = None
    metadata: dict[str, Any] | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


@dataclass(frozen=True)
class _Stats:
    n_docs: int
    avg_body: float
    avg_ctx: float
    df: dict[str, int]


def _stats(session: Session, kind: str, fts_name: str, terms: Sequence[str]) -> _Stats:
    """Collection size, field lengths and the document frequency of each term, in one round trip as a rule."""
    totals = select(
        SearchStatsRow.n_docs, SearchStatsRow.body_len, SearchStatsRow.ctx_len, literal(None, String).label("term")
    ).where(SearchStatsRow.kind == kind)
    sqlite = session.get_bind().dialect.name == "sqlite"
    if sqlite:
        # FTS5's own vocabulary for the terms not cached (see _sqlite_document_frequencies).
        cache = _df_cache.setdefault(session.get_bind(), {})
        asked = [t for t in terms if (fts_name, t) not in cache]
        vocab = _vocab[fts_name]
        counts = select(vocab.c.doc, literal(0), literal(0), vocab.c.term).where(vocab.c.term.in_(asked))
    else:
        # The trigger-kept search_terms table holds each stem's document frequency.
        asked = list(terms)
        counts = select(_search_terms.c.df, literal(0), literal(0), _search_terms.c.term).where(
            _search_terms.c.kind == kind, _search_terms.c.term.in_(asked)
        )
    n, body_len, ctx_len, df = 0, 0, 0, {}
    for count, body, ctx, term in session.execute(union_all(totals, counts) if asked else totals).all():
        if term is None:
            n, body_len, ctx_len = max(int(count), 0), int(body), int(ctx)
        else:
            df[term] = int(count)
    if sqlite:
        df = _sqlite_document_frequencies(session, fts_name, terms, n, asked, df)
    return _Stats(n_docs=n, avg_body=body_len / n if n else 0.0, avg_ctx=ctx_len / n if n else 0.0, df=df)


# FTS5's vocabulary table counts a term's documents by walking its whole posting list: ~35 ms for a word in 1M rows,
# and ~0.6 ms for a word in 5,000 of 10,000, paid on every search. Frequencies of at least DF_CACHE_MIN are
# therefore kept per engine and reused until the collection has grown or shrunk by more than DF_CACHE_DRIFT of its
# size (new rows hold a word at about its usual rate, so its count moves by about as much: ~1%, and its idf far
# less); rarer terms are cheap to count and always counted afresh, so collections under DF_CACHE_MIN stay exact.
DF_CACHE_MIN = 1_000
DF_CACHE_DRIFT = 0.01
_df_cache: WeakKeyDictionary[Any, dict[tuple[str, str], tuple[int, int]]] = WeakKeyDictionary()


def _sqlite_document_frequencies(
    session: Session, fts_name: str, terms: Sequence[str], n_docs: int, asked: Sequence[str], fetched: dict[str, int]
) -> dict[str, int]:
    """Frequencies of `terms`: `fetched` for the `asked` ones, cached for the rest unless the collection drifted."""
    cache = _df_cache.setdefault(session.get_bind(), {})
    df: dict[str, int] = {}
    stale = []
    for term in terms:
        if term in asked:
            continue
        known = cache.get((fts_name, term))
        if known is not None and abs(n_docs - known[1]) <= DF_CACHE_DRIFT * known[1]:
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
        if count >= DF_CACHE_MIN:
            cache[(fts_name, term)] = (count, n_docs)
        else:
            cache.pop((fts_name, term), None)
    return {term: count for term, count in df.items() if count}


@dataclass(frozen=True)
class _Plan:
    """What to ask the full-text index: `ranked` = any of `terms`, engine-ranked; else all of them, newest first."""

    terms: list[str]
    ranked: bool
    # Rows expected to hold all / any of the terms (independence assumed), and the collection size: they decide
    # how PostgreSQL finds the newest matches.
    all_terms_estimate: float = 0.0
    any_term_estimate: float = 0.0
    n_docs: int = 0


def _plan(terms: Sequence[str], stats: _Stats) -> _Plan | None:
    """Which stems to ask the index for, and how (see the module docstring, step 3). None: nothing can match."""
    present = sorted((t for t in terms if stats.df.get(t, 0) > 0), key=lambda t: (stats.df[t], t))
    if not present:
        return None
    share_limit = max(COMMON_TERM_SHARE * stats.n_docs, 1)
    chosen: list[str] = []
    postings = 0
    for term in present:
        df = stats.df[term]
        # The rarest stem is always worth ranking if it fits the budget, even when common in a small collection.
        if postings + df > CANDIDATE_POSTINGS or (chosen and df > share_limit):
            break
        chosen.append(term)
        postings += df
    if chosen:
        return _Plan(sorted(chosen, key=terms.index), ranked=True)
    every = float(stats.n_docs)
    for term in present:
        every *= stats.df[term] / max(stats.n_docs, 1)
    anyone = float(min(stats.n_docs, sum(stats.df[t] for t in present)))
    return _Plan(list(present), ranked=False, all_terms_estimate=every, any_term_estimate=anyone, n_docs=stats.n_docs)


def _rank(
    rows: Sequence[Any], terms: Sequence[str], stats: _Stats, periods: Sequence[tuple[datetime, datetime]] = ()
) -> list[tuple[Any, float]]:
    """Candidates by BM25F, times SPEAKER_BOOST when the question names the row's speaker and DATE_BOOST when the
    row was created in a period the question names (`periods`)."""
    scores = bm25f_scores(
        {t: 1.0 for t in terms},
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
                named[row.speaker] = not wanted.isdisjoint(analyze(row.speaker))
            if named[row.speaker]:
                scores[i] *= SPEAKER_BOOST
        if any(start <= row.created_at < end for start, end in periods):
            scores[i] *= DATE_BOOST
    ranked = sorted(zip(rows, scores, strict=True), key=lambda pair: (-pair[1], -pair[0].seq))
    return [(row, score) for row, score in ranked if score > 0]


def _match_condition(
    session: Session,
    row_table: Any,
    fts_name: str,
    plan: _Plan,
    *,
    every: bool,
    scope_tokens: Sequence[str] = (),
    partitioned: bool = False,
) -> tuple[Any, Any, Any, bool]:
    """(join target or None, WHERE clause, ORDER BY, walks_key) selecting rows that contain any (or, with `every`,
    all) of the plan's terms, ordered by the engine's rank for a ranked plan and newest first otherwise.
    `walks_key`: PostgreSQL is left to walk an index in key order (see `_candidates`). `scope_tokens`: SQLite's
    indexed visibility tokens, one of which a row must hold when walking newest first. `partitioned`: the walk runs
    once per partition of `_candidates`, each on its own key."""
    newest_first = not plan.ranked
    if session.get_bind().dialect.name == "sqlite":
        fts = _fts[fts_name]
        expression = fts5_match(plan.terms, every=every)
        if newest_first and scope_tokens:
            # The walk in rowid order then skips other users' rows inside the index (a user with 1k memories among
            # 100k paid ~38 ms walking past them). Only here: with engine ranking the scope token costs more (a
            # large scope's posting list is merged in full) than the few matches it would filter.
            expression = "(" + " OR ".join(f'"{token}"' for token in scope_tokens) + f") AND ({expression})"
        match = text(f"{fts_name} MATCH :match").bindparams(match=expression)
        # FTS5 walks its index in rowid order itself, so LIMIT stops the walk early: no sort of every match.
        rank = fts.c.rowid.desc() if newest_first else literal_column(f"bm25({fts_name}, 1.0, {CTX_WEIGHT})").asc()
        return (fts, fts.c.rowid == row_table.seq), match, rank, False
    query = func.to_tsquery("simple", pg_tsquery(plan.terms, every=every))
    vector = literal_column(f"{row_table.__tablename__}.search_tsv")
    if not newest_first:
        return None, vector.op("@@")(query), func.ts_rank(vector, query, 1).desc(), False
    # Newest first, PostgreSQL either walks a key backwards testing each row (about CANDIDATES * N / matches rows
    # read) or fetches every match through the GIN index and sorts (about `matches` rows read); its own estimate
    # for a rare stem is a fixed guess, and at 1M rows it walked the key for 160 ms (some 40k rows) for a stem in
    # 2,500. We know the frequencies: when the matches are few, `seq + 0` hides the key order and forces the fetch.
    matches = plan.all_terms_estimate if every else plan.any_term_estimate
    if matches * matches < CANDIDATES * plan.n_docs:
        return None, vector.op("@@")(query), (row_table.seq + 0).desc(), False
    if partitioned:
        # Each partition is walked on its own key: the function form of @@ is not an index condition, so the planner
        # cannot trade a walk for a GIN fetch of every match in the table. It did, per session, for 4-word questions
        # whose estimated matches were few: 22-28 ms for a caller with 1,000 messages beside another user's 100,000
        # (10 ms walking). One walk over the whole table keeps the planner's choice: forced, it read all 100,000.
        return None, func.ts_match_vq(vector, query), row_table.seq.desc(), True
    return None, vector.op("@@")(query), row_table.seq.desc(), True


def _candidates(
    session: Session,
    row_table: Any,
    fts_name: str,
    plan: _Plan,
    conditions: Sequence[ColumnElement[bool]],
    partitions: Sequence[ColumnElement[bool]] = (),
    scope_tokens: Sequence[str] = (),
) -> list[Any]:
    """At most CANDIDATES visible rows (seq and search columns) for the plan.

    `partitions`: disjoint conditions, together equivalent to the visibility part of `conditions`, each served by
    an index in key order. When PostgreSQL walks newest first, each partition is walked on its own index and the
    results merged: one walk over the whole table would read every other user's rows too (a user with 1k
    memories in a table of 1M paid ~75 ms for that). `scope_tokens` do the same for SQLite's full-text index.
    """

    # What ranking reads: the stems, and the creation time and speaker (messages only) that can boost a row.
    speaker = row_table.name if row_table is MessageRow else literal(None, String)
    columns = (
        row_table.seq, row_table.search_body, row_table.search_ctx, row_table.created_at, speaker.label("speaker")
    )

    def fetch(every: bool, limit: int) -> list[Any]:
        join, match, order, walks_key = _match_condition(
            session, row_table, fts_name, plan, every=every, scope_tokens=scope_tokens, partitioned=bool(partitions)
        )
        statement = select(*columns)
        if join is not None:
            statement = statement.join(*join)
        statement = statement.where(match, *conditions)
        if walks_key and partitions:
            walks = union_all(*(statement.where(part).order_by(order).limit(limit) for part in partitions)).subquery()
            merged = select(*walks.c).order_by(walks.c.seq.desc())
            return list(session.execute(merged.limit(limit)).all())
        return list(session.execute(statement.order_by(order).limit(limit)).all())

    if plan.ranked:
        return fetch(every=False, limit=CANDIDATES)
    found = fetch(every=True, limit=CANDIDATES)
    if len(found) < CANDIDATES and len(plan.terms) > 1:
        seen = {row.seq for row in found}
        found += [row for row in fetch(every=False, limit=CANDIDATES) if row.seq not in seen]
    return found[:CANDIDATES]


# SQL expressions are immutable, so the visibility part of a search is built once per caller and reused: building
# it cost ~0.35 ms of a 4 ms search. 1,024 entries of a few kB each.
@lru_cache(maxsize=1024)
def _scope_condition(
    user_id: uuid.UUID, agent_id: uuid.UUID, scopes: frozenset[str], session_id: uuid.UUID | None
) -> ColumnElement[bool]:
    """The chosen kinds of scope, always inside the visibility rules of (user, agent), whatever the scopes say."""
    kinds = [scope_kind_is(kind) for kind in sorted(scopes)]
    if not kinds:
        return literal_column("1 = 0")
    condition = and_(visible_to(user_id, agent_id), or_(*kinds))
    if session_id is not None:
        # Narrow the session-scoped memories to one session; memories of the other scopes are unaffected.
        condition = and_(condition, or_(MemoryRow.session_id.is_(None), MemoryRow.session_id == session_id))
    return condition


@lru_cache(maxsize=1024)
def _partitions(user_id: uuid.UUID, agent_id: uuid.UUID) -> tuple[tuple[ColumnElement[bool], ...], tuple[str, ...]]:
    return tuple(visibility_partitions(user_id, agent_id)), tuple(visibility_tokens(user_id, agent_id))


def _memory_filters(filters: MemoryFilters) -> list[ColumnElement[bool]]:
    conditions = [not_expired()]
    for key, value in (filters.metadata or {}).items():
        element = MemoryRow.metadata_[key]
        # Compare as the JSON type of the filter value: 2024 matches the number 2024, "2024" the string.
        if isinstance(value, bool):
            conditions.append(element.as_boolean() == value)
        elif isinstance(value, int | float):
            conditions.append(element.as_float() == float(value))
        else:
            conditions.append(element.as_string() == str(value))
    if filters.created_after is not None:
        conditions.append(MemoryRow.created_at >= filters.created_after)
    if filters.created_before is not None:
        conditions.append(MemoryRow.created_at < filters.created_before)
    return conditions


def search_memories_sync(
    session: Session,
    query: str,
    *,
    user_id: uuid.UUID,
    agent_id: uuid.UUID,
    filters: MemoryFilters | None = None,
    limit: int = 10,
) -> list[MemoryHit]:
    """Memories visible to (user, agent) that match `query`, best first. A query with no content words finds none.

    Synchronous, for `Database.read` (one worker-thread hop on SQLite); `search_memories` is the async form.
    """
    filters = filters or MemoryFilters()
    terms = query_terms(query)
    if not terms:
        return []
    stats = _stats(session, "memory", "memories_fts", terms)
    plan = _plan(terms, stats)
    if plan is None:
        return []
    conditions = [
        _scope_condition(user_id, agent_id, frozenset(filters.scopes), filters.session_id),
        *_memory_filters(filters),
    ]
    candidates = _candidates(session, MemoryRow, "memories_fts", plan, conditions, *_partitions(user_id, agent_id))
    ranked = _rank(candidates, terms, stats, query_periods(query))[: max(1, min(limit, MAX_RESULTS))]
    rows = _load(session, (MemoryRow.seq, *MEMORY_COLUMNS), [c.seq for c, _ in ranked])
    return [MemoryHit(Memory.model_validate(rows[c.seq]), score) for c, score in ranked if c.seq in rows]


def search_messages_sync(
    session: Session,
    query: str,
    *,
    user_id: uuid.UUID,
    agent_id: uuid.UUID | None = None,
    session_ids: Sequence[uuid.UUID] | None = None,
    roles: Sequence[str] | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    limit: int = 10,
) -> list[MessageHit]:
    """Messages in the user's sessions matching `query`, best first.

    Narrowed, when given, to some sessions, one agent's sessions, some roles, or a creation-time range.
    """
    terms = query_terms(query)
    if not terms:
        return []
    stats = _stats(session, "message", "messages_fts", terms)
    plan = _plan(terms, stats)
    if plan is None:
        return []
    owned = select(SessionRow.id).where(SessionRow.user_id == user_id)
    if agent_id is not None:
        owned = owned.where(SessionRow.agent_id == agent_id)
    if session_ids:
        owned = owned.where(SessionRow.id.in_(list(session_ids)))
    conditions: list[ColumnElement[bool]] = [MessageRow.session_id.in_(owned)]
    if roles:
        conditions.append(MessageRow.role.in_(list(roles)))
    if created_after is not None:
        conditions.append(MessageRow.created_at >= created_after)
    if created_before is not None:
        conditions.append(MessageRow.created_at < created_before)
    partitions: list[ColumnElement[bool]] = []
    tokens: list[str] = []
    if not plan.ranked:
        # Walking newest first, stay inside the caller's sessions (each one walked on its own index on PostgreSQL,
        # its token required inside the full-text index on SQLite) rather than pass through everyone's messages.
        # Beyond MAX_SESSION_WALKS sessions, one walk over all messages, so the statement stays a bounded size.
        sessions = session.execute(owned.limit(MAX_SESSION_WALKS + 1)).scalars().all()
        if not sessions:
            return []
        if len(sessions) <= MAX_SESSION_WALKS:
            partitions = [MessageRow.session_id == sid for sid in sessions]
            tokens = [session_token(sid) for sid in sessions]
    candidates = _candidates(session, MessageRow, "messages_fts", plan, conditions, partitions, tokens)
    ranked = _rank(candidates, terms, stats, query_periods(query))[: max(1, min(limit, MAX_RESULTS))]
    rows = _load(session, MESSAGE_COLUMNS, [c.seq for c, _ in ranked])
    return [MessageHit(Message.model_validate(rows[c.seq]), score) for c, score in ranked if c.seq in rows]


def _load(session: Session, columns: Sequence[Any], seqs: list[int]) -> dict[int, dict[str, Any]]:
    """Full rows, as column mappings, for the few winners only: candidates carry just what ranking needs.

    A winner deleted since the candidates were read is missing here (PostgreSQL reads each statement at its own
    snapshot); the search leaves it out.
    """
    if not seqs:
        return {}
    seq = columns[0].table.c.seq
    found = session.execute(select(*columns).where(seq.in_(seqs))).mappings()
    return {row["seq"]: dict(row) for row in found}


# The async API, inside the caller's unit of work (same arguments after the session).
search_memories = in_async_session(search_memories_sync)
search_messages = in_async_session(search_messages_sync)

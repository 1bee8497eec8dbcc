"""Ranked search over memories and messages: full-text candidates, then BM25F in Python, on both backends.

1. The question is reduced to stems (`Analyzer.query_terms`); none left means no results, not an error.
2. Collection statistics (document frequencies, average field lengths) come from the database, the way the
   dialect keeps them (repository.search.sqlite / .postgres).
3. The plan (repository.search.planning) bounds the index entries the engine may score, whatever the size.
4. The full-text index returns at most `Bounds.candidates` visible rows (stems only), ordered by the engine's cheap
   rank or by recency.
5. BM25F over body and neighbour context orders them, with the speaker and date boosts (repository.search.ranking).
6. Only the winners are loaded in full.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, String, bindparam, func, literal, select, union_all
from sqlalchemy.orm import Session

from repository.clock import utcnow
from repository.memories import MEMORY_COLUMNS
from repository.messages import MESSAGE_COLUMNS
from repository.models import Memory, Message
from repository.query_dates import query_periods
from repository.runtime import Runtime, runtime_of
from repository.search.corpus import MEMORIES, MESSAGES, Corpus
from repository.search.planning import plan as make_plan
from repository.search.postgres import PostgresSearch
from repository.search.ranking import rank
from repository.search.sqlite import SqliteSearch
from repository.search.tuning import TUNING, asks_when
from repository.search.types import (
    Candidate,
    Match,
    MemoryFilters,
    MemoryHit,
    MessageFilters,
    MessageHit,
    Plan,
    Stats,
)
from repository.tables import MemoryRow, MessageRow, Timestamp
from repository.visibility import (
    not_expired,
    owned_sessions,
    searchable_memories,
    session_token,
    visibility_partitions,
    visibility_tokens,
)

# Characters of a row's text that ranking reads: enough for a leading "Name: " (repository.search.tuning).
OPENING_CHARS = 48


class SearchEngine:
    """Search for one database: its dialect's strategy (chosen once), its bounds and caches (the runtime's)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.bounds = runtime.bounds
        self.dialect = SqliteSearch(runtime) if runtime.dialect == "sqlite" else PostgresSearch(runtime)
        self.tuning = TUNING

    def _prepare(self, session: Session, corpus: Corpus, query: str) -> tuple[list[str], Stats, Plan] | None:
        """The query's stems, the collection statistics and the plan; None when nothing can match."""
        terms = self.runtime.analyzer.query_terms(query)
        if not terms:
            return None
        stats = self.dialect.stats(session, corpus, terms)
        plan = make_plan(terms, stats, self.bounds)
        return None if plan is None else (terms, stats, plan)

    def memories(
        self, session: Session, query: str, user_id: uuid.UUID, agent_id: uuid.UUID, filters: MemoryFilters, limit: int
    ) -> list[MemoryHit]:
        prepared = self._prepare(session, MEMORIES, query)
        if prepared is None:
            return []
        terms, stats, plan = prepared
        caller = ("memories", user_id, agent_id, filters.scopes, filters.session_id, _filter_key(filters))
        partitions, tokens = self._partitions(user_id, agent_id)
        scope = _Scope(
            caller, lambda: [self._visible(user_id, agent_id, filters), *_memory_filters(filters)], partitions, tokens
        )
        candidates = self._candidates(session, MEMORIES, plan, scope, {"now": utcnow()})
        ranked = self._top(candidates, terms, stats, query, limit)
        rows = _load(session, MEMORIES, [c.seq for c, _ in ranked])
        return [MemoryHit(Memory.model_validate(rows[c.seq]), score) for c, score in ranked if c.seq in rows]

    def messages(
        self, session: Session, query: str, user_id: uuid.UUID, filters: MessageFilters, limit: int
    ) -> list[MessageHit]:
        prepared = self._prepare(session, MESSAGES, query)
        if prepared is None:
            return []
        terms, stats, plan = prepared
        owned = owned_sessions(user_id, filters.agent_id, filters.session_ids)
        sessions: Sequence[uuid.UUID] = ()
        if not plan.ranked:
            # Walking newest first, stay inside the caller's sessions (each one walked on its own index on
            # PostgreSQL, its token required inside the full-text index on SQLite) rather than pass through
            # everyone's messages. Beyond max_session_walks sessions, one walk over all messages, so the statement
            # stays a bounded size.
            walks = self.bounds.max_session_walks
            sessions = session.execute(owned.limit(walks + 1)).scalars().all()
            if not sessions:
                return []
            if len(sessions) > walks:
                sessions = ()
        scope = _Scope(
            ("messages", user_id, filters, tuple(sessions)),
            lambda: _message_filters(owned, filters),
            [MessageRow.session_id == sid for sid in sessions],
            [session_token(sid) for sid in sessions],
        )
        candidates = self._candidates(session, MESSAGES, plan, scope, {})
        ranked = self._top(candidates, terms, stats, query, limit)
        rows = _load(session, MESSAGES, [c.seq for c, _ in ranked])
        return [MessageHit(Message.model_validate(rows[c.seq]), score) for c, score in ranked if c.seq in rows]

    def _top(
        self, candidates: list[Candidate], terms: list[str], stats: Stats, query: str, limit: int
    ) -> list[tuple[Candidate, float]]:
        periods = query_periods(query)
        ranked = rank(
            self.runtime.analyzer, candidates, terms, stats, periods, when=asks_when(query), tuning=self.tuning
        )
        return ranked[: max(1, min(limit, self.bounds.max_results))]

    def _visible(self, user_id: uuid.UUID, agent_id: uuid.UUID, filters: MemoryFilters) -> ColumnElement[bool]:
        # SQL expressions are immutable, so the visibility part of a search is built once per caller and reused.
        key = ("memories", user_id, agent_id, filters.scopes, filters.session_id)
        scopes = sorted(filters.scopes)
        condition: ColumnElement[bool] = self.runtime.visibility.get(
            key, lambda: searchable_memories(user_id, agent_id, scopes, filters.session_id)
        )
        return condition

    def _partitions(self, user_id: uuid.UUID, agent_id: uuid.UUID) -> tuple[list[ColumnElement[bool]], list[str]]:
        found: tuple[list[ColumnElement[bool]], list[str]] = self.runtime.visibility.get(
            ("partitions", user_id, agent_id),
            lambda: (visibility_partitions(user_id, agent_id), visibility_tokens(user_id, agent_id)),
        )
        return found

    def _candidates(
        self, session: Session, corpus: Corpus, plan: Plan, scope: _Scope, params: dict[str, Any]
    ) -> list[Candidate]:
        """At most `Bounds.candidates` visible rows (seq and search columns) for the plan."""
        limit = self.bounds.candidates
        if plan.ranked:
            return self._fetch(session, corpus, plan, scope, params, every=False)
        found = self._fetch(session, corpus, plan, scope, params, every=True)
        if len(found) < limit and len(plan.terms) > 1:
            seen = {row.seq for row in found}
            more = self._fetch(session, corpus, plan, scope, params, every=False)
            found += [row for row in more if row.seq not in seen]
        return found[:limit]

    def _fetch(
        self, session: Session, corpus: Corpus, plan: Plan, scope: _Scope, params: dict[str, Any], *, every: bool
    ) -> list[Candidate]:
        partitions = scope.partitions
        match = self.dialect.match(corpus, plan, every=every, scope_tokens=scope.tokens, partitioned=bool(partitions))
        # The statement of one caller and shape is built once: building and cache-keying it cost more than
        # SQLite's own work on a small collection. The per-search values (the terms, the time) are parameters.
        statement = self.runtime.search_statements.get(
            (scope.key, match.shape), lambda: _candidate_statement(corpus, match, scope, self.bounds.candidates)
        )
        found = session.connection().execute(statement, {**match.params, **params})
        return [Candidate(*row) for row in found.all()]


@dataclass(frozen=True)
class _Scope:
    """Whose rows a search reads: a key for the caller and filters, the conditions (built only when a statement is),
    and the partitions and scope tokens (see `_candidate_statement`)."""

    key: Hashable
    conditions: Callable[[], Sequence[ColumnElement[bool]]]
    partitions: Sequence[ColumnElement[bool]] = ()
    tokens: Sequence[str] = ()


def _candidate_statement(corpus: Corpus, match: Match, scope: _Scope, limit: int) -> Any:
    """At most `limit` visible rows (seq and search columns) matching `match`.

    `scope.partitions`: disjoint conditions, together equivalent to the visibility part of the conditions, each
    served by an index in key order. When PostgreSQL walks newest first, each partition is walked on its own index
    and the results merged: one walk over the whole table would read every other user's rows too.
    `scope.tokens` do the same for SQLite's full-text index.
    """
    rows = corpus.rows
    # What ranking reads: the stems, and the creation time and speaker (messages only) that can boost a row.
    speaker = rows.name if rows is MessageRow else literal(None, String)
    group = rows.session_id if rows is MessageRow else literal(None, String)
    said = rows.text_content if rows is MessageRow else rows.content
    statement = select(
        rows.seq,
        rows.search_body,
        rows.search_ctx,
        rows.created_at,
        speaker.label("speaker"),
        group.label("session"),
        func.substr(said, 1, OPENING_CHARS).label("opening"),
    )
    if match.join is not None:
        statement = statement.join(*match.join)
    statement = statement.where(match.where, *scope.conditions())
    if match.walks_key and scope.partitions:
        walks = union_all(*(statement.where(p).order_by(match.order).limit(limit) for p in scope.partitions)).subquery()
        return select(*walks.c).order_by(walks.c.seq.desc()).limit(limit)
    return statement.order_by(match.order).limit(limit)


def engine_of(session: Session) -> SearchEngine:
    """The search engine of the session's database, made on its first search."""
    runtime = runtime_of(session)
    if runtime.search is None:
        runtime.search = SearchEngine(runtime)
    engine: SearchEngine = runtime.search
    return engine


def _filter_key(filters: MemoryFilters) -> Hashable:
    metadata = sorted((key, type(value).__name__, value) for key, value in (filters.metadata or {}).items())
    return tuple(metadata), filters.created_after, filters.created_before


def _memory_filters(filters: MemoryFilters) -> list[ColumnElement[bool]]:
    # The time as a parameter, so that the statement serves later searches too.
    conditions = [not_expired(bindparam("now", type_=Timestamp))]
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


def _message_filters(owned: Select[Any], filters: MessageFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [MessageRow.session_id.in_(owned)]
    if filters.roles:
        conditions.append(MessageRow.role.in_(list(filters.roles)))
    if filters.created_after is not None:
        conditions.append(MessageRow.created_at >= filters.created_after)
    if filters.created_before is not None:
        conditions.append(MessageRow.created_at < filters.created_before)
    return conditions


@functools.cache
def _load_statement(corpus: Corpus) -> Any:
    columns = (corpus.rows.__table__.c.seq, *MEMORY_COLUMNS) if corpus is MEMORIES else MESSAGE_COLUMNS
    return select(*columns).where(corpus.rows.__table__.c.seq.in_(bindparam("seqs", expanding=True)))


def _load(session: Session, corpus: Corpus, seqs: list[int]) -> dict[int, dict[str, Any]]:
    """Full rows, as column mappings, for the few winners only: candidates carry just what ranking needs.

    A winner deleted since the candidates were read is missing here (PostgreSQL reads each statement at its own
    snapshot); the search leaves it out.
    """
    if not seqs:
        return {}
    found = session.connection().execute(_load_statement(corpus), {"seqs": seqs}).mappings()
    return {row["seq"]: dict(row) for row in found}

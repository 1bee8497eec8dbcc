"""The values search passes around: filters in, hits out, and the statistics and plan in between."""

from __future__ import annotations

import uuid
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from repository.models import Memory, Message
from repository.scopes import ALL_SCOPES, Scope


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

    scopes: frozenset[Scope] = frozenset(ALL_SCOPES)
    session_id: uuid.UUID | None = None
    metadata: dict[str, Any] | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


@dataclass(frozen=True)
class MessageFilters:
    """Narrowing of a history search: one agent's sessions, some sessions, some roles, a creation-time range."""

    agent_id: uuid.UUID | None = None
    session_ids: tuple[uuid.UUID, ...] = ()
    roles: tuple[str, ...] = ()
    created_after: datetime | None = None
    created_before: datetime | None = None


@dataclass(frozen=True)
class Stats:
    """Collection size, average field lengths and the document frequency of each query stem."""

    n_docs: int
    avg_body: float
    avg_ctx: float
    df: dict[str, int]


@dataclass(frozen=True)
class Plan:
    """What to ask the full-text index: `ranked` = any of `terms`, engine-ranked; else all of them, newest first."""

    terms: list[str]
    ranked: bool
    # Rows expected to hold all / any of the terms (independence assumed), and the collection size: they decide
    # how PostgreSQL finds the newest matches.
    all_terms_estimate: float = 0.0
    any_term_estimate: float = 0.0
    n_docs: int = 0


@dataclass(frozen=True)
class Candidate:
    """What ranking reads of a row: its stems, and the creation time and speaker that can boost it."""

    seq: int
    search_body: str
    search_ctx: str
    created_at: datetime
    speaker: str | None
    # The session of a message (None for memories) and the first characters of the row's text.
    session: Any = None
    opening: str | None = None


@dataclass(frozen=True)
class Match:
    """How a dialect selects the rows holding a plan's terms.

    `join`: a (table, on-clause) pair the candidate query joins, or None; `where`: the full-text condition;
    `order`: the engine's rank, or newest first; `walks_key`: the order is an index's key order, so a walk per
    visibility partition (merged afterwards) stays inside the caller's rows.

    The expressions are the same objects for every search of one shape, with the query's terms as bound
    parameters (`params`): a candidate statement built around them is built once per `shape` and reused.
    """

    join: tuple[Any, Any] | None
    where: Any
    order: Any
    walks_key: bool = False
    shape: Hashable = None
    params: dict[str, Any] = field(default_factory=dict)

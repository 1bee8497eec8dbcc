"""Keeps the search columns of messages and memories current: a row's own stems and its neighbours'.

An answer rarely repeats the words of the question that prompted it: in a conversation the question is usually the
turn before. So each row is indexed with a second, lower-weighted field (`search_ctx`) holding the stems of the
CTX_WINDOW rows before and after it:
- messages: the neighbouring messages of the same session;
- memories: the memories stored just before and after in the same scope, if they were stored within
  MEMORY_NEIGHBOUR_WINDOW of each other (memories written in one burst usually come from one conversation; facts
  stored hours apart are not linked).
Measured on LoCoMo (docs/benchmarks.md), this context is the largest single gain over plain BM25.

Every write that adds, changes or removes a row calls `relink` in the same transaction; the database triggers then
re-index the rows whose context changed.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Table, bindparam, select, union_all, update
from sqlalchemy.orm import Session

from repository.runtime import runtime_of
from repository.textsearch import CTX_STEMS, CTX_WINDOW, Analyzer

MEMORY_NEIGHBOUR_WINDOW = timedelta(minutes=30)


def memory_body(analyzer: Analyzer, name: str | None, description: str | None, content: str) -> str:
    return analyzer.index_text(" ".join(part for part in (name, description, content) if part))


def message_body(analyzer: Analyzer, text_content: str | None) -> str:
    # The speaker's name is not indexed: it would match every message of that speaker a little, and a question that
    # names the speaker boosts their messages instead (search.ranking). Since migration 0003.
    return analyzer.index_text(text_content or "")


@dataclass(frozen=True)
class IndexedRow:
    seq: int
    created_at: datetime
    body: str
    ctx: str


def lent_stems(body: str) -> str:
    """What a neighbour lends to a row's context: the first CTX_STEMS stems of its body.

    Bounded so that a long neighbour (a pasted document) neither hides the rows beside it (the full-text engines
    normalise by the whole row's length) nor makes every query match them.
    """
    if body.count(" ") < CTX_STEMS:
        return body
    return " ".join(body.split(" ", CTX_STEMS)[:CTX_STEMS])


def contexts(docs: Sequence[IndexedRow], targets: Iterable[int], window: timedelta | None) -> dict[int, str]:
    """The context string of each target position: what up to CTX_WINDOW neighbours on each side lend."""
    result = {}
    for i in targets:
        doc = docs[i]
        parts = []
        for j in range(max(0, i - CTX_WINDOW), min(len(docs), i + CTX_WINDOW + 1)):
            if j == i or not docs[j].body:
                continue
            if window is not None and abs(docs[j].created_at - doc.created_at) > window:
                continue
            parts.append(lent_stems(docs[j].body))
        result[doc.seq] = " ".join(parts)
    return result


def batch_contexts(items: Sequence[tuple[datetime, str]], window: timedelta | None) -> list[str]:
    """Contexts for rows about to be inserted together, in order (neighbours within the batch only)."""
    docs = [IndexedRow(i, created_at, body, "") for i, (created_at, body) in enumerate(items)]
    found = contexts(docs, range(len(docs)), window)
    return [found[i] for i in range(len(docs))]


@dataclass(frozen=True)
class Neighbours:
    """The rows a row shares its context with: a condition written with bind parameters, and their values.

    `key` names the condition's shape (which bind parameters it has). Statements are built once per table and
    shape and kept in the runtime's statement cache.
    """

    key: str
    condition: ColumnElement[bool]
    params: dict[str, Any]


@dataclass(frozen=True)
class _Statements:
    around: Any
    update: Any


def _build_statements(table: Table, neighbours: Neighbours) -> _Statements:
    c = table.c
    columns = (c.seq, c.created_at, c.search_body, c.search_ctx)
    reach = 2 * CTX_WINDOW  # a neighbour's own context reaches CTX_WINDOW further
    near = neighbours.condition
    parts = (
        select(*columns).where(near, c.seq < bindparam("r_first")).order_by(c.seq.desc()).limit(reach),
        select(*columns).where(near, c.seq >= bindparam("r_first"), c.seq <= bindparam("r_last")),
        select(*columns).where(near, c.seq > bindparam("r_last")).order_by(c.seq).limit(reach),
    )
    # One round trip for the rows before, between and after; each part is a subquery because SQLite allows
    # no ORDER BY / LIMIT on the members of a compound select.
    around = union_all(*(select(*part.subquery(f"r{i}").c) for i, part in enumerate(parts)))
    # Only the index changes: a neighbour's updated_at must not move (it would read as an edit to the caller,
    # and the column's onupdate default would otherwise stamp it).
    update_ctx = (
        update(table).where(c.seq == bindparam("b_seq")).values(search_ctx=bindparam("b_ctx"), updated_at=c.updated_at)
    )
    return _Statements(around, update_ctx)


def relink(
    session: Session,
    table: Table,
    neighbours: Neighbours,
    seqs: Iterable[int],
    *,
    window: timedelta | None = None,
) -> None:
    """Recompute `search_ctx` of the rows at `seqs` and of their neighbours (rows matching `neighbours`).

    `seqs` may name rows that were just deleted: their former neighbours are relinked around the gap.
    """
    wanted = sorted(set(seqs))
    if not wanted:
        return
    cache = runtime_of(session).statements
    statements: _Statements = cache.get(
        ("relink", table.name, neighbours.key), lambda: _build_statements(table, neighbours)
    )
    found = session.execute(statements.around, {**neighbours.params, "r_first": wanted[0], "r_last": wanted[-1]})
    docs = sorted((IndexedRow(*row) for row in found), key=lambda doc: doc.seq)
    positions = [doc.seq for doc in docs]
    targets: set[int] = set()
    for seq in wanted:
        at = bisect.bisect_left(positions, seq)
        present = at < len(positions) and positions[at] == seq
        low = at - CTX_WINDOW
        high = at + CTX_WINDOW + (1 if present else 0)
        targets.update(i for i in range(max(0, low), min(len(docs), high)))
    new = contexts(docs, sorted(targets), window)
    changed: list[dict[str, Any]] = [
        {"b_seq": doc.seq, "b_ctx": new[doc.seq]} for doc in docs if doc.seq in new and new[doc.seq] != doc.ctx
    ]
    if changed:
        session.execute(statements.update, changed, execution_options={"synchronize_session": False})

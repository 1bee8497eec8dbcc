"""The two searchable collections (memories and messages) and the statistics row both dialects read first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, String, literal, select

from repository.tables import MemoryRow, MessageRow, SearchStatsRow


@dataclass(frozen=True)
class Corpus:
    """A searchable table: its `search_stats` kind, its SQLite FTS5 table and its ORM class."""

    kind: str
    fts_name: str
    rows: Any

    @property
    def name(self) -> str:
        return str(self.rows.__tablename__)


MEMORIES = Corpus("memory", "memories_fts", MemoryRow)
MESSAGES = Corpus("message", "messages_fts", MessageRow)


def totals(corpus: Corpus) -> Select[int, int, int, str]:
    """Collection size and field lengths, shaped (count, body, ctx, term=NULL) to share a UNION with term counts."""
    return select(
        SearchStatsRow.n_docs, SearchStatsRow.body_len, SearchStatsRow.ctx_len, literal(None, String).label("term")
    ).where(SearchStatsRow.kind == corpus.kind)


def split_totals(found: Any) -> tuple[int, int, int, dict[str, int]]:
    """(n_docs, body length, ctx length, {term: count}) from the rows of `totals` UNION term counts."""
    n, body_len, ctx_len, df = 0, 0, 0, {}
    for count, body, ctx, term in found:
        if term is None:
            n, body_len, ctx_len = max(int(count), 0), int(body), int(ctx)
        else:
            df[term] = int(count)
    return n, body_len, ctx_len, df

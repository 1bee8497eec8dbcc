"""Per-database state with an owner and a lifetime: the bounds of per-query work and the caches behind them.

A `Database` makes one `Runtime` and hands it to every session it opens (`Session.info`); repository code reaches
it with `runtime_of(session)`. A session made some other way gets a fresh runtime with default bounds for its own
lifetime, so library code works on any session, only with colder caches.

Why caches at all: building and cache-keying SQLAlchemy statements was most of a write's Python time, counting a
common term's documents in FTS5 walks its whole posting list, and stemming is the bulk of text analysis (measured:
docs/benchmarks.md, "History").
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from repository.limits import COUNT_CAP
from repository.textsearch import Analyzer

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_INFO_KEY = "agent_memory.runtime"


@dataclass(frozen=True)
class Bounds:
    """How much work one query may do, and how large each cache may grow. Tests and operators pass their own."""

    # Search (see repository.search.planning): rows the full-text index returns per search, index entries it may
    # score, the share of all rows above which a stem is too common to ask for, and sessions walked one by one.
    candidates: int = 100
    candidate_postings: int = 2_000
    common_term_share: float = 0.25
    max_session_walks: int = 200
    max_results: int = 100
    # Listing totals count at most this many rows: an exact count reads every matching row, and nobody pages
    # through more than a few thousand rows by offset.
    count_cap: int = COUNT_CAP
    # SQLite document frequencies of at least df_cache_min rows are cached until the collection has grown or
    # shrunk by more than df_cache_drift of its size (a term's count moves about as much; its idf far less).
    df_cache_min: int = 1_000
    df_cache_drift: float = 0.01
    # Cache sizes: visibility expressions (one per acting user and filter), write statements (one per shape),
    # stems.
    visibility_cache_size: int = 1_024
    statement_cache_size: int = 64
    # Search statements: one per acting caller, filter and shape of search (repository.search.engine).
    search_statement_cache_size: int = 1_024
    stem_cache_size: int = 200_000


class BoundedCache(Generic[K, V]):
    """A least-recently-used map of at most `size` entries, filled by a builder on a miss."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K, build: Callable[[], V]) -> V:
        try:
            self._items.move_to_end(key)
            return self._items[key]
        except KeyError:
            value = self._items[key] = build()
            if len(self._items) > self.size:
                self._items.popitem(last=False)
            return value


class Runtime:
    """The bounds, the text analyzer and the caches of one database (one dialect)."""

    def __init__(self, dialect: str, bounds: Bounds | None = None) -> None:
        self.dialect = dialect
        self.bounds = bounds or Bounds()
        self.analyzer = Analyzer(self.bounds.stem_cache_size)
        # Write statements (upserts, neighbour re-indexing) by shape.
        self.statements: BoundedCache[Hashable, Any] = BoundedCache(self.bounds.statement_cache_size)
        # Candidate statements of searches, by acting user, filter and shape.
        self.search_statements: BoundedCache[Hashable, Any] = BoundedCache(self.bounds.search_statement_cache_size)
        # Visibility expressions of searches, by acting user and filter.
        self.visibility: BoundedCache[Hashable, Any] = BoundedCache(self.bounds.visibility_cache_size)
        # SQLite: (index, term) -> (document frequency, collection size when counted).
        self.document_frequencies: dict[tuple[str, str], tuple[int, int]] = {}
        # The search engine (repository.search.engine.SearchEngine), made on the first search.
        self.search: Any = None

    def session_info(self) -> dict[str, Any]:
        """The `info` for sessions of this runtime's database."""
        return {_INFO_KEY: self}


def runtime_of(session: Session | AsyncSession) -> Runtime:
    """The runtime of the database `session` belongs to (a fresh one for sessions made outside `Database`)."""
    info = session.info
    runtime = info.get(_INFO_KEY)
    if runtime is None:
        runtime = info[_INFO_KEY] = Runtime(session.get_bind().dialect.name)
    found: Runtime = runtime
    return found

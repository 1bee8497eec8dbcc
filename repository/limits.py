"""Size, batch and page limits: one definition each.

The per-call limits bound what one call of any surface may ask for (the MCP tools publish them in their input
schemas, the operations enforce them). The repository limits bound the library API and trusted bulk paths such as
`import`, which batch far more rows per transaction than a conversational call ever sends.
"""

from __future__ import annotations

from dataclasses import dataclass

# --- per call, every surface -------------------------------------------------------------------------------------
SEARCH_RESULTS_MAX = 50
MEMORY_PAGE_MAX = 100
SESSION_PAGE_MAX = 100
HISTORY_PAGE_MAX = 200
APPEND_BATCH_MAX = 100
# A session transcript as one resource, and the recent-sessions resource.
TRANSCRIPT_MESSAGES = 200
RECENT_SESSIONS = 20
# system_prompt memories read to fill an agent's prompt.
PROMPT_MEMORIES_MAX = 1_000
# Completion values per request: the MCP specification allows at most 100.
COMPLETION_MAX = 100

# --- the repositories --------------------------------------------------------------------------------------------
REPOSITORY_PAGE_MAX = 1_000
REPOSITORY_MESSAGE_BATCH_MAX = 1_000
BULK_MEMORIES_MAX = 10_000
# Listing totals count at most this many rows by default (`Bounds.count_cap`).
COUNT_CAP = 10_000
# Memories per transaction when importing a file.
IMPORT_BATCH = 5_000
# Expired memories deleted per write transaction. Deleting one re-indexes its neighbours' context, so this bounds
# how long one purge transaction holds the write lock (docs/benchmarks.md, Lifecycle).
PURGE_BATCH = 100


@dataclass(frozen=True)
class ContentLimits:
    """The configurable limits on text: what is accepted, and how much of it listings and search results show."""

    max_content_bytes: int = 1_000_000
    preview_chars: int = 2_000

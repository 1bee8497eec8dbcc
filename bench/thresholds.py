"""Every pass/fail bar the benchmarks check, in one place. The scripts import these; change a bar here only."""

from __future__ import annotations

# --- start-up (bench/startup.py) -------------------------------------------------------------------------------------

# `initialize` p50 of our server at most this many times the no-op server's.
STARTUP_INIT_RATIO = 1.2

# --- scale (bench/scale.py) ------------------------------------------------------------------------------------------

# From this many memories on, search_memories (rare, common, mixed) and store_memory p50 are held to NOOP_RATIO.
NOOP_RATIO_FROM_N = 100_000
# Those calls' p50 at most this many times the no-op tool's p50 (the SDK and transport floor).
NOOP_RATIO = 2
# From this many memories on, every search_memories kind is held to SEARCH_P95_MS.
SEARCH_P95_FROM_N = 1_000_000
# search_memories p95 round trip over stdio at most this many ms.
SEARCH_P95_MS = 50
# get_session_history p95 round trip over stdio at most this many ms, at the worst of the three depths measured.
HISTORY_P95_MS = 20
# Bulk import (repository.bulk_insert_memories) at least this many memories a second.
BULK_IMPORT_PER_S = 20_000
# Our server's resident memory after start-up, before load, at most this many MB.
IDLE_RSS_MB = 120
# N -> the reference server-memory at least this many times slower than ours (search by word and by question,
# add_observations against store_memory), p50; checked only at these sizes.
REFERENCE_SLOWER = {10_000: 5, 100_000: 30}

# --- LoCoMo retrieval (bench/locomo_recall.py) -----------------------------------------------------------------------

# recall@5 over all questions at least this, per mode (search_memories, search_history).
LOCOMO_RECALL_AT_5 = {"memories": 0.70, "history": 0.78}
# PostgreSQL's recall@1/5/10 and MRR within this of SQLite's, each.
LOCOMO_PG_DELTA = 0.03
# search_memories p95 round trip over stdio at most this many ms on the LoCoMo data.
LOCOMO_SEARCH_P95_MS = 15.0

# --- Needles (bench/needles.py) --------------------------------------------------------------------------------------

# Every sampled row first when searched by its own first 300 characters.
NEEDLES_SELF_AT_1 = 1.0
# Sampled rows in the top 5 when searched by their most distinctive token, at least this share.
NEEDLES_TOKEN_AT_5 = 0.99
# Chinese and Japanese rows in the top 5 when searched by a word they hold, at least this share.
NEEDLES_CJK_WORD_AT_5 = 0.95

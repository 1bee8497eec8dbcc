"""PostgreSQL: keep the GIN full-text indexes' pending lists short (512 kB instead of the server's 4 MB default).

GIN's fast update appends new entries to an unsorted pending list that every search reads in full until VACUUM or
an overflowing insert merges it into the index. Measured on 10,400 memories stored one by one (2026-11-26): a
two-word search read the pending list for 3.8 ms, and the planner, pricing those pages, preferred a sequential
scan that took 35 ms; after a VACUUM the same search took 6 ms end to end. A 512 kB list is merged about eight
times as often: bulk import lost 14% (2,950 -> 2,560 memories/s on that machine); single stores did not change
measurably even at 64 kB (8.4 -> 8.1 ms over 1,000 stores), and no search reads more than 512 kB of unsorted
entries. SQLite's FTS5 needs nothing.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = ("ix_memories_search", "ix_messages_search")
PENDING_LIST_KB = 512


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for index in INDEXES:
        op.execute(f"ALTER INDEX {index} SET (gin_pending_list_limit = {PENDING_LIST_KB})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for index in INDEXES:
        op.execute(f"ALTER INDEX {index} RESET (gin_pending_list_limit)")

"""How long migration 0006 (re-index every memory and message) takes on a database of N memories and N/10 messages.

    .venv/bin/python bench/reindex.py --backend sqlite --sizes 100000,1000000
    .venv/bin/python bench/reindex.py --backend postgres --sizes 100000

The rows are seeded through the bulk paths (bench/textgen.py text), then every row's index is made stale (as an
older analyzer would have left it: an empty context), the recorded revision is set back to 0005, and the upgrade
to 0006 is timed: it re-analyses every row and rewrites every index entry.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import anyio
from sqlalchemy import text
from textgen import TextGen

from repository import Database, MemoryCreate, MessageCreate, SessionCreate, ensure_schema
from repository.memories import bulk_insert_memories_sync
from repository.messages import add_messages_sync
from repository.migrate import upgrade
from repository.operations.identity import Identities
from repository.scratch import create_scratch_database, drop_scratch_database
from repository.sessions import create_session_sync


async def seed(database: Database, n: int) -> None:
    actor = await Identities(database).actor("reindex@example.com", "reindex")
    gen = TextGen()
    for start in range(0, n, 10_000):
        texts = gen.sentences(min(10_000, n - start), stream=start + 1)
        batch = [MemoryCreate(content=t, user_id=actor.user_id, agent_id=actor.agent_id) for t in texts]
        await database.write(bulk_insert_memories_sync, batch)
    said = gen.sentences(n // 10, stream=0)
    for start in range(0, len(said), 1_000):
        chat = await database.write(create_session_sync, SessionCreate(user_id=actor.user_id, agent_id=actor.agent_id))
        batch = [MessageCreate(session_id=chat.id, role="user", text_content=t) for t in said[start : start + 1_000]]
        await database.write(add_messages_sync, batch)


async def run(backend: str, n: int) -> float:
    with tempfile.TemporaryDirectory(prefix="reindex_") as tmp:
        url = (
            f"sqlite+aiosqlite:///{Path(tmp) / 'r.db'}"
            if backend == "sqlite"
            else await create_scratch_database(prefix="bench_reindex")
        )
        database = Database(url)
        try:
            await ensure_schema(database.engine)
            await seed(database, n)
            async with database.engine.begin() as conn:
                if backend == "postgres":  # one UPDATE of every row: longer than the server's statement timeout
                    await conn.execute(text("SET LOCAL statement_timeout = 0"))
                for table in ("memories", "messages"):
                    await conn.execute(text(f"UPDATE {table} SET search_ctx = ''"))
                await conn.execute(text("UPDATE alembic_version SET version_num = '0005'"))
            started = time.perf_counter()
            await upgrade(database.engine)
            return time.perf_counter() - started
        finally:
            await database.dispose()
            if backend == "postgres":
                await drop_scratch_database(url)


async def main_async(args: argparse.Namespace) -> int:
    for n in (int(s) for s in args.sizes.split(",")):
        seconds = await run(args.backend, n)
        rows = n + n // 10
        print(
            f"{args.backend} N={n:,} memories + {n // 10:,} messages: 0006 took {seconds:.1f} s "
            f"({rows / seconds:,.0f} rows/s)"
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--sizes", default="100000")
    return anyio.run(main_async, parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())

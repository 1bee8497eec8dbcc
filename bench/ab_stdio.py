"""A/B of two checkouts' servers over stdio, calls interleaved one by one so machine drift hits both alike.

    .venv/bin/python bench/ab_stdio.py --a /work/baseline --b /work/main --backend sqlite --sizes 10000,100000
    .venv/bin/python bench/ab_stdio.py --a /work/baseline --b /work/main --sizes 1000000 --separate

Each checkout needs its own .venv (its `agent-memory-mcp`). One database per size is seeded by checkout A's own
code (a subprocess of its python, through the repository API both share: memories over bench/textgen.py text, one
session of --messages messages, then ANALYZE). With --separate, B gets its own copy of that database (a file copy,
or CREATE DATABASE ... TEMPLATE) so B may migrate it (its first call does; that time is printed); otherwise both
servers share it. Both are spawned (SDK `mcp.Client`, mode `legacy`) and every tool kind is called --calls times,
alternating A, B, A, B. Prints p50/p95 per server and the B/A ratios.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import asyncpg  # type: ignore[import-untyped]
from _common import BENCH, pct
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from textgen import TextGen, queries

from repository.scratch import DEFAULT_SERVER, create_scratch_database, drop_scratch_database

USER, AGENT = "ab@example.com", "ab"

# Runs in checkout A's python: only names both checkouts' `repository` export.
SEED = """
import asyncio, sys
sys.path.insert(0, sys.argv[4])
from sqlalchemy import text
from textgen import TextGen
from repository import (Database, MemoryCreate, MessageCreate, SessionCreate, add_messages, bulk_insert_memories,
    create_session, ensure_schema, get_or_create_agent_by_name, get_or_create_user_by_email)

async def main(url, n, m):
    db = Database(url)
    await ensure_schema(db.engine)
    async with db.transaction() as s:
        user = await get_or_create_user_by_email(s, "ab@example.com")
        agent = await get_or_create_agent_by_name(s, "ab")
    gen = TextGen()
    for start in range(0, n, 10_000):
        texts = gen.sentences(min(10_000, n - start), stream=start + 1)
        async with db.transaction() as s:
            await bulk_insert_memories(s, [MemoryCreate(content=t, user_id=user.id, agent_id=agent.id) for t in texts])
    async with db.transaction() as s:
        chat = await create_session(s, SessionCreate(user_id=user.id, agent_id=agent.id))
    said = gen.sentences(m, stream=0)
    for start in range(0, m, 1_000):
        batch = [MessageCreate(session_id=chat.id, role="user", text_content=t) for t in said[start:start + 1_000]]
        async with db.transaction() as s:
            await add_messages(s, batch)
    async with db.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("ANALYZE"))
    await db.dispose()
    print(chat.id)

asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
"""


def seed(tree: Path, url: str, n: int, messages: int) -> str:
    # Run from the checkout itself: `python -c` puts the working directory first on sys.path, so from anywhere
    # else it would import that directory's `repository` (and migrate with it).
    python = tree / ".venv" / "bin" / "python"
    done = subprocess.run(
        [str(python), "-c", SEED, url, str(n), str(messages), str(BENCH)],
        capture_output=True,
        text=True,
        check=True,
        cwd=tree,
    )
    return done.stdout.strip().splitlines()[-1]


async def copy_of(url: str, tmp: Path) -> str:
    """A second database with the same rows: a file copy on SQLite, a template copy on PostgreSQL."""
    if url.startswith("sqlite"):
        source = Path(url.split("///", 1)[1])
        target = tmp / "b.db"
        shutil.copyfile(source, target)
        return f"sqlite+aiosqlite:///{target}"
    copy = await create_scratch_database(prefix="bench_ab")
    await drop_scratch_database(copy)
    dsn = DEFAULT_SERVER.replace("postgresql+asyncpg://", "postgresql://", 1) + "/postgres"
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{copy.rsplit("/", 1)[1]}" TEMPLATE "{url.rsplit("/", 1)[1]}"')
    finally:
        await conn.close()
    return copy


def params(tree: Path, url: str) -> StdioServerParameters:
    command = str(tree / ".venv" / "bin" / "agent-memory-mcp")
    return StdioServerParameters(command=command, args=["--database-url", url, "--user", USER, "--agent", AGENT])


def calls(gen: TextGen, session_id: str) -> dict[str, Any]:
    asked = queries(gen)
    kinds: dict[str, Any] = {
        "store_memory": lambda i: (
            "store_memory",
            {"content": f"ab fact {i} {asked['word'][i % 20]} {time.time_ns()}"},
        ),
        "get_session_history": lambda i: ("get_session_history", {"session_id": session_id, "limit": 50}),
        "list_sessions": lambda i: ("list_sessions", {}),
    }
    for kind, texts in asked.items():
        kinds[f"search_memories ({kind})"] = lambda i, texts=texts: ("search_memories", {"query": texts[i % 20]})
    return kinds


async def compare(
    a: Path, b: Path, urls: tuple[str, str], session_id: str, rounds: int, gen: TextGen
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    async with Client(params(a, urls[0]), mode="legacy") as ca, Client(params(b, urls[1]), mode="legacy") as cb:
        for label, client in (("A", ca), ("B", cb)):  # warm both: the database opens (and migrates) on the first call
            started = time.perf_counter()
            await client.call_tool("list_sessions", {})
            print(f"{label} first call (opening the database): {time.perf_counter() - started:.1f} s", flush=True)
        for kind, make in calls(gen, session_id).items():
            times: dict[str, list[float]] = {"a": [], "b": []}
            for i in range(rounds):
                name, arguments = make(i)
                for label, client in (("a", ca), ("b", cb)) if i % 2 == 0 else (("b", cb), ("a", ca)):
                    started = time.perf_counter()
                    result = await client.call_tool(name, arguments)
                    times[label].append((time.perf_counter() - started) * 1000)
                    if result.is_error:
                        raise RuntimeError(f"{label} {name}: {result.content}")
            results[kind] = {label: {"p50": statistics.median(t), "p95": pct(t, 95)} for label, t in times.items()}
    return results


async def main_async(args: argparse.Namespace) -> int:
    gen = TextGen()
    for n in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="ab_") as tmp:
            if args.backend == "sqlite":
                url = f"sqlite+aiosqlite:///{Path(tmp) / 'ab.db'}"
            else:
                url = await create_scratch_database(prefix="bench_ab")
            urls = (url, url)
            try:
                started = time.perf_counter()
                session_id = seed(Path(args.a).resolve(), url, n, args.messages)
                print(f"seeded N={n:,} in {time.perf_counter() - started:.0f} s", flush=True)
                if args.separate:
                    urls = (url, await copy_of(url, Path(tmp)))
                found = await compare(Path(args.a), Path(args.b), urls, session_id, args.calls, gen)
            finally:
                if args.backend == "postgres":
                    for each in set(urls):
                        await drop_scratch_database(each)
        print(f"\n{args.backend} N={n:,} ({args.calls} calls each, interleaved)")
        print("| tool | A p50 | B p50 | B/A p50 | A p95 | B p95 | B/A p95 |")
        print("|---|---|---|---|---|---|---|")
        for kind, r in found.items():
            a, b = r["a"], r["b"]
            print(
                f"| {kind} | {a['p50']:.2f} | {b['p50']:.2f} | {b['p50'] / a['p50']:.3f} | {a['p95']:.2f} | "
                f"{b['p95']:.2f} | {b['p95'] / a['p95']:.3f} |",
                flush=True,
            )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", required=True, help="checkout A (with .venv)")
    parser.add_argument("--b", required=True, help="checkout B (with .venv)")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--separate", action="store_true", help="B gets its own copy of the seeded database")
    return anyio.run(main_async, parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())

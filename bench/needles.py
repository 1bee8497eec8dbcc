"""Needles: is every stored row found by what people would type, at scale, next to near-duplicates and documents?

    .venv/bin/python bench/needles.py --backend both --sizes 10000,100000 --write
    .venv/bin/python bench/needles.py --backend sqlite --sizes 2000 --sample 200        # smoke test

For each backend and size, a fresh database (a temp SQLite file, or a scratch PostgreSQL database) holds N
memories of one user, and then N messages in sessions of 200, built from one seeded corpus:
- near-duplicates: a few templates differing only by a code such as "KQ7M-2XHD-P9TA";
- identifiers: versions, emails, URLs, C++/C#/.NET facts;
- pasted documents of 20,000-60,000 characters, one every 1,000 rows;
- Chinese and Japanese sentences (2% of rows), each holding one word (2 characters) no other row holds.
Measured through the repository in-process (`Database.read` with the search functions the tools call):
- self@1: a sample of rows (every document among them), each searched by its first 300 characters: is it first?
- token@5: the same rows searched by their most distinctive token (the code, the marker): in the top 5?
- CJK word@5: every CJK row (at most the sample size) searched by its word: in the top 5?
- latency p50/p95 of those searches (ms, in-process).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from _common import machine, machine_line, pct, table, write_section
from sqlalchemy import text
from thresholds import NEEDLES_CJK_WORD_AT_5, NEEDLES_SELF_AT_1, NEEDLES_TOKEN_AT_5

from repository import Database, MemoryCreate, MessageCreate, SessionCreate, ensure_schema
from repository.memories import bulk_insert_memories_sync
from repository.messages import add_messages_sync
from repository.operations.identity import Identities
from repository.scratch import create_scratch_database, drop_scratch_database
from repository.search import search_memories_sync, search_messages_sync
from repository.sessions import create_session_sync

TEMPLATES = [
    "Support ticket {code}: the customer reports that the export to CSV fails after the upgrade.",
    "Support ticket {code}: the customer asks for an invoice copy for the March order.",
    "Order {code} shipped to the Lisbon warehouse; tracking follows by email tomorrow.",
    "Order {code} was returned because the size did not fit; refund pending.",
    "Release v{a}.{b}.{c} ({code}) fixed the login loop for C++ and C# clients on .NET.",
    "Write to {name}.{code}@example.com about the {code} invoice.",
    "Docs for {code} live at https://docs.example.org/{name}/{code}.",
]
NAMES = "ada grace alan edsger barbara ken dennis linus margaret john".split()
FILLER = "lorem ipsum dolor amet river stone garden winter copper violet harbor maple signal orbit canyon".split()
HAN = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后"
CJK_FILLER = ["今天", "我们", "明日", "午後", "電車", "天气", "学校", "友達"]
SEARCH_LIMIT = 10


class Corpus:
    """Rows as (text, distinctive token, kind); seeded, so every run builds the same."""

    def __init__(self, n: int, seed: int = 11) -> None:
        rng = random.Random(seed)
        self.rows: list[tuple[str, str, str]] = []
        words = iter(sorted({a + b for a in HAN for b in HAN if a != b}, key=lambda _: rng.random()))
        for i in range(n):
            if i % 1_000 == 500:
                marker = f"DOC{i:07d}"
                body = " ".join(
                    rng.choice(FILLER) + str(rng.randrange(10_000)) for _ in range(rng.randint(3_000, 9_000))
                )
                self.rows.append((f"Pasted report {marker}. {body}", marker, "document"))
            elif i % 50 == 7:
                word = next(words)
                filler = rng.sample(CJK_FILLER, 3)
                self.rows.append((f"{filler[0]}{word}{filler[1]}の話を{filler[2]}した", word, "cjk"))
            else:
                code = "-".join(
                    "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(4)) for _ in range(3)
                )
                template = TEMPLATES[i % len(TEMPLATES)]
                fields = {"code": code, "name": rng.choice(NAMES), "a": rng.randrange(9), "b": i % 97, "c": i % 89}
                self.rows.append((template.format(**fields), code, "short"))

    def sample(self, size: int, seed: int = 3) -> list[int]:
        rng = random.Random(seed)
        documents = [i for i, row in enumerate(self.rows) if row[2] == "document"]
        others = [i for i, row in enumerate(self.rows) if row[2] == "short"]
        return sorted(documents + rng.sample(others, min(len(others), max(0, size - len(documents)))))


async def open_database(backend: str, tmp: Path) -> Database:
    url = (
        f"sqlite+aiosqlite:///{tmp / 'needles.db'}"
        if backend == "sqlite"
        else await create_scratch_database(prefix="bench_needles")
    )
    database = Database(url)
    await ensure_schema(database.engine)
    return database


async def seed(database: Database, corpus: Corpus) -> tuple[Any, list[Any], float, float]:
    actor = await Identities(database).actor("needles@example.com", "needles")
    started = time.perf_counter()
    texts = [text for text, _, _ in corpus.rows]
    for start in range(0, len(texts), 5_000):
        batch = [
            MemoryCreate(content=t, user_id=actor.user_id, agent_id=actor.agent_id)
            for t in texts[start : start + 5_000]
        ]
        await database.write(bulk_insert_memories_sync, batch)
    memories_s = time.perf_counter() - started
    started = time.perf_counter()
    message_ids: list[Any] = []
    for start in range(0, len(texts), 200):
        chat = await database.write(create_session_sync, SessionCreate(user_id=actor.user_id, agent_id=actor.agent_id))
        said = [MessageCreate(session_id=chat.id, role="user", text_content=t) for t in texts[start : start + 200]]
        message_ids += [m.id for m in await database.write(add_messages_sync, said)]
    messages_s = time.perf_counter() - started
    async with database.engine.connect() as conn:  # planner statistics, as after any bulk load
        await (await conn.execution_options(isolation_level="AUTOCOMMIT")).execute(text("ANALYZE"))
    return actor, message_ids, memories_s, messages_s


async def measure(database: Database, corpus: Corpus, actor: Any, message_ids: list[Any], size: int) -> dict[str, Any]:
    def memories(session: Any, query: str) -> list[str]:
        hits = search_memories_sync(session, query, user_id=actor.user_id, agent_id=actor.agent_id, limit=SEARCH_LIMIT)
        return [h.memory.content for h in hits]

    def messages(session: Any, query: str) -> list[Any]:
        return [h.message.id for h in search_messages_sync(session, query, user_id=actor.user_id, limit=SEARCH_LIMIT)]

    picked = corpus.sample(size)
    cjk = [i for i, row in enumerate(corpus.rows) if row[2] == "cjk"][:size]
    result: dict[str, Any] = {}
    for feed, search in (("memories", memories), ("messages", messages)):

        def target(i: int, feed: str = feed) -> Any:
            return corpus.rows[i][0] if feed == "memories" else message_ids[i]

        latencies: list[float] = []

        async def rank(query: str, wanted: Any, latencies: list[float] = latencies, search: Any = search) -> int:
            started = time.perf_counter()
            found = await database.read(search, query)
            latencies.append((time.perf_counter() - started) * 1000)
            return found.index(wanted) if wanted in found else -1

        self_ranks = [await rank(corpus.rows[i][0][:300], target(i)) for i in picked]
        token_ranks = [await rank(corpus.rows[i][1], target(i)) for i in picked]
        cjk_ranks = [await rank(corpus.rows[i][1], target(i)) for i in cjk]
        missed = [corpus.rows[i][1] for i, r in zip(picked, self_ranks, strict=True) if r != 0]
        result[feed] = {
            "self_at_1": sum(r == 0 for r in self_ranks) / len(self_ranks),
            "token_at_5": sum(0 <= r < 5 for r in token_ranks) / len(token_ranks),
            "cjk_word_at_5": sum(0 <= r < 5 for r in cjk_ranks) / max(1, len(cjk_ranks)),
            "queries": len(latencies),
            "p50_ms": pct(latencies, 50),
            "p95_ms": pct(latencies, 95),
            "missed_self": missed[:5],
        }
    return result


async def run(backend: str, n: int, sample: int) -> dict[str, Any]:
    corpus = Corpus(n)
    with tempfile.TemporaryDirectory(prefix="needles_") as tmp:
        database = await open_database(backend, Path(tmp))
        try:
            actor, message_ids, memories_s, messages_s = await seed(database, corpus)
            print(
                f"[{backend} N={n:,}] seeded memories in {memories_s:.1f} s, messages in {messages_s:.1f} s", flush=True
            )
            result = await measure(database, corpus, actor, message_ids, sample)
        finally:
            url = database.url
            await database.dispose()
            if backend == "postgres":
                await drop_scratch_database(url)
    for feed, row in result.items():
        print(
            f"  {feed}: self@1 {row['self_at_1']:.3f} token@5 {row['token_at_5']:.3f} "
            f"cjk@5 {row['cjk_word_at_5']:.3f} p50 {row['p50_ms']:.2f} p95 {row['p95_ms']:.2f} ms "
            f"missed {row['missed_self']}",
            flush=True,
        )
    return result


def render(results: dict[tuple[str, int], dict[str, Any]], args: argparse.Namespace) -> str:
    rows = []
    for (backend, n), result in sorted(results.items()):
        for feed, r in result.items():
            rows.append(
                [
                    backend,
                    f"{n:,}",
                    feed,
                    f"{r['self_at_1']:.3f}",
                    f"{r['token_at_5']:.3f}",
                    f"{r['cjk_word_at_5']:.3f}",
                    f"{r['queries']:,}",
                    f"{r['p50_ms']:.2f}",
                    f"{r['p95_ms']:.2f}",
                ]
            )
    return "\n".join(
        [
            "## Needles: found by what people type, next to near-duplicates and documents",
            "",
            f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {machine_line(machine())}.",
            "",
            f"Command: `.venv/bin/python bench/needles.py --backend {args.backend} --sizes {args.sizes} "
            f"--sample {args.sample} --write` (corpus and method: the script's docstring). Bars: self@1 = "
            f"{NEEDLES_SELF_AT_1:.3f}, token@5 >= {NEEDLES_TOKEN_AT_5}, CJK word@5 >= {NEEDLES_CJK_WORD_AT_5}.",
            "",
            table(["backend", "N", "feed", "self@1", "token@5", "CJK word@5", "searches", "p50 ms", "p95 ms"], rows),
        ]
    )


async def main_async(args: argparse.Namespace) -> int:
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    results = {}
    for backend in backends:
        for n in (int(s) for s in args.sizes.split(",")):
            results[(backend, n)] = await run(backend, n, args.sample)
    text = render(results, args)
    print(text)
    if args.write:
        write_section("needles", text)
    met = all(
        r["self_at_1"] >= NEEDLES_SELF_AT_1
        and r["token_at_5"] >= NEEDLES_TOKEN_AT_5
        and r["cjk_word_at_5"] >= NEEDLES_CJK_WORD_AT_5
        for result in results.values()
        for r in result.values()
    )
    return 0 if met else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--sample", type=int, default=1_000, help="rows searched per feed and size")
    parser.add_argument("--write", action="store_true", help="replace the needles section of docs/benchmarks.md")
    return anyio.run(main_async, parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())

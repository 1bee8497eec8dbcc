"""Export and import throughput, and the exporting process's peak memory, on a database of N messages + N memories.

    .venv/bin/python bench/transfer.py --backend sqlite --sizes 10000,100000
    .venv/bin/python bench/transfer.py --backend postgres --sizes 10000,100000

The source database is seeded through the repository's bulk paths (bench/textgen.py text, sessions of 1,000
messages). Then, each a fresh `agent-memory-mcp` process (so the peak RSS is that command's alone):
`export --all` to a file; the file split into a messages-only and a memories-only export; each imported into an
empty database of the same backend; and the messages file imported again (every row already stored). Times are
wall times of the whole command, interpreter start (about 1.5 s here) included.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
from _common import OURS
from textgen import TextGen

from repository import Database, MemoryCreate, MessageCreate, SessionCreate, ensure_schema
from repository.memories import bulk_insert_memories_sync
from repository.messages import add_messages_sync
from repository.operations.identity import Identities
from repository.scratch import create_scratch_database, drop_scratch_database
from repository.sessions import create_session_sync


async def seed(url: str, n: int) -> None:
    database = Database(url)
    try:
        await ensure_schema(database.engine)
        actor = await Identities(database).actor("bench@example.com", "bench")
        gen = TextGen()
        for start in range(0, n, 10_000):
            texts = gen.sentences(min(10_000, n - start), stream=start + 1)
            batch = [MemoryCreate(content=t, user_id=actor.user_id, agent_id=actor.agent_id) for t in texts]
            await database.write(bulk_insert_memories_sync, batch)
        said = gen.sentences(n, stream=0)
        for start in range(0, n, 1_000):
            chat = await database.write(
                create_session_sync, SessionCreate(user_id=actor.user_id, agent_id=actor.agent_id, name=f"s{start}")
            )
            roles = ("user", "assistant")
            batch = [
                MessageCreate(session_id=chat.id, role=roles[i % 2], text_content=t)
                for i, t in enumerate(said[start : start + 1_000])
            ]
            await database.write(add_messages_sync, batch)
    finally:
        await database.dispose()


async def empty_database(backend: str, folder: Path, name: str) -> str:
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{folder / name}.db"
    else:
        url = await create_scratch_database(prefix="bench_transfer")
    database = Database(url)
    try:
        await ensure_schema(database.engine)
    finally:
        await database.dispose()
    return url


def _high_water_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def timed(*args: str) -> tuple[float, float, str]:
    """Run one command; (seconds, peak RSS in MB, stderr).

    The peak is the process's own high-water mark (VmHWM), polled while it runs: wait4's ru_maxrss would report
    this benchmark's own size instead, which a child inherits at fork and keeps across exec.
    """
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen([OURS, *args], stdout=subprocess.DEVNULL, stderr=err, text=True)
        peak = 0.0
        while process.poll() is None:
            peak = max(peak, _high_water_mb(process.pid))
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        err.seek(0)
        said = err.read().strip()
    if process.returncode != 0:
        raise SystemExit(f"{args[0]} failed: {said}")
    return seconds, peak, said


def split(path: Path, kinds: set[str], out: Path) -> int:
    """The export at `path` with only the rows of `kinds` (and what they need); returns the rows kept."""
    counts = dict.fromkeys(("user", "agent", "session", "message", "memory"), 0)
    with path.open(encoding="utf-8") as source, out.open("w", encoding="utf-8") as target:
        for line in source:
            record = json.loads(line)
            kind = record.get("kind")
            if kind == "end":
                target.write(json.dumps({"kind": "end", "counts": counts}) + "\n")
            elif kind is None or kind in kinds | {"user", "agent"} or (kind == "session" and "message" in kinds):
                if kind is not None:
                    counts[kind] += 1
                target.write(line)
    return sum(counts[k] for k in kinds)


async def run(backend: str, n: int) -> list[str]:
    rows: list[str] = []
    made: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench_transfer_") as tmp:
        folder = Path(tmp)
        try:
            source = await empty_database(backend, folder, "source")
            made.append(source)
            await seed(source, n)
            dump = folder / "all.jsonl"
            seconds, rss, _ = timed("export", "--all", "-o", str(dump), "--database-url", source)
            rows.append(
                f"| {backend} | {n:,} + {n:,} | export --all | {2 * n:,} rows | {seconds:.1f} s | "
                f"{2 * n / seconds:,.0f} rows/s | {rss:.0f} MB | {dump.stat().st_size / 1e6:.0f} MB file |"
            )
            for kind, label in (("message", "messages"), ("memory", "memories")):
                part = folder / f"{kind}.jsonl"
                kept = split(dump, {kind}, part)
                target = await empty_database(backend, folder, f"target_{kind}")
                made.append(target)
                seconds, rss, said = timed("import", str(part), "--database-url", target)
                rows.append(
                    f"| {backend} | {n:,} {label} | import into an empty database | {kept:,} rows | {seconds:.1f} s | "
                    f"{kept / seconds:,.0f} rows/s | {rss:.0f} MB | |"
                )
                if kind == "message":
                    seconds, rss, said = timed("import", str(part), "--database-url", target)
                    rows.append(
                        f"| {backend} | {n:,} {label} | the same file again (all stored) | {kept:,} rows | "
                        f"{seconds:.1f} s | {kept / seconds:,.0f} rows/s | {rss:.0f} MB | |"
                    )
                print(said, file=sys.stderr)
        finally:
            if backend == "postgres":
                for url in made:
                    await drop_scratch_database(url)
    return rows


async def main_async(args: argparse.Namespace) -> int:
    print("| backend | rows | what | rows | time | throughput | peak RSS | |")
    print("|---|---|---|---|---|---|---|---|")
    for n in (int(s) for s in args.sizes.split(",")):
        for row in await run(args.backend, n):
            print(row, flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--sizes", default="10000,100000")
    return anyio.run(main_async, parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())

"""Server-side time of the console's first paint at N memories, in process through ASGI (no network, no browser).

    .venv/bin/python bench/console_first_paint.py --backend sqlite --memories 100000

The first paint is the five requests the page makes before it shows the memory list: /console/, app.js,
style.css, /console/api/whoami and /console/api/memories?limit=20. Also timed alone: the list's first page, a
search and the overview. 30 runs each after one warm-up; medians and p90 in ms.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx2
from _common import ROOT

sys.path.insert(0, str(ROOT))

from mcp_server.config import Settings
from mcp_server.http import build_http_app
from repository.models import MemoryRecord
from repository.operations import Operations
from repository.scratch import create_scratch_database, drop_scratch_database
from tests.test_console_api import lifespan

WORDS = "tea coffee lisbon tram castle violin river morning cat dentist green black sunday music book".split()
TOKEN = "bench-console-token"
PAINT = ("/console/", "/console/app.js", "/console/style.css", "/console/api/whoami", "/console/api/memories?limit=20")
ALONE = {
    "memories page 1": "/console/api/memories?limit=20",
    "search 'tea castle'": "/console/api/memories/search?q=tea+castle",
    "overview": "/console/api/overview",
}


async def seed(url: str, n: int) -> None:
    ops = await Operations.open(url)
    ada = await ops.identity.actor("ada@example.com", "coder")
    rnd = random.Random(1)
    for start in range(0, n, 10_000):
        batch = [
            MemoryRecord(content=" ".join(rnd.choice(WORDS) for _ in range(12)) + f" #{start + i}")
            for i in range(min(10_000, n - start))
        ]
        await ops.memories.import_records(ada, batch)
    await ops.close()


async def timed(http: httpx2.AsyncClient, paths: tuple[str, ...]) -> list[float]:
    took = []
    for _ in range(30):
        started = time.perf_counter()
        for path in paths:
            response = await http.get(path, headers={"authorization": f"Bearer {TOKEN}"})
            assert response.status_code == 200, response.text
        took.append((time.perf_counter() - started) * 1000)
    return sorted(took)


async def measure(url: str, n: int) -> None:
    started = time.perf_counter()
    await seed(url, n)
    print(f"seeded {n:,} memories in {time.perf_counter() - started:.0f} s")
    settings = Settings(
        database_url=url,
        transport="streamable-http",
        http_tokens={TOKEN: {"user": "ada@example.com", "agent": "coder"}},
        http_rate_limit=0,
    )
    app = build_http_app(settings)
    async with (
        lifespan(app),
        httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://127.0.0.1:8765") as http,
    ):
        await timed(http, PAINT)  # warm: the database opens, caches fill
        rows = {"first paint (5 requests)": await timed(http, PAINT)}
        for label, path in ALONE.items():
            rows[label] = await timed(http, (path,))
    print("| request | median ms | p90 ms |\n|---|---|---|")
    for label, took in rows.items():
        print(f"| {label} | {statistics.median(took):.1f} | {took[int(len(took) * 0.9)]:.1f} |")


async def run(args: argparse.Namespace) -> None:
    if args.backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            await measure(f"sqlite+aiosqlite:///{Path(tmp) / 'console.db'}", args.memories)
        return
    url = await create_scratch_database(prefix="bench_console")
    try:
        await measure(url, args.memories)
    finally:
        await drop_scratch_database(url)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--memories", type=int, default=100_000)
    anyio.run(run, parser.parse_args())
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""HTTP calls/s of two checkouts' servers on PostgreSQL at 1, 8 and 32 clients, rounds interleaved.

    .venv/bin/python bench/http_ab.py --a /work/before --b /work/main --memories 10000 --seconds 5 --rounds 3

One scratch database is seeded by checkout A (bench/ab_stdio.py's seeding); B gets a template copy, so each may
migrate its own. Every client has its own credential: a static token on both servers (AGENT_MEMORY_HTTP_TOKENS,
which both checkouts accept), and, with --managed, a third server (B's code on B's database) where each client uses
a managed token made with `token create`. Each round runs every server for --seconds at each client count, servers
in turn, so drift hits them alike; the table gives the median over rounds of calls/s and of p50/p95 latency.
Load: 30% store_memory, 70% search_memories, as bench/scale.py's HTTP test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx2
from _common import pct
from ab_stdio import AGENT, USER, copy_of, seed
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from scale import free_port, wait_port
from textgen import TextGen, queries

from repository.scratch import create_scratch_database, drop_scratch_database

LEVELS = (1, 8, 32)


async def load(port: int, tokens: list[str], duration: float, gen: TextGen, salt: int) -> dict[str, float]:
    asked = queries(gen)
    texts = gen.sentences(500, stream=40_000 + salt)
    latencies: list[float] = []
    errors = 0
    ready = anyio.Event()
    connected = [0]
    stop_at = [0.0]

    async def worker(w: int, token: str) -> None:
        nonlocal errors
        headers = {"Authorization": f"Bearer {token}"}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=60) as http,
            Client(streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http), mode="legacy") as c,
        ):
            connected[0] += 1
            if connected[0] == len(tokens):
                stop_at[0] = time.perf_counter() + duration
                ready.set()
            await ready.wait()
            i = w
            while time.perf_counter() < stop_at[0]:
                i += len(tokens)
                if i % 10 < 3:
                    name, args = "store_memory", {"content": f"{texts[i % len(texts)]} #{salt}-{w}-{i}"}
                else:
                    name, args = "search_memories", {"query": asked["mixed" if i % 2 else "rare"][i % 20]}
                started = time.perf_counter()
                result = await c.call_tool(name, args)
                latencies.append((time.perf_counter() - started) * 1000)
                errors += int(result.is_error)

    async with anyio.create_task_group() as tasks:
        for w, token in enumerate(tokens):
            tasks.start_soon(worker, w, token)
    return {
        "calls_per_s": len(latencies) / duration,
        "p50": statistics.median(latencies),
        "p95": pct(latencies, 95),
        "errors": errors,
    }


def managed_tokens(tree: Path, url: str, count: int) -> list[str]:
    script = str(tree / ".venv" / "bin" / "agent-memory-mcp")
    subprocess.run([script, "migrate", "--database-url", url], check=True, capture_output=True)
    made = []
    for i in range(count):
        done = subprocess.run(
            [script, "token", "create", "--user", f"client{i}@example.com", "--agent", AGENT, "--database-url", url],
            check=True,
            capture_output=True,
            text=True,
        )
        made.append(done.stdout.strip().splitlines()[-1])
    return made


def start(tree: Path, url: str, port: int, static: list[str]) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "AGENT_MEMORY_HTTP_TOKENS": json.dumps(
            {t: {"user": f"client{i}@example.com", "agent": AGENT} for i, t in enumerate(static)}
        ),
        # Both servers see the same load; a rate limit (after's default 50/s per credential) is not what is measured.
        "AGENT_MEMORY_HTTP_RATE_LIMIT": "0",
    }
    cmd = [
        str(tree / ".venv" / "bin" / "agent-memory-mcp"),
        "--transport",
        "streamable-http",
        "--port",
        str(port),
        "--database-url",
        url,
        "--user",
        USER,
        "--agent",
        AGENT,
    ]
    return subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)


async def run(args: argparse.Namespace) -> None:
    gen = TextGen()
    a, b = Path(args.a).resolve(), Path(args.b).resolve()
    static = [f"bench-static-{i:02d}-{os.urandom(8).hex()}" for i in range(max(LEVELS))]
    url_a = await create_scratch_database(prefix="bench_http")
    urls = [url_a]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        seed(a, url_a, args.memories, 1_000)
        with tempfile.TemporaryDirectory() as tmp:
            urls.append(await copy_of(url_a, Path(tmp)))
        servers: dict[str, tuple[int, list[str]]] = {}
        plan = [("A static", a, urls[0], static), ("B static", b, urls[1], static)]
        if args.managed:
            urls.append(await copy_of(url_a, Path(tempfile.gettempdir())))
            plan.append(("B managed", b, urls[2], managed_tokens(b, urls[2], max(LEVELS))))
        for label, tree, url, tokens in plan:
            port = free_port()
            procs.append(start(tree, url, port, static))
            await wait_port(port, procs[-1])
            await load(port, tokens[:1], 1.0, gen, 0)  # warm-up: opens (and migrates) the database
            servers[label] = (port, tokens)
        found: dict[tuple[str, int], list[dict[str, float]]] = {}
        for r in range(args.rounds):
            for clients in LEVELS:
                order = list(servers.items()) if r % 2 == 0 else list(reversed(servers.items()))
                for label, (port, tokens) in order:
                    got = await load(port, tokens[:clients], args.seconds, gen, r * 100 + clients)
                    found.setdefault((label, clients), []).append(got)
                    print(
                        f"round {r} {label} clients={clients}: {got['calls_per_s']:.0f} calls/s "
                        f"p50 {got['p50']:.1f} p95 {got['p95']:.1f} errors {got['errors']}",
                        flush=True,
                    )
        print("\n| server | clients | calls/s | p50 ms | p95 ms | errors |\n|---|---|---|---|---|---|")
        for (label, clients), runs in found.items():
            med = {k: statistics.median(x[k] for x in runs) for k in ("calls_per_s", "p50", "p95")}
            print(
                f"| {label} | {clients} | {med['calls_per_s']:.0f} | {med['p50']:.1f} | {med['p95']:.1f} | "
                f"{sum(x['errors'] for x in runs)} |"
            )
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(20)
        for url in urls:
            await drop_scratch_database(url)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", required=True, help="checkout A, before (with .venv)")
    parser.add_argument("--b", required=True, help="checkout B, after (with .venv)")
    parser.add_argument("--memories", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--managed", action="store_true", help="also B with one managed token per client")
    anyio.run(run, parser.parse_args())
    return 0


if __name__ == "__main__":
    sys.exit(main())

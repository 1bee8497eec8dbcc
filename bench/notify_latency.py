"""Change-notification latency across replicas: two HTTP server processes on one scratch PostgreSQL database.

    .venv/bin/python bench/notify_latency.py --writes 300

A 2026-07-28 client on replica 1 listens to one memory (`subscriptions/listen`); a client on replica 2 updates
that memory --writes times, one write at a time, each waiting for its notification before the next. Latency is
from the start of the store_memory call on replica 2 to the `notifications/resources/updated` frame arriving on
replica 1's stream (so it includes the write itself: its round trip is shown beside it, and the time from the
write's response to the notification after that; negative when the notification came first). The same is measured with
the writer on replica 1 (delivery within the process, no NOTIFY), as the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
from _common import OURS, machine, machine_line, pct
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.subscriptions import ResourceUpdated
from scale import free_port, wait_port

from repository import Database, ensure_schema
from repository.scratch import create_scratch_database, drop_scratch_database

TOKEN = "bench-" + uuid.uuid4().hex
ENV_TOKENS = json.dumps({TOKEN: {"user": "bench@example.com", "agent": "bench"}})


@asynccontextmanager
async def replica(url: str, log: Path) -> AsyncIterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_MEMORY_")} | {
        "AGENT_MEMORY_HTTP_TOKENS": ENV_TOKENS,
        "AGENT_MEMORY_HTTP_RATE_LIMIT": "0",
        "AGENT_MEMORY_AUTO_MIGRATE": "false",
    }
    command = [OURS, "--transport", "streamable-http", "--port", str(port), "--database-url", url]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=sink)
        try:
            await wait_port(port, process)
            yield f"http://127.0.0.1:{port}/mcp"
        finally:
            process.terminate()
            process.wait(timeout=20)


@asynccontextmanager
async def client(url: str) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http)) as connected,
    ):
        yield connected


async def measure(listener: Client, writer: Client, writes: int) -> tuple[list[float], list[float]]:
    """(notification latencies, write round trips) in milliseconds, after 20 warm-up writes."""
    first = await writer.call_tool("store_memory", {"content": "v0", "name": "bench-latency"})
    uri = f"memory://memories/{first.structured_content['id']}"  # type: ignore[index]
    latencies, round_trips = [], []
    async with listener.listen(resource_subscriptions=[uri]) as stream:
        events = stream.__aiter__()
        for i in range(writes + 20):
            started = time.perf_counter()
            result = await writer.call_tool("store_memory", {"content": f"v{i + 1}", "name": "bench-latency"})
            returned = time.perf_counter()
            assert not result.is_error, result
            with anyio.fail_after(10):
                event = await events.__anext__()
            arrived = time.perf_counter()
            assert event == ResourceUpdated(uri), event
            if i >= 20:
                latencies.append((arrived - started) * 1000)
                round_trips.append((returned - started) * 1000)
    return latencies, round_trips


def row(label: str, latencies: list[float], round_trips: list[float]) -> str:
    after = [latency - trip for latency, trip in zip(latencies, round_trips, strict=True)]
    return (
        f"| {label} | {len(latencies)} | {pct(latencies, 50):.1f} | {pct(latencies, 95):.1f} | "
        f"{max(latencies):.1f} | {pct(round_trips, 50):.1f} | {pct(after, 50):.1f} | {pct(after, 95):.1f} |"
    )


async def main(writes: int, logs: Path) -> None:
    url = await create_scratch_database(prefix="agent_memory_bench")
    try:
        database = Database(url)
        await ensure_schema(database.engine)
        await database.dispose()
        async with (
            replica(url, logs / "replica1.log") as one,
            replica(url, logs / "replica2.log") as two,
            client(one) as on_one,
            client(two) as on_two,
            client(one) as also_on_one,
        ):
            print(machine_line(machine()))
            print(
                "| writer | writes | notified p50 ms | p95 ms | max ms | write round trip p50 ms "
                "| after the write's response p50 ms | p95 ms |"
            )
            print("|---|---|---|---|---|---|---|---|")
            print(row("other replica (LISTEN/NOTIFY)", *await measure(on_one, on_two, writes)))
            print(row("same replica (in process)", *await measure(on_one, also_on_one, writes)))
    finally:
        await drop_scratch_database(url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--logs", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")))
    arguments = parser.parse_args()
    sys.exit(anyio.run(main, arguments.writes, arguments.logs))

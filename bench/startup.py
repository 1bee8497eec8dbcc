"""Start-up and round-trip benchmark: agent-memory-mcp against a bare no-op MCPServer, measured the same way.

    .venv/bin/python bench/startup.py                  # 15 spawns per variant, 200 calls per tool, writes docs
    .venv/bin/python bench/startup.py --runs 5 --calls 50 --no-write   # quick look

Start-up: each variant is spawned --runs times, interleaved (noop, ours on a fresh SQLite file, ours on an already
initialised file), through the SDK `Client` over stdio. "initialize" is the time from spawn until the handshake
answer (`Client.__aenter__` returns); "first tool" is from spawn until the first tool result (our server opens the
database beside the handshake, so its first tool call is where the rest of start-up shows). Both client modes are
measured: `legacy` (the initialize handshake every current host does) and `auto` (the SDK default: probe
`server/discover`, fall back to initialize).

Round trip: one client per server, `--calls` sequential calls per tool after a warm-up; p50/p95 in milliseconds.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from _common import (
    check,
    fmt,
    machine,
    machine_line,
    noop_params,
    ours_params,
    pct,
    summary,
    table,
    timed_calls,
    write_section,
)
from mcp import Client
from thresholds import STARTUP_INIT_RATIO

WORDS = (
    "the user prefers short answers in French and lives near the river with two cats named Miso and Tofu "
    "works on a compiler project written in Rust likes hiking on weekends and drinks green tea every morning"
).split()


def sentence(i: int, n: int = 18) -> str:
    return f"fact {i}: " + " ".join(WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(n))


async def spawn_once(params: Any, mode: str, tool: str, args: dict[str, Any]) -> tuple[float, float, str]:
    t0 = time.perf_counter()
    async with Client(params, mode=mode) as client:
        t_init = time.perf_counter() - t0
        check(await client.call_tool(tool, args), tool)
        t_tool = time.perf_counter() - t0
        version = client.protocol_version
    return t_init, t_tool, version


async def startup(runs: int, modes: list[str], tmp: Path) -> dict[str, Any]:
    warm_url = f"sqlite+aiosqlite:///{tmp / 'warm.db'}"
    # Second start: the file exists with its schema, user and agent (one start before the measurement made them).
    await spawn_once(ours_params(warm_url), "legacy", "list_sessions", {})
    await spawn_once(noop_params(), "legacy", "noop", {})  # warm the page cache for the floor as well
    results: dict[str, Any] = {}
    for mode in modes:
        samples: dict[str, list[tuple[float, float]]] = {"noop": [], "ours (fresh file)": [], "ours (second start)": []}
        versions: dict[str, str] = {}
        for i in range(runs):
            fresh_url = f"sqlite+aiosqlite:///{tmp / f'fresh_{mode}_{i}.db'}"
            for label, params, tool in (
                ("noop", noop_params(), "noop"),
                ("ours (fresh file)", ours_params(fresh_url), "list_sessions"),
                ("ours (second start)", ours_params(warm_url), "list_sessions"),
            ):
                t_init, t_tool, version = await spawn_once(params, mode, tool, {})
                samples[label].append((t_init, t_tool))
                versions[label] = version
        results[mode] = {"samples": samples, "versions": versions}
    return results


async def round_trip(calls: int, tmp: Path) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    async with Client(noop_params(), mode="legacy") as client:
        out["noop"] = summary(await timed_calls(calls, lambda i: client.call_tool("noop", {"text": sentence(i)})))
    url = f"sqlite+aiosqlite:///{tmp / 'roundtrip.db'}"
    async with Client(ours_params(url), mode="legacy") as client:

        async def store(i: int) -> Any:
            return check(await client.call_tool("store_memory", {"content": sentence(i + 1000)}), "store_memory")

        out["store_memory"] = summary(await timed_calls(calls, store))
        queries = ["What does the user drink in the morning?", "cats names", "which compiler project", "hiking"]

        async def search(i: int) -> Any:
            return check(await client.call_tool("search_memories", {"query": queries[i % len(queries)]}), "search")

        out["search_memories"] = summary(await timed_calls(calls, search))
        created = check(await client.call_tool("create_session", {"name": "bench"}), "create_session")
        sid = created.structured_content["id"]
        for b in range(2):
            batch = [
                {"role": "user" if k % 2 == 0 else "assistant", "text_content": sentence(b * 100 + k)}
                for k in range(100)
            ]
            check(await client.call_tool("add_messages", {"session_id": sid, "messages": batch}), "add_messages")

        async def history(i: int) -> Any:
            return check(await client.call_tool("get_session_history", {"session_id": sid}), "history")

        out["get_session_history (50 msgs)"] = summary(await timed_calls(calls, history))

        async def add(i: int) -> Any:
            return check(
                await client.call_tool("add_message", {"session_id": sid, "role": "user", "text_content": sentence(i)}),
                "add_message",
            )

        out["add_message"] = summary(await timed_calls(calls, add))
    return out


def render(m: dict[str, str], runs: int, calls: int, start: dict[str, Any], rt: dict[str, dict[str, float]]) -> str:
    parts = [
        "## Start-up and round trip",
        "",
        machine_line(m),
        "",
        (f"Command: `.venv/bin/python bench/startup.py --runs {runs} --calls {calls}` (stdio, SDK `mcp.Client`, "
        "our server on SQLite). Spawns are interleaved noop / ours-fresh / ours-second-start, so drift in machine "
        f"load hits all three alike. **Bar: initialize within {STARTUP_INIT_RATIO}x of the no-op server.**"),
        "",
    ]
    for mode, data in start.items():
        s = data["samples"]
        noop_init = pct([a for a, _ in s["noop"]], 50)
        noop_tool = pct([b for _, b in s["noop"]], 50)
        rows = []
        for label, pairs in s.items():
            inits = [a * 1000 for a, _ in pairs]
            tools = [b * 1000 for _, b in pairs]
            ratio = pct(inits, 50) / (noop_init * 1000)
            rows.append([
                label,
                fmt(pct(inits, 50)),
                fmt(pct(inits, 95)),
                fmt(min(inits)),
                f"{ratio:.2f}x" + (" (bar met)" if label != "noop" and ratio <= STARTUP_INIT_RATIO else
                                   " (bar missed)" if label != "noop" else ""),
                fmt(pct(tools, 50)),
                f"{pct(tools, 50) / (noop_tool * 1000):.2f}x",
            ])
        versions = ", ".join(sorted(set(data["versions"].values())))
        parts += [
            f"### Start-up, client mode `{mode}` (negotiated protocol {versions}), {runs} spawns each",
            "",
            table(
                ["server", "initialize p50 ms", "p95 ms", "min ms", "init / noop (p50)", "first tool result p50 ms",
                 "first tool / noop"],
                rows,
            ),
            "",
        ]
    noop = rt["noop"]
    rows = []
    for label, st in rt.items():
        rows.append([
            label, fmt(st["p50"], 2), fmt(st["p95"], 2), fmt(st["max"], 1), fmt(st["per_s"], 0),
            "1.00x" if label == "noop" else f"{st['p50'] / noop['p50']:.2f}x",
        ])
    parts += [
        f"### Tool round trip, {calls} sequential calls per tool (mode `legacy`, small fresh SQLite database)",
        "",
        table(["tool", "p50 ms", "p95 ms", "max ms", "calls/s", "p50 / noop"], rows),
        "",
        "The no-op row is the floor: JSON-RPC over pipes, the SDK's validation and dispatch on both sides.",
        "",
        ("Reading it: start-up is dominated by interpreter start and SDK imports (the no-op server alone takes "
        "~0.6 s). Our server answers `initialize` before the database is open (the data layer loads in a worker "
        "thread), so the database cost shows in the *first tool result* column instead; on a fresh file that "
        "includes creating the schema. The worker thread competes for the GIL and the 2 cores with the "
        "handshake, which is why the fresh-file initialize ratio is the noisiest number here: on this shared "
        "machine it moved between ~1.1x and ~1.7x across runs (with 2 spawns it was 1.68x legacy / 1.46x auto)."),
    ]
    return "\n".join(parts) + "\n"


async def amain(args: argparse.Namespace) -> None:
    m = machine()
    modes = ["legacy", "auto"] if args.mode == "both" else [args.mode]
    with tempfile.TemporaryDirectory(prefix="bench_startup_") as d:
        tmp = Path(d)
        start = await startup(args.runs, modes, tmp)
        rt = await round_trip(args.calls, tmp)
    text = render(m, args.runs, args.calls, start, rt)
    print(text)
    if not args.no_write:
        write_section("startup", text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=15)
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--mode", choices=["legacy", "auto", "both"], default="both")
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    anyio.run(amain, p.parse_args())


if __name__ == "__main__":
    main()

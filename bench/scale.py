"""Scale benchmark: agent-memory-mcp with N memories and a long session, against the no-op floor and the reference
`@modelcontextprotocol/server-memory`, on SQLite and PostgreSQL.

    .venv/bin/python bench/scale.py --backend sqlite   --sizes 10000,100000,1000000
    .venv/bin/python bench/scale.py --backend postgres --sizes 10000,100000,1000000  # + HTTP concurrency, EXPLAIN
    .venv/bin/python bench/scale.py --backend sqlite --sizes 1000 --calls 30 --ref-calls 10 --no-write   # smoke test

Per backend, one database is created (a temp SQLite file, or PostgreSQL database `bench_scale_<12 hex digits>` on
$AGENT_MEMORY_TEST_PG, default 127.0.0.1:5432, made and dropped afterwards by `repository.scratch`) and grown
through the sizes in ascending order: memories are seeded through the bulk path
(`repository.memories.bulk_insert_memories`, 10,000 per transaction) into the server's configured user scope, plus
one session with --messages messages (`repository.messages.add_messages`, 1,000 per transaction). After each size
the server is spawned over stdio (SDK `mcp.Client`, mode `legacy`) and every tool is called --calls times in
sequence; the no-op server and (up to --ref-max) the reference server are measured the same way, at the same size,
in the same run. Results accumulate in bench/results/scale.json (one entry per backend, replaced by each run); the
docs section and docs/bench_search_latency.png are rendered from all of it.

The reference server is installed once with npm into bench/.cache/refserver (or $BENCH_REF_CACHE) and seeded by
writing its JSONL file (MEMORY_FILE_PATH) directly: N entities with one observation each, the same texts as ours.
"""

from __future__ import annotations

import argparse
import json
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
from _common import (
    BENCH,
    DOCS,
    NOOP,
    OURS,
    check,
    child_pids,
    ensure_reference_server,
    fmt,
    history_cursors,
    machine,
    machine_line,
    noop_params,
    ours_params,
    reference_params,
    reference_version,
    rss_mb,
    summary,
    table,
    timed_calls,
    write_section,
)
from explain import explain_hot_queries
from explain import render as render_explain
from mcp import Client
from textgen import TextGen, queries
from thresholds import (
    BULK_IMPORT_PER_S,
    HISTORY_P95_MS,
    IDLE_RSS_MB,
    NOOP_RATIO,
    NOOP_RATIO_FROM_N,
    REFERENCE_SLOWER,
    SEARCH_P95_FROM_N,
    SEARCH_P95_MS,
)

from repository.scratch import create_scratch_database, drop_scratch_database

USER, AGENT = "bench@example.com", "bench"
# A second user with few memories, seeded first (so its rows are the oldest in the table): its searches show whether
# scope filters stay selective when another user owns almost every row.
SMALL_USER, SMALL_MEMORIES = "small@example.com", 1_000
RESULTS = BENCH / "results" / "scale.json"
PLOT = DOCS.parent / "bench_search_latency.png"


# --- seeding -------------------------------------------------------------------------------------------------------


class Store:
    """The benchmark database, seeded through the repository layer (what an importer would use)."""

    def __init__(self, backend: str, tmp: Path) -> None:
        self.backend = backend
        self.path = tmp / "scale.db"
        self.url = f"sqlite+aiosqlite:///{self.path}" if backend == "sqlite" else ""  # PostgreSQL: set by open()
        self.db: Any = None
        self.count = 0

    async def open(self) -> None:
        if self.backend == "postgres":
            self.url = await create_scratch_database(prefix="bench_scale")
        from repository import (
            Database,
            ensure_schema,
            get_or_create_agent_by_name,
            get_or_create_user_by_email,
        )

        self.db = Database(self.url)
        await ensure_schema(self.db.engine)
        async with self.db.transaction() as s:
            self.user_id = (await get_or_create_user_by_email(s, USER)).id
            self.agent_id = (await get_or_create_agent_by_name(s, AGENT)).id
            self.small_user_id = (await get_or_create_user_by_email(s, SMALL_USER)).id

    async def close(self, drop: bool = True) -> None:
        if self.db is not None:
            await self.db.dispose()
        if self.backend == "postgres" and self.url:
            if drop:
                await drop_scratch_database(self.url)
            else:
                print(f"kept the PostgreSQL database: {self.url}", flush=True)

    async def seed_memories(self, texts: list[str], *, small_user: bool = False) -> float:
        """Insert these texts as user-scope memories; returns the wall time (model construction + insert)."""
        from repository import MemoryCreate, bulk_insert_memories

        owner = self.small_user_id if small_user else self.user_id
        t0 = time.perf_counter()
        for start in range(0, len(texts), 10_000):
            batch = texts[start : start + 10_000]
            items = [MemoryCreate(content=t, agent_id=self.agent_id, user_id=owner) for t in batch]
            async with self.db.transaction() as s:
                await bulk_insert_memories(s, items)
        elapsed = time.perf_counter() - t0
        if not small_user:
            self.count += len(texts)
        return elapsed

    async def seed_session(self, texts: list[str]) -> tuple[str, float]:
        from repository import (
            MessageCreate,
            SessionCreate,
            add_messages,
            create_session,
        )

        async with self.db.transaction() as s:
            sid = (await create_session(s, SessionCreate(user_id=self.user_id, agent_id=self.agent_id, name="long"))).id
        t0 = time.perf_counter()
        for start in range(0, len(texts), 1000):
            items = [
                MessageCreate(session_id=sid, role="user" if (start + k) % 2 == 0 else "assistant", text_content=t)
                for k, t in enumerate(texts[start : start + 1000])
            ]
            async with self.db.transaction() as s:
                await add_messages(s, items)
        elapsed = time.perf_counter() - t0
        return str(sid), elapsed

    async def history_cursors(self, sid: str, count: int) -> dict[str, str]:
        """Cursors the session's history hands out for its middle and deepest pages (see _common.history_cursors)."""
        return await self.db.read(history_cursors, uuid.UUID(sid), self.user_id, count)

    async def analyze(self) -> None:
        from sqlalchemy import text

        async with self.db.engine.connect() as conn:
            if self.backend == "postgres":
                await conn.execute(text("COMMIT"))
                await conn.execute(text("ANALYZE"))
            else:
                await conn.execute(text("ANALYZE"))
                await conn.commit()

    async def size_bytes(self) -> int:
        from sqlalchemy import text

        if self.backend == "postgres":
            async with self.db.engine.connect() as conn:
                return int((await conn.execute(text("SELECT pg_database_size(current_database())"))).scalar_one())
        await self.db.dispose()  # close pooled connections so the checkpoint can truncate the WAL
        with sqlite3.connect(self.path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = self.path.stat().st_size
        wal = Path(str(self.path) + "-wal")
        return size + (wal.stat().st_size if wal.exists() else 0)


def write_reference_file(path: Path, texts: list[str]) -> None:
    with path.open("w") as f:
        lines = (
            json.dumps({"type": "entity", "name": f"memory-{i}", "entityType": "memory", "observations": [t]})
            for i, t in enumerate(texts)
        )
        f.write("\n".join(lines))


# --- measuring -----------------------------------------------------------------------------------------------------


def _new_child(before: set[int]) -> int | None:
    new = [p for p in child_pids() if p not in before]
    return new[0] if len(new) == 1 else None


async def measure_noop(calls: int) -> dict[str, Any]:
    before = set(child_pids())
    async with Client(noop_params(), mode="legacy") as client:
        pid = _new_child(before)
        check(await client.call_tool("noop", {}), "noop")
        idle = rss_mb(pid)
        st = summary(await timed_calls(calls, lambda i: client.call_tool("noop", {"text": "x" * 200})))
        return {"noop": st, "rss_idle": idle, "rss_load": rss_mb(pid)}


async def measure_ours(url: str, calls: int, gen: TextGen, n: int, session: dict[str, Any]) -> dict[str, Any]:
    q = queries(gen)
    new_texts = gen.sentences(calls + 20, stream=10_000 + n // 1000)
    out: dict[str, Any] = {}
    before = set(child_pids())
    t0 = time.perf_counter()
    async with Client(ours_params(url, user=USER, agent=AGENT), mode="legacy") as client:
        out["initialize_ms"] = (time.perf_counter() - t0) * 1000
        pid = _new_child(before)
        check(await client.call_tool("list_sessions", {}), "list_sessions")
        out["first_tool_ms"] = (time.perf_counter() - t0) * 1000
        await anyio.sleep(0.3)
        out["rss_idle"] = rss_mb(pid)

        async def store(i: int) -> Any:
            return check(await client.call_tool("store_memory", {"content": new_texts[i % len(new_texts)]}), "store")

        def search(kind: str) -> Any:
            async def call(i: int) -> Any:
                return check(await client.call_tool("search_memories", {"query": q[kind][i % 20]}), "search_memories")
            return call

        sid = session["id"]
        middle, deep = session["cursors"]["middle"], session["cursors"]["deepest"]

        async def history(cursor: str | None) -> Any:
            args = {"session_id": sid, **({"cursor": cursor} if cursor else {})}

            async def call(i: int) -> Any:
                r = check(await client.call_tool("get_session_history", args), "get_session_history")
                assert len(r.structured_content["messages"]) == 50, r.structured_content
                return r
            return call

        out["store_memory"] = summary(await timed_calls(calls, store, warmup=0))
        for kind in ("rare", "common", "mixed", "word"):
            out[f"search_memories ({kind})"] = summary(await timed_calls(calls, search(kind)))
        out["get_session_history (latest)"] = summary(await timed_calls(calls, await history(None)))
        out["get_session_history (middle)"] = summary(await timed_calls(calls, await history(middle)))
        out["get_session_history (deepest)"] = summary(await timed_calls(calls, await history(deep)))
        out["list_sessions"] = summary(
            await timed_calls(calls, lambda i: client.call_tool("list_sessions", {}))
        )
        out["rss_load"] = rss_mb(pid)
        sample = await client.call_tool("search_memories", {"query": q["rare"][0]})
        out["sample_hits"] = len(sample.structured_content["results"])
    return out


async def measure_small_user(url: str, calls: int, gen: TextGen) -> dict[str, Any]:
    """Searches by the user with SMALL_MEMORIES memories, whose rows are the oldest in the table."""
    q = queries(gen)
    out: dict[str, Any] = {}
    async with Client(ours_params(url, user=SMALL_USER, agent=AGENT), mode="legacy") as client:
        for kind in ("rare", "common", "mixed"):
            async def call(i: int, kind: str = kind) -> Any:
                return check(await client.call_tool("search_memories", {"query": q[kind][i % 20]}), "search_memories")

            out[f"search_memories ({kind}), {SMALL_MEMORIES:,}-memory user"] = summary(await timed_calls(calls, call))
    return out


async def measure_reference(path: Path, calls: int, gen: TextGen, n: int) -> dict[str, Any]:
    q = queries(gen)
    new_texts = gen.sentences(calls + 20, stream=20_000 + n // 1000)
    out: dict[str, Any] = {}
    before = set(child_pids())
    async with Client(reference_params(path), mode="legacy") as client:
        pid = _new_child(before)
        check(await client.call_tool("search_nodes", {"query": "zzzz"}), "search_nodes")
        await anyio.sleep(0.3)
        out["rss_idle"] = rss_mb(pid)

        def search(kind: str) -> Any:
            async def call(i: int) -> Any:
                return check(await client.call_tool("search_nodes", {"query": q[kind][i % 20]}), "search_nodes")
            return call

        async def add(i: int) -> Any:
            entity = {"entityName": f"memory-{(i * 7919) % n}", "contents": [new_texts[i % len(new_texts)]]}
            args = {"observations": [entity]}
            return check(await client.call_tool("add_observations", args), "add_observations")

        out["search_nodes (word)"] = summary(await timed_calls(calls, search("word"), warmup=2))
        out["search_nodes (rare)"] = summary(await timed_calls(calls, search("rare"), warmup=2))
        out["add_observations"] = summary(await timed_calls(calls, add, warmup=0))
        out["rss_load"] = rss_mb(pid)
    return out


# --- concurrency over streamable HTTP ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            await anyio.sleep(0.1)
    raise RuntimeError("server did not open its port")


async def http_load(port: int, clients: int, duration: float, ours: bool, gen: TextGen) -> dict[str, Any]:
    q = queries(gen)
    texts = gen.sentences(2000, stream=30_000 + clients)
    latencies: list[float] = []
    errors = 0
    counter = 0
    ready = anyio.Event()
    connected = 0
    stop_at = [0.0]

    async def worker(w: int) -> None:
        nonlocal errors, counter, connected
        async with Client(f"http://127.0.0.1:{port}/mcp", mode="legacy") as client:
            connected += 1
            if connected == clients:
                stop_at[0] = time.perf_counter() + duration
                ready.set()
            await ready.wait()
            i = w
            while time.perf_counter() < stop_at[0]:
                i += clients
                if ours:
                    if i % 10 < 3:  # 30% writes, 70% searches
                        name, args = "store_memory", {"content": texts[(i * 31) % len(texts)] + f" #{w}-{i}"}
                    else:
                        name, args = "search_memories", {"query": q["mixed" if i % 2 else "rare"][i % 20]}
                else:
                    name, args = "noop", {"text": "x" * 200}
                t0 = time.perf_counter()
                try:
                    r = await client.call_tool(name, args)
                    if r.is_error:
                        errors += 1
                except Exception:  # noqa: BLE001 - counted and reported
                    errors += 1
                latencies.append(time.perf_counter() - t0)
                counter += 1

    t_start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for w in range(clients):
            tg.start_soon(worker, w)
    wall = time.perf_counter() - t_start
    st = summary(latencies)
    return {"clients": clients, "calls": counter, "calls_per_s": counter / duration, "p50": st["p50"],
            "p95": st["p95"], "errors": errors, "wall_s": wall}


async def concurrency(url: str, levels: list[int], duration: float, gen: TextGen) -> dict[str, Any]:
    results: dict[str, Any] = {"ours": [], "noop": [], "duration_s": duration}
    for label in ("noop", "ours"):
        port = free_port()
        if label == "ours":
            cmd = [OURS, "--transport", "streamable-http", "--port", str(port), "--database-url", url,
                   "--user", USER, "--agent", AGENT]
        else:
            cmd = [*NOOP, "--http", "--port", str(port)]
        # Popen returns once the child is forked; the server is then polled without blocking (wait_port).
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
        try:
            await wait_port(port, proc)
            await http_load(port, 1, 1.0, label == "ours", gen)  # warm-up
            for c in levels:
                r = await http_load(port, c, duration, label == "ours", gen)
                r["rss_mb"] = rss_mb(proc.pid)
                results[label].append(r)
                print(f"  http {label} clients={c}: {r['calls_per_s']:.0f} calls/s p50 {r['p50']:.1f} ms "
                      f"p95 {r['p95']:.1f} ms errors {r['errors']}", flush=True)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    return results


# --- the run -------------------------------------------------------------------------------------------------------


async def run_backend(args: argparse.Namespace, gen: TextGen) -> dict[str, Any]:
    sizes = sorted(int(s) for s in args.sizes.split(","))
    result: dict[str, Any] = {"machine": machine(), "sizes": {}, "args": vars(args)}
    if args.ref_max > 0:
        ensure_reference_server()
        result["reference_version"] = reference_version()
    print(f"generating {sizes[-1]:,} memory texts and {args.messages:,} message texts ...", flush=True)
    texts = gen.sentences(sizes[-1], stream=1)
    messages = gen.sentences(args.messages, stream=2)
    with tempfile.TemporaryDirectory(prefix="bench_scale_") as d:
        tmp = Path(d)
        store = Store(args.backend, tmp)
        try:
            await store.open()
            sid, msg_s = await store.seed_session(messages)
            result["messages"] = {"count": args.messages, "seconds": msg_s, "per_s": args.messages / msg_s}
            print(f"seeded {args.messages:,} messages in {msg_s:.1f} s ({args.messages / msg_s:,.0f}/s)", flush=True)
            await store.seed_memories(gen.sentences(SMALL_MEMORIES, stream=3), small_user=True)
            base = await store.size_bytes()
            session = {"id": sid, "cursors": await store.history_cursors(sid, args.messages)}
            for n in sizes:
                added = texts[store.count : n]
                secs = await store.seed_memories(added)
                await store.analyze()
                size = await store.size_bytes()
                entry: dict[str, Any] = {
                    "import": {"count": len(added), "seconds": secs, "per_s": len(added) / secs},
                    "db_bytes": size,
                    "bytes_per_memory": (size - base) / n,
                }
                print(f"[{args.backend} N={n:,}] imported {len(added):,} in {secs:.1f} s "
                      f"({len(added) / secs:,.0f}/s); db {size / 1e6:.1f} MB", flush=True)
                entry["noop"] = await measure_noop(args.calls)
                print(f"  noop p50 {entry['noop']['noop']['p50']:.2f} ms", flush=True)
                entry["ours"] = await measure_ours(store.url, args.calls, gen, n, session)
                entry["ours"].update(await measure_small_user(store.url, max(20, args.calls // 4), gen))
                for k, v in entry["ours"].items():
                    if isinstance(v, dict):
                        print(f"  ours {k}: p50 {v['p50']:.2f} p95 {v['p95']:.2f} max {v['max']:.1f} ms", flush=True)
                print(f"  ours rss idle {entry['ours']['rss_idle']} load {entry['ours']['rss_load']} MB", flush=True)
                if n <= args.ref_max:
                    ref_file = tmp / f"ref_{n}.jsonl"
                    write_reference_file(ref_file, texts[:n])
                    ref_calls = args.ref_calls if n <= 10_000 else max(10, args.ref_calls // 3)
                    entry["reference"] = await measure_reference(ref_file, ref_calls, gen, n)
                    for k, v in entry["reference"].items():
                        if isinstance(v, dict):
                            print(f"  ref {k}: p50 {v['p50']:.2f} p95 {v['p95']:.2f} ms", flush=True)
                result["sizes"][str(n)] = entry
            if args.backend == "postgres":
                result["explain"] = await explain_hot_queries(store.url, USER, AGENT, sid, SMALL_USER)
                result["explain_note"] = (
                    f"Database of the PostgreSQL scale run at N = {sizes[-1]:,} memories (plus {SMALL_MEMORIES:,} of "
                    f"a second user) and one session of {args.messages:,} messages, right after its measurements."
                )
            if args.backend == "postgres" and not args.no_http:
                levels = [int(c) for c in args.clients.split(",")]
                result["concurrency"] = await concurrency(store.url, levels, args.duration, gen)
                result["concurrency"]["n"] = sizes[-1]
        finally:
            await store.close(drop=not args.keep)
    return result


# --- rendering -----------------------------------------------------------------------------------------------------


def ratio(a: float | None, b: float | None) -> str:
    if not a or not b:
        return "-"
    return f"{a / b:.1f}x" if a / b >= 10 else f"{a / b:.2f}x"


def render(all_results: dict[str, Any]) -> str:
    parts = ["## Scale (memories, history, reference server, concurrency)", ""]
    parts.append(
        "Commands: `.venv/bin/python bench/scale.py --backend sqlite --sizes 10000,100000,1000000` and "
        "`.venv/bin/python bench/scale.py --backend postgres --sizes 10000,100000,1000000` (the PostgreSQL run "
        "also does the HTTP concurrency test and the EXPLAIN check). Latencies are client-side round trips over stdio "
        "(SDK `mcp.Client`, mode "
        "`legacy`), sequential calls, in ms. Memories are 10-60 words (mean ~35, ~250 bytes) over a Zipf long-tail "
        "vocabulary (bench/textgen.py, seeded). Query kinds: *rare* = \"What did I note about X and Y?\" with X, Y "
        "long-tail words (its third content word, *note*, is a head-of-vocabulary word matching a few % of rows), "
        "*common* = a question whose content words each match ~20-40% of memories, *mixed* = one of each, "
        "*word* = a single long-tail word (the input the reference server's substring search can actually match). "
        "`ANALYZE` is run after each bulk import. A second user with 1,000 memories is seeded before everything "
        "else (so its rows are the oldest): the rows marked *1,000-memory user* are its searches, which show "
        "whether scope filters stay selective when another user owns almost every row."
    )
    parts.append("")
    for backend, res in all_results.items():
        m = res["machine"]
        parts += [f"### {backend}", "", machine_line(m), ""]
        a = res.get("args", {})
        parts.append(f"Run: `--sizes {a.get('sizes')} --messages {a.get('messages')} --calls {a.get('calls')} "
                     f"--ref-calls {a.get('ref_calls')}`; one session of {res['messages']['count']:,} messages "
                     f"seeded at {res['messages']['per_s']:,.0f} messages/s.")
        parts.append("")
        rows = []
        for n, e in res["sizes"].items():
            rows.append([f"{int(n):,}", f"{e['import']['count']:,}", f"{e['import']['per_s']:,.0f}",
                         f"{e['db_bytes'] / 1e6:,.1f}", f"{e['bytes_per_memory']:,.0f}",
                         fmt(e["ours"]["rss_idle"]), fmt(e["ours"]["rss_load"]), fmt(e["noop"]["rss_idle"]),
                         fmt(e.get("reference", {}).get("rss_load"))])
        parts += [table(["N", "imported", "bulk import memories/s", "DB MB", "DB bytes/memory (excl. messages)",
                         "our RSS idle MB", "our RSS after load MB", "noop RSS MB", "reference RSS after load MB"],
                        rows), ""]
        for n, e in res["sizes"].items():
            noop = e["noop"]["noop"]
            rows = [["noop (floor)", fmt(noop["p50"], 2), fmt(noop["p95"], 2), fmt(noop["max"]),
                     fmt(noop["per_s"], 0), "1.00x"]]
            for k, v in e["ours"].items():
                if isinstance(v, dict):
                    rows.append([k, fmt(v["p50"], 2), fmt(v["p95"], 2), fmt(v["max"]), fmt(v["per_s"], 0),
                                 ratio(v["p50"], noop["p50"])])
            for k, v in e.get("reference", {}).items():
                if isinstance(v, dict):
                    rows.append([f"reference {k}", fmt(v["p50"], 2), fmt(v["p95"], 2), fmt(v["max"]),
                                 fmt(v["per_s"], 0), ratio(v["p50"], noop["p50"])])
            parts += [f"#### {backend}, N = {int(n):,} memories", "",
                      table(["tool", "p50 ms", "p95 ms", "max ms", "calls/s", "p50 / noop"], rows), ""]
        ref_rows = []
        for n, e in res["sizes"].items():
            r = e.get("reference")
            if not r:
                continue
            o = e["ours"]
            ref_rows.append([
                f"{int(n):,}",
                fmt(r["search_nodes (word)"]["p50"], 2), fmt(o["search_memories (word)"]["p50"], 2),
                ratio(r["search_nodes (word)"]["p50"], o["search_memories (word)"]["p50"]),
                fmt(r["search_nodes (rare)"]["p50"], 2), fmt(o["search_memories (rare)"]["p50"], 2),
                ratio(r["search_nodes (rare)"]["p50"], o["search_memories (rare)"]["p50"]),
                fmt(r["add_observations"]["p50"], 2), fmt(o["store_memory"]["p50"], 2),
                ratio(r["add_observations"]["p50"], o["store_memory"]["p50"]),
            ])
        if ref_rows:
            parts += [
                (f"#### Reference server (`@modelcontextprotocol/server-memory` {res.get('reference_version', '?')}, "
                f"node {node_version()}) vs ours on {backend}"), "",
                table(["N", "ref search (word) p50", "ours (word) p50", "ref/ours", "ref search (question) p50",
                       "ours (question) p50", "ref/ours", "ref add_observations p50", "ours store_memory p50",
                       "ref/ours"], ref_rows),
                "",
                ("The reference server re-reads and re-parses its whole JSONL file on every call, and rewrites it "
                "on every write; its search is a case-insensitive substring test of the whole query string, so a "
                "natural-language question matches nothing (it still scans everything)."),
                "",
            ]
        conc = res.get("concurrency")
        if conc:
            rows = []
            for o, z in zip(conc["ours"], conc["noop"], strict=False):
                rows.append([str(o["clients"]), f"{o['calls_per_s']:,.0f}", fmt(o["p50"]), fmt(o["p95"]),
                             str(o["errors"]), f"{z['calls_per_s']:,.0f}", fmt(z["p50"]), fmt(z["p95"]),
                             f"{o['calls_per_s'] / z['calls_per_s']:.2f}x"])
            parts += [
                f"#### Concurrency over streamable HTTP, PostgreSQL, N = {conc['n']:,} memories", "",
                (f"Each client is an SDK `Client` session of its own; all run in one load-generator process on the "
                f"same 2 cores as the server (so the client's own CPU is part of both columns). Ours: 30% "
                f"store_memory, 70% search_memories (rare/mixed questions); noop: the no-op tool. "
                f"{conc['duration_s']:.0f} s per level."),
                "",
                table(["clients", "ours calls/s", "ours p50 ms", "ours p95 ms", "errors", "noop calls/s",
                       "noop p50 ms", "noop p95 ms", "ours/noop throughput"], rows),
                "",
            ]
    parts += bars(all_results)
    if PLOT.exists():
        parts += ["", "![search latency vs N](bench_search_latency.png)"]
    parts += ["", "Profiling notes from earlier sessions: see History at the end of this file."]
    return "\n".join(parts) + "\n"


def node_version() -> str:
    try:
        return subprocess.run(["node", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return "?"


def bars(all_results: dict[str, Any]) -> list[str]:
    rows = []
    for backend, res in all_results.items():
        for n, e in res["sizes"].items():
            o, noop = e["ours"], e["noop"]["noop"]["p50"]
            nn = int(n)
            if nn >= NOOP_RATIO_FROM_N:
                for k in ("search_memories (rare)", "search_memories (common)", "search_memories (mixed)",
                          "store_memory"):
                    r = o[k]["p50"] / noop
                    rows.append([backend, f"{nn:,}", f"{k} p50 <= {NOOP_RATIO}x noop", f"{r:.1f}x",
                                 "met" if r <= NOOP_RATIO else "missed"])
            if nn >= SEARCH_P95_FROM_N:
                for k in [k for k in o if k.startswith("search_memories")]:
                    p95 = o[k]["p95"]
                    rows.append([backend, f"{nn:,}", f"{k} p95 <= {SEARCH_P95_MS} ms", f"{p95:.1f} ms",
                                 "met" if p95 <= SEARCH_P95_MS else "missed"])
            hp = max(o[k]["p95"] for k in o if k.startswith("get_session_history"))
            rows.append([backend, f"{nn:,}", f"history p95 <= {HISTORY_P95_MS} ms (worst depth)", f"{hp:.1f} ms",
                         "met" if hp <= HISTORY_P95_MS else "missed"])
            rate = e["import"]["per_s"]
            rows.append([backend, f"{nn:,}", f"bulk import >= {BULK_IMPORT_PER_S:,}/s", f"{rate:,.0f}/s",
                         "met" if rate >= BULK_IMPORT_PER_S else "missed"])
            rss = o["rss_idle"] or 0
            rows.append([backend, f"{nn:,}", f"idle RSS <= {IDLE_RSS_MB} MB", f"{rss:.0f} MB",
                         "met" if rss <= IDLE_RSS_MB else "missed"])
            r = e.get("reference")
            if r and nn in REFERENCE_SLOWER:
                need = REFERENCE_SLOWER[nn]
                for rk, ok in (("search_nodes (word)", "search_memories (word)"),
                               ("search_nodes (rare)", "search_memories (rare)"),
                               ("add_observations", "store_memory")):
                    x = r[rk]["p50"] / o[ok]["p50"]
                    rows.append([backend, f"{nn:,}", f"reference {rk} >= {need}x slower than ours {ok}", f"{x:.1f}x",
                                 "met" if x >= need else "missed"])
    return ["### Bars", "", table(["backend", "N", "bar", "measured", "verdict"], rows)]


def plot(all_results: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    ref_points: dict[int, float] = {}
    for backend, res in all_results.items():
        ns = sorted(int(n) for n in res["sizes"])
        for kind, style in (("word", "-o"), ("rare", "--s"), ("common", ":^")):
            ys = [res["sizes"][str(n)]["ours"][f"search_memories ({kind})"]["p50"] for n in ns]
            ax.plot(ns, ys, style, label=f"ours, {backend}, {kind} query")
        noop = [res["sizes"][str(n)]["noop"]["noop"]["p50"] for n in ns]
        ax.plot(ns, noop, color="grey", linewidth=0.8, label=f"no-op floor ({backend} run)")
        for n in ns:
            r = res["sizes"][str(n)].get("reference")
            if r:
                ref_points.setdefault(n, r["search_nodes (word)"]["p50"])
    if ref_points:
        ns = sorted(ref_points)
        ax.plot(ns, [ref_points[n] for n in ns], "-D", color="black", label="reference server-memory, word query")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("memories (N)")
    ax.set_ylabel("search p50 round trip (ms, log)")
    ax.set_title("Search latency vs number of memories (stdio, sequential calls)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(PLOT, dpi=110)


async def amain(args: argparse.Namespace) -> None:
    all_results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if args.render_only:
        plot(all_results)
        write_section("scale", render(all_results))
        return
    gen = TextGen(seed=args.seed)
    result = await run_backend(args, gen)
    if not args.no_write:
        all_results[args.backend] = result
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(all_results, indent=1, default=str))
        plot(all_results)
        write_section("scale", render(all_results))
        if "explain" in result:
            write_section("explain", render_explain(result["explain"], result["explain_note"]))
        print(render(all_results))
    else:
        print(render({args.backend: result}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated memory counts, ascending")
    p.add_argument("--messages", type=int, default=100_000, help="messages in the one long session")
    p.add_argument("--calls", type=int, default=200, help="sequential calls per tool and query kind")
    p.add_argument("--ref-calls", type=int, default=50, help="calls per reference tool at <=10k (a third above)")
    p.add_argument("--ref-max", type=int, default=100_000, help="largest N the reference server is measured at")
    p.add_argument("--clients", default="1,8,32", help="HTTP concurrency levels (postgres only)")
    p.add_argument("--duration", type=float, default=8.0, help="seconds per HTTP concurrency level")
    p.add_argument("--no-http", action="store_true", help="skip the HTTP concurrency test")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    p.add_argument("--render-only", action="store_true", help="re-render docs and plot from bench/results/scale.json")
    p.add_argument("--no-write", action="store_true", help="print only; leave docs and results alone")
    anyio.run(amain, p.parse_args())


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()

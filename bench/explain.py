"""Query plans of every hot query on PostgreSQL: no sequential scan of a growing table.

    python bench/explain.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/DB [--write]

Runs each hot repository call (what store_memory, search_memories, get_session_history, list_sessions,
search_history, add_message, get_memory and list_memories do) once against a seeded database inside a transaction
that is rolled back, captures every SQL statement it sends, and asks PostgreSQL for each statement's plan
(`EXPLAIN (FORMAT JSON)`, the plan the planner picks with the current statistics; nothing is executed twice).
`bench/scale.py --backend postgres` runs it at its largest N; `--write` puts the table into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, machine_line, table, write_section  # noqa: E402

# Tables that never grow past a handful of rows: a sequential scan is the right plan for them.
TINY_TABLES = frozenset({"search_stats", "alembic_version"})


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found += _nodes(child)
    return found


def _describe(node: dict[str, Any]) -> str:
    kind = node["Node Type"]
    if "Index Name" in node:
        return f"{kind} using {node['Index Name']}"
    if "Relation Name" in node:
        return f"{kind} on {node['Relation Name']}"
    return kind


async def explain_hot_queries(url: str, user_email: str, agent_name: str, session_id: str | None) -> list[dict[str, Any]]:
    """One row per hot statement: the operation, the statement's first words, the scan nodes, and any seq scan."""
    import uuid

    from sqlalchemy import event, select

    from repository import Database, MemoryCreate, MessageCreate, get_or_create_agent_by_name
    from repository import get_or_create_user_by_email
    from repository.memories import get_memory_sync, list_memories_sync, upsert_memory_sync
    from repository.messages import add_messages_sync, get_history_sync
    from repository.search import search_memories_sync, search_messages_sync
    from repository.sessions import list_sessions
    from repository.tables import MemoryRow, MessageRow, SessionRow
    from scale import queries
    from textgen import TextGen

    db = Database(url)
    rows: list[dict[str, Any]] = []
    try:
        async with db.transaction() as s:
            user = await get_or_create_user_by_email(s, user_email)
            agent = await get_or_create_agent_by_name(s, agent_name)
        u, a = user.id, agent.id
        async with db.transaction(readonly=True) as s:
            if session_id is None:
                session_id = str((await s.execute(select(SessionRow.id).where(SessionRow.user_id == u).limit(1))).scalar())
            sid = uuid.UUID(session_id)
            memory_id = (await s.execute(select(MemoryRow.id).order_by(MemoryRow.seq.desc()).limit(1))).scalar()
            lo, hi = (
                await s.execute(
                    select(MessageRow.seq).where(MessageRow.session_id == sid).order_by(MessageRow.seq).limit(1)
                )
            ).scalar(), (
                await s.execute(
                    select(MessageRow.seq).where(MessageRow.session_id == sid).order_by(MessageRow.seq.desc()).limit(1)
                )
            ).scalar()
        from repository._paging import encode_cursor

        q = queries(TextGen())
        ops: list[tuple[str, Callable[[Any], Any]]] = [
            ("store_memory", lambda ss: upsert_memory_sync(ss, MemoryCreate(content="explain probe", agent_id=a, user_id=u))),
            ("search_memories (rare)", lambda ss: search_memories_sync(ss, q["rare"][0], user_id=u, agent_id=a)),
            ("search_memories (common)", lambda ss: search_memories_sync(ss, q["common"][0], user_id=u, agent_id=a)),
            ("search_memories (mixed)", lambda ss: search_memories_sync(ss, q["mixed"][0], user_id=u, agent_id=a)),
            ("get_session_history (latest)", lambda ss: get_history_sync(ss, sid, user_id=u)),
            (
                "get_session_history (middle)",
                lambda ss: get_history_sync(
                    ss, sid, user_id=u, cursor=encode_cursor("history", s=str(sid), q=(lo + hi) // 2, d="latest")
                ),
            ),
            (
                "get_session_history (deepest)",
                lambda ss: get_history_sync(
                    ss, sid, user_id=u, cursor=encode_cursor("history", s=str(sid), q=lo + 51, d="latest")
                ),
            ),
            ("search_history", lambda ss: search_messages_sync(ss, q["mixed"][1], user_id=u, agent_id=a)),
            ("get_memory", lambda ss: get_memory_sync(ss, memory_id, user_id=u, agent_id=a)),
            ("list_memories", lambda ss: list_memories_sync(ss, visible_to_pair=(u, a), limit=50)),
            ("add_message", lambda ss: add_messages_sync(ss, [MessageCreate(session_id=sid, role="user", text_content="explain probe")], user_id=u)),
        ]
        for name, op in ops:
            rows += await _explain(db, name, lambda conn_session, op=op: op(conn_session))
        rows += await _explain_async(db, "list_sessions", lambda ss: list_sessions(ss, user_id=u, limit=20))
    finally:
        await db.dispose()
    return rows


async def _capture(db: Any, run: Callable[[Any], Any]) -> list[dict[str, Any]]:
    """Run `run(async_session)` in a rolled-back transaction; EXPLAIN each statement it sent, in the same one."""
    from sqlalchemy import event

    captured: list[tuple[str, Any]] = []

    def before(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")):
            captured.append((statement, parameters))

    plans = []
    async with db.engine.connect() as conn:
        trans = await conn.begin()
        try:
            from sqlalchemy.ext.asyncio import AsyncSession

            session = AsyncSession(bind=conn, expire_on_commit=False, autoflush=False)
            event.listen(conn.sync_connection, "before_cursor_execute", before)
            try:
                await run(session)
            finally:
                event.remove(conn.sync_connection, "before_cursor_execute", before)
            for statement, parameters in captured:
                result = await conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters)
                raw = result.scalar()
                plans.append((statement, raw if isinstance(raw, list) else json.loads(raw)))
        finally:
            await trans.rollback()
    return [{"statement": s, "plan": p[0]["Plan"]} for s, p in plans]


async def _explain(db: Any, name: str, op: Callable[[Any], Any]) -> list[dict[str, Any]]:
    return _summarise(name, await _capture(db, lambda session: session.run_sync(op)))


async def _explain_async(db: Any, name: str, op: Callable[[Any], Any]) -> list[dict[str, Any]]:
    return _summarise(name, await _capture(db, op))


def _summarise(name: str, plans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for item in plans:
        nodes = _nodes(item["plan"])
        scans = [_describe(n) for n in nodes if "Scan" in n["Node Type"] or "Relation Name" in n]
        seq = sorted(
            {n["Relation Name"] for n in nodes if n["Node Type"] == "Seq Scan" and n["Relation Name"] not in TINY_TABLES}
        )
        words = " ".join(item["statement"].split()[:3])
        out.append({"operation": name, "statement": words, "scans": scans, "seq_scans": seq})
    return out


def render(rows: list[dict[str, Any]], url: str, note: str) -> str:
    bad = [r for r in rows if r["seq_scans"]]
    lines = [
        "## Query plans (PostgreSQL, EXPLAIN)",
        "",
        machine_line(machine()),
        "",
        f"{note} Command: `.venv/bin/python bench/explain.py --database-url {url.split('@')[0]}@.../DB --write`. "
        "Every statement a hot tool sends, with the scans the planner chose (`EXPLAIN (FORMAT JSON)`, current "
        "statistics). Sequential scans of `search_stats` (one row per kind) are expected and not counted.",
        "",
        f"**Sequential scans of a growing table: {len(bad)}** ({len(rows)} statements checked).",
        "",
        table(
            ["operation", "statement", "scans", "seq scan"],
            [[r["operation"], f"`{r['statement']}`", "; ".join(dict.fromkeys(r["scans"])) or "-",
              ", ".join(r["seq_scans"]) or "none"] for r in rows],
        ),
    ]
    return "\n".join(lines) + "\n"


async def amain(args: argparse.Namespace) -> None:
    rows = await explain_hot_queries(args.database_url, args.user, args.agent, args.session_id)
    text = render(rows, args.database_url, args.note)
    print(text)
    if args.write:
        write_section("explain", text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--database-url", required=True)
    p.add_argument("--user", default="bench@example.com")
    p.add_argument("--agent", default="bench")
    p.add_argument("--session-id", default=None, help="the long session (default: any session of the user)")
    p.add_argument("--note", default="", help="a sentence saying what the database holds")
    p.add_argument("--write", action="store_true", help="replace the explain section of docs/benchmarks.md")
    anyio.run(amain, p.parse_args())


if __name__ == "__main__":
    main()

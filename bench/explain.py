"""Query plans of every hot query on PostgreSQL: no sequential scan of a growing table.

    python bench/explain.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/DB [--write]

Runs each hot repository call (what store_memory, search_memories, get_session_history, list_sessions,
search_history, add_message, get_memory and list_memories do) once against a seeded database inside a transaction
that is rolled back, captures every SQL statement it sends, and asks PostgreSQL for each statement's plan
(`EXPLAIN (FORMAT JSON)`, the plan the planner picks with the current statistics, without running it again).
Inside the same transaction, 2,000 other users with 10 sessions each and 2,000 agents are added first, so the
planner sees the tables of a shared deployment (the scale benchmark seeds one user, one agent and one session).
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

from _common import history_cursors, machine, machine_line, table, write_section
from textgen import TextGen, queries

# Tables that never grow past a handful of rows: a sequential scan is the right plan for them.
TINY_TABLES = frozenset({"search_stats", "alembic_version"})


def _nodes(plan: dict[str, Any], limited: bool = False) -> list[tuple[dict[str, Any], bool]]:
    """Every node of the plan, with whether a Limit above it bounds how many rows it reads."""
    found = [(plan, limited)]
    for child in plan.get("Plans", []):
        found += _nodes(child, limited or plan["Node Type"] == "Limit")
    return found


def _describe(node: dict[str, Any]) -> str:
    kind = node["Node Type"]
    if "Index Name" in node:
        return f"{kind} using {node['Index Name']}"
    if "Relation Name" in node:
        return f"{kind} on {node['Relation Name']}"
    return kind


async def explain_hot_queries(
    url: str, user_email: str, agent_name: str, session_id: str | None, small_email: str = "small@example.com"
) -> list[dict[str, Any]]:
    """One row per hot statement: the operation, the statement's first words, the scan nodes, and any seq scan.

    The memory calls are explained for `user_email` and, if present, again for `small_email` (a user with a small
    share of the table, whose scope filters must stay selective)."""
    import uuid

    from sqlalchemy import func, select
    from sqlalchemy.ext.asyncio import AsyncSession

    from repository import (
        Database,
        MemoryCreate,
        MessageCreate,
        get_or_create_agent_by_name,
        get_or_create_user_by_email,
    )
    from repository.memories import (
        get_memory_sync,
        list_memories_sync,
        upsert_memory_sync,
    )
    from repository.messages import add_messages_sync, get_history_sync
    from repository.search import search_memories_sync, search_messages_sync
    from repository.sessions import list_sessions
    from repository.tables import MemoryRow, MessageRow, SessionRow, UserRow

    db = Database(url)
    rows: list[dict[str, Any]] = []
    try:
        async with db.transaction() as s:
            u = (await get_or_create_user_by_email(s, user_email)).id
            a = (await get_or_create_agent_by_name(s, agent_name)).id
        async with db.engine.connect() as conn:
            outer = await conn.begin()  # rolled back at the end: the database is left as it was
            session = AsyncSession(bind=conn, expire_on_commit=False, autoflush=False)
            await _add_other_tenants(conn)
            if session_id is None:
                session_id = str((await session.execute(select(SessionRow.id).where(SessionRow.user_id == u))).scalar())
            sid = uuid.UUID(session_id)
            mine = select(MemoryRow.id).where(MemoryRow.user_id == u).order_by(MemoryRow.seq.desc()).limit(1)
            memory_id = (await session.execute(mine)).scalar()
            count = select(func.count()).select_from(MessageRow).where(MessageRow.session_id == sid)
            n_messages = (await session.execute(count)).scalar_one()
            cursors = await session.run_sync(lambda ss: history_cursors(ss, sid, u, n_messages))

            def page(cursor: str) -> Callable[[Any], Any]:
                return lambda ss: get_history_sync(ss, sid, user_id=u, cursor=cursor)

            q = queries(TextGen())

            def memory_ops(label: str, who: uuid.UUID, memory: Any) -> list[tuple[str, Callable[[Any], Any]]]:
                probe = MemoryCreate(content="explain probe", agent_id=a, user_id=who)
                return [
                    (f"store_memory{label}", lambda ss: upsert_memory_sync(ss, probe)),
                    *[
                        (f"search_memories ({kind}){label}",
                         lambda ss, kind=kind: search_memories_sync(ss, q[kind][0], user_id=who, agent_id=a))
                        for kind in ("rare", "common", "mixed")
                    ],
                    (f"get_memory{label}", lambda ss: get_memory_sync(ss, memory, user_id=who, agent_id=a)),
                    (f"list_memories{label}", lambda ss: list_memories_sync(ss, visible_to_pair=(who, a), limit=50)),
                ]

            message = MessageCreate(session_id=sid, role="user", text_content="explain probe")
            ops: list[tuple[str, Callable[[Any], Any]]] = [
                *memory_ops("", u, memory_id),
                ("get_session_history (latest)", lambda ss: get_history_sync(ss, sid, user_id=u)),
                ("get_session_history (middle)", page(cursors["middle"])),
                ("get_session_history (deepest)", page(cursors["deepest"])),
                ("search_history", lambda ss: search_messages_sync(ss, q["mixed"][1], user_id=u, agent_id=a)),
                ("add_message", lambda ss: add_messages_sync(ss, [message], user_id=u)),
            ]
            small = (await session.execute(select(UserRow.id).where(UserRow.email == small_email))).scalar()
            if small is not None:
                theirs = select(MemoryRow.id).where(MemoryRow.user_id == small).limit(1)
                ops += memory_ops(" [small user]", small, (await session.execute(theirs)).scalar())
            for name, op in ops:
                plans = await _capture(conn, lambda op=op: session.run_sync(op))
                rows += _summarise(name, plans)
            rows += _summarise(
                "list_sessions", await _capture(conn, lambda: list_sessions(session, user_id=u, limit=20))
            )
            await outer.rollback()
    finally:
        await db.dispose()
    return rows


# Other users, agents and sessions sharing the database, so the planner sees tables of a shared deployment (the
# benchmark itself seeds one user, one agent and one session). Added inside the rolled-back transaction.
OTHER_USERS, SESSIONS_PER_USER, OTHER_AGENTS = 2_000, 10, 2_000


async def _add_other_tenants(conn: Any) -> None:
    from sqlalchemy import text

    await conn.execute(
        text(
            "INSERT INTO agents (id, name, config, active, run_id, created_at, updated_at) "
            "SELECT gen_random_uuid(), 'explain-agent-' || g, '{}', true, 1, now(), now() FROM generate_series(1, :n) g"
        ),
        {"n": OTHER_AGENTS},
    )
    await conn.execute(
        text(
            "INSERT INTO users (id, email, user_data, created_at, updated_at) "
            "SELECT gen_random_uuid(), 'explain-' || g || '@example.com', '{}', now(), now() "
            "FROM generate_series(1, :n) g"
        ),
        {"n": OTHER_USERS},
    )
    await conn.execute(
        text(
            "INSERT INTO sessions (id, user_id, agent_id, metadata, message_count, created_at, updated_at) "
            "SELECT gen_random_uuid(), u.id, (SELECT id FROM agents WHERE name LIKE 'explain-agent-%' LIMIT 1), "
            "'{}', 0, now(), now() FROM users u, generate_series(1, :k) WHERE u.email LIKE 'explain-%'"
        ),
        {"k": SESSIONS_PER_USER},
    )
    for name in ("agents", "users", "sessions"):
        await conn.execute(text(f"ANALYZE {name}"))


async def _capture(conn: Any, run: Callable[[], Any]) -> list[dict[str, Any]]:
    """Run `run()` inside a savepoint that is rolled back; EXPLAIN each statement it sent, in the same place."""
    from sqlalchemy import event

    captured: list[tuple[str, Any]] = []

    def before(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")):
            # An executemany runs one plan for every parameter set: explain it with the first.
            captured.append((statement, parameters[0] if many else parameters))

    savepoint = await conn.begin_nested()
    try:
        event.listen(conn.sync_connection, "before_cursor_execute", before)
        try:
            await run()
        finally:
            event.remove(conn.sync_connection, "before_cursor_execute", before)
        plans = []
        for statement, parameters in captured:
            raw = (await conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters)).scalar()
            parsed = raw if isinstance(raw, list) else json.loads(raw)
            plans.append({"statement": statement, "plan": parsed[0]["Plan"]})
        return plans
    finally:
        await savepoint.rollback()


def _summarise(name: str, plans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for item in plans:
        nodes = _nodes(item["plan"])
        scans = [_describe(n) for n, _ in nodes if "Scan" in n["Node Type"] or "Relation Name" in n]
        seq = [(n["Relation Name"], limited) for n, limited in nodes
               if n["Node Type"] == "Seq Scan" and n["Relation Name"] not in TINY_TABLES]
        words = " ".join(item["statement"].split()[:3])
        out.append({
            "operation": name,
            "statement": words,
            "scans": scans,
            "seq_scans": sorted({t for t, limited in seq if not limited}),
            "bounded_seq_scans": sorted({t for t, limited in seq if limited}),
        })
    return out


def render(rows: list[dict[str, Any]], note: str) -> str:
    bad = [r for r in rows if r["seq_scans"]]
    bounded = [r for r in rows if r["bounded_seq_scans"]]
    lines = [
        "## Query plans (PostgreSQL, EXPLAIN)",
        "",
        machine_line(machine()),
        "",
        (f"{note} Command: `.venv/bin/python bench/explain.py --database-url URL --write` (`bench/scale.py "
        "--backend postgres` runs it on its database at the largest N). Every statement a hot tool sends, with the "
        "scans the planner chose (`EXPLAIN (FORMAT JSON)`, current "
        "statistics). Sequential scans of `search_stats` (one row per kind) are expected and not counted."),
        "",
        (f"**Sequential scans of a growing table: {len(bad)}** ({len(rows)} statements checked). "
        f"Bounded ones (under a LIMIT, so they stop after that many matching rows): {len(bounded)}."),
        "",
        table(
            ["operation", "statement", "scans", "seq scan"],
            [[r["operation"], f"`{r['statement']}`", "; ".join(dict.fromkeys(r["scans"])) or "-",
              ", ".join(r["seq_scans"] + [f"{t} (bounded by LIMIT)" for t in r["bounded_seq_scans"]]) or "none"]
             for r in rows],
        ),
    ]
    return "\n".join(lines) + "\n"


async def amain(args: argparse.Namespace) -> None:
    rows = await explain_hot_queries(args.database_url, args.user, args.agent, args.session_id, args.small_user)
    text = render(rows, args.note)
    print(text)
    if args.write:
        write_section("explain", text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--database-url", required=True)
    p.add_argument("--user", default="bench@example.com")
    p.add_argument("--agent", default="bench")
    p.add_argument("--session-id", default=None, help="the long session (default: any session of the user)")
    p.add_argument("--small-user", default="small@example.com", help="a user with few memories, if there is one")
    p.add_argument("--note", default="", help="a sentence saying what the database holds")
    p.add_argument("--write", action="store_true", help="replace the explain section of docs/benchmarks.md")
    anyio.run(amain, p.parse_args())


if __name__ == "__main__":
    main()

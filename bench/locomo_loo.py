"""LoCoMo recall@5 with leave-one-conversation-out choice of the ranking constants, in process.

    .venv/bin/python bench/locomo_loo.py --backend sqlite --json /tmp/loo.json

Each feed of bench/locomo_recall.py (memories, history as an importer sends it, plain history) is stored through
`repository.operations` into a fresh database per conversation. Every question is searched once with the server's
own engine, recording the candidates the index returned (the database half of a search); the candidates are then
ranked again by `repository.search.ranking.rank`, the server's ranking code, under every `Tuning` of a grid. For each
conversation the tuning with the best recall@5 on the other four is chosen and scored on it: the mean of those five
scores is the leave-one-out figure, reported beside the best all-five score. Within a variant (which features are
on) only its own grid is searched, so "today" is the grid over today's constants with the new features off.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from dataclasses import asdict, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
from locomo_recall import DEFAULT_DATA, load, session_start, turn_text
from sqlalchemy import select

from repository.models import NewMessage
from repository.operations import Operations
from repository.query_dates import query_periods
from repository.scratch import create_scratch_database, drop_scratch_database
from repository.search import search_memories_sync, search_messages_sync
from repository.search.engine import SearchEngine, engine_of
from repository.search.ranking import rank
from repository.search.tuning import TUNING, Tuning, asks_when
from repository.tables import MemoryRow, MessageRow

K = 5


class RecordingEngine(SearchEngine):
    """The server's engine, keeping what each search ranked."""

    def __init__(self, runtime: Any) -> None:
        super().__init__(runtime)
        self.recorded: list[Any] = []

    def _top(self, candidates, terms, stats, query, limit):  # type: ignore[no-untyped-def]
        self.recorded.append((candidates, terms, stats, query_periods(query), asks_when(query)))
        return super()._top(candidates, terms, stats, query, limit)


async def ingest(ops: Operations, feed: str, conv: dict[str, Any]) -> Any:
    actor = await ops.identity.actor("locomo@example.com", "locomo")
    roles = {conv["speaker_a"]: "user", conv["speaker_b"]: "assistant"}
    for n, date, turns in conv["sessions"]:
        if feed == "memories":
            for turn in turns:
                await ops.memories.remember(
                    actor, f"{turn['speaker']}: {turn_text(turn)}", metadata={"dia_id": turn["dia_id"]}
                )
            continue
        session = await ops.conversations.start_session(actor, name=f"Session {n}: {date}")
        began = session_start(date)
        for start in range(0, len(turns), 100):
            chunk = turns[start : start + 100]
            if feed == "history":
                messages = [
                    NewMessage(
                        role=roles.get(t["speaker"], "user"),
                        text_content=turn_text(t),
                        name=t["speaker"],
                        context={"dia_id": t["dia_id"]},
                        created_at=began + timedelta(seconds=start + i),
                    )
                    for i, t in enumerate(chunk)
                ]
            else:
                messages = [
                    NewMessage(
                        role=roles.get(t["speaker"], "user"),
                        text_content=f"{t['speaker']}: {turn_text(t)}",
                        context={"dia_id": t["dia_id"]},
                    )
                    for t in chunk
                ]
            await ops.conversations.append(actor, session.id, messages)
    return actor


def _dia_ids(session: Any, feed: str) -> dict[int, str]:
    if feed == "memories":
        rows = session.execute(select(MemoryRow.seq, MemoryRow.metadata_)).all()
    else:
        rows = session.execute(select(MessageRow.seq, MessageRow.context)).all()
    return {seq: (meta or {}).get("dia_id", "") for seq, meta in rows}


def _record(session: Any, feed: str, actor: Any, questions: list[dict[str, Any]]) -> tuple[Any, list[Any]]:
    engine = RecordingEngine(engine_of(session).runtime)
    session.info["agent_memory.runtime"].search = engine
    for q in questions:
        before = len(engine.recorded)
        if feed == "memories":
            search_memories_sync(session, q["question"], user_id=actor.user_id, agent_id=actor.agent_id, limit=10)
        else:
            search_messages_sync(session, q["question"], user_id=actor.user_id, limit=10)
        if len(engine.recorded) == before:
            engine.recorded.append(None)  # no stems: no results
    return engine.runtime.analyzer, engine.recorded


async def collect(backend: str, feed: str, conv: dict[str, Any], tmp: Path) -> dict[str, Any]:
    url = (
        f"sqlite+aiosqlite:///{tmp}/{conv['id']}_{feed}.db"
        if backend == "sqlite"
        else await create_scratch_database(prefix="bench_loo")
    )
    ops = await Operations.open(url)
    try:
        actor = await ingest(ops, feed, conv)
        dia = await ops.database.read(_dia_ids, feed)
        analyzer, recorded = await ops.database.read(_record, feed, actor, conv["questions"])
    finally:
        await ops.close()
        if backend == "postgres":
            await drop_scratch_database(url)
    return {"analyzer": analyzer, "dia": dia, "recorded": recorded, "questions": conv["questions"]}


def hits(data: dict[str, Any], tuning: Tuning) -> int:
    """Questions of one conversation with an evidence turn in the first K results under `tuning`."""
    found = 0
    for q, rec in zip(data["questions"], data["recorded"], strict=True):
        if rec is None:
            continue
        candidates, terms, stats, periods, when = rec
        ranked = rank(data["analyzer"], candidates, terms, stats, periods, when=when, tuning=tuning)[:K]
        evidence = set(q["evidence"])
        found += any(data["dia"].get(c.seq) in evidence for c, _ in ranked)
    return found


def grid(space: dict[str, list[Any]]) -> list[Tuning]:
    keys = list(space)
    return [replace(TUNING, **dict(zip(keys, values, strict=True))) for values in itertools.product(*space.values())]


BASE = {"k1": [0.6, 0.9, 1.2], "b": [0.2, 0.4], "ctx_weight": [0.35, 0.5], "speaker_boost": [2.0, 3.0]}
VARIANTS: dict[str, dict[str, list[Any]]] = {
    "today": {"opening_speaker": [False]},
    "+ opening speaker (kept)": {},
    "+ when boost": {"opening_speaker": [False], "when_boost": [1.5, 2.0, 3.0]},
    "+ session share": {"opening_speaker": [False], "session_weight": [0.1, 0.2, 0.4]},
    "+ all three": {"opening_speaker": [True], "when_boost": [1.5, 2.0], "session_weight": [0.0, 0.2]},
}


def leave_one_out(convs: list[dict[str, Any]], tunings: list[Tuning]) -> dict[str, Any]:
    table = [[hits(c, t) for c in convs] for t in tunings]
    sizes = [len(c["questions"]) for c in convs]
    held = []
    for i in range(len(convs)):
        # Best on the other four (ties: the earlier, i.e. smaller, grid point).
        best = max(range(len(tunings)), key=lambda j: (sum(r for k, r in enumerate(table[j]) if k != i), -j))
        held.append(table[best][i])
    all_best = max(range(len(tunings)), key=lambda j: (sum(table[j]), -j))
    default = tunings.index(TUNING) if TUNING in tunings else None
    return {
        "loo": sum(held) / sum(sizes),
        "all5": sum(table[all_best]) / sum(sizes),
        "all5_tuning": asdict(tunings[all_best]),
        "server": None if default is None else sum(table[default]) / sum(sizes),
        "held": held,
    }


async def main_async(args: argparse.Namespace) -> None:
    convs = load(Path(args.data), None)
    feeds = args.feeds.split(",")
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="locomo-loo-") as tmp:
        for feed in feeds:
            t0 = time.perf_counter()
            data = [await collect(args.backend, feed, c, Path(tmp)) for c in convs]
            print(f"{feed}: collected in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
            for name, extra in VARIANTS.items():
                t0 = time.perf_counter()
                tunings = grid({**BASE, **extra})
                if TUNING in tunings:
                    tunings = [TUNING, *(t for t in tunings if t != TUNING)]
                result = leave_one_out(data, tunings)
                out[f"{feed} / {name}"] = result
                print(
                    f"{feed:9} {name:18} loo {result['loo']:.3f}  all-five best {result['all5']:.3f}  "
                    f"server {result['server'] if result['server'] is None else round(result['server'], 3)}  "
                    f"({len(tunings)} tunings, {time.perf_counter() - t0:.0f} s)",
                    file=sys.stderr,
                )
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--feeds", default="memories,history,plain")
    parser.add_argument("--json")
    anyio.run(main_async, parser.parse_args())


if __name__ == "__main__":
    main()

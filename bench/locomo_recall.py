"""LoCoMo retrieval benchmark: recall@k and MRR of search_memories and search_history, through the MCP tools over stdio.

    .venv/bin/python bench/locomo_recall.py                          # both backends, both modes, all conversations
    .venv/bin/python bench/locomo_recall.py --backend sqlite --mode memories --conversations 1   # smoke test
    .venv/bin/python bench/locomo_recall.py --write --json /tmp/locomo.json   # update docs/benchmarks.md, dump raw

Data: the development half of LoCoMo (Maharana et al., ACL 2024, "Evaluating Very Long-Term Conversational Memory of
LLM Agents", arXiv:2402.17753), read in place from <repo>/../shared/data/locomo/locomo-dev.json (--data overrides);
it is never copied into the project.

For each conversation, mode and backend: a fresh database (a SQLite file in a temp dir, or a PostgreSQL database on
$AGENT_MEMORY_TEST_PG, default 127.0.0.1:5432, created and dropped afterwards by `repository.scratch`) and one
server subprocess (the `agent-memory-mcp` console script, spawned by the SDK `mcp.Client` over stdio). Everything
goes through the server's tools:

- memories: each turn is one `store_memory(content="Speaker: text[ [shares a photo: CAPTION]]",
  metadata={"dia_id", "session_date"})`, sequentially; each question is `search_memories(query=question, limit=10)`
  and a result's dia_id is read from its metadata.
- history: each LoCoMo session is one `create_session(name="Session N: <date>", metadata={"date": <date>})`, its
  turns are appended in order with `add_messages` (batches of <= 100; speaker_a -> role "user", speaker_b ->
  "assistant", name=<speaker>, context={"dia_id"}, created_at=<session date and time, UTC> + i seconds for the i-th
  turn); each question is `search_history(query=question, limit=10)` and the
  result message ids are mapped back to dia_ids through the ids add_messages returned.

Questions: every non-adversarial one (category != 5) with evidence; evidence ids are split on ';' and stripped (a
few stay malformed in the data, e.g. "D" or "D:11:26": they simply never match). recall@k = 1 when any evidence turn
is among the first k results; MRR uses the rank of the first evidence turn within the first 10 (0 beyond). Latency
is the client-side wall time of each search call (one untimed warm-up search per server first), in ms.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

import _common
import anyio
from _common import ROOT, machine, ours_params, pct, write_section
from mcp import Client
from thresholds import LOCOMO_PG_DELTA, LOCOMO_RECALL_AT_5, LOCOMO_SEARCH_P95_MS

from repository.scratch import create_scratch_database, drop_scratch_database

USER, AGENT = "locomo@example.com", "locomo"
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "locomo" / "locomo-dev.json"
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
KS = (1, 5, 10)
LIMIT = 10
BATCH = 100
PAPER = (
    'Maharana, Lee, Tulyakov, Bansal, Barbieri, Fang, "Evaluating Very Long-Term Conversational Memory of LLM '
    'Agents", ACL 2024, [arXiv:2402.17753](https://arxiv.org/abs/2402.17753)'
)


# --- data ----------------------------------------------------------------------------------------------------------


def load(path: Path, limit: int | None) -> list[dict[str, Any]]:
    """Conversations as {id, speaker_a, speaker_b, sessions: [(n, date, turns)], questions: [...]}."""
    samples = json.loads(path.read_text())
    out = []
    for sample in samples[: limit or None]:
        conv = sample["conversation"]
        numbers = sorted(
            int(m.group(1)) for k in conv if (m := re.fullmatch(r"session_(\d+)", k))
        )
        sessions = [
            (n, conv.get(f"session_{n}_date_time", ""), conv[f"session_{n}"])
            for n in numbers
        ]
        sessions = [s for s in sessions if s[2]]
        questions = []
        for qa in sample["qa"]:
            if qa.get("category") == 5:
                continue
            evidence = [
                e.strip()
                for item in qa.get("evidence") or []
                for e in str(item).split(";")
                if e.strip()
            ]
            if not evidence:
                continue
            questions.append(
                {
                    "question": qa["question"],
                    "category": qa["category"],
                    "evidence": evidence,
                }
            )
        out.append(
            {
                "id": sample["sample_id"],
                "speaker_a": conv["speaker_a"],
                "speaker_b": conv["speaker_b"],
                "sessions": sessions,
                "questions": questions,
            }
        )
    return out


def session_start(date: str) -> datetime:
    """LoCoMo's session time ("1:56 pm on 8 May, 2023"), taken as UTC."""
    return datetime.strptime(date, "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)


def turn_text(turn: dict[str, Any]) -> str:
    text = turn["text"]
    if turn.get("blip_caption"):
        text += f" [shares a photo: {turn['blip_caption']}]"
    return text


# --- databases -----------------------------------------------------------------------------------------------------


class FreshDatabase:
    """A new, empty database for one (conversation, mode): SQLite file in a temp dir, or a PostgreSQL database."""

    def __init__(self, backend: str, tmp: Path, tag: str) -> None:
        self.backend = backend
        safe = re.sub(r"[^a-z0-9_]", "_", tag.lower())
        self.path = tmp / f"{safe}.db"
        self.url = f"sqlite+aiosqlite:///{self.path}" if backend == "sqlite" else ""  # PostgreSQL: set on entry

    async def __aenter__(self) -> Self:
        if self.backend == "postgres":
            self.url = await create_scratch_database(prefix="bench_locomo")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.backend == "postgres":
            await drop_scratch_database(self.url)
        else:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)


# --- one run -------------------------------------------------------------------------------------------------------


class ToolFailure(Exception):
    pass


def error_text(result: Any) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content) or repr(result)


async def call(
    client: Client, errors: list[dict[str, Any]], tool: str, args: dict[str, Any]
) -> dict[str, Any] | None:
    """Call a tool; a tool error is recorded (exact text) and returns None."""
    result = await client.call_tool(tool, args)
    if result.is_error:
        errors.append({"tool": tool, "args": _short(args), "error": error_text(result)})
        return None
    data = result.structured_content
    if data is None:  # fall back to the text block
        data = json.loads(result.content[0].text)
    return data


def _short(args: dict[str, Any]) -> str:
    text = json.dumps(args, ensure_ascii=False)
    return text if len(text) <= 300 else text[:300] + "..."


async def ingest_memories(
    client: Client, conv: dict[str, Any], errors: list[dict[str, Any]]
) -> dict[str, Any]:
    by_id: dict[str, list[str]] = {}
    outcomes: dict[str, int] = {}
    times = []
    for _n, date, turns in conv["sessions"]:
        for turn in turns:
            content = f"{turn['speaker']}: {turn_text(turn)}"
            t0 = time.perf_counter()
            data = await call(
                client,
                errors,
                "store_memory",
                {
                    "content": content,
                    "metadata": {"dia_id": turn["dia_id"], "session_date": date},
                },
            )
            times.append(time.perf_counter() - t0)
            if data is None:
                continue
            by_id.setdefault(data["id"], []).append(turn["dia_id"])
            outcomes[data.get("outcome", "?")] = (
                outcomes.get(data.get("outcome", "?"), 0) + 1
            )
    return {"by_id": by_id, "outcomes": outcomes, "write_ms": [t * 1000 for t in times]}


async def ingest_plain_history(
    client: Client, conv: dict[str, Any], errors: list[dict[str, Any]]
) -> dict[str, Any]:
    """History the plainest way a host sends it: the speaker inside the text, no name, no time."""
    return await ingest_history(client, conv, errors, plain=True)


async def ingest_history(
    client: Client, conv: dict[str, Any], errors: list[dict[str, Any]], *, plain: bool = False
) -> dict[str, Any]:
    by_id: dict[str, list[str]] = {}
    times = []
    roles = {conv["speaker_a"]: "user", conv["speaker_b"]: "assistant"}
    for n, date, turns in conv["sessions"]:
        t0 = time.perf_counter()
        session = await call(
            client,
            errors,
            "create_session",
            {"name": f"Session {n}: {date}", "metadata": {"date": date}},
        )
        times.append(time.perf_counter() - t0)
        if session is None:
            continue
        began = session_start(date)
        for start in range(0, len(turns), BATCH):
            chunk = turns[start : start + BATCH]
            messages = [
                {
                    "role": roles.get(t["speaker"], "user"),
                    "text_content": turn_text(t),
                    "name": t["speaker"],
                    "context": {"dia_id": t["dia_id"]},
                    # Imported with when it was said: a turn a second after the one before.
                    "created_at": (began + timedelta(seconds=start + i)).isoformat(),
                }
                for i, t in enumerate(chunk)
            ]
            if plain:
                messages = [
                    {"role": m["role"], "text_content": f"{t['speaker']}: {m['text_content']}", "context": m["context"]}
                    for m, t in zip(messages, chunk, strict=True)
                ]
            t0 = time.perf_counter()
            data = await call(
                client,
                errors,
                "add_messages",
                {"session_id": session["id"], "messages": messages},
            )
            times.append(time.perf_counter() - t0)
            if data is None:
                continue
            written = data["messages"]
            if len(written) != len(chunk):
                errors.append(
                    {
                        "tool": "add_messages",
                        "args": f"session {n}",
                        "error": f"returned {len(written)} messages for {len(chunk)} sent",
                    }
                )
            for t, m in zip(chunk, written, strict=False):  # a short answer is reported above
                by_id.setdefault(m["id"], []).append(t["dia_id"])
    return {"by_id": by_id, "outcomes": {}, "write_ms": [t * 1000 for t in times]}


def result_dia_ids(
    mode: str, hit: dict[str, Any], by_id: dict[str, list[str]]
) -> list[str]:
    ids = list(by_id.get(hit["id"], []))
    if mode == "memories":
        meta = (hit.get("metadata") or {}).get("dia_id")
        if meta and meta not in ids:
            ids.insert(0, meta)
    return ids


async def run_one(
    backend: str, mode: str, conv: dict[str, Any], tmp: Path, client_mode: str
) -> dict[str, Any]:
    errors: list[dict[str, Any]] = []
    tool = "search_memories" if mode == "memories" else "search_history"
    run: dict[str, Any] = {
        "backend": backend,
        "mode": mode,
        "conversation": conv["id"],
        "errors": errors,
    }
    t_start = time.perf_counter()
    async with FreshDatabase(backend, tmp, f"{conv['id']}_{mode}") as db:
        try:
            async with Client(
                ours_params(db.url, user=USER, agent=AGENT), mode=client_mode
            ) as client:
                t0 = time.perf_counter()
                ingest = {"memories": ingest_memories, "history": ingest_history, "plain": ingest_plain_history}[mode]
                stored = await ingest(client, conv, errors)
                run["ingest_s"] = time.perf_counter() - t0
                run["turns"] = sum(len(t) for _n, _d, t in conv["sessions"])
                run["mapped_ids"] = len(stored["by_id"])
                run["outcomes"] = stored["outcomes"]
                run["write_ms"] = stored["write_ms"]
                await call(client, errors, tool, {"query": "warm-up", "limit": LIMIT})
                questions = []
                for q in conv["questions"]:
                    t0 = time.perf_counter()
                    data = await call(
                        client, errors, tool, {"query": q["question"], "limit": LIMIT}
                    )
                    ms = (time.perf_counter() - t0) * 1000
                    hits = data["results"] if data else []
                    ranked = [result_dia_ids(mode, h, stored["by_id"]) for h in hits]
                    evidence = set(q["evidence"])
                    rank = next(
                        (
                            i + 1
                            for i, ids in enumerate(ranked[:LIMIT])
                            if evidence & set(ids)
                        ),
                        None,
                    )
                    questions.append(
                        {
                            **q,
                            "rank": rank,
                            "ms": ms,
                            "error": data is None,
                            "results": [
                                ids[0] if len(ids) == 1 else ids if ids else None
                                for ids in ranked
                            ],
                        }
                    )
                run["questions"] = questions
        except Exception as exc:  # noqa: BLE001 - a crash is reported, with what was measured before it
            run["crash"] = f"{type(exc).__name__}: {exc}"
            for sub in getattr(exc, "exceptions", []) or []:
                run["crash"] += f" | {type(sub).__name__}: {sub}"
    run["wall_s"] = time.perf_counter() - t_start
    return run


# --- aggregation ---------------------------------------------------------------------------------------------------


def metrics(questions: list[dict[str, Any]]) -> dict[str, float]:
    n = len(questions)
    if not n:
        return {"n": 0}
    ranks = [q["rank"] for q in questions]
    ms = [q["ms"] for q in questions]
    out: dict[str, float] = {"n": n}
    for k in KS:
        out[f"r@{k}"] = sum(1 for r in ranks if r is not None and r <= k) / n
    out["mrr"] = sum(1 / r for r in ranks if r is not None and r <= LIMIT) / n
    out["p50"] = pct(ms, 50)
    out["p95"] = pct(ms, 95)
    return out


def aggregate(
    runs: list[dict[str, Any]],
) -> dict[tuple[str, str], dict[str, dict[str, float]]]:
    agg: dict[tuple[str, str], dict[str, dict[str, float]]] = {}
    keys = sorted(
        {(r["backend"], r["mode"]) for r in runs},
        key=lambda k: (k[0] != "sqlite", k[1] != "memories"),
    )
    for key in keys:
        qs = [
            q
            for r in runs
            if (r["backend"], r["mode"]) == key
            for q in r.get("questions", [])
        ]
        agg[key] = {"all": metrics(qs)}
        for cat, label in CATEGORIES.items():
            agg[key][label] = metrics([q for q in qs if q["category"] == cat])
    return agg


def f3(x: float | None) -> str:
    return "-" if x is None or math.isnan(x) else f"{x:.3f}"


def f1(x: float | None) -> str:
    return "-" if x is None or math.isnan(x) else f"{x:.1f}"


def results_table(agg: dict[tuple[str, str], dict[str, dict[str, float]]]) -> str:
    head = [
        "backend",
        "mode (tool)",
        "questions",
        "n",
        "recall@1",
        "recall@5",
        "recall@10",
        "MRR@10",
        "p50 ms",
        "p95 ms",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for (backend, mode), groups in agg.items():
        tool = "search_memories" if mode == "memories" else "search_history"
        for label, m in groups.items():
            if not m.get("n"):
                continue
            name = "**all**" if label == "all" else label
            cells = [
                backend,
                f"{mode} (`{tool}`)",
                name,
                str(m["n"]),
                f3(m["r@1"]),
                f3(m["r@5"]),
                f3(m["r@10"]),
                f3(m["mrr"]),
                f1(m["p50"]),
                f1(m["p95"]),
            ]
            if label == "all":
                cells = [c if i < 3 else f"**{c}**" for i, c in enumerate(cells)]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bar_lines(agg: dict[tuple[str, str], dict[str, dict[str, float]]]) -> list[str]:
    out = []

    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    for (backend, mode), groups in agg.items():
        m = groups["all"]
        if m.get("n"):
            if mode not in LOCOMO_RECALL_AT_5:
                continue  # the plain feed has no bar of its own: it is measured to compare
            out.append(
                f"{mode} recall@5 >= {LOCOMO_RECALL_AT_5[mode]:.2f} on {backend}: {f3(m['r@5'])} "
                f"({verdict(m['r@5'] >= LOCOMO_RECALL_AT_5[mode])})"
            )
    for mode in ("memories", "history"):
        s, p = (
            agg.get(("sqlite", mode), {}).get("all", {}),
            agg.get(("postgres", mode), {}).get("all", {}),
        )
        if s.get("n") and p.get("n"):
            diffs = {k: p[k] - s[k] for k in ("r@1", "r@5", "r@10", "mrr")}
            worst = max(diffs.values(), key=abs)
            detail = ", ".join(
                f"{k.replace('r@', 'recall@')} {v:+.3f}" for k, v in diffs.items()
            )
            out.append(
                f"{mode}: PostgreSQL within {LOCOMO_PG_DELTA} of SQLite on every overall metric: largest difference "
                f"{worst:+.3f} ({detail}) ({verdict(all(abs(v) <= LOCOMO_PG_DELTA for v in diffs.values()))})"
            )
    for (backend, mode), groups in agg.items():
        m = groups["all"]
        if mode == "memories" and m.get("n"):
            out.append(
                f"search_memories p95 <= {LOCOMO_SEARCH_P95_MS:.0f} ms over stdio on {backend}: {f1(m['p95'])} ms "
                f"({verdict(m['p95'] <= LOCOMO_SEARCH_P95_MS)})"
            )
    return out


def ingest_lines(runs: list[dict[str, Any]]) -> list[str]:
    out = []
    keys = sorted(
        {(r["backend"], r["mode"]) for r in runs},
        key=lambda k: (k[0] != "sqlite", k[1] != "memories"),
    )
    for backend, mode in keys:
        rs = [r for r in runs if (r["backend"], r["mode"]) == (backend, mode)]
        write_ms = [x for r in rs for x in r.get("write_ms", [])]
        turns = sum(r.get("turns", 0) for r in rs)
        secs = sum(r.get("ingest_s", 0.0) for r in rs)
        what = "store_memory" if mode == "memories" else "create_session + add_messages"
        out.append(
            f"{backend}, {mode}: {turns:,} turns stored in {secs:.1f} s ({len(write_ms):,} {what} calls, "
            f"p50 {f1(pct(write_ms, 50))} ms, p95 {f1(pct(write_ms, 95))} ms per call); "
            f"wall time incl. spawn and database set-up {sum(r['wall_s'] for r in rs):.1f} s"
        )
    return out


def commit_string() -> str:
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return commit + (" + uncommitted changes" if dirty else "")


def code_fingerprint() -> str:
    """HEAD plus a hash of the uncommitted diff of the server's code: compared before and after the run."""
    import hashlib

    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        diff = subprocess.run(
            [
                "git",
                "-C",
                str(ROOT),
                "diff",
                "HEAD",
                "--",
                "mcp_server",
                "repository",
                "migrations",
            ],
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return f"{head[:12]}:{hashlib.sha256(diff).hexdigest()[:12]}"


def render_doc(agg: Any, runs: list[dict[str, Any]], info: dict[str, Any]) -> str:
    m = info["machine"]
    errors = [e for r in runs for e in r["errors"]]
    crashes = [
        f"{r['backend']}/{r['mode']}/{r['conversation']}: {r['crash']}"
        for r in runs
        if "crash" in r
    ]
    lines = [
        "## LoCoMo retrieval (recall of the search tools)",
        "",
        (
            f"Data: the development half of LoCoMo ({PAPER}): conversations {', '.join(info['conversations'])}, "
            f"{info['turns']:,} turns, {info['questions']} non-adversarial questions with evidence (category 5 and the "
            "questions without evidence are skipped; evidence ids split on ';' and stripped). Read in place from "
            "`../shared/data/locomo/locomo-dev.json`."
        ),
        "",
        f"Run {m['date']} at commit `{info['commit']}` on {m['nproc']} cores ({m['cpu']}), Python {m['python']}, "
        f"load average at start {m['load']}; total wall time {info['wall_s']:.0f} s."
        + (
            ""
            if info["code_stable"]
            else " **Warning: the server's code changed during the run; rerun.**"
        ),
        "",
        (
            f"Command: `{info['command']}`. Per conversation, mode and backend: a fresh database "
            "(temp SQLite file, or a "
            "PostgreSQL database created and dropped via asyncpg) and one `agent-memory-mcp` subprocess over stdio "
            f"(SDK `mcp.Client`, mode `{info['client_mode']}`); everything goes through the tools. *memories*: "
            "each turn "
            '`store_memory(content="Speaker: text", metadata={dia_id, session_date})`, each question '
            "`search_memories(query, limit=10)`, dia_id read from the result's metadata. *history*: each LoCoMo "
            "session "
            "a `create_session`, its turns `add_messages` in order (speaker_a = user, speaker_b = assistant), each "
            "question `search_history(query, limit=10)`, result ids mapped back to dia_ids. Photo turns carry "
            '" [shares a photo: CAPTION]". recall@k = share of questions with any evidence turn among the first k '
            "results; MRR@10 uses the first evidence turn's rank (0 beyond 10). Latency = client-side wall time per "
            "search call after one untimed warm-up search per server."
        ),
        "",
        results_table(agg),
        "",
        (
            f"**Bar:** memories recall@5 >= {LOCOMO_RECALL_AT_5['memories']:.2f}, history recall@5 >= "
            f"{LOCOMO_RECALL_AT_5['history']:.2f}, PostgreSQL within {LOCOMO_PG_DELTA} of SQLite, "
            f"search_memories p95 <= {LOCOMO_SEARCH_P95_MS:.0f} ms over stdio."
        ),
        "",
        *[f"- {line}" for line in bar_lines(agg)],
        "",
        "Storing:",
        "",
        *[f"- {line}" for line in ingest_lines(runs)],
        "",
        f"Tool errors: {len(errors)}; server crashes: {len(crashes)}."
        + (
            " " + "; ".join(f"{e['tool']}: {e['error']}" for e in errors[:5])
            if errors
            else ""
        )
        + (" " + "; ".join(crashes) if crashes else ""),
        "",
        (
            "For scale: the dataset README gives plain BM25 over single turns (SQLite FTS5, porter stemmer, English "
            "stopwords removed, terms OR-ed) as recall@1 0.359, recall@5 0.586, recall@10 0.684 on this half."
        ),
    ]
    return "\n".join(lines)


# --- main ----------------------------------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace) -> int:
    if args.server:
        _common.OURS = str(Path(args.server).resolve())
    data_path = Path(args.data).resolve()
    convs = load(data_path, args.conversations)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    modes = {"both": ["memories", "history"], "all": ["memories", "history", "plain"]}.get(args.mode, [args.mode])
    info: dict[str, Any] = {
        "machine": machine(),
        "commit": commit_string(),
        "code_before": code_fingerprint(),
        "command": " ".join(
            [".venv/bin/python", "bench/locomo_recall.py", *sys.argv[1:]]
        ),
        "client_mode": args.client_mode,
        "data": str(data_path),
        "conversations": [c["id"] for c in convs],
        "turns": sum(len(t) for c in convs for _n, _d, t in c["sessions"]),
        "questions": sum(len(c["questions"]) for c in convs),
    }
    print(
        f"LoCoMo: {len(convs)} conversations, {info['turns']:,} turns, {info['questions']} questions; "
        f"backends {backends}, modes {modes}; commit {info['commit']}",
        file=sys.stderr,
    )
    runs = []
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="locomo-bench-") as tmp:
        for backend in backends:
            for mode in modes:
                for conv in convs:
                    run = await run_one(
                        backend, mode, conv, Path(tmp), args.client_mode
                    )
                    runs.append(run)
                    m = metrics(run.get("questions", []))
                    print(
                        f"  {backend:8} {mode:8} {conv['id']:8} stored {run.get('turns', 0):4} turns in "
                        f"{run.get('ingest_s', float('nan')):5.1f} s, {m.get('n', 0):3} questions: "
                        f"r@5 {f3(m.get('r@5'))}, p95 {f1(m.get('p95'))} ms, errors {len(run['errors'])}"
                        + (f", CRASH {run['crash']}" if "crash" in run else ""),
                        file=sys.stderr,
                    )
                    for e in run["errors"][:3]:
                        print(
                            f"    tool error {e['tool']}: {e['error']}", file=sys.stderr
                        )
    info["wall_s"] = time.perf_counter() - t_all
    info["code_after"] = code_fingerprint()
    info["code_stable"] = info["code_before"] == info["code_after"]
    if not info["code_stable"]:
        print(
            f"WARNING: the server's code changed during the run ({info['code_before']} -> {info['code_after']}, "
            f"now {commit_string()}): the results mix versions; rerun.",
            file=sys.stderr,
        )
    agg = aggregate(runs)

    print(results_table(agg))
    print()
    for line in bar_lines(agg):
        print(f"- {line}")
    print()
    for line in ingest_lines(runs):
        print(f"- {line}")
    errors = [e for r in runs for e in r["errors"]]
    crashes = [r for r in runs if "crash" in r]
    print(
        f"\nTool errors: {len(errors)}; crashes: {len(crashes)}; total wall time {info['wall_s']:.1f} s"
    )
    for e in errors[:20]:
        print(f"  {e['tool']} {e['args']}: {e['error']}")
    for r in crashes:
        print(f"  CRASH {r['backend']}/{r['mode']}/{r['conversation']}: {r['crash']}")

    if args.json:
        payload = {
            "info": info,
            "summary": [
                {"backend": b, "mode": mo, "group": g, **m}
                for (b, mo), groups in agg.items()
                for g, m in groups.items()
            ],
            "runs": runs,
        }
        Path(args.json).write_text(json.dumps(payload, indent=1, default=str))
        print(f"raw results written to {args.json}", file=sys.stderr)
    if args.write:
        write_section("locomo", render_doc(agg, runs, info))
        print("docs/benchmarks.md updated (locomo section)", file=sys.stderr)
    return 1 if crashes else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        default=str(DEFAULT_DATA),
        help=f"LoCoMo JSON (default {DEFAULT_DATA})",
    )
    parser.add_argument(
        "--backend", choices=["sqlite", "postgres", "both"], default="both"
    )
    parser.add_argument(
        "--mode", choices=["memories", "history", "plain", "both", "all"], default="both",
        help="history: as an importer sends it (name, created_at); plain: the speaker in the text, no time; "
        "both: memories and history; all: the three feeds",
    )
    parser.add_argument(
        "--conversations", type=int, default=None, help="only the first N conversations"
    )
    parser.add_argument(
        "--write",
        action="store_true",
        help="update the locomo section of docs/benchmarks.md",
    )
    parser.add_argument("--json", metavar="PATH", help="dump raw per-question results")
    parser.add_argument(
        "--server", metavar="PATH", help="another agent-memory-mcp executable to measure (another checkout's .venv)"
    )
    parser.add_argument(
        "--client-mode",
        default="legacy",
        help="SDK Client mode (default legacy: initialize handshake)",
    )
    return anyio.run(main_async, parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())

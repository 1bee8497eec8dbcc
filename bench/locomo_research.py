"""Research variants of the final ranking on LoCoMo, leave-one-conversation-out, without changing the server.

    .venv/bin/python bench/locomo_research.py --feeds history,plain,memories --json /tmp/research.json

The same collection as bench/locomo_loo.py (each feed stored through `repository.operations` on SQLite, the
server's engine recording its candidates per question). Each variant here post-processes the server's own ranking
(`repository.search.ranking.rank`) of those candidates, so a variant that wins can be moved into ranking.py as it
is measured; every variant's constants, and the base grid (k1, b, speaker boost), are chosen on four conversations
and scored on the fifth. Results: docs/retrieval.md, "Session evidence and other variants".

Variants:
- session BM25: each session scored as one document (BM25 over its messages' stems, tf summed, k1 1.2, b 0.75),
  fused with the turn score: multiplied (x(1 + w s/max s)), added after normalising both to their best, or as a
  prior by the session's rank (x(1 + w/(1 + rank))).
- phrase: x(1 + w n) for n adjacent query-stem pairs adjacent in the row's body.
- coverage: x(share of the query's stems the row or its context holds)^p.
- question turn: x p for a row whose text (before a photo caption) ends with "?".
- speaker names out of the text score: a query stem that names a candidate's speaker only boosts, it is not matched.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
from locomo_loo import BASE, collect, grid
from locomo_recall import DEFAULT_DATA, load, turn_text
from sqlalchemy import select

from repository.search.ranking import rank
from repository.search.tuning import opening_speaker
from repository.tables import MessageRow
from repository.textsearch import idf

K = 5
Ranked = list[tuple[Any, float]]
Ranker = Callable[[Any, dict[str, Any]], Ranked]
SMALL = {key: BASE[key] for key in ("k1", "b", "speaker_boost")}


def _sessions(session: Any) -> dict[Any, Counter[str]]:
    """Each session's stem counts, over every message's body."""
    tf: dict[Any, Counter[str]] = defaultdict(Counter)
    for sid, body in session.execute(select(MessageRow.session_id, MessageRow.search_body)).all():
        tf[sid].update((body or "").split())
    return dict(tf)


def session_bm25(tf: dict[Any, Counter[str]], terms: list[str], k1: float = 1.2, b: float = 0.75) -> dict[Any, float]:
    lengths = {sid: sum(c.values()) for sid, c in tf.items()}
    avg = sum(lengths.values()) / max(len(lengths), 1)
    df = Counter(t for c in tf.values() for t in c)
    out = {}
    for sid, counts in tf.items():
        norm = 1 - b + b * lengths[sid] / avg
        out[sid] = sum(
            idf(df[t], len(tf)) * counts[t] * (k1 + 1) / (counts[t] + k1 * norm) for t in terms if counts.get(t)
        )
    return out


def base(tuning: Any) -> Ranker:
    def ranker(rec: Any, data: dict[str, Any]) -> Ranked:
        candidates, terms, stats, periods, when = rec
        return rank(data["analyzer"], candidates, terms, stats, periods, when=when, tuning=tuning)

    return ranker


def reorder(tuning: Any, adjust: Callable[[Any, float, Any, dict[str, Any]], float]) -> Ranker:
    """The server's ranking, each (row, score) then adjusted and sorted again."""
    first = base(tuning)

    def ranker(rec: Any, data: dict[str, Any]) -> Ranked:
        ranked = [(row, adjust(row, score, rec, data)) for row, score in first(rec, data)]
        return sorted(ranked, key=lambda pair: (-pair[1], -pair[0].seq))

    return ranker


def with_sessions(tuning: Any, mode: str, w: float) -> Ranker:
    first = base(tuning)

    def ranker(rec: Any, data: dict[str, Any]) -> Ranked:
        ranked = first(rec, data)
        key = tuple(rec[1])
        if key not in data["memo"]:
            found = session_bm25(data["sessions"], rec[1])
            order = {sid: i for i, sid in enumerate(sorted(found, key=lambda s: -found[s]))}
            data["memo"][key] = (found, max(found.values(), default=0.0) or 1.0, order)
        found, best, order = data["memo"][key]
        top = ranked[0][1] if ranked else 1.0
        out = []
        for row, score in ranked:
            s = found.get(row.session, 0.0) / best
            if mode == "mul":
                score *= 1 + w * s
            elif mode == "add":
                score = score / top + w * s
            else:
                score *= 1 + w / (1 + order.get(row.session, 99))
            out.append((row, score))
        return sorted(out, key=lambda pair: (-pair[1], -pair[0].seq))

    return ranker


def phrase(w: float) -> Callable[[Any, float, Any, dict[str, Any]], float]:
    def adjust(row: Any, score: float, rec: Any, data: dict[str, Any]) -> float:
        terms = rec[1]
        body = f" {row.search_body} "
        return score * (1 + w * sum(f" {a} {b} " in body for a, b in itertools.pairwise(terms)))

    return adjust


def coverage(p: float) -> Callable[[Any, float, Any, dict[str, Any]], float]:
    def adjust(row: Any, score: float, rec: Any, data: dict[str, Any]) -> float:
        held = set(row.search_body.split()) | set(row.search_ctx.split())
        return float(score * (sum(t in held for t in rec[1]) / len(rec[1])) ** p)

    return adjust


def question_turn(p: float) -> Callable[[Any, float, Any, dict[str, Any]], float]:
    def adjust(row: Any, score: float, rec: Any, data: dict[str, Any]) -> float:
        said = data["texts"].get(row.seq, "").split(" [shares a photo")[0].rstrip()
        return score * p if said.endswith("?") else score

    return adjust


def names_boost_only(tuning: Any) -> Ranker:
    def ranker(rec: Any, data: dict[str, Any]) -> Ranked:
        candidates, terms, stats, periods, when = rec
        analyzer = data["analyzer"]
        speakers = {row.seq: row.speaker or opening_speaker(row.opening) for row in candidates}
        names = {stem for name in set(speakers.values()) if name for stem in analyzer.analyze(name)}
        named = names & set(terms)
        kept = [t for t in terms if t not in named]
        if not named or not kept:
            return base(tuning)(rec, data)
        ranked = rank(analyzer, candidates, kept, stats, periods, when=when, tuning=replace(tuning, speaker_boost=1.0))
        boosted = [
            (row, score * (tuning.speaker_boost if named & set(analyzer.analyze(speakers[row.seq] or "")) else 1.0))
            for row, score in ranked
        ]
        return sorted(boosted, key=lambda pair: (-pair[1], -pair[0].seq))

    return ranker


def variants(feed: str) -> dict[str, list[Ranker]]:
    tunings = grid(SMALL)
    out: dict[str, list[Ranker]] = {"server ranking": [base(t) for t in tunings]}
    if feed != "memories":
        for mode, weights in (("mul", (0.25, 0.5, 1.0)), ("add", (0.1, 0.2, 0.4)), ("rank", (0.25, 0.5, 1.0))):
            out[f"session BM25, {mode}"] = [with_sessions(t, mode, w) for t in tunings for w in weights]
    out["phrase"] = [reorder(t, phrase(w)) for t in tunings for w in (0.1, 0.25, 0.5)]
    out["coverage"] = [reorder(t, coverage(p)) for t in tunings for p in (0.25, 0.5, 1.0)]
    out["question turn"] = [reorder(t, question_turn(p)) for t in tunings for p in (0.5, 0.7, 0.85)]
    out["speaker names only boost"] = [names_boost_only(t) for t in tunings]
    return out


def hits(data: dict[str, Any], ranker: Ranker) -> int:
    found = 0
    for q, rec in zip(data["questions"], data["recorded"], strict=True):
        if rec is not None:
            evidence = set(q["evidence"])
            found += any(data["dia"].get(row.seq) in evidence for row, _ in ranker(rec, data)[:K])
    return found


def leave_one_out(convs: list[dict[str, Any]], rankers: list[Ranker]) -> tuple[float, float]:
    table = [[hits(c, r) for c in convs] for r in rankers]
    total = sum(len(c["questions"]) for c in convs)
    held = [
        table[max(range(len(rankers)), key=lambda j: (sum(table[j]) - table[j][i], -j))][i] for i in range(len(convs))
    ]
    return sum(held) / total, max(sum(row) for row in table) / total


async def gather(feed: str, conv: dict[str, Any], tmp: Path) -> dict[str, Any]:
    data = await collect("sqlite", feed, conv, tmp)
    said = {t["dia_id"]: turn_text(t) for _, _, turns in conv["sessions"] for t in turns}
    data["texts"] = {seq: said.get(dia, "") for seq, dia in data["dia"].items()}
    data["memo"] = {}
    data["sessions"] = {}
    if feed != "memories":
        from repository.operations import Operations

        ops = await Operations.open(f"sqlite+aiosqlite:///{tmp}/{conv['id']}_{feed}.db")
        try:
            data["sessions"] = await ops.database.read(_sessions)
        finally:
            await ops.close()
    return data


async def main_async(args: argparse.Namespace) -> None:
    convs = load(Path(args.data), None)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="locomo-research-") as tmp:
        for feed in args.feeds.split(","):
            data = [await gather(feed, c, Path(tmp)) for c in convs]
            for name, rankers in variants(feed).items():
                t0 = time.perf_counter()
                loo, all5 = leave_one_out(data, rankers)
                out[f"{feed} / {name}"] = {"loo": loo, "all5": all5}
                print(
                    f"{feed:9} {name:26} loo {loo:.3f}  all-five best {all5:.3f}  ({time.perf_counter() - t0:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--feeds", default="history,plain,memories")
    parser.add_argument("--json")
    anyio.run(main_async, parser.parse_args())


if __name__ == "__main__":
    main()

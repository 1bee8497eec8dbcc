"""What people really store, found as they would look for it, on both backends: every row first by its own text,
in the top 5 by its most distinctive token, whatever its neighbours hold (near-duplicates, pasted documents);
Chinese and Japanese by a word; identifiers whole and by part."""

from __future__ import annotations

import random
import uuid

import pytest
from sqlalchemy import text

from repository import Database, MemoryCreate, MessageCreate, Operations, SessionCreate
from repository.memories import bulk_insert_memories_sync, upsert_memory_sync
from repository.messages import add_messages_sync
from repository.migrate import downgrade, upgrade
from repository.models import Actor
from repository.search import search_memories_sync, search_messages_sync
from repository.sessions import create_session_sync

pytestmark = pytest.mark.anyio

TEMPLATES = [
    "Support ticket {code}: the customer reports that the export to CSV fails after the upgrade.",
    "Support ticket {code}: the customer asks for an invoice copy for the March order.",
    "Order {code} shipped to the Lisbon warehouse; tracking follows by email tomorrow.",
    "Order {code} was returned because the size did not fit; refund pending.",
]
WORDS = "lorem ipsum dolor amet river stone garden winter copper violet harbor maple signal orbit canyon".split()


def _code(rng: random.Random) -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "-".join("".join(rng.choice(alphabet) for _ in range(4)) for _ in range(3))


def _document(rng: random.Random, chars: int) -> str:
    words = []
    while sum(len(w) + 1 for w in words) < chars:
        words.append(rng.choice(WORDS) + str(rng.randrange(1_000)))
    return " ".join(words)


def corpus(seed: int = 5, rows: int = 240) -> list[tuple[str, str]]:
    """(text, distinctive token) pairs: near-duplicates differing by a code, with two 50k-character documents."""
    rng = random.Random(seed)
    items = [(TEMPLATES[i % len(TEMPLATES)].format(code=(code := _code(rng))), code) for i in range(rows)]
    for at in (rows // 3, 2 * rows // 3):
        marker = f"DOC{rng.randrange(10**6):06d}-{at}"
        items.insert(at, (f"Pasted report {marker}. " + _document(rng, 50_000), marker))
    return items


async def _actor(db: Database) -> Actor:
    ops = Operations(db)
    return await ops.identity.actor("ada@example.com", "tester")


def _assert_found(ranks: dict[str, list[int]]) -> None:
    first, top5 = ranks["self"], ranks["token"]
    assert sum(1 for r in first if r == 0) == len(first), (
        f"not first by own text: {[i for i, r in enumerate(first) if r]}"
    )
    assert sum(1 for r in top5 if 0 <= r < 5) / len(top5) >= 0.99


def _rank(ids: list[uuid.UUID] | list[str], wanted: uuid.UUID | str) -> int:
    return ids.index(wanted) if wanted in ids else -1


async def test_every_memory_is_found_by_its_own_text_and_its_code(db):
    actor = await _actor(db)
    items = corpus()
    half = len(items) // 2
    creates = [MemoryCreate(content=t, user_id=actor.user_id, agent_id=actor.agent_id) for t, _ in items[:half]]
    await db.write(bulk_insert_memories_sync, creates)
    for content, _ in items[half:]:  # one by one, each re-indexing its neighbours (a document among them)
        await db.write(
            upsert_memory_sync, MemoryCreate(content=content, user_id=actor.user_id, agent_id=actor.agent_id)
        )

    def search(session, query):
        hits = search_memories_sync(session, query, user_id=actor.user_id, agent_id=actor.agent_id, limit=10)
        return [h.memory.content for h in hits]

    ranks: dict[str, list[int]] = {"self": [], "token": []}
    for content, token in items:
        ranks["self"].append(_rank(await db.read(search, content[:300]), content))
        ranks["token"].append(_rank(await db.read(search, token), content))
    _assert_found(ranks)


async def test_every_message_is_found_by_its_own_text_and_its_code(db):
    actor = await _actor(db)
    chat = await db.write(create_session_sync, SessionCreate(user_id=actor.user_id, agent_id=actor.agent_id))
    items = corpus(seed=9, rows=150)
    said = [MessageCreate(session_id=chat.id, role="user", text_content=t) for t, _ in items]
    messages = await db.write(add_messages_sync, said)

    def search(session, query):
        return [h.message.id for h in search_messages_sync(session, query, user_id=actor.user_id, limit=10)]

    ranks: dict[str, list[int]] = {"self": [], "token": []}
    for message, (content, token) in zip(messages, items, strict=True):
        ranks["self"].append(_rank(await db.read(search, content[:300]), message.id))
        ranks["token"].append(_rank(await db.read(search, token), message.id))
    _assert_found(ranks)


CJK_WORDS = ["公园", "天气", "会議", "明日", "寿司", "電車", "図書館", "咖啡", "学校", "音楽", "旅行", "医院"]


async def test_chinese_and_japanese_are_found_by_a_word(db):
    ops = Operations(db)
    actor = await ops.identity.actor("ada@example.com", "tester")
    sentences = {
        "公园": "东京今天的天气很好，我们去公园散步吧",
        "会議": "会議は明日の午後三時からです",
        "寿司": "昨日は友達と寿司を食べました",
        "図書館": "図書館で本を借りて読んだ",
        "咖啡": "我每天早上喝一杯咖啡",
        "電車": "電車が遅れているので少し待ってください",
        "音楽": "彼女はクラシック音楽が好きです",
        "医院": "他下午要去医院看病",
    }
    for sentence in sentences.values():
        await ops.memories.remember(actor, sentence)
    await ops.memories.remember(actor, "Meeting notes: 会議 moved to Friday, ask Tanaka-san")  # mixed scripts
    for word, sentence in sentences.items():
        found = [h.memory.content for h in (await ops.memories.recall(actor, word)).hits]
        assert sentence in found[:5], (word, found)
    mixed = [h.memory.content for h in (await ops.memories.recall(actor, "Tanaka 会議 Friday")).hits]
    assert mixed[0].startswith("Meeting notes")


async def test_identifiers_are_found_whole_and_by_part(db):
    ops = Operations(db)
    actor = await ops.identity.actor("ada@example.com", "tester")
    facts = [
        "Hiring: C++ and C# developers for the engine team",
        "The billing service runs on .NET 8",
        "Release v2.3.1 fixed the login loop",
        "Release v2.3.2 fixed the export",
        "Release v2.4.1 added dark mode",
        "Write to ada.lovelace@example.com about the invoice",
        "The docs live at https://docs.example.org/agent-memory/setup",
        "Parcel code XK-93F2-LQ7A is stuck in customs",
        "Parcel code XK-11B7-ZZ3Q arrived",
    ]
    for fact in facts:
        await ops.memories.remember(actor, fact)

    async def top(query: str) -> str:
        return (await ops.memories.recall(actor, query)).hits[0].memory.content

    assert (await top("C++")).startswith("Hiring")
    assert (await top("who knows C#?")).startswith("Hiring")
    assert (await top(".NET")).startswith("The billing")
    assert (await top("v2.3.1")) == facts[2]
    assert (await top("v2.4.1")) == facts[4]
    assert (await top("ada.lovelace@example.com")) == facts[5]
    assert (await top("lovelace")) == facts[5]
    assert (await top("docs.example.org")) == facts[6]
    assert (await top("XK-93F2-LQ7A")) == facts[7]
    assert (await top("LQ7A")) == facts[7]


async def test_migration_0006_reindexes_rows_written_before_it(db):
    actor = await _actor(db)
    chat = await db.write(create_session_sync, SessionCreate(user_id=actor.user_id, agent_id=actor.agent_id))
    items = corpus(seed=3, rows=30)
    await db.write(
        bulk_insert_memories_sync,
        [MemoryCreate(content=t, user_id=actor.user_id, agent_id=actor.agent_id) for t, _ in items],
    )
    await db.write(
        add_messages_sync, [MessageCreate(session_id=chat.id, role="user", text_content=t) for t, _ in items]
    )
    index = "SELECT seq, search_body, search_ctx FROM {} ORDER BY seq"
    async with db.engine.connect() as conn:
        before = {t: (await conn.execute(text(index.format(t)))).all() for t in ("memories", "messages")}
    async with db.engine.begin() as conn:
        for table in ("memories", "messages"):  # as an older analyzer left them: unbounded, other terms
            await conn.execute(text(f"UPDATE {table} SET search_body = search_body || ' stale', search_ctx = ''"))
    await downgrade(db.engine, "0005")
    await upgrade(db.engine)
    async with db.engine.connect() as conn:
        after = {t: (await conn.execute(text(index.format(t)))).all() for t in ("memories", "messages")}
    assert after == before
    found = await db.read(search_memories_sync, items[0][1], user_id=actor.user_id, agent_id=actor.agent_id, limit=5)
    assert found[0].memory.content == items[0][0]

"""The domain operations as a Python caller meets them: the same rules the MCP tools apply, on both backends."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from repository import KEEP, ContentLimits, InvalidInputError, MemoryRecord, NewMessage, NotFoundError, Operations
from repository.errors import PermissionDeniedError, ReadOnlyError
from repository.memories import update_memory_sync
from repository.models import MemoryUpdate

pytestmark = pytest.mark.anyio


@pytest.fixture
def ops(db):
    return Operations(db, ContentLimits(max_content_bytes=1_000, preview_chars=100))


async def test_keep_leaves_stored_fields_and_none_clears_them(ops):
    ada = await ops.identity.actor("ada@example.com", "helper")
    later = datetime(2031, 1, 1, tzinfo=UTC)
    first = await ops.memories.remember(
        ada, "Tea", name="drink", description="what Ada drinks", metadata={"source": "chat"}, expires_at=later
    )
    kept = await ops.memories.remember(ada, "Green tea", name="drink")  # every optional field KEEP
    assert kept.outcome == "updated" and kept.memory.id == first.memory.id
    assert (kept.memory.description, kept.memory.metadata, kept.memory.expires_at) == (
        "what Ada drinks",
        {"source": "chat"},
        later,
    )
    cleared = await ops.memories.remember(ada, "Green tea", name="drink", description=None, expires_at=None)
    assert cleared.memory.description is None and cleared.memory.expires_at is None
    assert cleared.memory.metadata == {"source": "chat"}
    again = await ops.memories.remember(ada, "Green tea", name="drink", description=KEEP, read_mode=KEEP)
    assert again.outcome == "unchanged"


async def test_the_rules_hold_for_python_callers(ops, db):
    ada = await ops.identity.actor("ada@example.com", "helper")
    bob = await ops.identity.actor("bob@example.com", "helper")
    with pytest.raises(InvalidInputError, match="larger than the server's limit of 1000 bytes"):
        await ops.memories.remember(ada, "x" * 1_001)
    with pytest.raises(InvalidInputError, match="scope 'session' needs session_id"):
        await ops.memories.remember(ada, "a fact", scope="session")
    with pytest.raises(InvalidInputError, match="limit must be between 1 and 50"):
        await ops.memories.recall(ada, "fact", limit=51)
    # NaN is no JSON number: refused, never stored as null (SQLite) or as a driver error (PostgreSQL).
    with pytest.raises(InvalidInputError, match="NaN or an infinity"):
        await ops.memories.remember(ada, "a measured fact", metadata={"reading": float("nan")})
    chat = await ops.conversations.start_session(ada)
    with pytest.raises(InvalidInputError, match="NaN or an infinity"):
        await ops.conversations.append(ada, chat.id, [NewMessage(role="user", context={"t": float("inf")})])
    assert (await ops.conversations.history(ada, chat.id)).messages == []
    secret = (await ops.memories.remember(ada, "Ada's locker code is 4711")).memory
    with pytest.raises(NotFoundError):
        await ops.memories.get(bob, secret.id)
    with pytest.raises(NotFoundError):
        await ops.memories.forget(bob, secret.id)
    assert [h.memory.id for h in (await ops.memories.recall(bob, "locker code")).hits] == []
    await db.write(update_memory_sync, secret.id, MemoryUpdate(access="read_only"))
    with pytest.raises(ReadOnlyError):
        await ops.memories.forget(ada, secret.id)


async def test_scopes_map_to_owners_and_back(ops):
    ada = await ops.identity.actor("ada@example.com", "helper")
    bob = await ops.identity.actor("bob@example.com", "helper")
    chat = await ops.conversations.start_session(ada, name="trip")
    await ops.memories.remember(ada, "Office closes at 6pm", scope="agent")
    await ops.memories.remember(ada, "Ada is allergic to nuts")
    await ops.memories.remember(ada, "Booked the 9:15 train", session_id=chat.id)
    inserted = await ops.memories.import_records(
        ada, [MemoryRecord(content="Prefers aisle seats"), MemoryRecord(content="Badges at reception", scope="agent")]
    )
    assert inserted == 2
    seen_by_bob = {m.content for m in (await ops.memories.list(bob)).items}
    assert seen_by_bob == {"Office closes at 6pm", "Badges at reception"}
    found = await ops.memories.recall(ada, "train", scopes=["session"], session_id=chat.id)
    assert [h.memory.content for h in found.hits] == ["Booked the 9:15 train"] and found.scopes == ("session",)
    assert "[train]" in found.hits[0].snippet


async def test_conversations_belong_to_their_user(ops):
    ada = await ops.identity.actor("ada@example.com", "helper")
    bob = await ops.identity.actor("bob@example.com", "helper")
    chat = await ops.conversations.start_session(ada, name="plans")
    said = await ops.conversations.append(ada, chat.id, [NewMessage(role="user", text_content="Book Lisbon")])
    with pytest.raises(NotFoundError):
        await ops.conversations.append(bob, chat.id, [NewMessage(role="user", text_content="mine now")])
    with pytest.raises(NotFoundError):
        await ops.conversations.history(bob, chat.id)
    with pytest.raises(InvalidInputError, match="The message is empty"):
        await ops.conversations.append(ada, chat.id, [NewMessage(role="user")])
    with pytest.raises(InvalidInputError, match="between 1 and 100 messages"):
        await ops.conversations.append(ada, chat.id, [NewMessage(role="user", text_content="x")] * 101)
    assert [m.id for m in (await ops.conversations.history(ada, chat.id)).messages] == [said[0].id]
    assert (await ops.conversations.search(bob, "Lisbon")).hits == []
    transcript = await ops.conversations.transcript(ada, chat.id)
    assert transcript.session.name == "plans" and len(transcript.page.messages) == 1
    assert (await ops.conversations.list_sessions(bob)).items == []
    with pytest.raises(NotFoundError):
        await ops.conversations.get_message(bob, said[0].id)
    with pytest.raises(NotFoundError):
        await ops.conversations.transcript(bob, uuid.uuid4())


async def test_revise_changes_only_what_is_given_under_forgets_rules(ops):
    ada = await ops.identity.actor("ada@example.com", "helper")
    bob = await ops.identity.actor("bob@example.com", "helper")
    stored = (await ops.memories.remember(ada, "Ada keeps bees", name="hobby")).memory
    revised = await ops.memories.revise(ada, stored.id, content="Ada keeps wasps")
    assert (revised.content, revised.name) == ("Ada keeps wasps", "hobby")
    assert (await ops.memories.revise(ada, stored.id, name=None)).name is None
    with pytest.raises(NotFoundError, match=f"No memory with id {stored.id}"):
        await ops.memories.revise(bob, stored.id, content="mine now")
    with pytest.raises(PermissionDeniedError):
        await ops.memories.revise(replace(ada, read_only=True), stored.id, content="nope")
    with pytest.raises(InvalidInputError):
        await ops.memories.revise(ada, stored.id)
    assert (await ops.memories.get(ada, stored.id)).content == "Ada keeps wasps"


async def test_a_purge_reports_each_deleted_memory_after_it_commits(db):
    changes = []
    ops = Operations(db, on_change=changes.append)
    ada = await ops.identity.actor("ada@example.com", "helper")
    gone = (await ops.memories.remember(ada, "Old parking spot", expires_at=datetime(2001, 1, 1, tzinfo=UTC))).memory
    kept = (await ops.memories.remember(ada, "Ada keeps bees")).memory
    changes.clear()
    assert await ops.lifecycle.purge_expired() == 1
    assert [(c.kind, c.action, c.id) for c in changes] == [("memory", "deleted", gone.id)]
    assert (await ops.memories.get(ada, kept.id)).content == "Ada keeps bees"

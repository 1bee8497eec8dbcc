import pytest

from repository import MemoryCreate, get_or_create_agent_by_name, get_or_create_user_by_email, upsert_memory

pytestmark = pytest.mark.anyio


async def test_upsert_returns_same_id(db):
    async with db.transaction() as s:
        user = await get_or_create_user_by_email(s, "a@example.com")
        agent = await get_or_create_agent_by_name(s, "bot")
        first = await upsert_memory(s, MemoryCreate(content="x", name="n", user_id=user.id, agent_id=agent.id))
        second = await upsert_memory(s, MemoryCreate(content="y", name="n", user_id=user.id, agent_id=agent.id))
    assert (first.outcome, second.outcome) == ("created", "updated")
    assert first.memory.id == second.memory.id

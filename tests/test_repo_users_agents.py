"""Users and agents: CRUD, case-insensitive look-ups, listings with filters, typed failures."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from repository import (
    AgentCreate,
    AgentUpdate,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    UserCreate,
    UserUpdate,
    create_agent,
    create_user,
    delete_agent,
    delete_user,
    get_agent,
    get_agent_by_name,
    get_or_create_agent_by_name,
    get_or_create_user_by_email,
    get_user,
    get_user_by_email,
    list_agents,
    list_users,
    update_agent,
    update_user,
)

pytestmark = pytest.mark.anyio


# --- users -------------------------------------------------------------------------------------------------------


async def test_create_and_get_user_round_trips_every_field(db):
    async with db.transaction() as s:
        created = await create_user(
            s, UserCreate(email="ada@example.com", phone_number="+44 20 7946 0000", user_data={"tier": "gold"})
        )
    async with db.transaction(readonly=True) as s:
        fetched = await get_user(s, created.id)
    assert fetched == created
    assert (fetched.email, fetched.phone_number, fetched.user_data) == (
        "ada@example.com",
        "+44 20 7946 0000",
        {"tier": "gold"},
    )
    assert fetched.created_at.utcoffset() is not None and fetched.created_at.utcoffset().total_seconds() == 0


async def test_get_user_by_email_is_case_insensitive(db):
    async with db.transaction() as s:
        user = await create_user(s, UserCreate(email="Ada.Lovelace@Example.COM"))
    async with db.transaction(readonly=True) as s:
        assert (await get_user_by_email(s, "ada.lovelace@example.com")).id == user.id
        assert (await get_user_by_email(s, "ADA.LOVELACE@EXAMPLE.COM")).id == user.id
        # The stored spelling is kept as given.
        assert (await get_user_by_email(s, "ada.lovelace@example.com")).email == "Ada.Lovelace@Example.COM"
        with pytest.raises(NotFoundError):
            await get_user_by_email(s, "ada.lovelace@example.co")
        with pytest.raises(NotFoundError):
            await get_user_by_email(s, "%@example.com")


async def test_get_user_by_email_finds_non_ascii_address_exactly(db):
    email = "Ünïcode.Ärger@Bücher.example"
    async with db.transaction() as s:
        user = await create_user(s, UserCreate(email=email))
    async with db.transaction(readonly=True) as s:
        assert (await get_user_by_email(s, email)).id == user.id
    async with db.transaction() as s:
        assert (await get_or_create_user_by_email(s, email)).id == user.id


async def test_duplicate_email_differing_in_case_is_a_conflict(db):
    async with db.transaction() as s:
        await create_user(s, UserCreate(email="dup@example.com"))
    with pytest.raises(ConflictError):
        async with db.transaction() as s:
            await create_user(s, UserCreate(email="DUP@example.com"))
    async with db.transaction(readonly=True) as s:
        assert (await list_users(s)).total == 1


async def test_users_without_email_do_not_collide(db):
    async with db.transaction() as s:
        a = await create_user(s, UserCreate())
        b = await create_user(s, UserCreate())
    assert a.id != b.id
    async with db.transaction(readonly=True) as s:
        assert (await list_users(s)).total == 2


async def test_get_or_create_user_by_email_returns_the_existing_user(db):
    async with db.transaction() as s:
        first = await get_or_create_user_by_email(s, "bob@example.com")
    async with db.transaction() as s:
        second = await get_or_create_user_by_email(s, "BOB@example.com")
        third = await get_or_create_user_by_email(s, "carol@example.com")
    assert second.id == first.id
    assert second.email == "bob@example.com"
    assert third.id != first.id
    async with db.transaction(readonly=True) as s:
        assert (await list_users(s)).total == 2


async def test_update_user_changes_only_the_fields_set(db):
    async with db.transaction() as s:
        user = await create_user(s, UserCreate(email="u@example.com", phone_number="1", user_data={"a": 1}))
    async with db.transaction() as s:
        updated = await update_user(s, user.id, UserUpdate(user_data={"b": [1, 2]}))
    assert (updated.email, updated.phone_number, updated.user_data) == ("u@example.com", "1", {"b": [1, 2]})
    assert updated.updated_at >= user.updated_at
    assert updated.created_at == user.created_at
    async with db.transaction() as s:
        cleared = await update_user(s, user.id, UserUpdate(phone_number=None))
    assert cleared.phone_number is None
    async with db.transaction(readonly=True) as s:
        assert await get_user(s, user.id) == cleared


async def test_update_user_to_a_taken_email_is_a_conflict_and_changes_nothing(db):
    async with db.transaction() as s:
        await create_user(s, UserCreate(email="one@example.com"))
        two = await create_user(s, UserCreate(email="two@example.com"))
    with pytest.raises(ConflictError):
        async with db.transaction() as s:
            await update_user(s, two.id, UserUpdate(email="ONE@example.com"))
    async with db.transaction(readonly=True) as s:
        assert (await get_user(s, two.id)).email == "two@example.com"


async def test_explicit_null_for_required_json_is_rejected_by_the_model():
    # Stored as JSON null in a NOT NULL column, it would come back as a broken row.
    with pytest.raises(ValidationError):
        UserUpdate(user_data=None)
    with pytest.raises(ValidationError):
        AgentUpdate(config=None)
    assert UserUpdate().model_fields_set == set()


async def test_update_agent_required_column_to_null_is_invalid_input_and_changes_nothing(db):
    async with db.transaction() as s:
        agent = await create_agent(s, AgentCreate(name="keeper"))
    for update in (AgentUpdate(name=None), AgentUpdate(active=None), AgentUpdate(run_id=None)):
        with pytest.raises(InvalidInputError):
            async with db.transaction() as s:
                await update_agent(s, agent.id, update)
    async with db.transaction(readonly=True) as s:
        assert await get_agent(s, agent.id) == agent


async def test_missing_user_raises_not_found_everywhere(db):
    missing = uuid.uuid4()
    async with db.transaction() as s:
        with pytest.raises(NotFoundError):
            await get_user(s, missing)
        with pytest.raises(NotFoundError):
            await update_user(s, missing, UserUpdate(email="x@example.com"))
        with pytest.raises(NotFoundError):
            await delete_user(s, missing)
        with pytest.raises(NotFoundError):
            await get_user_by_email(s, "nobody@example.com")


async def test_delete_user_removes_it(db):
    async with db.transaction() as s:
        user = await create_user(s, UserCreate(email="gone@example.com"))
        keep = await create_user(s, UserCreate(email="kept@example.com"))
    async with db.transaction() as s:
        assert await delete_user(s, user.id) is None
    async with db.transaction() as s:
        with pytest.raises(NotFoundError):
            await get_user(s, user.id)
        with pytest.raises(NotFoundError):
            await delete_user(s, user.id)
        assert (await get_user(s, keep.id)).id == keep.id


async def test_list_users_filters_by_email_substring_literally(db):
    async with db.transaction() as s:
        for email in ("alice@corp.example", "ALBERT@corp.example", "zoe@home.example", "a_b@x.example", None):
            await create_user(s, UserCreate(email=email))
    async with db.transaction(readonly=True) as s:
        corp = await list_users(s, email_contains="CORP")
        assert sorted(u.email for u in corp.items) == ["ALBERT@corp.example", "alice@corp.example"]
        assert corp.total == 2
        # LIKE wildcards in the filter are plain characters.
        underscore = await list_users(s, email_contains="_")
        assert [u.email for u in underscore.items] == ["a_b@x.example"]
        assert (await list_users(s, email_contains="%")).total == 0
        everyone = await list_users(s)
        assert everyone.total == 5
        # Oldest first.
        assert [u.created_at for u in everyone.items] == sorted(u.created_at for u in everyone.items)


async def test_user_input_with_nul_is_rejected_by_the_model():
    with pytest.raises(ValidationError):
        UserCreate(email="a\x00b@example.com")
    with pytest.raises(ValidationError):
        UserCreate(user_data={"nested": ["ok", {"deep": "bad\x00"}]})
    with pytest.raises(ValidationError):
        UserCreate(user_data={"key\x00": 1})
    with pytest.raises(ValidationError):
        UserUpdate(phone_number="\x00")


# --- agents ------------------------------------------------------------------------------------------------------


async def test_create_and_get_agent_round_trips_every_field(db):
    data = AgentCreate(
        name="Researcher",
        type="assistant",
        model="gpt-x",
        description="Finds things",
        config={"temperature": 0.2, "tools": ["search"], "limits": {"tokens": 4096}},
        active=False,
        run_id=7,
        system_prompt="Be brief.",
    )
    async with db.transaction() as s:
        created = await create_agent(s, data)
    async with db.transaction(readonly=True) as s:
        fetched = await get_agent(s, created.id)
    assert fetched == created
    assert fetched.model_dump(include=set(AgentCreate.model_fields)) == data.model_dump()


async def test_agent_defaults(db):
    async with db.transaction() as s:
        agent = await create_agent(s, AgentCreate(name="plain"))
    assert (agent.active, agent.run_id, agent.config, agent.type) == (True, 1, {}, None)


async def test_get_agent_by_name_is_case_insensitive_and_exact(db):
    async with db.transaction() as s:
        agent = await create_agent(s, AgentCreate(name="Support Bot"))
        await create_agent(s, AgentCreate(name="Support Bot 2"))
    async with db.transaction(readonly=True) as s:
        assert (await get_agent_by_name(s, "support bot")).id == agent.id
        assert (await get_agent_by_name(s, "SUPPORT BOT")).id == agent.id
        for wrong in ("Support", "Support Bo", "Support Bot ", "Support%", "Support_Bot"):
            with pytest.raises(NotFoundError):
                await get_agent_by_name(s, wrong)


async def test_agent_names_with_non_ascii_letters_are_found_by_their_exact_name(db):
    names = ["Ärger", "ΩMEGA", "Ünïcode Bot", "Éclair"]
    async with db.transaction() as s:
        created = [await get_or_create_agent_by_name(s, name) for name in names]
    assert [a.name for a in created] == names
    async with db.transaction(readonly=True) as s:
        for agent in created:
            assert (await get_agent_by_name(s, agent.name)).id == agent.id
    async with db.transaction() as s:
        again = [await get_or_create_agent_by_name(s, name) for name in names]
    assert [a.id for a in again] == [a.id for a in created]


async def test_duplicate_agent_name_differing_in_case_is_a_conflict(db):
    async with db.transaction() as s:
        await create_agent(s, AgentCreate(name="Bot"))
    with pytest.raises(ConflictError):
        async with db.transaction() as s:
            await create_agent(s, AgentCreate(name="bOT"))


async def test_get_or_create_agent_by_name_returns_the_existing_agent(db):
    async with db.transaction() as s:
        made = await create_agent(s, AgentCreate(name="Planner", model="m1"))
    async with db.transaction() as s:
        found = await get_or_create_agent_by_name(s, "planner")
        new = await get_or_create_agent_by_name(s, "Executor")
    assert found.id == made.id and found.model == "m1" and found.name == "Planner"
    assert new.id != made.id and new.name == "Executor" and new.active is True
    async with db.transaction(readonly=True) as s:
        assert (await list_agents(s)).total == 2


async def test_update_agent_changes_only_the_fields_set(db):
    async with db.transaction() as s:
        agent = await create_agent(s, AgentCreate(name="a", model="m", config={"x": 1}))
    async with db.transaction() as s:
        updated = await update_agent(s, agent.id, AgentUpdate(active=False, run_id=2, config={"y": [True, None]}))
    assert (updated.name, updated.model, updated.active, updated.run_id) == ("a", "m", False, 2)
    assert updated.config == {"y": [True, None]}
    async with db.transaction(readonly=True) as s:
        assert await get_agent(s, agent.id) == updated


async def test_rename_agent_to_taken_name_is_a_conflict(db):
    async with db.transaction() as s:
        await create_agent(s, AgentCreate(name="alpha"))
        beta = await create_agent(s, AgentCreate(name="beta"))
    with pytest.raises(ConflictError):
        async with db.transaction() as s:
            await update_agent(s, beta.id, AgentUpdate(name="ALPHA"))
    async with db.transaction(readonly=True) as s:
        assert (await get_agent(s, beta.id)).name == "beta"


async def test_missing_agent_raises_not_found_everywhere(db):
    missing = uuid.uuid4()
    async with db.transaction() as s:
        with pytest.raises(NotFoundError):
            await get_agent(s, missing)
        with pytest.raises(NotFoundError):
            await update_agent(s, missing, AgentUpdate(model="x"))
        with pytest.raises(NotFoundError):
            await delete_agent(s, missing)
        with pytest.raises(NotFoundError):
            await get_agent_by_name(s, "ghost")


async def test_delete_agent_removes_it(db):
    async with db.transaction() as s:
        agent = await create_agent(s, AgentCreate(name="temp"))
    async with db.transaction() as s:
        await delete_agent(s, agent.id)
    async with db.transaction() as s:
        with pytest.raises(NotFoundError):
            await get_agent(s, agent.id)
        # The name is free again.
        assert (await create_agent(s, AgentCreate(name="TEMP"))).id != agent.id


async def test_list_agents_filters_by_active_and_sorts_by_name(db):
    async with db.transaction() as s:
        for name, active in (("charlie", True), ("alpha", False), ("bravo", True), ("delta", False)):
            await create_agent(s, AgentCreate(name=name, active=active))
    async with db.transaction(readonly=True) as s:
        everyone = await list_agents(s)
        active = await list_agents(s, active=True)
        inactive = await list_agents(s, active=False)
    assert [a.name for a in everyone.items] == ["alpha", "bravo", "charlie", "delta"]
    assert everyone.total == 4
    assert [a.name for a in active.items] == ["bravo", "charlie"] and active.total == 2
    assert [a.name for a in inactive.items] == ["alpha", "delta"] and inactive.total == 2


async def test_agent_run_id_outside_the_int32_column_is_rejected_by_the_model(db):
    with pytest.raises(ValidationError):
        AgentCreate(name="big", run_id=2**31)
    with pytest.raises(ValidationError):
        AgentUpdate(run_id=-(2**31) - 1)
    async with db.transaction() as s:
        agent = await create_agent(s, AgentCreate(name="edge", run_id=2**31 - 1))
    assert agent.run_id == 2**31 - 1


async def test_agent_input_is_validated_by_the_model():
    with pytest.raises(ValidationError):
        AgentCreate(name="")
    with pytest.raises(ValidationError):
        AgentCreate(name="x" * 201)
    with pytest.raises(ValidationError):
        AgentCreate(name="bot\x00")
    with pytest.raises(ValidationError):
        AgentCreate(name="bot", config={"a": ["\x00"]})
    with pytest.raises(ValidationError):
        AgentCreate(name="bot", unknown_field=1)

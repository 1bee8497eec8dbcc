"""Shared set-up for the repository tests."""

from __future__ import annotations

from repository import Agent, AgentCreate, User, UserCreate, create_agent, create_user


async def two_users_two_agents(session) -> tuple[User, User, Agent, Agent]:
    """alice, bob, and the agents helper and other: the cast most repository tests need."""
    alice = await create_user(session, UserCreate(email="alice@example.com"))
    bob = await create_user(session, UserCreate(email="bob@example.com"))
    helper = await create_agent(session, AgentCreate(name="helper"))
    other = await create_agent(session, AgentCreate(name="other"))
    return alice, bob, helper, other

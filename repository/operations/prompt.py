"""The agent's prompt: its system prompt with {{name}} placeholders filled from its system_prompt memories."""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from repository.agents import get_agent_sync
from repository.limits import PROMPT_MEMORIES_MAX
from repository.memories import list_memories_sync
from repository.models import Actor, Agent, Memory
from repository.scopes import NARROWNESS, scope_kind

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")


def prompt_inputs_sync(session: Session, actor: Actor) -> tuple[Agent, list[Memory]]:
    """The acting agent and the system_prompt memories the actor may see, in one unit of work."""
    agent = get_agent_sync(session, actor.agent_id)
    page = list_memories_sync(
        session, visible_to_pair=(actor.user_id, actor.agent_id), read_mode="system_prompt", limit=PROMPT_MEMORIES_MAX
    )
    return agent, page.items


def render_prompt(agent: Agent, memories: list[Memory]) -> str:
    """The filled prompt; without a system prompt, the agent's name and the remembered facts as a list."""
    # Narrower scopes win: a user's own memory overrides an agent-wide one of the same name.
    values: dict[str, str] = {}
    ordered = sorted(memories, key=lambda m: NARROWNESS[scope_kind(m.agent_id, m.user_id, m.session_id)], reverse=True)
    for memory in ordered:
        if memory.name:
            values[memory.name] = memory.content
    template = agent.system_prompt
    if not template:
        if not values:
            return f"You are {agent.name}. No system prompt or system_prompt memories are stored yet."
        facts = "\n".join(f"- {name}: {content}" for name, content in sorted(values.items()))
        return f"You are {agent.name}. Remembered context:\n{facts}"

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        return values.get(key, f"[missing memory: {key}]")

    return _PLACEHOLDER.sub(fill, template)

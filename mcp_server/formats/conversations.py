"""Chat exports (ChatGPT's and Claude.ai's conversations.json): each conversation one session of the configured
user and agent, named by its title, its messages with their original roles and times, so search_history finds
them and dates in questions match them. Ids derive from the export's own (mcp_server.formats.ids): importing the
same export again stores nothing twice, and an updated export adds the messages that are new.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mcp_server.formats import chatgpt, claude
from mcp_server.formats.source import ImportProblem, Progress, Source, array_elements
from repository.errors import RepositoryError
from repository.models import Actor

if TYPE_CHECKING:
    import uuid

    from repository.operations import Operations

# A transaction holds at most this many conversations or (about) this many messages, whichever comes first.
BATCH_CONVERSATIONS = 200
BATCH_MESSAGES = 5_000
Convert = Callable[[dict[str, Any], "uuid.UUID"], dict[str, Any]]


def _label(number: int, item: Any) -> str:
    title = item.get("title", item.get("name")) if isinstance(item, dict) else None
    if isinstance(title, str) and title.strip():
        shown = title if len(title) <= 60 else title[:60] + "..."
        return f"conversation {number} ({shown!r})"
    return f"conversation {number}"


def _dated(conversation: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Fill times the export left out: a message takes the one before it, the first the conversation's."""
    messages = conversation["messages"]
    known = [m["created_at"] for m in messages if m["created_at"] is not None]
    conversation["created_at"] = conversation["created_at"] or (min(known) if known else now)
    previous = conversation["created_at"]
    for message in messages:
        message["created_at"] = previous = message["created_at"] or previous
    return conversation


def _elements(source: Source) -> Iterator[tuple[int, Any]]:
    try:
        yield from enumerate(array_elements(source.chunks()), start=1)
    except ImportProblem as exc:
        raise ImportProblem("conversations.json", str(exc)) from None


async def run(ops: Operations, actor: Actor, source: Source) -> str:
    convert: Convert | None = None
    platform = ""
    batch: list[tuple[str, dict[str, Any]]] = []
    pending = read = empty = 0
    totals = {"session": 0, "message": 0}
    now = datetime.now(UTC)
    progress = Progress(source, "conversations")
    try:
        for number, item in _elements(source):
            label = _label(number, item)
            if convert is None:
                convert, platform = _format_of(label, item)
            if not (chatgpt.is_chatgpt(item) if platform == chatgpt.PLATFORM else claude.is_claude(item)):
                raise ImportProblem(label, f"it is not a {platform} conversation like the first one")
            try:
                conversation = _dated(convert(item, actor.user_id), now)
            except ValueError as exc:
                raise ImportProblem(label, str(exc)) from None
            read += 1
            if not conversation["messages"]:
                empty += 1
                continue
            batch.append((label, conversation))
            pending += len(conversation["messages"])
            if len(batch) >= BATCH_CONVERSATIONS or pending >= BATCH_MESSAGES:
                await _write(ops, actor, batch, totals)
                batch, pending = [], 0
                progress.update(read)
        await _write(ops, actor, batch, totals)
    finally:
        progress.close()
    return _summary(platform, read, empty, totals)


def _format_of(label: str, item: Any) -> tuple[Convert, str]:
    if chatgpt.is_chatgpt(item):
        return chatgpt.conversation, chatgpt.PLATFORM
    if claude.is_claude(item):
        return claude.conversation, claude.PLATFORM
    raise ImportProblem(
        label, 'neither a ChatGPT conversation (with "mapping") nor a Claude.ai one (with "chat_messages")'
    )


async def _write(
    ops: Operations, actor: Actor, batch: list[tuple[str, dict[str, Any]]], totals: dict[str, int]
) -> None:
    if not batch:
        return
    try:
        done = await ops.transfer.import_conversations(actor, batch)
    except RepositoryError as exc:
        if str(exc).startswith("conversation "):
            raise
        raise ImportProblem(f"{batch[0][0]} to {batch[-1][0]}", str(exc)) from None
    for kind, count in done.items():
        totals[kind] += count


def _summary(platform: str, read: int, empty: int, totals: dict[str, int]) -> str:
    text = (
        f"read {read} {platform or 'chat'} conversations: imported {totals['session']} sessions and "
        f"{totals['message']} messages (what was already stored was skipped)"
    )
    if empty:
        text += f"; {empty} conversations without any text were left out"
    return text

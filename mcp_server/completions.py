"""Completions (`completion/complete`) for the ids in the resource templates: memory://memories/{memory_id} and
memory://sessions/{session_id}/history complete to the caller's newest ids starting with what was typed.

The SDK's completion handler receives only the reference and the argument, not the request; the caller must be
the verified credential of this very request, exactly as the resources act (mcp_server.identity). So a server
middleware, which runs in the request's own task around the handler, keeps the request's context in a context
variable for the handler to read. No request context (nothing else calls the handler) means no completions.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Literal, cast

from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    Completion,
    CompletionArgument,
    CompletionContext,
    PromptReference,
    ResourceTemplateReference,
)

from mcp_server.errors import safe_message
from mcp_server.identity import acting
from mcp_server.state import AppState
from repository.errors import InvalidInputError, NotFoundError

METHOD = "completion/complete"
# (resource template, argument) -> the kind of id it takes.
COMPLETABLE: dict[tuple[str, str], Literal["memory", "session"]] = {
    ("memory://memories/{memory_id}", "memory_id"): "memory",
    ("memory://sessions/{session_id}/history", "session_id"): "session",
}
# The specification's cap on values per completion.
MAX_VALUES = 100

_request: ContextVar[ServerRequestContext[Any, Any] | None] = ContextVar("completion_request", default=None)


async def _keep_request(ctx: ServerRequestContext[Any, Any], call_next: Any) -> Any:
    if ctx.method != METHOD:
        return await call_next(ctx)
    token = _request.set(ctx)
    try:
        return await call_next(ctx)
    finally:
        _request.reset(token)


def _failure(exc: Exception) -> MCPError:
    # One safe sentence (mcp_server.errors), as for tools and resources; never driver text or a traceback.
    code = INVALID_PARAMS if isinstance(exc, InvalidInputError | NotFoundError) else INTERNAL_ERROR
    return MCPError(code=code, message=safe_message(exc))


def register(server: MCPServer[AppState]) -> None:
    """Serve completions (which also advertises the completions capability)."""
    server.middleware.append(_keep_request)

    async def complete(
        ref: ResourceTemplateReference | PromptReference,
        argument: CompletionArgument,
        context: CompletionContext | None,
    ) -> Completion | None:
        request = _request.get()
        kind = COMPLETABLE.get((ref.uri, argument.name)) if isinstance(ref, ResourceTemplateReference) else None
        if kind is None or request is None:
            return None
        try:
            ops, actor = await acting(Context(request_context=request, mcp_server=server))
            # One more than shown tells whether there are more.
            ids = await ops.lifecycle.recent_ids(actor, kind, argument.value, limit=MAX_VALUES + 1)
        except MCPError:
            raise
        except Exception as exc:
            raise _failure(exc) from exc
        return Completion(values=[str(i) for i in ids[:MAX_VALUES]], has_more=len(ids) > MAX_VALUES)

    # The SDK leaves `completion()` unannotated; registering through Any keeps mypy --strict meaningful here.
    cast(Any, server).completion()(complete)

"""The one place where failures become tool and resource errors the model can act on.

Repository errors carry short, safe sentences and pass through as they are. Anything else is a bug or an outage:
its details go to the log (stderr) and the model gets a generic sentence, never a traceback, SQL or driver text.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from pydantic import ValidationError

from mcp_server.state import DatabaseOpenError
from repository.errors import RepositoryError

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

INTERNAL_ERROR = "The memory server hit an internal error; it is logged on the server. Try again or report it."


def _loc_part(part: str | int) -> str:
    # A location can hold the caller's own dict keys (metadata.<key>): cut long ones, escape line breaks.
    text = str(part)
    if len(text) > 32:
        text = text[:32] + "..."
    return text if text.isprintable() else repr(text)


def describe_validation_error(exc: ValidationError, what: str = "arguments") -> str:
    """One line naming each bad field and what it needs, without echoing the (maybe huge) value."""
    problems = []
    for error in exc.errors()[:5]:
        where = ".".join(_loc_part(part) for part in error["loc"]) or what
        problems.append(f"{where}: {error['msg']}")
    return f"Invalid {what}: " + "; ".join(problems) + ". Fix these and call again."


def safe_message(exc: BaseException) -> str:
    """The sentence a caller may see for `exc`; anything unexpected is logged and replaced by a generic one."""
    if isinstance(exc, ToolError | ResourceError | RepositoryError | DatabaseOpenError):
        return str(exc)
    if isinstance(exc, ValidationError):
        return describe_validation_error(exc)
    log.exception("unexpected error in a tool", exc_info=exc)
    return INTERNAL_ERROR


def _failing_as(
    error: type[ToolError | ResourceError],
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """A decorator under which every failure leaves as `error`, with one actionable sentence."""

    def decorate(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return await fn(*args, **kwargs)
            except error:
                raise
            except Exception as exc:
                raise error(safe_message(exc)) from exc

        return wrapper

    return decorate


# Tools fail with a ToolError (an error result the model reads); resources and prompts with a ResourceError.
tool_errors = _failing_as(ToolError)
resource_errors = _failing_as(ResourceError)

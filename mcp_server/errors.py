"""The one place where failures become tool errors the model can act on.

Repository errors carry short, safe sentences and pass through as they are. Anything else is a bug or an outage:
its details go to the log (stderr) and the model gets a generic sentence, never a traceback, SQL or driver text.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import ValidationError

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


def describe_validation_error(exc: ValidationError, what: str = "arguments") -> str:
    """One line naming each bad field and what it needs, without echoing the (maybe huge) value."""
    problems = []
    for error in exc.errors()[:5]:
        where = ".".join(str(part) for part in error["loc"]) or what
        problems.append(f"{where}: {error['msg']}")
    return f"Invalid {what}: " + "; ".join(problems) + ". Fix these and call again."


def translate(exc: BaseException) -> ToolError:
    from repository.errors import RepositoryError

    from mcp_server.state import DatabaseOpenError

    if isinstance(exc, ToolError):
        return exc
    if isinstance(exc, RepositoryError | DatabaseOpenError):
        return ToolError(str(exc))
    if isinstance(exc, ValidationError):
        return ToolError(describe_validation_error(exc))
    log.exception("unexpected error in a tool", exc_info=exc)
    return ToolError("The memory server hit an internal error; it is logged on the server. Try again or report it.")


def tool_errors(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Decorate a tool so every failure leaves it as a ToolError with one actionable sentence."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - translated, never swallowed
            raise translate(exc) from exc

    return wrapper


def check_size(label: str, text: str | None, limit: int) -> None:
    if text is not None and len(text.encode("utf-8", "surrogatepass")) > limit:
        raise ToolError(f"{label} is larger than the server's limit of {limit} bytes: shorten it or split it up.")


def check_json_size(label: str, value: Any, limit: int) -> None:
    if value is None:
        return
    import json

    try:
        encoded = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        raise ToolError(f"{label} must be JSON (objects, lists, strings, numbers, booleans, null).") from None
    check_size(label, encoded, limit)

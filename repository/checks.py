"""Input rules every operation applies before it touches the database: sizes, ids, time zones, JSON values."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from repository.errors import InvalidInputError, PermissionDeniedError
from repository.models import Actor


def check_writable(actor: Actor) -> None:
    """Refuse every write by a read-only credential, before any other check."""
    if actor.read_only:
        raise PermissionDeniedError(
            "This credential is read-only: it can search and read, not store, change or delete. "
            "Use a token created without --read-only to write."
        )


def check_size(label: str, text: str | None, limit: int) -> None:
    if text is not None and len(text.encode("utf-8", "surrogatepass")) > limit:
        raise InvalidInputError(
            f"{label} is larger than the server's limit of {limit} bytes: shorten it or split it up."
        )


def check_json_size(label: str, value: Any, limit: int) -> None:
    if value is None:
        return
    try:
        # NaN and infinities are not JSON: PostgreSQL refuses them and SQLite stores null, so neither keeps them.
        encoded = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except ValueError:
        raise InvalidInputError(f"{label} holds NaN or an infinity: JSON numbers must be finite.") from None
    except TypeError:
        raise InvalidInputError(f"{label} must be JSON (objects, lists, strings, numbers, booleans, null).") from None
    check_size(label, encoded, limit)


def check_aware(label: str, value: datetime | None, example: str) -> None:
    """Times are compared across machines and stored in UTC: a time without a zone would be a guess."""
    if value is not None and value.tzinfo is None:
        raise InvalidInputError(f"{label} needs a time zone, e.g. {example}.")


def parse_id(value: str | uuid.UUID, what: str, hint: str) -> uuid.UUID:
    """An id from the caller; anything else is said plainly, with what to pass instead."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value).strip())
    except (ValueError, AttributeError):
        shown = value if len(value) <= 60 else value[:60] + "..."
        raise InvalidInputError(f"{what} {shown!r} is not a valid id: {hint}") from None

"""The page-size rule of the operations (the repositories have a wider one of their own)."""

from __future__ import annotations

from repository.errors import InvalidInputError


def check_limit(limit: int, maximum: int) -> None:
    if not 1 <= limit <= maximum:
        raise InvalidInputError(f"limit must be between 1 and {maximum}, got {limit}.")

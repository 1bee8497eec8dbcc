"""The repository's error hierarchy.

Every failure a caller can act on is one of these; driver and SQL errors are translated once, in
`database.translate_errors`, so nothing above the repository ever sees driver text.
"""

from __future__ import annotations


class RepositoryError(Exception):
    """Base class: the message is short, safe to show to a user, and says what to do."""


class NotFoundError(RepositoryError):
    """The row asked for does not exist (or is not visible to the acting user)."""


class ConflictError(RepositoryError):
    """A uniqueness rule would be broken (a second user with the same email, say)."""


class InvalidInputError(RepositoryError):
    """The input breaks a rule of the data model (a dangling reference, a bad value)."""


class ReadOnlyError(RepositoryError):
    """The row is marked read-only for agents and cannot be changed through this path."""


class PermissionDeniedError(RepositoryError):
    """The acting credential may not do this (a read-only token asked to write)."""


class SchemaVersionError(RepositoryError):
    """The database schema does not match this code (newer than the code, or not migrated)."""


class DatabaseUnavailableError(RepositoryError):
    """The database could not be reached or stayed busy past the configured timeouts."""

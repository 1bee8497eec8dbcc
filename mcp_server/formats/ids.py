"""Stable ids for imported rows, so importing the same export again finds what it stored the first time."""

from __future__ import annotations

import uuid

# Fixed forever: changing it would make every re-import create duplicates.
NAMESPACE = uuid.UUID("5f0d6a52-3c1e-4b8e-9a57-2f1c0e6b9d41")


def stable_id(owner: uuid.UUID, *source: str) -> uuid.UUID:
    """The id of a row made from `source` (tool, conversation id, message id) for one user: the same user
    importing the same conversation gets the same ids; another user gets others, so nobody's rows collide."""
    return uuid.uuid5(NAMESPACE, "/".join((str(owner), *source)))

"""Partial updates: `KEEP` says "leave the stored value as it is", which `None` cannot say (it clears a field).

await ops.memories.remember(actor, "Prefers tea", name="drink", description=KEEP)  # the stored description stays
"""

from __future__ import annotations

import enum
from typing import TypeAlias, TypeVar

T = TypeVar("T")


class Keep(enum.Enum):
    KEEP = "keep"

    def __repr__(self) -> str:
        return "KEEP"


KEEP = Keep.KEEP

# A field of a partial update: a new value, or KEEP.
Patch: TypeAlias = T | Keep


def given(**fields: object) -> dict[str, object]:
    """The fields that carry a value (everything but KEEP)."""
    return {name: value for name, value in fields.items() if value is not KEEP}

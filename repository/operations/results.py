"""What the operations return: repository models plus what a surface needs to show them (snippets, cursors)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Generic, TypeVar

from repository.models import HistoryPage, Memory, Message, Session, SessionSummary
from repository.scopes import Scope

T = TypeVar("T")


@dataclass(frozen=True)
class Listing(Generic[T]):
    """A page of a listing: its items, how many match in all (up to the count cap), and the next page's cursor."""

    items: list[T]
    total: int
    total_capped: bool
    next_cursor: str | None


@dataclass(frozen=True)
class FoundMemory:
    memory: Memory
    score: float
    snippet: str


@dataclass(frozen=True)
class MemorySearch:
    hits: list[FoundMemory]
    terms: list[str]
    scopes: tuple[Scope, ...]


@dataclass(frozen=True)
class FoundMessage:
    message: Message
    score: float
    snippet: str


@dataclass(frozen=True)
class HistorySearch:
    hits: list[FoundMessage]
    terms: list[str]
    session_id: uuid.UUID | None


@dataclass(frozen=True)
class Transcript:
    """A session with the last page of its messages (`page.next_cursor` set when older ones were left out)."""

    session: Session
    page: HistoryPage


SessionListing = Listing[SessionSummary]
MemoryListing = Listing[Memory]

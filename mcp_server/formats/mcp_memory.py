"""The reference MCP memory server's knowledge graph (memory.json): JSON Lines of
{"type": "entity", "name", "entityType", "observations": [...]} and {"type": "relation", "from", "to", "relationType"}.

Each entity becomes one named memory of the configured user (name = the entity's name) whose content reads as
prose, so search finds it by its name, its observations and its relations:

    Ada Lovelace (person): Wrote the first program. Ada Lovelace corresponded with Charles Babbage.

A relation is a sentence in both entities' contents ("who did Ada correspond with" finds Babbage's memory too),
and the entity type, observations and relations are kept in metadata as they were. Importing again updates the
memories whose entity changed and leaves the others as they are (named memories are unique per scope).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mcp_server.formats.source import ImportProblem, Progress, Source, json_object
from repository.errors import RepositoryError
from repository.models import Actor, MemoryRecord

if TYPE_CHECKING:
    from repository.operations import Operations

BATCH = 500
NAME_MAX = 500
_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


@dataclass
class Entity:
    line: int
    name: str
    type: str
    observations: list[str] = field(default_factory=list)
    relations: list[dict[str, str]] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)


def _text(where: str, value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ImportProblem(where, f"{what} must be a non-empty string")
    return value.strip()


def relation_words(relation_type: str) -> str:
    """works_at, worksAt, works-at -> "works at"."""
    spaced = _CAMEL.sub(lambda m: " " + m.group(1).lower(), relation_type)
    return " ".join(spaced.replace("_", " ").replace("-", " ").split())


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if text[-1:] in ".!?" else text + "."


def content(entity: Entity) -> str:
    head = f"{entity.name} ({entity.type})" if entity.type else entity.name
    body = " ".join([_sentence(o) for o in entity.observations if o.strip()] + entity.sentences)
    return f"{head}: {body}" if body else head


def read_graph(source: Source) -> tuple[dict[str, Entity], int, int]:
    """The entities by name (repeated names merged), and how many relations were read and left out (neither end
    is an entity of the file)."""
    entities: dict[str, Entity] = {}
    relations: list[tuple[str, str, str]] = []
    for number, raw in source.lines():
        if not raw.strip():
            continue
        where = f"line {number}"
        item = json_object(where, raw)
        kind = item.get("type")
        if kind == "entity":
            name = _text(where, item.get("name"), "name")
            if len(name) > NAME_MAX:
                raise ImportProblem(where, f"the entity name is longer than {NAME_MAX} characters")
            observations = item.get("observations", [])
            if not isinstance(observations, list) or not all(isinstance(o, str) for o in observations):
                raise ImportProblem(where, "observations must be a list of strings")
            entity_type = item.get("entityType", "")
            if not isinstance(entity_type, str):
                raise ImportProblem(where, "entityType must be a string")
            entity = entities.setdefault(name, Entity(number, name, entity_type.strip()))
            entity.observations.extend(o for o in observations if o not in entity.observations)
        elif kind == "relation":
            ends = [_text(where, item.get(key), key) for key in ("from", "to", "relationType")]
            relations.append((ends[0], ends[1], ends[2]))
        else:
            raise ImportProblem(where, f"type must be 'entity' or 'relation', not {kind!r}")
    left_out = 0
    for source_name, target, relation_type in dict.fromkeys(relations):
        sentence = f"{source_name} {relation_words(relation_type)} {target}."
        linked = [entities[name] for name in dict.fromkeys((source_name, target)) if name in entities]
        left_out += not linked
        for entity in linked:
            entity.sentences.append(sentence)
            entity.relations.append({"from": source_name, "to": target, "type": relation_type})
    return entities, len(relations), left_out


def record(entity: Entity) -> MemoryRecord:
    metadata = {
        "source": "mcp-memory",
        "entity_type": entity.type,
        "observations": entity.observations,
        "relations": entity.relations,
    }
    return MemoryRecord(content=content(entity), name=entity.name, metadata=metadata)


async def run(ops: Operations, actor: Actor, source: Source) -> str:
    entities, relations, left_out = read_graph(source)
    outcomes = {"created": 0, "updated": 0, "unchanged": 0}
    ordered = list(entities.values())
    progress = Progress(source, "entities")
    try:
        for start in range(0, len(ordered), BATCH):
            batch = ordered[start : start + BATCH]
            try:
                done = await ops.transfer.import_named_memories(actor, [record(e) for e in batch])
            except RepositoryError as exc:
                where = f"the entities of lines {batch[0].line}-{batch[-1].line}"
                raise ImportProblem(where, str(exc)) from None
            for outcome, count in done.items():
                outcomes[outcome] += count
            progress.update(start + len(batch))
    finally:
        progress.close()
    text = (
        f"read {len(entities)} entities and {relations} relations: {outcomes['created']} memories created, "
        f"{outcomes['updated']} updated, {outcomes['unchanged']} unchanged"
    )
    if left_out:
        text += f"; {left_out} relations between names that are not entities of the file were left out"
    return text

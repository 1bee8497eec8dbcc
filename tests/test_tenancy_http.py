"""Cross-tenant isolation over real HTTP: every tool, resource and prompt, attacked by other users' tokens.

One server subprocess per backend (tests/http_server.py) with four tokens: ada (user ada, agent "coder", static),
bob (another user on agent "writer", static), carol (another user on ada's agent "coder", managed) and ada-ro
(ada, managed, read-only). Ada writes data with every write tool, each item carrying distinctive words. Then bob
and carol call every tool the server lists, every resource template, the static resource and the prompt, with
ada's ids, cursors and words. What they may see of ada is exactly what the README's scope table shares:

    | `agent` | every user of this agent, who may also update or delete it ... (README.md, "Identity and scopes")

so carol (same agent) must see ada's agent-scope memories wherever a read would return them, and nothing else of
ada's; bob sees nothing. A lookup of one of ada's ids must fail as "not found" and be indistinguishable from the
same call with a random id (no existence oracle). Mutation attempts must fail and leave ada's data as it was, and
ada's read-only token must be refused every write with the read-only sentence while reads work.

Every problem is collected, so one run reports the whole matrix rather than the first leak.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from tests.http_server import Identity, http_server
from tests.mcp_helpers import call

pytestmark = [pytest.mark.anyio, pytest.mark.slow]  # a server subprocess and CLI runs per backend

README = Path(__file__).resolve().parent.parent / "README.md"
README_AGENT_RULE = "| `agent` | every user of this agent, who may also update or delete it (shared notes) |"

ADA = Identity("ada@example.com", "coder")
BOB = Identity("bob@example.com", "writer")
CAROL = Identity("carol@example.com", "coder")
ADA_RO = Identity("ada@example.com", "coder", read_only=True)

NOT_FOUND = re.compile(r"\bNo (memory|session|message) with id\b")
READ_ONLY = "This credential is read-only"
WRITE_TOOLS = frozenset({"store_memory", "delete_memory", "create_session", "add_message", "add_messages"})
# Fields a result copies from the caller's own arguments (the stems of its query, the session it named).
ECHOED = {"search_memories": ("query_terms", "scopes_searched"), "search_history": ("query_terms", "session_id")}


# --- Ada's data: every item has words nothing else holds, so any trace of it in a reply can be attributed. ---


@dataclass(frozen=True)
class Secret:
    kind: str  # session | message | memory | identity
    words: tuple[str, ...]
    scope: str | None = None  # memories: user | agent | session
    read_mode: str = "tool"
    write: dict[str, Any] = field(default_factory=dict)  # the arguments ada writes it with
    session: str | None = None  # messages and session memories: their session's key


SECRETS: dict[str, Secret] = {
    "email": Secret("identity", ("ada@example.com",)),
    "s1": Secret(
        "session",
        ("Quillfeather", "heliographnet", "bramblewick"),
        write={"name": "Quillfeather retreat", "platform": "heliographnet", "metadata": {"codename": "bramblewick"}},
    ),
    "s2": Secret(
        "session", ("Tamarisk", "fennelspire"), write={"name": "Tamarisk audit", "metadata": {"c": "fennelspire"}}
    ),
    # m1 and m5 through add_message, m2-m4 through one add_messages batch.
    "m1": Secret(
        "message", ("zorbulon",), session="s1", write={"role": "user", "text_content": "Book the zorbulon suite"}
    ),
    "m2": Secret(
        "message",
        ("quibbleworth",),
        session="s1",
        write={"role": "user", "name": "Ada", "text_content": "The quibbleworth code opens the gate"},
    ),
    "m3": Secret(
        "message",
        ("gravimax", "frobnicator"),
        session="s1",
        write={
            "role": "assistant",
            "text_content": "Checking the gravimax schedule",
            "tool_calls": [{"name": "lookup", "arguments": {"q": "frobnicator"}}],
        },
    ),
    "m4": Secret(
        "message", ("glimmerstone",), session="s1", write={"role": "tool", "tool_outputs": {"r": "glimmerstone"}}
    ),
    "m5": Secret(
        "message", ("vexillary",), session="s2", write={"role": "user", "text_content": "Audit the vexillary ledger"}
    ),
    "user_named": Secret(
        "memory",
        ("wombatique", "cobblestrand"),
        scope="user",
        read_mode="system_prompt",
        write={"name": "ada_pin", "content": "Ada's locker code is wombatique", "description": "cobblestrand note"},
    ),
    "user_plain": Secret(
        "memory", ("crumblefoot",), scope="user", write={"content": "Keys under the crumblefoot rock"}
    ),
    "agent_named": Secret(
        "memory",
        ("snickerdoodle", "marmalith"),
        scope="agent",
        read_mode="system_prompt",
        write={"name": "team_style", "content": "Indent with snickerdoodle tabs", "description": "marmalith rule"},
    ),
    "agent_plain": Secret("memory", ("lanternfish",), scope="agent", write={"content": "Share the lanternfish cache"}),
    "session_named": Secret(
        "memory",
        ("periwinkle",),
        scope="session",
        read_mode="system_prompt",
        session="s1",
        write={"name": "route", "content": "Ada chose the periwinkle route"},
    ),
    "session_plain": Secret(
        "memory", ("moonraker",), scope="session", session="s1", write={"content": "Ada saw the moonraker sails"}
    ),
}
MEMORIES = frozenset(k for k, s in SECRETS.items() if s.kind == "memory")
MESSAGES = [k for k, s in SECRETS.items() if s.kind == "message"]
SESSIONS = [k for k, s in SECRETS.items() if s.kind == "session"]
WORDS = [word for s in SECRETS.values() if s.kind != "identity" for word in s.words]
ALL_WORDS = " ".join(WORDS)


def memories_where(**wanted: Any) -> frozenset[str]:
    return frozenset(k for k in MEMORIES if all(getattr(SECRETS[k], a) == v for a, v in wanted.items()))


def shares(attacker: Identity, key: str) -> bool:
    """The README's rule: an agent-scope memory is read by every user of its agent (all of ada's are on ADA.agent);
    nothing else of another user is ever visible."""
    return SECRETS[key].scope == "agent" and attacker.agent == ADA.agent


@dataclass
class World:
    ids: dict[str, str] = field(default_factory=dict)  # secret key -> id
    cursors: dict[str, str] = field(default_factory=dict)  # ada's own next_cursors


def present(text: str, world: World, ignore: tuple[str, ...] = ()) -> set[str]:
    """Keys of ada's secrets a reply shows (their id or a word), besides the ids the caller passed itself."""
    for passed in ignore:
        text = text.replace(passed, "<passed id>")
    low = text.lower()
    found = set()
    for key, secret in SECRETS.items():
        strings = [world.ids.get(key, ""), *secret.words]
        if any(s and s.lower() in low for s in strings):
            found.add(key)
    return found


async def build_ada(ada: Client) -> World:
    world = World()
    for key in SESSIONS:
        world.ids[key] = (await call(ada, "create_session", **SECRETS[key].write))["id"]
    for key in ("m1", "m5"):
        arguments = {"session_id": world.ids[str(SECRETS[key].session)], **SECRETS[key].write}
        world.ids[key] = (await call(ada, "add_message", **arguments))["id"]
    batch = await call(
        ada, "add_messages", session_id=world.ids["s1"], messages=[SECRETS[k].write for k in MESSAGES[1:4]]
    )
    for key, message in zip(MESSAGES[1:4], batch["messages"], strict=True):
        world.ids[key] = message["id"]
    for key in sorted(MEMORIES):
        secret = SECRETS[key]
        arguments = {**secret.write, "metadata": {"owner": "ada"}, "read_mode": secret.read_mode}
        if secret.scope == "session":
            arguments |= {"scope": "session", "session_id": world.ids[str(secret.session)]}
        else:
            arguments["scope"] = secret.scope
        stored = await call(ada, "store_memory", **arguments)
        assert stored["scope"] == secret.scope and stored["outcome"] == "created"
        world.ids[key] = stored["id"]
    world.cursors["memories"] = (await call(ada, "list_memories", limit=1))["next_cursor"]
    world.cursors["sessions"] = (await call(ada, "list_sessions", limit=1))["next_cursor"]
    world.cursors["history"] = (await call(ada, "get_session_history", session_id=world.ids["s1"], limit=1))[
        "next_cursor"
    ]
    assert all(world.cursors.values()), world.cursors
    return world


async def snapshot(ada: Client) -> dict[str, Any]:
    """Everything ada can read of her data, in full."""
    memories = await call(ada, "list_memories", limit=100)
    sessions = await call(ada, "list_sessions", limit=100)
    return {
        "memories": memories,
        "full": {m["id"]: await call(ada, "get_memory", memory_id=m["id"]) for m in memories["memories"]},
        "sessions": sessions,
        "histories": {
            s["id"]: await call(ada, "get_session_history", session_id=s["id"], limit=200, start="oldest")
            for s in sessions["sessions"]
        },
    }


# --- One call of the matrix and what it may return. ---


@dataclass(frozen=True)
class Case:
    kind: str  # tool | resource | prompt
    target: str  # tool name, URI (template) or prompt name
    arguments: dict[str, Any] = field(default_factory=dict)
    uri: str = ""
    foreign: str | None = None  # the id of ada's this call passes
    surfaces: frozenset[str] = frozenset()  # ada's secrets it returns to a caller allowed to read them
    may_surface: frozenset[str] = frozenset()  # others it may also return (ranked search, paging)
    by_id: bool = False  # the surfaces are fetched by the foreign id itself
    may_fail: bool = False  # a (short, leak-free) error is acceptable
    check: Callable[[Any], str | None] | None = None  # extra check of a successful reply's data

    def label(self) -> str:
        if self.kind == "tool":
            return f"{self.target}({json.dumps(self.arguments, sort_keys=True)[:160]})"
        return f"{self.kind} {self.uri or self.target}"


def tool(name: str, arguments: dict[str, Any], **options: Any) -> Case:
    return Case("tool", name, arguments, **options)


@dataclass
class Outcome:
    ok: bool
    text: str
    data: Any = None


def _unecho(case: Case, data: Any) -> Any:
    if not isinstance(data, dict):
        return data
    data = dict(data)
    for key in ECHOED.get(case.target, ()):
        if key != "session_id" or data.get(key) == case.arguments.get("session_id"):
            data.pop(key, None)
    return data


async def perform(client: Client, case: Case) -> Outcome:
    try:
        if case.kind == "tool":
            result = await client.call_tool(case.target, case.arguments)
            texts = [getattr(block, "text", repr(block)) for block in result.content]
            if result.is_error:
                return Outcome(False, "\n".join(texts))
            rendered = []
            for text in texts:
                try:
                    rendered.append(json.dumps(_unecho(case, json.loads(text))))
                except ValueError:
                    rendered.append(text)
            data = _unecho(case, result.structured_content)
            return Outcome(True, json.dumps(data) + "\n" + "\n".join(rendered), data)
        if case.kind == "resource":
            contents = (await client.read_resource(case.uri)).contents
            text = "\n".join(getattr(c, "text", repr(c)) for c in contents)
            return Outcome(True, text, text)
        prompt = await client.get_prompt(case.target)
        text = "\n".join(getattr(m.content, "text", repr(m.content)) for m in prompt.messages)
        return Outcome(True, text, text)
    except MCPError as exc:
        return Outcome(False, str(exc))


def _renamed_cursor(cursor: str, old: str, new: str) -> str:
    """Cursors are opaque, but ada's history cursor names her session: a fair twin's names the random id."""
    try:
        decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return cursor
    if old not in decoded:
        return cursor
    return base64.urlsafe_b64encode(decoded.replace(old, new).encode()).decode().rstrip("=")


def with_random_id(case: Case) -> tuple[Case, str]:
    """The same call with a random id where ada's was: a caller must not be able to tell the two apart."""
    assert case.foreign is not None
    other = str(uuid.uuid4())
    arguments = json.loads(json.dumps(case.arguments).replace(case.foreign, other))
    if "cursor" in arguments:
        arguments["cursor"] = _renamed_cursor(arguments["cursor"], case.foreign, other)
    return replace(case, arguments=arguments, uri=case.uri.replace(case.foreign, other), foreign=other), other


def _totals(case: Case, data: Any) -> str | None:
    """A listing's total counts only what the caller sees (a count of ada's rows would leak them)."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            return None
    if not isinstance(data, dict) or "total" not in data or data.get("next_cursor") or "cursor" in case.arguments:
        return None
    items = data.get("memories", data.get("sessions"))
    if items is not None and not data.get("total_capped") and data["total"] != len(items):
        return f"total {data['total']} but {len(items)} items listed"
    return None


async def judge(client: Client, who: str, attacker: Identity, case: Case, world: World, problems: list[str]) -> None:
    shared = {key for key in SECRETS if shares(attacker, key)}
    must = case.surfaces & shared
    allowed = (case.surfaces | case.may_surface) & shared
    outcome = await perform(client, case)
    where = f"{who} {case.label()}"
    found = present(outcome.text, world, (case.foreign,) if case.foreign else ())
    if found - allowed:
        problems.append(f"LEAK {where}: shows ada's {sorted(found - allowed)}: {outcome.text[:600]}")
    if must - found:
        problems.append(f"SHARING {where}: README shares ada's {sorted(must - found)}, not shown: {outcome.text[:300]}")
    if not outcome.ok:
        if len(outcome.text) > 400 or "Traceback" in outcome.text:
            problems.append(f"ERROR TEXT {where}: not a short sentence: {outcome.text[:600]}")
        if case.foreign and not must and not NOT_FOUND.search(outcome.text):
            problems.append(f"NOT FOUND {where}: expected a not-found error, got: {outcome.text[:300]}")
        elif not case.foreign and not case.may_fail:
            problems.append(f"FAILED {where}: {outcome.text[:300]}")
    else:
        for problem in (case.check(outcome.data) if case.check else None, _totals(case, outcome.data)):
            if problem:
                problems.append(f"CHECK {where}: {problem}")
    if case.foreign and not (case.by_id and must):
        twin, other = with_random_id(case)
        twin_outcome = await perform(client, twin)
        mine = (outcome.ok, outcome.text.replace(case.foreign, "<id>"))
        theirs = (twin_outcome.ok, twin_outcome.text.replace(other, "<id>"))
        if mine != theirs:
            problems.append(f"ORACLE {where}: differs from a random id: {mine[1][:300]!r} vs {theirs[1][:300]!r}")


# --- The matrix. ---


@dataclass(frozen=True)
class Own:
    """An attacker's own data, made before the matrix (their word is nothing of ada's)."""

    word: str
    session: str


def created_elsewhere(world: World) -> Callable[[Any], str | None]:
    def check(data: Any) -> str | None:
        if data.get("outcome") != "created" or data.get("id") in world.ids.values():
            return f"expected a new memory of the caller's own, got {data.get('outcome')} {data.get('id')}"
        return None

    return check


def holders(word: str) -> frozenset[str]:
    return frozenset(k for k in MEMORIES if word in SECRETS[k].words)


def neighbours_of(word: str) -> frozenset[str]:
    """Ada's memories a search for `word` may rank: its holders and, through neighbour context, the other memories
    of their scope. Which of them a caller may read is the rule in `shares`."""
    scopes = {SECRETS[k].scope for k in holders(word)}
    return frozenset(k for k in MEMORIES if SECRETS[k].scope in scopes)


def tool_cases(world: World, attacker: Identity, own: Own) -> dict[str, list[Case]]:
    ids, cursors = world.ids, world.cursors
    note = f"{own.word} note"
    store = [
        # A name ada uses, in the caller's own user scope: a new memory of the caller's, never ada's updated.
        tool("store_memory", {"content": note, "name": "ada_pin"}, check=created_elsewhere(world)),
        tool("store_memory", {"content": note, "session_id": ids["s1"]}, foreign=ids["s1"]),
        tool(
            "store_memory",
            {"content": note, "name": "route", "scope": "session", "session_id": ids["s1"]},
            foreign=ids["s1"],
        ),
        tool(
            "store_memory", {"content": note, "session_id": ids["s2"], "read_mode": "system_prompt"}, foreign=ids["s2"]
        ),
    ]
    # An agent-scope name of ada's: on another agent it is a new memory. A user of ada's agent may change or delete
    # her agent-scope memories (the README: shared notes), so that is not an attack and is not tried here; ada's
    # snapshot afterwards must be unchanged.
    if not shares(attacker, "agent_named"):
        store.append(
            tool(
                "store_memory",
                {"content": note, "name": "team_style", "scope": "agent"},
                check=created_elsewhere(world),
            )
        )
    # A word's holders must surface to a caller who may read them; the rest of their scope may (neighbour context).
    search_memories = [
        tool("search_memories", {"query": word, "limit": 50}, surfaces=holders(word), may_surface=neighbours_of(word))
        for word in WORDS
    ]
    search_memories += [
        tool("search_memories", {"query": ALL_WORDS, "limit": 50}, surfaces=MEMORIES),
        *(
            tool(
                "search_memories",
                {"query": ALL_WORDS, "limit": 50, "scopes": [scope]},
                surfaces=memories_where(scope=scope),
            )
            for scope in ("session", "user", "agent", "global")
        ),
        tool("search_memories", {"query": ALL_WORDS, "limit": 50, "metadata": {"owner": "ada"}}, surfaces=MEMORIES),
        tool(
            "search_memories",
            {"query": ALL_WORDS, "limit": 50, "created_after": "2000-01-01T00:00:00Z"},
            surfaces=MEMORIES,
        ),
        tool(
            "search_memories",
            {"query": ALL_WORDS, "limit": 50, "session_id": ids["s1"]},
            foreign=ids["s1"],
            surfaces=MEMORIES,
        ),
    ]
    list_memories = [
        tool("list_memories", {}, surfaces=MEMORIES),
        tool("list_memories", {"limit": 100}, surfaces=MEMORIES),
        *(
            tool("list_memories", {"limit": 100, "scope": s}, surfaces=memories_where(scope=s))
            for s in ("session", "user", "agent", "global")
        ),
        tool(
            "list_memories",
            {"limit": 100, "session_id": ids["s1"]},
            foreign=ids["s1"],
            surfaces=memories_where(scope="session"),
        ),
        *(
            tool("list_memories", {"name": SECRETS[k].write["name"]}, surfaces=frozenset({k}))
            for k in sorted(MEMORIES)
            if "name" in SECRETS[k].write
        ),
        *(
            tool("list_memories", {"limit": 100, "read_mode": m}, surfaces=memories_where(read_mode=m))
            for m in ("system_prompt", "tool")
        ),
        tool("list_memories", {"limit": 100, "cursor": cursors["memories"]}, may_surface=MEMORIES),
    ]
    history_words = [w for k in MESSAGES + SESSIONS for w in SECRETS[k].words]
    return {
        "store_memory": store,
        "search_memories": search_memories,
        "get_memory": [
            tool("get_memory", {"memory_id": ids[k]}, foreign=ids[k], surfaces=frozenset({k}), by_id=True)
            for k in sorted(MEMORIES)
        ],
        "list_memories": list_memories,
        "delete_memory": [
            tool("delete_memory", {"memory_id": ids[k]}, foreign=ids[k], surfaces=frozenset({k}), by_id=True)
            for k in sorted(MEMORIES)
            if not shares(attacker, k)
        ],
        "create_session": [tool("create_session", {"name": f"{own.word} second chat", "platform": "cli"})],
        "add_message": [
            tool("add_message", {"session_id": ids[s], "role": "user", "text_content": note}, foreign=ids[s])
            for s in SESSIONS
        ],
        "add_messages": [
            tool(
                "add_messages",
                {
                    "session_id": ids[s],
                    "messages": [{"role": "user", "text_content": note}, {"role": "assistant", "text_content": "ok"}],
                },
                foreign=ids[s],
            )
            for s in SESSIONS
        ],
        "get_session_history": [
            *(
                tool("get_session_history", {"session_id": ids[s], "start": start}, foreign=ids[s])
                for s in SESSIONS
                for start in ("latest", "oldest")
            ),
            tool(
                "get_session_history",
                {"session_id": ids["s1"], "limit": 1, "cursor": cursors["history"]},
                foreign=ids["s1"],
            ),
            # Ada's cursor (it names her session) on the caller's own session: the caller's messages or an error.
            tool("get_session_history", {"session_id": own.session, "cursor": cursors["history"]}, may_fail=True),
        ],
        "get_message": [tool("get_message", {"message_id": ids[m]}, foreign=ids[m]) for m in MESSAGES],
        "list_sessions": [
            tool("list_sessions", {}),
            tool("list_sessions", {"limit": 100}),
            tool("list_sessions", {"limit": 100, "cursor": cursors["sessions"]}),
        ],
        "search_history": [
            *(tool("search_history", {"query": word, "limit": 50}) for word in history_words),
            tool("search_history", {"query": ALL_WORDS, "limit": 50}),
            tool("search_history", {"query": ALL_WORDS, "limit": 50, "roles": ["user", "assistant", "system", "tool"]}),
            tool("search_history", {"query": ALL_WORDS, "limit": 50, "created_after": "2000-01-01T00:00:00Z"}),
            *(
                tool("search_history", {"query": ALL_WORDS, "limit": 50, "session_id": ids[s]}, foreign=ids[s])
                for s in SESSIONS
            ),
        ],
    }


def own_sessions_listed(own: Own) -> Callable[[Any], str | None]:
    def check(text: Any) -> str | None:
        return None if own.session in text else "the caller's own session is not listed"

    return check


def resource_cases(world: World, own: Own) -> dict[str, list[Case]]:
    ids = world.ids
    return {
        "memory://memories/{memory_id}": [
            Case(
                "resource",
                "memory",
                uri=f"memory://memories/{ids[k]}",
                foreign=ids[k],
                surfaces=frozenset({k}),
                by_id=True,
            )
            for k in sorted(MEMORIES)
        ],
        "memory://sessions/{session_id}/history": [
            Case("resource", "history", uri=f"memory://sessions/{ids[s]}/history", foreign=ids[s]) for s in SESSIONS
        ],
        "memory://sessions/recent{?limit}": [
            Case("resource", "recent", uri="memory://sessions/recent", check=own_sessions_listed(own)),
            Case("resource", "recent", uri="memory://sessions/recent?limit=100", check=own_sessions_listed(own)),
        ],
        # The README says it is refused on a server with HTTP tokens; a refusal or the caller's own sessions pass.
        "memory://sessions": [
            Case("resource", "static", uri="memory://sessions", may_fail=True, check=own_sessions_listed(own))
        ],
    }


def prompt_cases() -> dict[str, list[Case]]:
    return {"agent_context": [Case("prompt", "agent_context", surfaces=memories_where(read_mode="system_prompt"))]}


async def surface(client: Client) -> tuple[set[str], set[str], set[str]]:
    """The tools, resource URIs (templates and static) and prompts the server lists."""
    tools = await client.list_tools()
    templates = await client.list_resource_templates()
    resources = await client.list_resources()
    prompts = await client.list_prompts()
    assert not any(page.next_cursor for page in (tools, templates, resources, prompts)), "paged listings"
    return (
        {t.name for t in tools.tools},
        {t.uri_template for t in templates.resource_templates} | {str(r.uri) for r in resources.resources},
        {p.name for p in prompts.prompts},
    )


def covered(kind: str, listed: set[str], cases: dict[str, list[Case]]) -> None:
    missing, stale = listed - cases.keys(), cases.keys() - listed
    assert not missing, f"{kind} the server lists but the tenancy matrix does not cover: {sorted(missing)}"
    assert not stale, f"{kind} in the matrix the server no longer lists: {sorted(stale)}"


async def attack(client: Client, who: str, attacker: Identity, world: World, problems: list[str]) -> None:
    tools, uris, prompts = await surface(client)
    word = f"{who}quartzen"
    sid = (await call(client, "create_session", name=f"{word} chat"))["id"]
    await call(client, "add_message", session_id=sid, role="user", text_content=f"{word} hello")
    await call(client, "store_memory", content=f"{word} likes tea", name="habit", read_mode="system_prompt")
    own = Own(word, sid)
    matrix = [
        ("tools", tools, tool_cases(world, attacker, own)),
        ("resources", uris, resource_cases(world, own)),
        ("prompts", prompts, prompt_cases()),
    ]
    for kind, listed, cases in matrix:
        covered(kind, listed, cases)
        for case_list in cases.values():
            assert case_list, "every tool, resource and prompt needs a case"
            for case in case_list:
                await judge(client, who, attacker, case, world, problems)


async def read_only(client: Client, world: World, problems: list[str]) -> None:
    ids = world.ids
    tools, _, _ = await surface(client)
    writes: dict[str, list[dict[str, Any]]] = {
        "store_memory": [
            {"content": "read-only attempt"},
            {"content": "changed by a read-only token", "name": "ada_pin"},
            {"content": "read-only attempt", "session_id": ids["s1"]},
            {"content": "changed by a read-only token", "name": "team_style", "scope": "agent"},
        ],
        "delete_memory": [{"memory_id": ids[k]} for k in ("user_named", "agent_plain", "session_plain")],
        "create_session": [{"name": "read-only attempt"}],
        "add_message": [{"session_id": ids["s1"], "role": "user", "text_content": "read-only attempt"}],
        "add_messages": [
            {"session_id": ids["s2"], "messages": [{"role": "user", "text_content": "read-only attempt"}]}
        ],
    }
    reads: dict[str, tuple[dict[str, Any], set[str]]] = {
        "search_memories": (
            {"query": "wombatique snickerdoodle periwinkle"},
            {"user_named", "agent_named", "session_named"},
        ),
        "get_memory": ({"memory_id": ids["session_named"]}, {"session_named"}),
        "list_memories": ({"limit": 100}, set(MEMORIES)),
        "get_session_history": ({"session_id": ids["s1"], "start": "oldest"}, {"m1", "m2", "m3", "m4"}),
        "get_message": ({"message_id": ids["m5"]}, {"m5"}),
        "list_sessions": ({}, {"s1", "s2"}),
        "search_history": ({"query": "zorbulon"}, {"m1"}),
    }
    assert tools == writes.keys() | reads.keys(), (
        f"read-only check does not cover: {sorted(tools ^ (writes.keys() | reads.keys()))}"
    )
    assert writes.keys() == WRITE_TOOLS
    for name, arguments_list in writes.items():
        for arguments in arguments_list:
            outcome = await perform(client, tool(name, arguments))
            if outcome.ok or READ_ONLY not in outcome.text or len(outcome.text) > 300:
                problems.append(
                    f"READ-ONLY {name}({arguments}): expected the read-only sentence, got {outcome.text[:300]}"
                )
    for name, (arguments, expected) in reads.items():
        outcome = await perform(client, tool(name, arguments))
        if not outcome.ok or not expected <= present(outcome.text, world):
            problems.append(f"READ-ONLY read {name}({arguments}) should show {sorted(expected)}: {outcome.text[:300]}")
    # Positive control: ada finds each word's holders, so an attacker's empty search means isolation, not a
    # query that matches nothing.
    for word in WORDS:
        said = {k for k in MESSAGES if word in SECRETS[k].write.get("text_content", "")}
        for name, expected in (("search_memories", set(holders(word))), ("search_history", said)):
            outcome = await perform(client, tool(name, {"query": word, "limit": 50}))
            if not outcome.ok or not expected <= present(outcome.text, world):
                problems.append(f"CONTROL {name}({word!r}) as ada should show {sorted(expected)}: {outcome.text[:300]}")
    for case, expected in [
        (Case("resource", "memory", uri=f"memory://memories/{ids['user_named']}"), {"user_named"}),
        (Case("resource", "history", uri=f"memory://sessions/{ids['s1']}/history"), {"m1", "m2", "m3", "m4"}),
        (Case("resource", "recent", uri="memory://sessions/recent"), {"s1", "s2"}),
        (Case("prompt", "agent_context"), {"user_named", "agent_named"}),
    ]:
        outcome = await perform(client, case)
        if not outcome.ok or not expected <= present(outcome.text, world):
            problems.append(f"READ-ONLY read {case.label()} should show {sorted(expected)}: {outcome.text[:300]}")


def test_the_readme_still_states_the_agent_scope_rule() -> None:
    assert README_AGENT_RULE in README.read_text(), "the agent-scope rule this file tests changed in README.md"


async def test_no_tenant_sees_or_changes_another_tenants_data(database_url: str, tmp_path: Path) -> None:
    problems: list[str] = []
    async with http_server(
        database_url,
        tmp_path / "server.log",
        static={"ada": ADA, "bob": BOB},
        managed={"carol": CAROL, "ada-ro": ADA_RO},
        env={"AGENT_MEMORY_HTTP_RATE_LIMIT": "0"},  # hundreds of calls a second per token; 429s would hide leaks
    ) as server:
        async with server.client("ada") as ada:
            for spec in (await ada.list_tools()).tools:  # the write/read split the read-only check relies on
                assert spec.annotations is not None, spec.name
                assert (spec.name in WRITE_TOOLS) == (not spec.annotations.read_only_hint), spec.name
            world = await build_ada(ada)
            before = await snapshot(ada)
        assert {m["id"] for m in before["memories"]["memories"]} == {world.ids[k] for k in MEMORIES}
        assert {s["id"] for s in before["sessions"]["sessions"]} == {world.ids[s] for s in SESSIONS}
        assert sum(len(h["messages"]) for h in before["histories"].values()) == len(MESSAGES)

        for who, attacker in (("bob", BOB), ("carol", CAROL)):
            async with server.client(who) as client:
                await attack(client, who, attacker, world, problems)

        async with server.client("ada-ro") as ro:
            await read_only(ro, world, problems)
        async with server.client("ada") as ada:
            after = await snapshot(ada)
        if after != before:
            problems.append(
                f"ada's data changed:\nbefore {json.dumps(before)[:1500]}\nafter  {json.dumps(after)[:1500]}"
            )
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)

"""Property-based fuzzing of every tool the server lists, from the input schemas it publishes, on both backends.

One server connection per backend serves every example. Hypothesis is synchronous, so it runs in a worker thread
and each example calls back into the event loop that owns the client (`anyio.from_thread.run`). Derandomized:
every run draws the same examples.

Each run starts with explicit examples, a sweep: every argument of every tool (and of add_messages' messages) set,
one at a time, on an otherwise valid call with real ids, to each boundary value of its kind: real ids of the right
and the wrong kind and spellings of them, forged cursors, dates that leave years 1-9999 once in UTC or have no
time zone, NUL bytes, texts over the size limit, NaN, infinities and numbers past int64 in JSON objects, nulls and
wrong types. Then random examples, per tool, drawn from one of:
- the published input schema, with the id fields set to real ids;
- the same, with one to three fields replaced by hostile values (the boundary values above, huge and unicode
  strings, random JSON), unknown keys added, a key dropped;
- arbitrary JSON objects, which mostly violate the schema and reach the validation paths.
Values come from `hypothesis_jsonschema.from_schema` for each scalar schema; objects and arrays are assembled
here (see `_valid` for why).

What every example must show:
- no crash: the call returns a result, an error result being fine. The one exception allowed to leave the client
  is a clean JSON-RPC "invalid params" error (a protocol-level rejection of the request). Any other JSON-RPC
  code, and any other exception (a result that fails the published output schema makes the client raise
  RuntimeError), fails the example;
- nothing internal in any text, error or success: no traceback, SQL, driver or library name, exception class
  name, nor the server's generic internal-error sentence (it means an unexpected exception reached
  mcp_server/errors.py) or the SDK's. A marker the fuzzer itself sent is echoed data, not a leak, so it is not
  counted. The repository's "A value was not accepted by the database" is a deliberate, safe answer (a value the
  database refused) and is accepted;
- an error text is one short line;
- the server keeps serving: after each example the canary memory stored at the start reads back unchanged.
At the end the canary is still the best match for its distinctive word, and every listed tool has succeeded at
least once (so the sweep's valid base calls really reached each tool's happy path).

Not generated: lone surrogates ("\\ud800"). No MCP transport can carry them (a JSON parser refuses the escape, a
UTF-8 stream cannot hold them), and the in-memory client would hand them over as they are, a case no real client
can produce. Nor cursor positions past int64: see OUT_OF_RANGE at the end.
"""

from __future__ import annotations

import gc
import json
import math
import uuid
from collections import ChainMap, Counter
from collections.abc import Iterator
from functools import partial
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from mcp_server.errors import INTERNAL_ERROR
from repository.paging import encode_cursor
from tests.mcp_helpers import call, connect
from tests.test_mcp_errors import LEAKS as ERROR_LEAKS

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

EXAMPLES = 500  # random ones per backend, after the ~630 of the sweep: about 10 s per backend on 2 cores
CALL_TIMEOUT = 20  # seconds: a call that hangs fails the example instead of the whole run

CANARY_WORD = "quokkazanzibar"
CANARY = f"The {CANARY_WORD} canary sings at dawn: it must survive every example."

# Texts no result may hold: matched as written (SQL keywords, class names, sentences) ...
LEAKS = (
    *ERROR_LEAKS,
    "UPDATE ",
    "DELETE FROM",
    " WHERE ",
    "RETURNING",
    "ON CONFLICT",
    "[SQL:",
    "(Background on this error",
    "ValidationError",
    "IntegrityError",
    "OperationalError",
    "ProgrammingError",
    "DataError",
    "DBAPIError",
    "InterfaceError",
    "InvalidInputError",
    "RepositoryError",
    "KeyError",
    "TypeError",
    "ValueError",
    "AttributeError",
    "IndexError",
    "OverflowError",
    "RecursionError",
    "UnicodeEncodeError",
    "UnicodeDecodeError",
    "AssertionError",
    "NotImplementedError",
    "ZeroDivisionError",
    "<class '",
    " object at 0x",
    INTERNAL_ERROR,
    "Internal server error",
    "Handler returned an invalid result",
)
# ... and module or package names, in any case.
LEAKS_ANY_CASE = ("sqlalchemy", "aiosqlite", "sqlite3", "asyncpg", "psycopg", "pydantic_core", "errors.pydantic")

NOT_A_TOOL = ["no_such_tool", "", "store_memory ", "STORE_MEMORY", "../list_memories"]


class Big(str):
    """A long string with a short repr: Hypothesis prints strategies and failing examples, and warns (an error
    here) about reprs of megabytes. Sent as a plain str (see `plain`)."""

    def __new__(cls, unit: str, times: int) -> Big:
        big = super().__new__(cls, unit * times)
        big.shown = f"{unit!r} * {times}"
        return big

    def __repr__(self) -> str:
        return self.shown


def plain(value: Any) -> Any:
    """The same JSON value with every string a plain str."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


HOSTILE_STRINGS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "'; DROP TABLE memories; --",
    '" OR 1=1 --',
    "%",
    "_",
    "\\",
    "*",
    '"',
    "NEAR(",
    "a:*",
    "{{name}}",
    "{{",
    "$1",
    "?",
    ":name",
    "\r\n\t",
    "\u2028\u2029",
    "\u202eevil",
    "\ufeff",
    "a\u0301" * 200,
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 text",
    "👩‍👩‍👧‍👦" * 50,
    "中文字符测试",
    "日本語のテキストです",
    "العربية",
    "\U0010ffff",
    "memory://memories/x",
    "../../etc/passwd",
    Big("x", 100_000),
    Big("word ", 20_000),
    Big("x", 1_000_001),  # over the default 1 MB limit
    Big("é", 500_001),  # over it in bytes, not in characters
]
HOSTILE_DATES = [
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+14:00",  # before year 1 once in UTC
    "0001-01-01T00:30:00+01:00",
    "9999-12-31T23:59:59.999999Z",
    "9999-12-31T23:59:59-14:00",  # after year 9999 once in UTC
    "9999-12-31T23:30:00-01:00",
    "1970-01-01T00:00:00+23:59",
    "2030-01-01T00:00:00",  # no time zone
    "2023-02-30T00:00:00Z",
    "2023-05-08",
    "tomorrow",
    "",
    0,
    -1,
    10**20,
    1.5e300,
    True,
]
ODD_NUMBERS = [0, -1, 1, 2**31, 2**63, -(2**63) - 1, 10**30, -(10**30), 0.5, -0.0, 1e308, math.inf, -math.inf, math.nan]
# Arbitrary JSON; NaN and infinities are in, since the SDK's JSON parser (pydantic) accepts NaN and 1e400.
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.sampled_from(ODD_NUMBERS) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
JUNK_KEYS = st.sampled_from(["ctx", "context", "self", "_meta", "__class__", "extra", "user_id", "agent_id", "id"])
GENERIC_HOSTILE = st.one_of(
    st.sampled_from(HOSTILE_STRINGS),
    st.text(),
    st.sampled_from([None, True, False, [], {}, [None], {"": None}, *ODD_NUMBERS]),
    JSON_VALUES,
)


class Pools:
    """Real values made in setup, to reach past the not-found checks; some of them of the wrong kind."""

    def __init__(self, ids: dict[str, str], cursors: list[str], names: list[str]) -> None:
        self.ids = ids
        self.cursors = cursors
        self.names = names

    def right_ids(self, tool: str, field: str) -> list[str]:
        """Real ids of the kind the field names."""
        kinds = {"session_id": ("session", "other_session"), "message_id": ("message",)}.get(
            field, ("canary", "named", "agent_memory", "session_memory", "victim")
        )
        return [self.ids[k] for k in kinds if not (tool == "delete_memory" and k == "canary")]

    def edge_ids(self, tool: str, field: str) -> list[str]:
        """For the boundary sweep: one real id of the right kind, one of another kind, and the variants."""
        right = self.right_ids(tool, field)
        wrong = next(v for k, v in self.ids.items() if v not in right and k != "canary")
        return [right[0], wrong, *self.variants()]

    def ids_for(self, tool: str) -> list[str]:
        # The canary may be read by any tool but deleted by none (deleting it would be a legitimate call).
        return [v for k, v in self.ids.items() if not (tool == "delete_memory" and k == "canary")] + self.variants()

    def variants(self) -> list[str]:
        """A real id written the ways uuid.UUID accepts or nearly accepts, and ids that are not ids."""
        sid = self.ids["session"]
        return [
            sid.upper(),
            f"  {sid}  ",
            "{" + sid + "}",
            sid.replace("-", ""),
            f"urn:uuid:{sid}",
            sid[:-1],
            str(uuid.UUID(int=0)),
            "not-a-uuid",
        ]


def _resolve(spec: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = spec.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return {**defs[ref.removeprefix("#/$defs/")], **{k: v for k, v in spec.items() if k != "$ref"}}
    return spec


def _branches(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield spec
    for key in ("anyOf", "oneOf"):
        yield from spec.get(key, [])


def _valid(spec: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid for `spec`: scalars from `hypothesis_jsonschema.from_schema`; objects and arrays assembled
    here from their parts' strategies, because hypothesis-jsonschema 0.23's object strategy calls a Hypothesis
    internal that Hypothesis 6.170 no longer has (`cu.many(...).more()`: AttributeError on any object schema)."""
    spec = _resolve(spec, defs)
    branches = spec.get("anyOf") or spec.get("oneOf")
    if branches:
        return st.one_of([_valid(branch, defs) for branch in branches])
    if spec.get("type") == "object":
        properties = spec.get("properties", {})
        if properties:
            required = set(spec.get("required", []))
            return st.fixed_dictionaries(
                {name: _valid(properties[name], defs) for name in sorted(required)},
                optional={name: _valid(sub, defs) for name, sub in properties.items() if name not in required},
            )
        extra = spec.get("additionalProperties", True)
        values = from_schema({}) if extra in (True, {}) else _valid(extra, defs)
        return st.dictionaries(st.text(max_size=12), values, max_size=4)
    if spec.get("type") == "array" and isinstance(spec.get("items"), dict):
        low = spec.get("minItems", 0)
        return st.lists(_valid(spec["items"], defs), min_size=low, max_size=max(low, min(spec.get("maxItems", 4), 4)))
    return from_schema(spec)


def field_values(tool: str, name: str, spec: dict[str, Any], defs: dict[str, Any], pools: Pools) -> st.SearchStrategy:
    """Values for one argument: valid for its schema, real ids and cursors, or hostile."""
    spec = _resolve(spec, defs)
    options = [_valid(spec, defs), GENERIC_HOSTILE]
    # The values aimed at this kind of field are listed twice: twice as likely as a generic one.
    if name.endswith("_id"):
        options += [st.sampled_from(pools.ids_for(tool))] * 2 + [st.uuids().map(str)]
    if name == "cursor":
        options += [st.sampled_from(pools.cursors)] * 2
    if name == "name":
        options += [st.sampled_from(pools.names)]
    if any(branch.get("format") == "date-time" for branch in _branches(spec)):
        options += [st.sampled_from(HOSTILE_DATES)] * 2
    for branch in _branches(spec):
        items = branch.get("items")
        if branch.get("type") == "array" and isinstance(items, dict):
            item = _resolve(items, defs)
            if item.get("type") == "object":
                # A list of hostile objects (add_messages), and one over the batch limit.
                options.append(st.lists(hostile_object(tool, item, defs, pools), max_size=3))
                if "maxItems" in branch:
                    options.append(st.just([{"role": "user", "text_content": "m"}] * (branch["maxItems"] + 1)))
    return st.one_of(options)


def with_real_ids(
    tool: str, schema: dict[str, Any], pools: Pools, defs: dict[str, Any] | None = None
) -> st.SearchStrategy[dict[str, Any]]:
    """Valid arguments whose id fields hold ids from setup: the deep paths, past the not-found checks."""
    defs = schema.get("$defs", {}) if defs is None else defs
    required = set(schema.get("required", []))
    ids = {
        name: st.sampled_from(pools.right_ids(tool, name))
        for name in schema.get("properties", {})
        if name.endswith("_id")
    }
    optional = {k: v for k, v in ids.items() if k not in required}
    if "text_content" in schema.get("properties", {}):
        # A message needs some content: without it nearly every add_message(s) stops at "the message is empty".
        optional["text_content"] = st.text(min_size=1) | st.sampled_from(HOSTILE_STRINGS)
    real = st.fixed_dictionaries({k: v for k, v in ids.items() if k in required}, optional=optional)
    return st.builds(lambda valid, real: {**valid, **real}, _valid(schema, defs), real)


def hostile_object(
    tool: str, schema: dict[str, Any], defs: dict[str, Any], pools: Pools
) -> st.SearchStrategy[dict[str, Any]]:
    """Valid arguments with real ids, then one to three fields replaced by hostile values; sometimes with junk
    keys added or keys dropped. Mostly valid, so each hostile value gets past the others' checks."""
    properties = schema.get("properties", {})
    if not properties:
        return arbitrary_object(schema)
    names = sorted(properties)
    # One strategy per field, built once: one_of over single-field overrides, not a flatmap that rebuilds them.
    one_field = [field_values(tool, name, properties[name], defs, pools).map(partial(_one, name)) for name in names]
    changed = st.lists(st.one_of(one_field), min_size=1, max_size=3).map(lambda parts: dict(ChainMap(*parts)))
    junk = st.dictionaries(JUNK_KEYS | st.text(max_size=12), JSON_VALUES, max_size=2)
    dropped = st.sets(st.sampled_from(names), max_size=1)

    def merge(valid: dict[str, Any], changed: dict[str, Any], extra: dict[str, Any], drop: set[str]) -> Any:
        merged = {**valid, **extra, **changed}
        return {key: value for key, value in merged.items() if key not in drop}

    return st.builds(merge, with_real_ids(tool, schema, pools, defs), changed, junk | st.just({}), dropped)


def _one(name: str, value: Any) -> dict[str, Any]:
    return {name: value}


def arbitrary_object(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Any JSON object, keyed mostly by the tool's own argument names: wrong types, nulls, missing fields."""
    names = sorted(schema.get("properties", {})) or ["x"]
    return st.dictionaries(st.sampled_from(names) | JUNK_KEYS | st.text(max_size=8), GENERIC_HOSTILE, max_size=6)


def tool_calls(tools: list[Any], pools: Pools) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    per_tool = []
    for tool in tools:
        schema = tool.input_schema
        hostile = hostile_object(tool.name, schema, schema.get("$defs", {}), pools)
        arguments = st.one_of(with_real_ids(tool.name, schema, pools), hostile, hostile, arbitrary_object(schema))
        per_tool.append(st.tuples(st.just(tool.name), arguments))
    unknown = st.tuples(st.sampled_from(NOT_A_TOOL), arbitrary_object({}))
    return st.one_of(*per_tool, unknown)


STRING_EDGES = ["", " ", "\x00", "a\x00b", Big("x", 1_000_001)]
OBJECT_EDGES = [
    {"k": math.nan},
    {"k": math.inf},
    {"k": 10**30},
    {"k": -(2**63) - 1},
    {"k": "\x00"},
    {"\x00": 1},
    {"": 1},
    {'a"b\\': 1},
    {"k": {"nested": [1]}},
    {Big("k", 10_000): 1},
    {Big("k", 10_000): [None]},  # an invalid value under a huge key: the error names the key
    {"line\nbreak": [None]},
    {"k": Big("v", 1_000_001)},
]
LIST_EDGES = [[], [None], ["nowhere"], "user", [Big("x", 10_000)]]


def _edges(tool: str, name: str, spec: dict[str, Any], pools: Pools) -> list[Any]:
    """The boundary values of one argument, by what its schema and name say it is."""
    types = {branch.get("type") for branch in _branches(spec)}
    values: list[Any] = [None, ["wrong type"]]
    if name.endswith("_id"):
        values += pools.edge_ids(tool, name)
    elif name == "cursor":
        values += pools.cursors
    elif any(branch.get("format") == "date-time" for branch in _branches(spec)):
        values += HOSTILE_DATES
    elif "string" in types:
        values += STRING_EDGES
    if "integer" in types:
        values += [2**63, -(10**30), 1.5, math.nan, math.inf, True, "10", spec.get("minimum", 1) - 1]
        values += [spec.get("maximum", 100) + 1]
    if "object" in types:
        values += OBJECT_EDGES
    if "array" in types:
        values += LIST_EDGES
    return values


def _base(name: str, spec: dict[str, Any], defs: dict[str, Any], tool: str, pools: Pools) -> Any:
    """A plain valid value for a required argument (with the right kind of real id)."""
    spec = _resolve(spec, defs)
    if name.endswith("_id"):
        return pools.right_ids(tool, name)[0]
    if "enum" in spec:
        return spec["enum"][0]
    if spec.get("type") == "integer":
        return spec.get("minimum", 1)
    if spec.get("type") == "array":
        return [_base_object(_resolve(spec["items"], defs), defs, tool, pools)]
    return "fuzz base text"


def _base_object(schema: dict[str, Any], defs: dict[str, Any], tool: str, pools: Pools) -> dict[str, Any]:
    properties = schema.get("properties", {})
    base = {name: _base(name, properties[name], defs, tool, pools) for name in schema.get("required", [])}
    if "text_content" in properties:
        base["text_content"] = "fuzz base text"
    return base


def boundary_calls(tools: list[Any], pools: Pools) -> list[tuple[str, dict[str, Any]]]:
    """Every argument of every tool set, one at a time, to each of its boundary values on a valid call: the
    explicit examples, run before the random ones, so each such value is tried on every run."""
    calls = []
    for tool in tools:
        schema = tool.input_schema
        defs = schema.get("$defs", {})
        base = _base_object(schema, defs, tool.name, pools)
        calls.append((tool.name, base))
        for name, spec in schema.get("properties", {}).items():
            spec = _resolve(spec, defs)
            calls += [(tool.name, {**base, name: value}) for value in _edges(tool.name, name, spec, pools)]
            items = next((b["items"] for b in _branches(spec) if isinstance(b.get("items"), dict)), None)
            item = _resolve(items, defs) if items else {}
            if item.get("type") == "object":  # the fields of add_messages' messages, one at a time too
                item_base = _base_object(item, defs, tool.name, pools)
                for field, sub in item.get("properties", {}).items():
                    for value in _edges(tool.name, field, _resolve(sub, defs), pools):
                        calls.append((tool.name, {**base, name: [{**item_base, field: value}]}))
                calls.append((tool.name, {**base, name: [item_base] * (spec.get("maxItems", 100) + 1)}))
    return calls


def _strings(value: Any) -> Iterator[str]:
    """Every string in a JSON value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _markers_in(text: str) -> set[str]:
    lowered = text.lower()
    return {leak for leak in LEAKS if leak in text} | {leak for leak in LEAKS_ANY_CASE if leak in lowered}


class Fuzzer:
    def __init__(self, client: Client, tools: list[Any], pools: Pools, canary_id: str) -> None:
        self.client = client
        self.tools = tools
        self.pools = pools
        self.canary_id = canary_id
        self.echoed: set[str] = set()  # leak markers the fuzzer itself sent: seeing them again is echoed data
        self.outcomes: Counter[tuple[str, str]] = Counter()

    def assert_clean(self, text: str, where: str) -> None:
        leaked = _markers_in(text) - self.echoed
        assert not leaked, f"{where} leaked {sorted(leaked)}: {text[:2000]}"

    async def exercise(self, tool: str, arguments: dict[str, Any]) -> None:
        arguments = plain(arguments)
        for text in _strings(arguments):
            self.echoed |= _markers_in(text)
        try:
            with anyio.fail_after(CALL_TIMEOUT):
                result = await self.client.call_tool(tool, arguments)
        except MCPError as exc:
            # A protocol-level rejection of the request is acceptable when it is a clean "invalid params".
            assert exc.code == INVALID_PARAMS, f"{tool}: JSON-RPC error {exc.code}: {exc}"
            self.assert_clean(str(exc), f"{tool} (JSON-RPC error)")
            self.outcomes[tool, "rejected"] += 1
            return
        assert result.content, f"{tool}: a result without content"
        text = result.content[0].text
        if result.is_error:
            self.assert_clean(text, f"{tool} error")
            assert text.strip(), f"{tool}: an empty error text"
            assert len(text) < 400 and "\n" not in text, f"{tool}: the error is not one short line: {text[:2000]}"
            self.outcomes[tool, "error"] += 1
        else:
            assert isinstance(result.structured_content, dict), f"{tool}: no structured content"
            self.assert_clean(text, f"{tool} result")
            self.assert_clean(json.dumps(result.structured_content, ensure_ascii=False), f"{tool} structured")
            self.outcomes[tool, "ok"] += 1
        await self.canary_intact()

    async def canary_intact(self) -> None:
        with anyio.fail_after(CALL_TIMEOUT):
            memory = await call(self.client, "get_memory", memory_id=self.canary_id)
        assert memory["content"] == CANARY, f"the canary changed: {memory}"

    def run(self) -> None:
        """Hypothesis, in this worker thread; each example runs on the event loop that owns the client."""

        def example_call(tool_call: tuple[str, dict[str, Any]]) -> None:
            anyio.from_thread.run(self.exercise, *tool_call)

        for explicit in boundary_calls(self.tools, self.pools):
            example_call = example(explicit)(example_call)
        fuzz = settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            print_blob=False,
            suppress_health_check=list(HealthCheck),
        )(given(tool_calls(self.tools, self.pools))(example_call))
        fuzz()


async def make_pools(client: Client) -> tuple[Pools, str]:
    """The canary and a small world of real rows: sessions, messages, memories of each scope, and cursors."""
    canary = await call(client, "store_memory", content=CANARY)
    chat = await call(client, "create_session", name="fuzz chat", platform="cli")
    other = await call(client, "create_session", name="other chat")
    batch = await call(
        client,
        "add_messages",
        session_id=chat["id"],
        messages=[{"role": "user", "text_content": f"hello {i}"} for i in range(3)],
    )
    named = await call(client, "store_memory", content="Prefers tea", name="drink")
    agent = await call(client, "store_memory", content="Every user likes brevity", scope="agent")
    noted = await call(client, "store_memory", content="Table for two", session_id=chat["id"])
    victim = await call(client, "store_memory", content="A memory the fuzzer may delete")
    history = await call(client, "get_session_history", session_id=chat["id"], limit=1)
    cursors = [
        (await call(client, "list_memories", limit=1))["next_cursor"],
        (await call(client, "list_sessions", limit=1))["next_cursor"],
        history["next_cursor"],
        encode_cursor("memories", o=-5),
        encode_cursor("memories", o="abc"),
        encode_cursor("sessions", o=1.5),
        encode_cursor("sessions", o=2**63 - 1),  # the largest offset the databases take (see OUT_OF_RANGE)
        encode_cursor("history", x=None),
        encode_cursor("history", s=chat["id"], q=-1, d="latest"),
        encode_cursor("history", s=chat["id"], q=2**63 - 1, d="latest"),
        encode_cursor("history", s=chat["id"], q=1.5, d="oldest"),
        encode_cursor("history", s=chat["id"], q=0, d="sideways"),
        encode_cursor("history", s=other["id"], q=1, d="latest"),
        "garbage",
        "%%%",
        "=" * 8,
    ]
    ids = {
        "canary": canary["id"],
        "session": chat["id"],
        "other_session": other["id"],
        "message": batch["messages"][0]["id"],
        "named": named["id"],
        "agent_memory": agent["id"],
        "session_memory": noted["id"],
        "victim": victim["id"],
    }
    return Pools(ids, [c for c in cursors if c], ["drink", "DRINK", "drink ", ""]), canary["id"]


async def test_every_tool_survives_fuzzing(database_url):
    async with connect(database_url) as client:
        tools = (await client.list_tools()).tools
        pools, canary_id = await make_pools(client)
        fuzzer = Fuzzer(client, tools, pools, canary_id)
        await anyio.to_thread.run_sync(fuzzer.run)

        await fuzzer.canary_intact()
        found = await call(client, "search_memories", query=CANARY_WORD)
        assert found["results"][0]["id"] == canary_id, found
        assert (await call(client, "list_sessions", limit=1))["total"] >= 2
    # Every listed tool was called, and reached its happy path at least once (the sweep's valid base call).
    for tool in tools:
        assert fuzzer.outcomes[tool.name, "ok"] >= 1, f"{tool.name} never succeeded: {fuzzer.outcomes}"


# Forged cursors whose position the databases cannot take (past int64, or a boolean where an int belongs) were an
# internal error on both backends (SQLite's "Python int too large to convert to SQLite INTEGER", asyncpg's "value
# out of int64 range"); repository/paging.py bounds them now (is_int64). The fuzz pools leave them out, so they
# are pinned here.
OUT_OF_RANGE = [
    ("list_memories", {"o": 2**63}),
    ("list_sessions", {"o": 10**30}),
    ("get_session_history", {"q": 10**30, "d": "latest"}),
    ("get_session_history", {"q": -(10**30), "d": "oldest"}),
    ("get_session_history", {"q": True, "d": "oldest"}),
]


@pytest.mark.parametrize(("tool", "position"), OUT_OF_RANGE)
async def test_cursor_positions_the_database_cannot_take_are_refused(database_url, tool, position):
    async with connect(database_url) as client:
        sid = (await call(client, "create_session"))["id"]
        await call(client, "add_message", session_id=sid, role="user", text_content="hello")
        if tool == "get_session_history":
            arguments = {"session_id": sid, "cursor": encode_cursor("history", s=sid, **position)}
        else:
            arguments = {"cursor": encode_cursor(tool.removeprefix("list_"), **position)}
        result = await client.call_tool(tool, arguments)
    gc.collect()
    assert result.is_error and "cursor" in result.content[0].text
    assert INTERNAL_ERROR not in result.content[0].text

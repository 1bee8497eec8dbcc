"""Change notifications across replicas: two server processes on one PostgreSQL database, relayed by LISTEN/NOTIFY.

Replica 1 is stateful (AGENT_MEMORY_HTTP_STATELESS=false) so that it serves handshake-era `resources/subscribe`
as well as 2026-07-28 listen streams; replica 2 is stateless (the default), where the writes are made. A
subscriber on replica 1 is told within 5 s of a write through replica 2; another user subscribed on replica 1 is
never told (asserted with a barrier: streams deliver one replica's notices in order). When the relays' database
connections are killed, they reconnect, tell their subscribers that everything they watch may have changed, and
carry later writes again.

Real parts only: the console script as subprocesses, the real PostgreSQL server.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from conftest import create_pg_database, drop_pg_database
from mcp.shared.subscriptions import ResourcesListChanged, ResourceUpdated
from sqlalchemy import text

from repository import Database, ensure_schema
from tests.http_server import SCRIPT, HttpServer, http_server
from tests.mcp_helpers import call, call_error
from tests.test_notifications import PEOPLE, inbox, legacy_http, memory_uri, next_event, subscribe

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.postgres]

WITHIN_S = 5.0
# Servers on the module's already-migrated database, with no rate limit for fast test clients.
QUICK = {"AGENT_MEMORY_HTTP_RATE_LIMIT": "0", "AGENT_MEMORY_AUTO_MIGRATE": "false"}


@pytest.fixture(scope="module")
def shared_database() -> Iterator[str]:
    url = create_pg_database()  # fails (not skips) on CI when PostgreSQL is unreachable

    async def migrate() -> None:
        database = Database(url)
        try:
            await ensure_schema(database.engine)
        finally:
            await database.dispose()

    anyio.run(migrate)
    yield url
    drop_pg_database(url)


@asynccontextmanager
async def replicas(url: str, logs: Path) -> AsyncIterator[tuple[HttpServer, HttpServer]]:
    async with (
        http_server(url, logs / "r1.log", static=PEOPLE, env=QUICK | {"AGENT_MEMORY_HTTP_STATELESS": "false"}) as one,
        http_server(url, logs / "r2.log", static=PEOPLE, env=QUICK) as two,
    ):
        yield one, two


async def test_a_write_on_one_replica_reaches_subscribers_on_the_other(shared_database, tmp_path):
    async with (
        replicas(shared_database, tmp_path) as (one, two),
        one.client("ada") as ada_one,
        one.client("bob") as bob_one,
        two.client("ada") as ada_two,
        two.client("bob") as bob_two,
        inbox() as box,
        legacy_http(one.url, one.tokens["ada"], box) as ada_legacy,
    ):
        pin = await call(ada_two, "store_memory", content="Ada's PIN is 1234", name="pin")
        game = await call(bob_two, "store_memory", content="Bob likes chess", name="game")
        await subscribe(ada_legacy, memory_uri(pin["id"]))
        async with (
            ada_one.listen(resource_subscriptions=[memory_uri(pin["id"])], resources_list_changed=True) as ada_sub,
            bob_one.listen(resource_subscriptions=[memory_uri(pin["id"]), memory_uri(game["id"])]) as bob_sub,
        ):
            assert bob_sub.honored.resource_subscriptions == [memory_uri(game["id"])]
            started = time.monotonic()
            await call(ada_two, "store_memory", content="Ada's PIN is 4321", name="pin")
            assert await next_event(ada_sub) == ResourceUpdated(memory_uri(pin["id"]))
            assert await box.next() == memory_uri(pin["id"])
            assert time.monotonic() - started < WITHIN_S
            await call(ada_two, "delete_memory", memory_id=pin["id"])
            assert [await next_event(ada_sub), await next_event(ada_sub)] == [
                ResourceUpdated(memory_uri(pin["id"])),
                ResourcesListChanged(),
            ]
            await call(bob_two, "store_memory", content="Bob likes go", name="game")  # the barrier
            assert await next_event(bob_sub) == ResourceUpdated(memory_uri(game["id"]))


RELAYS = "FROM pg_stat_activity WHERE application_name = 'agent-memory-mcp change bus' AND datname = current_database()"


async def _relays(url: str, *, kill: bool = False) -> int:
    """How many relay connections the database has (and, with kill, terminate them)."""
    database = Database(url)
    try:
        async with database.engine.connect() as conn:
            what = "pg_terminate_backend(pid)" if kill else "pid"
            return len((await conn.execute(text(f"SELECT {what} {RELAYS}"))).all())
    finally:
        await database.dispose()


async def test_relays_reconnect_after_their_connections_are_killed(shared_database, tmp_path):
    async with (
        replicas(shared_database, tmp_path) as (one, two),
        one.client("ada") as ada_one,
        two.client("ada") as ada_two,
    ):
        note = await call(ada_two, "store_memory", content="Parked on level 3", name="parking")
        async with ada_one.listen(resource_subscriptions=[memory_uri(note["id"])]) as sub:
            with anyio.fail_after(WITHIN_S):  # replica 2 connects its relay with its first write
                while await _relays(shared_database) < 2:
                    await anyio.sleep(0.05)
            assert await _relays(shared_database, kill=True) == 2
            # Notices may have been lost while there was no LISTEN: the subscriber hears "read it again".
            assert await next_event(sub) == ResourceUpdated(memory_uri(note["id"]))
            await call(ada_two, "store_memory", content="Parked on level 4", name="parking")
            assert await next_event(sub) == ResourceUpdated(memory_uri(note["id"]))


async def test_a_command_run_beside_the_servers_tells_their_subscribers(shared_database, tmp_path):
    """delete-user (like import and purge) runs in a process of its own, with no relay: after its writes it tells
    every server that anything may have changed, and they tell their subscribers to re-read."""
    async with (
        http_server(shared_database, tmp_path / "server.log", static=PEOPLE, env=QUICK) as server,
        server.client("ada") as ada,
    ):
        pin = await call(ada, "store_memory", content="Ada's PIN is 1234", name="pin")
        async with ada.listen(resource_subscriptions=[memory_uri(pin["id"])], resources_list_changed=True) as sub:
            command = [SCRIPT, "delete-user", "ada@example.com", "--yes", "--database-url", shared_database]
            done = await anyio.run_process(command, check=False)
            assert done.returncode == 0, done.stderr.decode(errors="replace")
            told = {await next_event(sub), await next_event(sub)}
            assert told == {ResourcesListChanged(), ResourceUpdated(memory_uri(pin["id"]))}
        assert "No memory with id" in await call_error(ada, "get_memory", memory_id=pin["id"])

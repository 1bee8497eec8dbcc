"""PostgreSQL outages: restarts, shutdowns and crashes of a private server, met by the repository and the MCP server.

Each call during an outage either succeeds or gets the one short "unavailable, try again" sentence (never the
generic internal error, never driver text); every acknowledged write survives; the same server works again a few
seconds after the database is back. The PostgreSQL server is our own (initdb into a temporary directory, on a free
port) because the test stops and restarts it: the shared server of the other tests must not be touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from repository.db_errors import UNAVAILABLE

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(120)]

ON_CI = os.environ.get("CI", "").lower() == "true"
RECOVERY_S = 5.0  # "a few seconds": how long the same server may take to serve again once the database is back


def _bindir() -> Path | None:
    """Where initdb and pg_ctl live: `pg_config --bindir`, else the Debian layout."""
    candidates = []
    if shutil.which("pg_config"):
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(Path(found.stdout.strip()))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    return next((path for path in candidates if (path / "initdb").exists() and (path / "pg_ctl").exists()), None)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivatePostgres:
    """One throwaway cluster: data and socket in a temporary directory, run as the `postgres` OS user when we are
    root (PostgreSQL refuses to run as root)."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="agent_memory_pg_"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self.server = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}"

    def _run(self, tool: str, *args: str, check: bool = True) -> int:
        command = [str(self.bindir / tool), *args]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0 or not check, f"{tool} {args} failed: {done.stdout}{done.stderr}"
        return done.returncode

    def ctl(self, *args: str, check: bool = True) -> int:
        return self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), *args, check=check)

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-locale")

    def start(self) -> None:
        # fsync off: a crash of this throwaway cluster may lose data the test never relies on, and it saves seconds.
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c shared_buffers=16MB"
        self.ctl("-w", "-t", "30", "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        self.ctl("-w", "-t", "30", "-m", mode, "stop")

    def restart(self) -> None:
        self.ctl("-w", "-t", "30", "-m", "fast", "restart")

    def ensure_running(self) -> None:
        """Start the server unless it runs: a failed test must not leave the next one without it."""
        if self.ctl("status", check=False) != 0:
            self.start()

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def remove(self) -> None:
        """Stop the cluster whatever state it is in, and delete its files."""
        pid = self.postmaster_pid()
        if pid is not None:
            try:
                self.stop("immediate")
            except AssertionError:
                # pg_ctl could not stop it: the postmaster is our child's child, end it by its own pid.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)

    async def connect(self, database: str = "postgres") -> Any:
        """A plain asyncpg connection: another client of the server, outside the code under test."""
        import asyncpg

        return await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/{database}", timeout=10)

    async def fetch(self, sql: str, database: str = "postgres") -> list[Any]:
        conn = await self.connect(database)
        try:
            return list(await conn.fetch(sql))
        finally:
            await conn.close()

    async def execute(self, sql: str, database: str = "postgres") -> None:
        conn = await self.connect(database)
        try:
            await conn.execute(sql)  # unlike fetch, takes several statements
        finally:
            await conn.close()

    async def new_database(self, name: str) -> str:
        await self.execute(f'CREATE DATABASE "{name}"')
        return f"{self.server}/{name}"


def _missing() -> str | None:
    """Why a private server cannot be run here, if it cannot."""
    if _bindir() is None:
        return "initdb/pg_ctl not found: install the PostgreSQL server binaries"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a 'postgres' OS user to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root without runuser to switch to the 'postgres' OS user"
    return None


@pytest.fixture(scope="module")
def private_pg() -> Iterator[PrivatePostgres]:
    missing = _missing()
    if missing is not None:
        if ON_CI:
            pytest.fail(f"{missing} (CI=true: the PostgreSQL outage tests must run)")
        pytest.skip(missing)
    bindir = _bindir()
    assert bindir is not None
    cluster = PrivatePostgres(bindir)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


async def _terminate_backends(cluster: PrivatePostgres, database: str, where: str = "true") -> int:
    rows = await cluster.fetch(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{database}' AND pid <> pg_backend_pid() AND {where}"
    )
    return len(rows)


async def _unavailable(call: Any) -> str:
    from repository.errors import DatabaseUnavailableError

    with pytest.raises(DatabaseUnavailableError) as caught:
        await call()
    return str(caught.value)


async def test_each_outage_form_is_the_unavailable_error_and_the_pool_recovers(private_pg: PrivatePostgres):
    """The repository on its own: a terminated backend (57P01), a connection lost during COMMIT, a server that
    refuses new connections while it shuts down (57P03), and one that is down (connection refused)."""
    from sqlalchemy import text

    from repository import Database, EngineOptions

    url = await private_pg.new_database("classify")
    steady = Database(url, EngineOptions(idle_ping_s=3600.0))  # pooled connections are used without a check
    eager = Database(url, EngineOptions(idle_ping_s=0.0))  # every checkout pings first (the checkout hook)

    def one(session: Any) -> int:
        return int(session.execute(text("SELECT 1")).scalar())

    def insert_slowly(session: Any) -> None:
        session.execute(text("INSERT INTO slow_commit VALUES (1)"))

    stopping: asyncio.Future[None] | None = None
    try:
        await private_pg.execute(
            "CREATE TABLE slow_commit (id int);"
            "CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_sleep(10); RETURN NULL; END $$;"
            # A deferred trigger runs inside COMMIT: the connection can be cut while COMMIT is in flight.
            "CREATE CONSTRAINT TRIGGER slow AFTER INSERT ON slow_commit DEFERRABLE INITIALLY DEFERRED "
            "FOR EACH ROW EXECUTE FUNCTION slow()",
            database="classify",
        )
        assert await steady.read(one) == 1
        assert await eager.read(one) == 1

        # A backend terminated under a pooled connection (what a fast shutdown does to every session).
        assert await _terminate_backends(private_pg, "classify") >= 1
        assert await _unavailable(lambda: steady.read(one)) == UNAVAILABLE
        assert await steady.read(one) == 1
        assert await eager.read(one) == 1  # pinged, found dead and replaced: the caller sees nothing

        # The connection lost while COMMIT runs: the outcome is unknown, and still only "try again".
        write = asyncio.ensure_future(steady.write(insert_slowly))
        deadline = time.monotonic() + 10
        while not await _terminate_backends(private_pg, "classify", "query LIKE 'COMMIT%' AND state = 'active'"):
            assert time.monotonic() < deadline and not write.done(), "the COMMIT never started"
            await asyncio.sleep(0.05)
        assert await _unavailable(lambda: write) == UNAVAILABLE

        # A smart shutdown waits for open sessions (here one other client's) and refuses new ones: 57P03
        # cannot_connect_now at connect. Our pools are emptied first, or their idle sessions would hold it up.
        await steady.engine.dispose()
        await eager.engine.dispose()
        holder = await private_pg.connect("classify")
        try:
            stopping = asyncio.ensure_future(asyncio.to_thread(private_pg.stop, "smart"))
            await asyncio.sleep(0.5)
            assert await _unavailable(lambda: steady.read(one)) == UNAVAILABLE
            assert await _unavailable(lambda: eager.write(one)) == UNAVAILABLE
        finally:
            await holder.close()
        await stopping
        await asyncio.to_thread(private_pg.start)

        # Down: the pooled connections are dead and nothing listens. The steady pool meets the dead connection and
        # then the refused connect; the eager one pings in its checkout hook, finds it dead, and its reconnect is
        # refused inside the hook.
        assert await steady.read(one) == 1
        assert await eager.write(one) == 1
        await asyncio.to_thread(private_pg.stop, "fast")
        for _ in range(2):
            assert await _unavailable(lambda: steady.read(one)) == UNAVAILABLE
            assert await _unavailable(lambda: eager.write(one)) == UNAVAILABLE
        await asyncio.to_thread(private_pg.start)
        assert await steady.read(one) == 1
        assert await eager.write(one) == 1
    finally:
        await steady.dispose()
        await eager.dispose()
        if stopping is not None:
            await asyncio.gather(stopping, return_exceptions=True)  # with our sessions gone, a smart stop ends
        await asyncio.to_thread(private_pg.ensure_running)


def _unavailable_result(tool: str) -> str:
    # The SDK puts the tool's name before a ToolError's text; after it, nothing but our sentence may appear.
    return f"Error executing tool {tool}: {UNAVAILABLE}"


@dataclass
class Load:
    """What the clients saw: acknowledged writes, unavailable errors, and anything else (a failure)."""

    acknowledged: dict[str, str] = field(default_factory=dict)  # memory id -> content
    unavailable: int = 0
    wrong: list[str] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def record(self, tool: str, result: Any) -> bool:
        if not result.is_error:
            return True
        text = result.content[0].text if result.content else repr(result)
        if text == _unavailable_result(tool):
            self.unavailable += 1
        else:
            self.wrong.append(f"{tool}: {text}")
        return False


async def _writer(client: Any, load: Load, worker: int) -> None:
    n = 0
    while not load.stop.is_set():
        n += 1
        content = f"Outage fact {worker}-{n}: the tea kettle number {worker * 10_000 + n} is blue"
        result = await client.call_tool("store_memory", {"content": content})
        if load.record("store_memory", result):
            load.acknowledged[result.structured_content["id"]] = content
        await asyncio.sleep(0.02)


async def _reader(client: Any, load: Load) -> None:
    while not load.stop.is_set():
        load.record("search_memories", await client.call_tool("search_memories", {"query": "blue tea kettle"}))
        load.record("list_memories", await client.call_tool("list_memories", {"limit": 5}))
        await asyncio.sleep(0.02)


async def _serves_again(client: Any) -> float:
    """Seconds until a write and a read succeed again, calling as a client would."""
    started = time.monotonic()
    while True:
        write = await client.call_tool("store_memory", {"content": "Back after the outage", "name": "probe"})
        read = await client.call_tool("list_memories", {"limit": 1})
        if not write.is_error and not read.is_error:
            return time.monotonic() - started
        for tool, result in (("store_memory", write), ("list_memories", read)):
            if result.is_error:
                assert result.content[0].text == _unavailable_result(tool), result.content[0].text
        assert time.monotonic() - started < RECOVERY_S, "the server did not recover once the database was back"
        await asyncio.sleep(0.1)


async def _listed(client: Any) -> dict[str, str]:
    found: dict[str, str] = {}
    cursor = None
    while True:
        arguments: dict[str, Any] = {"limit": 100} | ({"cursor": cursor} if cursor else {})
        result = await client.call_tool("list_memories", arguments)
        assert not result.is_error, result.content[0].text
        page = result.structured_content
        found.update({m["id"]: m["content"] for m in page["memories"]})
        cursor = page.get("next_cursor")
        if not cursor:
            return found


async def _crash_a_backend(cluster: PrivatePostgres) -> None:
    """Kill one backend with SIGKILL: the postmaster ends every other session (PostgreSQL 14+ says so in a 57P02
    crash_shutdown warning, then closes the socket) and refuses connections while it recovers (57P03)."""
    rows = await cluster.fetch("SELECT pid FROM pg_stat_activity WHERE datname = 'load' AND pid <> pg_backend_pid()")
    assert rows, "the server under test holds no connection to crash"
    os.kill(int(rows[0]["pid"]), signal.SIGKILL)


async def test_the_server_rides_out_restarts_under_load(private_pg: PrivatePostgres):
    """The real server through the SDK's client: writers and readers keep calling while the database restarts,
    stops for a while and crashes; nothing but "unavailable, try again" reaches them, and nothing acknowledged
    is lost."""
    from tests.mcp_helpers import connect

    url = await private_pg.new_database("load")
    load = Load()
    async with connect(url) as client:
        assert not (await client.call_tool("store_memory", {"content": "Before the outage"})).is_error
        workers = [asyncio.ensure_future(_writer(client, load, w)) for w in range(3)]
        workers.append(asyncio.ensure_future(_reader(client, load)))
        try:
            await asyncio.sleep(0.7)
            await asyncio.to_thread(private_pg.restart)
            recovery = [await _serves_again(client)]

            await asyncio.to_thread(private_pg.stop, "fast")
            down_before = load.unavailable
            await asyncio.sleep(1.5)  # calls keep coming while the database is down
            assert load.unavailable > down_before, f"no call met the stopped database: {load.wrong[:3]}"
            await asyncio.to_thread(private_pg.start)
            recovery.append(await _serves_again(client))

            await asyncio.sleep(0.5)
            await _crash_a_backend(private_pg)
            recovery.append(await _serves_again(client))
            await asyncio.sleep(0.5)
        finally:
            load.stop.set()
            await asyncio.gather(*workers, return_exceptions=True)
        assert not load.wrong, load.wrong[:5]
        for worker in workers:
            assert worker.exception() is None, worker.exception()
        stored = await _listed(client)
    missing = {id_: content for id_, content in load.acknowledged.items() if stored.get(id_) != content}
    assert not missing, f"{len(missing)} acknowledged writes are gone: {list(missing.values())[:3]}"
    assert len(load.acknowledged) > 20 and load.unavailable > 0, (len(load.acknowledged), load.unavailable)
    assert max(recovery) < RECOVERY_S, recovery

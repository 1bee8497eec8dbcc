"""Token verification cost per request, in process: the server's CredentialVerifier on each kind of credential.

    .venv/bin/python bench/auth_cost.py [--calls 2000]

Static token; managed token answered from the 5 s cache, and checked in the database (cache off) on SQLite and
PostgreSQL; JWTs (RS256 and ES256) from a local issuer (tests/oauth_issuer.py), keys already fetched. Prints p50
and p95 in microseconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from _common import ROOT, pct

sys.path.insert(0, str(ROOT))

from mcp_server import auth
from mcp_server.auth import CredentialVerifier
from mcp_server.config import Settings
from mcp_server.oauth import JwtVerifier
from mcp_server.state import AppState, StateSlot
from repository.scratch import create_scratch_database, drop_scratch_database
from tests.oauth_issuer import LocalIssuer


async def timed(verifier: CredentialVerifier, token: str, calls: int) -> tuple[float, float]:
    assert await verifier.verify_token(token) is not None, "the token must verify"
    took = []
    for _ in range(calls):
        started = time.perf_counter()
        await verifier.verify_token(token)
        took.append((time.perf_counter() - started) * 1e6)
    return statistics.median(took), pct(took, 95)


async def managed(url: str, calls: int) -> dict[str, tuple[float, float]]:
    settings = Settings(database_url=url, transport="streamable-http")
    slot = StateSlot()
    slot.state = AppState(settings, authenticated=True)
    operations = await slot.state.open_now()
    try:
        secret, _ = await operations.credentials.create("bench@example.com")
        verifier = CredentialVerifier(settings, slot)
        cached = await timed(verifier, secret, calls)
        saved, auth.CACHE_S = auth.CACHE_S, -1.0  # every call goes to the database
        try:
            checked = await timed(verifier, secret, calls // 4)
        finally:
            auth.CACHE_S = saved
        return {"cached": cached, "database": checked}
    finally:
        await slot.state.close()


async def run(calls: int) -> None:
    rows: dict[str, tuple[float, float]] = {}
    static_settings = Settings(http_tokens={"bench-static-token": "bench@example.com"}, transport="streamable-http")
    rows["static token"] = await timed(CredentialVerifier(static_settings, StateSlot()), "bench-static-token", calls)
    with tempfile.TemporaryDirectory() as tmp:
        for kind, value in (await managed(f"sqlite+aiosqlite:///{Path(tmp) / 'a.db'}", calls)).items():
            rows[f"managed token, {kind} (SQLite)"] = value
    url = await create_scratch_database(prefix="bench_auth")
    try:
        for kind, value in (await managed(url, calls)).items():
            rows[f"managed token, {kind} (PostgreSQL)"] = value
    finally:
        await drop_scratch_database(url)
    with LocalIssuer(audience="http://127.0.0.1:1/mcp") as issuer:
        jwt = JwtVerifier(issuer.issuer, "http://127.0.0.1:1/mcp", refresh_interval_s=0.5)
        verifier = CredentialVerifier(Settings(transport="streamable-http"), StateSlot(), jwt)
        rows["JWT RS256"] = await timed(verifier, issuer.mint({"sub": "ada"}), calls)
        es = issuer.rotate("ES256")
        await anyio.sleep(0.6)  # a new kid is fetched at most once per refresh interval
        rows["JWT ES256"] = await timed(verifier, issuer.mint({"sub": "ada"}, kid=es), calls)
    print("| credential | p50 µs | p95 µs |\n|---|---|---|")
    for label, (p50, p95) in rows.items():
        print(f"| {label} | {p50:.0f} | {p95:.0f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    anyio.run(run, parser.parse_args().calls)
    return 0


if __name__ == "__main__":
    sys.exit(main())

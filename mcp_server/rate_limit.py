"""A per-credential request rate limit at the HTTP edge: a token bucket per bearer token (or per client address
for requests without one), answered with 429 and Retry-After before anything is parsed.

Per process: each replica limits on its own, so N replicas behind a balancer admit up to N times the rate.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import OrderedDict
from typing import Any

# Buckets kept at once: the least recently used are forgotten first (a forgotten bucket starts full again).
MAX_BUCKETS = 10_000


# JSON-RPC's range for implementation-defined server errors.
RATE_LIMITED = -32029


class TokenBucket:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.level = burst
        self.at = time.monotonic()

    def take(self) -> float:
        """0 if a request may go now, else the seconds until one may."""
        now = time.monotonic()
        self.level = min(self.burst, self.level + (now - self.at) * self.rate)
        self.at = now
        if self.level >= 1:
            self.level -= 1
            return 0.0
        return (1 - self.level) / self.rate


class RateLimit:
    """ASGI middleware: `rate` requests a second per credential, bursts of twice that."""

    def __init__(self, app: Any, rate: float) -> None:
        self.app = app
        self.rate = rate
        self._buckets: OrderedDict[bytes, TokenBucket] = OrderedDict()

    def _key(self, scope: dict[str, Any]) -> bytes:
        for name, value in scope.get("headers", []):
            if name.lower() == b"authorization":
                # A digest, so the secret itself is not kept in memory longer than the request.
                return hashlib.sha256(value).digest()
        client = scope.get("client") or ("", 0)
        return b"addr:" + str(client[0]).encode()

    def _bucket(self, key: bytes) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, 2 * self.rate)
            while len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or self.rate <= 0:
            await self.app(scope, receive, send)
            return
        wait = self._bucket(self._key(scope)).take()
        if wait == 0:
            await self.app(scope, receive, send)
            return
        retry = max(1, math.ceil(wait))
        # A JSON-RPC error body, so an MCP client shows this sentence instead of a bare status (the SDK's client
        # surfaces a JSON-RPC error it finds in a non-2xx response); plain HTTP clients have the status and header.
        body = json.dumps(
            {
                "jsonrpc": "2.0",
                "id": None,
                "error": {"code": RATE_LIMITED, "message": f"Too many requests: slow down and retry in {retry} s."},
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"retry-after", str(retry).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

"""A round-robin HTTP reverse proxy for tests: several replicas of a server behind one address.

    with RoundRobinProxy(["http://127.0.0.1:8001", "http://127.0.0.1:8002"]) as proxy:
        ...  # talk to proxy.url + "/mcp"
        assert all(proxy.counts)  # every upstream answered at least one request

Each REQUEST (not each TCP connection: clients keep connections alive) goes to the next upstream in turn, the way
a load balancer without session affinity spreads traffic. The request's method, path, query string, headers
(Authorization, Mcp-Session-Id, MCP-Protocol-Version, Accept, Content-Type, ...) and body are passed on unchanged,
except hop-by-hop headers and Host (the upstream's own). The response's status, headers and body come back as the
upstream sends them: the body is relayed chunk by chunk, so Server-Sent Events streams stay streams. When the
downstream client goes away, the upstream request is cancelled. An unreachable upstream gives a 502.

The proxy is a small raw ASGI app served by uvicorn on its own event loop in a background thread, on a socket bound
to a free loopback port before the thread starts (no port race). `counts[i]` is how many requests upstream i
received; `log` has one `Hit` per request, in order (a request takes its turn once its body has arrived): the
upstream, the HTTP method and path, the JSON-RPC method(s) of the body and the upstream's status. Both are written
by the proxy thread only; `reset_counts()` clears them between scenarios (while no request is in flight).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import anyio
import httpx2
import uvicorn

# Meaningful for one connection only (RFC 9110 section 7.6.1), so never forwarded; Host is the upstream's own.
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)

# httpx2 sets both for the upstream request: Host from the upstream's URL, Content-Length from the body.
_NOT_FORWARDED = _HOP_BY_HOP | {b"host", b"content-length"}


@dataclass
class Hit:
    """One proxied request."""

    upstream: int
    method: str
    path: str
    rpc: str | None  # the JSON-RPC method ("a,b" for a batch), None when the body is not a JSON-RPC message
    status: int | None = None  # the upstream's status; None until it answers (or when it was unreachable)


def _rpc_method(body: bytes) -> str | None:
    try:
        message = json.loads(body)
    except ValueError:
        return None
    messages = message if isinstance(message, list) else [message]
    methods = [m.get("method") for m in messages if isinstance(m, dict) and isinstance(m.get("method"), str)]
    return ",".join(methods) or None


class RoundRobinProxy:
    """Start with `start()` (or `with`), stop with `stop()`; `url` is the proxy's base URL, without a path."""

    def __init__(self, upstreams: list[str]) -> None:
        if not upstreams:
            raise ValueError("a proxy needs at least one upstream")
        self.upstreams = [u.rstrip("/") for u in upstreams]
        self.counts = [0] * len(self.upstreams)
        self.log: list[Hit] = []
        self._turn = 0
        self._http: httpx2.AsyncClient | None = None
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        # The upstream's Date and Server headers are relayed: uvicorn must not add its own.
        config = uvicorn.Config(
            self,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=2,
            server_header=False,
            date_header=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, args=([self._socket],), daemon=True)

    # --- lifecycle (test thread) ---

    def start(self, timeout: float = 10.0) -> RoundRobinProxy:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the proxy did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> RoundRobinProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset_counts(self) -> None:
        self.counts = [0] * len(self.upstreams)
        self.log = []

    # --- the ASGI app (proxy thread) ---

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._proxy(scope, receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # No read timeout: an SSE stream may stay quiet for as long as the server likes.
                self._http = httpx2.AsyncClient(timeout=httpx2.Timeout(10.0, read=None))
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._http is not None:
                    await self._http.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _proxy(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = bytearray()
        while True:  # request bodies here are small JSON-RPC messages: read them whole
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        index = self._turn % len(self.upstreams)  # the turn is taken once the request is complete
        self._turn += 1
        self.counts[index] += 1
        hit = Hit(index, scope["method"], scope["path"], _rpc_method(bytes(body)))
        self.log.append(hit)

        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _NOT_FORWARDED]
        target = self.upstreams[index] + scope["path"]
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("latin-1")
        assert self._http is not None
        request = self._http.build_request(scope["method"], target, headers=headers, content=bytes(body))

        async with anyio.create_task_group() as group:

            async def cancel_on_disconnect() -> None:
                # After the request body, the next message is http.disconnect: the client left (or, once the
                # response is complete, the cycle is over). Either way the relay below has nothing left to do.
                while (await receive())["type"] != "http.disconnect":
                    pass
                group.cancel_scope.cancel()

            group.start_soon(cancel_on_disconnect)
            await self._relay(request, send, hit)
            group.cancel_scope.cancel()

    async def _relay(self, request: httpx2.Request, send: Any, hit: Hit) -> None:
        assert self._http is not None
        try:
            response = await self._http.send(request, stream=True)
        except httpx2.HTTPError as exc:
            text = f"upstream {request.url} failed: {exc!r}".encode()
            await send({"type": "http.response.start", "status": 502, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": text})
            return
        hit.status = response.status_code
        try:
            headers = [(k, v) for k, v in response.headers.raw if k.lower() not in _HOP_BY_HOP]
            await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
            with contextlib.suppress(httpx2.HTTPError):  # an upstream dying mid-stream ends the body early
                async for chunk in response.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()

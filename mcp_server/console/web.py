"""The console's HTTP layer: security headers, loopback Host checks, the static pages, and the JSON API's
authentication and error translation (one sentence and a status per failure, never a traceback, SQL or driver text).
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from mcp_server.auth import Credential, CredentialVerifier, credential_of
from mcp_server.config import Settings
from mcp_server.errors import INTERNAL_ERROR, describe_validation_error
from mcp_server.state import DatabaseOpenError
from repository.errors import (
    ConflictError,
    DatabaseUnavailableError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    ReadOnlyError,
    RepositoryError,
    SchemaVersionError,
)
from repository.models import Actor

if TYPE_CHECKING:
    from repository.operations import Operations

log = logging.getLogger(__name__)

PREFIX = "/console"
# No inline script or style anywhere, nothing from another origin, never framed.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
# The API's answers are one person's memories: never kept by a browser or a proxy.
NO_STORE = {"cache-control": "no-store"}
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
STATIC = {
    f"{PREFIX}/": ("index.html", "text/html; charset=utf-8"),
    f"{PREFIX}/app.js": ("app.js", "text/javascript; charset=utf-8"),
    f"{PREFIX}/style.css": ("style.css", "text/css; charset=utf-8"),
}
UNAUTHENTICATED = "Sign in: send the header 'Authorization: Bearer <token>' with a valid token."


@dataclass(frozen=True)
class Caller:
    """Who an API request acts for: the operations, the actor, and the credential behind it."""

    ops: Operations
    actor: Actor
    credential: Credential


class HttpProblem(Exception):
    """A request the API refuses before any operation runs (no credential, wrong body type, too large)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class Created(dict[str, Any]):
    """A reply that made something new (201)."""


Handler = Callable[[Request, Caller], Awaitable[dict[str, Any]]]

# Most specific first: ReadOnlyError and the rest are RepositoryErrors too.
_STATUS: tuple[tuple[type[BaseException], int, str], ...] = (
    (NotFoundError, 404, "not_found"),
    (InvalidInputError, 400, "invalid_input"),
    (ConflictError, 409, "conflict"),
    (PermissionDeniedError, 403, "forbidden"),
    (ReadOnlyError, 403, "read_only"),
    (DatabaseUnavailableError, 503, "unavailable"),
    (SchemaVersionError, 503, "unavailable"),
    (DatabaseOpenError, 503, "unavailable"),
    (RepositoryError, 400, "invalid_input"),
)


def _problem(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": code, "message": message}, status_code=status, headers={**NO_STORE, **(headers or {})}
    )


def error_response(exc: Exception) -> JSONResponse:
    """The one translation of a failure into an API answer."""
    if isinstance(exc, HttpProblem):
        extra = {"www-authenticate": "Bearer"} if exc.status == 401 else None
        return _problem(exc.status, exc.code, str(exc), extra)
    if isinstance(exc, ValidationError):
        return _problem(400, "invalid_input", describe_validation_error(exc, "request"))
    for kind, status, code in _STATUS:
        if isinstance(exc, kind):
            return _problem(status, code, str(exc))
    log.exception("unexpected error in the console API", exc_info=exc)
    return _problem(500, "internal", INTERNAL_ERROR)


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class ConsoleContext:
    """What every API request needs: the settings and the server's credential verifier (and through it, the
    running server's state)."""

    def __init__(self, settings: Settings, verifier: CredentialVerifier) -> None:
        self.settings = settings
        self.verifier = verifier

    async def caller(self, request: Request) -> Caller:
        # The same verifier as /mcp: on an open loopback server `OpenLoopback` has already given a request without
        # a token the per-process credential of the configured user, exactly as it does for the tools.
        token = _bearer(request)
        access = await self.verifier.verify_token(token) if token else None
        credential = credential_of(access) if access is not None else None
        if credential is None:
            raise HttpProblem(401, "unauthenticated", UNAUTHENTICATED)
        ops, actor = await self.verifier.slot.get().acting(
            credential.user, credential.agent, read_only=credential.read_only
        )
        return Caller(ops, actor, credential)


def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> Response:
        context: ConsoleContext = request.app.state.console
        try:
            body = await handler(request, await context.caller(request))
        except Exception as exc:  # noqa: BLE001 - every failure becomes one safe answer (error_response)
            return error_response(exc)
        return JSONResponse(body, status_code=201 if isinstance(body, Created) else 200, headers=NO_STORE)

    return run


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object, refusing other content types (no form posts from other sites) and bodies over
    the server's body limit."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise HttpProblem(415, "unsupported_media_type", "Send the body as JSON (Content-Type: application/json).")
    limit = request.app.state.console.settings.max_body_bytes()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HttpProblem(413, "too_large", f"The body is larger than the server's limit of {limit} bytes.")
        chunks.append(chunk)
    try:
        data = json.loads(b"".join(chunks))
    except (ValueError, UnicodeDecodeError):
        raise HttpProblem(400, "invalid_input", "The body is not valid JSON: send a JSON object.") from None
    if not isinstance(data, dict):
        raise HttpProblem(400, "invalid_input", "The body must be a JSON object.")
    return data


def _hostname(host: str) -> str:
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


class Guard:
    """ASGI: the security headers on every console answer; on a loopback server also a Host (DNS rebinding) and,
    for writes, an Origin check, as the SDK does for /mcp."""

    def __init__(self, app: Any, loopback: bool) -> None:
        self.app = app
        self.loopback = loopback

    def _refusal(self, scope: dict[str, Any]) -> tuple[int, bytes] | None:
        headers = {k.lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if _hostname(headers.get(b"host", "")).lower() not in LOOPBACK_NAMES:
            return 421, b"This console answers only to 127.0.0.1, localhost or [::1]."
        origin = headers.get(b"origin")
        if origin is not None and scope["method"] not in ("GET", "HEAD"):
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or (parts.hostname or "") not in LOOPBACK_NAMES:
                return 403, b"Requests from another site are refused."
        return None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        refusal = self._refusal(scope) if self.loopback else None
        if refusal is not None:
            start = {"type": "http.response.start", "status": refusal[0]}
            await send({**start, "headers": [(b"content-type", b"text/plain; charset=utf-8"), *SECURITY_HEADERS]})
            await send({"type": "http.response.body", "body": refusal[1]})
            return

        async def send_secured(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, receive, send_secured)


def _static_routes() -> list[Route]:
    folder = resources.files("mcp_server.console") / "static"
    routes = []
    for path, (name, media_type) in STATIC.items():
        content = (folder / name).read_bytes()

        async def serve(_: Request, content: bytes = content, media_type: str = media_type) -> Response:
            # no-cache: revalidated on each visit, so an upgraded server never runs yesterday's script.
            return Response(content, media_type=media_type, headers={"cache-control": "no-cache"})

        routes.append(Route(path, serve, methods=["GET", "HEAD"]))

    async def home(_: Request) -> Response:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    async def missing(_: Request) -> Response:
        return PlainTextResponse("Not found.", status_code=404)

    return [Route(PREFIX, home, methods=["GET", "HEAD"]), *routes, Route(PREFIX + "/{rest:path}", missing)]


def console_app(settings: Settings, verifier: CredentialVerifier, routes: list[tuple[str, str, Handler]]) -> Guard:
    """The console's ASGI app (its paths include the /console prefix), with these API routes."""
    api = [Route(f"{PREFIX}/api{path}", endpoint(handler), methods=[method]) for method, path, handler in routes]

    async def unknown(_: Request) -> Response:
        return _problem(404, "not_found", "No such console API endpoint.")

    app = Starlette(routes=[*api, Route(PREFIX + "/api/{rest:path}", unknown), *_static_routes()])
    app.state.console = ConsoleContext(settings, verifier)
    loopback = settings.host == "localhost" or _is_loopback_ip(settings.host)
    return Guard(app, loopback)


def _is_loopback_ip(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

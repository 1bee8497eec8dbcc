"""A local OAuth issuer for tests: a real HTTP server on 127.0.0.1 serving a discovery document and a JWKS, and a
minter of tokens signed with its keys (generated here, never written to disk).

    with LocalIssuer(audience="http://127.0.0.1:8000/mcp") as issuer:
        token = issuer.mint({"sub": "ada", "scope": "memory"})

API:
    LocalIssuer(*, path="", metadata="openid", audience=None)
        path      issuer path after the host ("/tenant-a"), for RFC 8414 path insertion
        metadata  "openid": serves {issuer}/.well-known/openid-configuration;
                  "oauth": serves only the RFC 8414 /.well-known/oauth-authorization-server{path}
        audience  the `aud` that mint() puts in tokens that do not set one
    start() -> self, stop(), or use it as a context manager. stop() then start() serves again on the same port
        (an outage). Pytest fixture: `with LocalIssuer() as issuer: yield issuer`. An issuer never started still
        mints tokens (and holds its port until stop()).
    issuer         the `iss` value and discovery base, http://127.0.0.1:<port><path> (known from construction)
    kid            the current signing key's kid; starts as an RSA RS256 key
    rotate(alg="RS256", *, advertise_alg=True) -> kid
                   publish a new key (RSA for RS*/PS*, EC on the algorithm's curve for ES*, Ed25519 for EdDSA) and
                   make it current; earlier keys stay published. advertise_alg=False leaves `alg` out of its JWK.
    mint(claims, *, key=None, kid=..., alg=None, headers=None) -> str
                   claims: `iss` (this issuer), `aud` (the audience), `iat` (now), `exp` (now + 300) are added
                   unless given; a claim given as None is left out (e.g. {"exp": None}).
                   key: a kid of a published key (default: the current one), a private key object of your own
                   (a signature the JWKS cannot verify), or bytes (an HMAC secret, for HS* forgeries).
                   kid: the header's kid (default: that of the published key, or the current kid for a key of your
                   own); None leaves it out. alg: default the key's algorithm; "none" makes an unsigned token.
                   headers: extra header fields, merged last; a field given as None is left out.
    jwks() -> dict                  the JWKS document it serves (every key, public halves)
    public_pem(kid=None) -> bytes   a published key's public half as PEM (for HS256-with-the-public-key forgeries)
    override(path, document)        serve `document` at `path` instead: a JSON value, bytes served as they are,
                                    or None for a 404; override(path) serves the issuer's own document again
    requests       paths served so far, in order: requests.count(issuer.jwks_path) counts JWKS fetches
    jwks_path, metadata_path        the paths this issuer serves
    generate_key(alg) (module)      a fresh private key for `alg`
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from types import EllipsisType, TracebackType
from typing import Any, Literal

import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import get_default_algorithms

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
_CURVES = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1, "ES512": ec.SECP521R1}


def generate_key(alg: str) -> PrivateKey:
    """A new private key suited to `alg` (RS*/PS*: RSA 2048, ES*: the algorithm's curve, EdDSA: Ed25519)."""
    if alg in _CURVES:
        return ec.generate_private_key(_CURVES[alg]())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _algorithm_for(key: PrivateKey) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}[key.curve.name]
    return "EdDSA" if isinstance(key, ed25519.Ed25519PrivateKey) else "RS256"


def _public_pem(key: PrivateKey) -> bytes:
    public = key.public_key()
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class LocalIssuer:
    """See the module docstring."""

    def __init__(
        self, *, path: str = "", metadata: Literal["openid", "oauth"] = "openid", audience: str | None = None
    ) -> None:
        self._path = path.rstrip("/")
        self._metadata = metadata
        self.audience = audience
        self.requests: list[str] = []
        self._overrides: dict[str, Any] = {}
        self._keys: dict[str, tuple[PrivateKey, str, bool]] = {}
        self.kid = ""
        self.rotate("RS256")
        # Bound now, and held until start() listens on it: `issuer` is known before start() and no other process
        # can take the port in between.
        self._sock: socket.socket | None = self._bind(0)
        self.port: int = self._sock.getsockname()[1]
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}{self._path}"

    @property
    def jwks_path(self) -> str:
        return f"{self._path}/jwks"

    @property
    def metadata_path(self) -> str:
        if self._metadata == "openid":
            return f"{self._path}/.well-known/openid-configuration"
        return f"/.well-known/oauth-authorization-server{self._path}"

    def rotate(self, alg: str = "RS256", *, advertise_alg: bool = True) -> str:
        kid = f"{alg.lower()}-{len(self._keys) + 1}"
        self._keys[kid] = (generate_key(alg), alg, advertise_alg)
        self.kid = kid
        return kid

    def public_pem(self, kid: str | None = None) -> bytes:
        return _public_pem(self._keys[kid or self.kid][0])

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, (private, alg, advertise_alg) in self._keys.items():
            jwk = get_default_algorithms()[alg].to_jwk(private.public_key(), as_dict=True)
            jwk.update({"kid": kid, "use": "sig"} | ({"alg": alg} if advertise_alg else {}))
            keys.append(jwk)
        return {"keys": keys}

    def mint(
        self,
        claims: dict[str, Any],
        *,
        key: str | PrivateKey | bytes | None = None,
        kid: str | EllipsisType | None = ...,
        alg: str | None = None,
        headers: dict[str, Any] | None = None,
    ) -> str:
        now = int(time.time())
        defaults = {"iss": self.issuer, "aud": self.audience, "iat": now, "exp": now + 300}
        payload = {name: value for name, value in (defaults | claims).items() if value is not None}
        if key is None or isinstance(key, str):
            published = key or self.kid
            signing_key: PrivateKey | bytes = self._keys[published][0]
            alg = alg or self._keys[published][1]
        else:
            published, signing_key = self.kid, key
            alg = alg or ("HS256" if isinstance(key, bytes) else _algorithm_for(key))
        header: dict[str, Any] = {"typ": "JWT", "alg": alg, "kid": published if kid is ... else kid}
        header = {name: value for name, value in (header | (headers or {})).items() if value is not None}
        # Assembled here rather than by jwt.encode, which refuses what forgeries need: a non-string kid, `none`
        # alongside a key, a PEM public key as an HMAC secret.
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}".encode()
        if alg == "none":
            signature = b""
        elif alg.startswith("HS"):
            secret = signing_key if isinstance(signing_key, bytes) else _public_pem(signing_key)
            signature = hmac.new(secret, signing_input, getattr(hashlib, f"sha{alg[2:]}")).digest()
        else:
            algorithm = get_default_algorithms()[alg]
            signature = algorithm.sign(signing_input, algorithm.prepare_key(signing_key))
        return f"{signing_input.decode()}.{_b64(signature)}"

    def override(self, path: str, document: Any = ...) -> None:
        if document is ...:
            self._overrides.pop(path, None)
        else:
            self._overrides[path] = document

    def _documents(self) -> dict[str, Any]:
        base = f"http://127.0.0.1:{self.port}"
        metadata = {
            "issuer": self.issuer,
            "jwks_uri": f"{base}{self.jwks_path}",
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": sorted({alg for _, alg, _ in self._keys.values()}),
        }
        return {self.metadata_path: metadata, self.jwks_path: self.jwks()} | self._overrides

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.requests.append(scope["path"])
        document = self._documents().get(scope["path"]) if scope["method"] == "GET" else None
        if isinstance(document, bytes):
            body = document
        else:
            body = json.dumps(document if document is not None else {"error": "not_found"}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200 if document is not None else 404, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _bind(port: int) -> socket.socket:
        sock = socket.socket()
        # SO_REUSEADDR: a restart after stop() binds the same port again although old connections linger.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # TCP_NODELAY (inherited by accepted sockets): the response goes out as two writes, and Nagle's algorithm
        # would hold the second until the client's delayed ACK, stalling every keep-alive request.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", port))
        return sock

    def start(self) -> LocalIssuer:
        if self._server is not None:
            return self
        sock = self._sock or self._bind(self.port)
        sock.listen()
        config = uvicorn.Config(
            self._app,
            interface="asgi3",
            lifespan="off",
            ws="none",
            http="h11",
            log_config=None,
            log_level="warning",
            access_log=False,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the local OAuth issuer did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()
        self._server, self._thread, self._sock = None, None, None

    def __enter__(self) -> LocalIssuer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

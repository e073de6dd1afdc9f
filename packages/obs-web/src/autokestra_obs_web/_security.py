"""What makes the console safe to expose: response headers, the token, the login session.

Every response carries a Content-Security-Policy without ``'unsafe-inline'`` (scripts and
styles come only from the vendored static files), ``X-Content-Type-Options: nosniff`` and
``Referrer-Policy: no-referrer``. With a token (``--token-file``), every request but
``/healthz``, ``/login`` and the static files needs ``Authorization: Bearer <token>`` or the
session cookie that ``/login`` sets (HttpOnly, SameSite=Strict); the cookie holds a keyed
digest of the token, never the token itself.

    token = read_token_file(Path("console.token"))     # refuses a file readable by others
    app = SecurityMiddleware(app, token=token)
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import stat
from pathlib import Path

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from autokestra_obs_schema import AutokestraError

#: The policy: nothing inline, nothing from elsewhere, no framing, forms post here only.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
#: The session cookie's name.
SESSION_COOKIE = "autokestra_session"
#: Paths reachable without a token: health checks, the login form, the stylesheet and script.
_OPEN_PATHS = ("/healthz", "/login")
_OPEN_PREFIXES = ("/static/",)


class TokenFileError(AutokestraError):
    """The token file cannot be used (missing, empty, or readable by others)."""


class RefusedListen(AutokestraError):
    """A non-loopback address without a token file (DESIGN.md §7)."""

    def __init__(self, address: str) -> None:
        super().__init__(f"refusing to listen on {address} without --token-file")
        self.address = address


def read_token_file(path: Path) -> str:
    """Read the console token: the file's first line, from a file only its owner can read.

    Raises:
        TokenFileError: missing or unreadable file, a mode other than 0600 (or stricter),
            or no token in it.
    """
    try:
        info = path.stat()
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenFileError(f"cannot read token file {path}: {exc}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise TokenFileError(f"token file {path} is not a regular file")
    if info.st_mode & 0o077:
        raise TokenFileError(
            f"token file {path} has mode {stat.S_IMODE(info.st_mode):04o}; it must be 0600"
        )
    token = text.strip().splitlines()[0].strip() if text.strip() else ""
    if len(token) < 16:
        raise TokenFileError(f"token file {path} must hold a token of at least 16 characters")
    return token


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) only accepts local connections."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve anywhere


def session_value(token: str) -> str:
    """The cookie value of a session: a keyed digest, so the cookie never holds the token."""
    return hmac.new(token.encode(), b"autokestra-console-session", hashlib.sha256).hexdigest()


def new_token() -> str:
    """A fresh random token (for docs and tests: ``python -c`` prints one)."""
    return os.urandom(24).hex()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _cookie(scope: Scope, name: str) -> str | None:
    raw = _header(scope, b"cookie")
    if raw is None:
        return None
    for part in raw.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def authorized(scope: Scope, token: str) -> bool:
    """Whether the request carries the bearer token or a valid session cookie."""
    header = _header(scope, b"authorization")
    if header is not None and header.startswith("Bearer "):
        return hmac.compare_digest(header[7:].strip().encode(), token.encode())
    cookie = _cookie(scope, SESSION_COOKIE)
    return cookie is not None and hmac.compare_digest(cookie, session_value(token))


class SecurityMiddleware:
    """ASGI middleware: security headers on every response; the token check when set.

    A plain ASGI middleware rather than Starlette's ``BaseHTTPMiddleware``, so the SSE stream
    passes through unbuffered.

    Args:
        app: the application to protect.
        token: the console token, or None for an open (loopback) console.
        open_prefixes: more path prefixes served without the token, for routes that
            authenticate their requests themselves (the signed webhook endpoint).
    """

    def __init__(
        self, app: ASGIApp, *, token: str | None, open_prefixes: tuple[str, ...] = ()
    ) -> None:
        self._app = app
        self._token = token
        self._open_prefixes = _OPEN_PREFIXES + open_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"server"]
                headers.extend(SECURITY_HEADERS)
                message = {**message, "headers": headers}
            await send(message)

        path = str(scope.get("path", ""))
        public = path in _OPEN_PATHS or path.startswith(self._open_prefixes)
        if self._token is not None and not public and not authorized(scope, self._token):
            await self._refuse(path, send_with_headers)
            return
        await self._app(scope, receive, send_with_headers)

    @staticmethod
    async def _refuse(path: str, send: Send) -> None:
        """401 for the API and streams; a redirect to the login form for pages."""
        if path.startswith("/api/") or path == "/metrics":
            body = b'{"error": "unauthorized"}'
            headers = [
                (b"content-type", b"application/json"),
                (b"www-authenticate", b"Bearer"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ]
            status = 401
        else:
            body = b""
            headers = [(b"location", b"/login"), (b"content-length", b"0")]
            status = 303
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

"""Headers, token and session rules (DESIGN.md §7), and the token file and address checks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from autokestra_obs_web import (
    CONTENT_SECURITY_POLICY,
    SESSION_COOKIE,
    RefusedListen,
    TokenFileError,
    check_listen,
    create_app,
    is_loopback,
    parse_listen,
    read_token_file,
)

if TYPE_CHECKING:
    from conftest import Database

TOKEN = "test-token-0123456789abcdef"


class TestHeaders:
    def test_every_response_carries_the_security_headers(
        self, client: TestClient, database: Database
    ) -> None:
        """Pages, API, stream, static files, errors: CSP, nosniff, no-referrer."""
        for url in (
            "/",
            f"/executions/{database.success}",
            "/api/executions",
            f"/api/executions/{database.success}/logs/stream",
            "/static/console.js",
            "/healthz",
            "/executions/nope",
            "/no/such/page",
        ):
            response = client.get(url)
            assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["referrer-policy"] == "no-referrer"

    def test_csp_forbids_inline_script_and_style(self) -> None:
        """The policy allows only same-origin scripts and styles, never 'unsafe-inline'."""
        assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
        assert "'unsafe-eval'" not in CONTENT_SECURITY_POLICY
        assert "script-src 'self'" in CONTENT_SECURITY_POLICY
        assert "style-src 'self'" in CONTENT_SECURITY_POLICY

    def test_healthz_answers_200(self, client: TestClient) -> None:
        """/healthz answers 200."""
        assert client.get("/healthz").status_code == 200


class TestToken:
    def test_requests_without_token_are_refused(
        self, token_client: TestClient, database: Database
    ) -> None:
        """API and stream: 401 JSON; pages: a redirect to /login; health and static open."""
        for url in (
            "/api/executions",
            f"/api/executions/{database.success}",
            f"/api/executions/{database.success}/logs/stream",
        ):
            response = token_client.get(url)
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == "Bearer"
            assert database.success not in response.text
        page = token_client.get("/", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"] == "/login"
        assert token_client.get("/healthz").status_code == 200
        assert token_client.get("/static/console.css").status_code == 200

    def test_bearer_token_opens_everything(
        self, token_client: TestClient, database: Database
    ) -> None:
        """Authorization: Bearer <token> is accepted; a wrong token is not."""
        good = {"Authorization": f"Bearer {TOKEN}"}
        assert token_client.get("/api/executions", headers=good).status_code == 200
        assert token_client.get("/", headers=good).status_code == 200
        bad = {"Authorization": f"Bearer {TOKEN}x"}
        assert token_client.get("/api/executions", headers=bad).status_code == 401

    def test_login_sets_a_strict_httponly_session(self, token_client: TestClient) -> None:
        """/login with the token sets an HttpOnly SameSite=Strict cookie that opens pages."""
        assert token_client.get("/login").status_code == 200
        wrong = token_client.post("/login", data={"token": "nope"}, follow_redirects=False)
        assert wrong.status_code == 401 and SESSION_COOKIE not in wrong.headers.get(
            "set-cookie", ""
        )
        response = token_client.post("/login", data={"token": TOKEN}, follow_redirects=False)
        assert response.status_code == 303
        cookie = response.headers["set-cookie"]
        assert cookie.startswith(f"{SESSION_COOKIE}=")
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        assert TOKEN not in cookie  # the cookie holds a digest, never the token
        assert token_client.get("/", follow_redirects=False).status_code == 200
        assert token_client.get("/api/executions").status_code == 200
        token_client.post("/logout")
        assert token_client.get("/api/executions").status_code == 401


class TestOpenPrefixes:
    def test_only_the_named_extra_routes_skip_the_token(self, database: Database) -> None:
        """An extra route under open_prefixes answers without the token (it checks its own
        signature); other extra routes and the console still need it, and every answer
        carries the security headers."""

        async def hook(request: Request) -> Response:
            return PlainTextResponse("hook " + request.path_params["wid"])

        async def other(request: Request) -> Response:
            return PlainTextResponse("other")

        routes = [Route("/webhooks/{wid}", hook, methods=["POST"]), Route("/other", other)]
        app = create_app(
            database.path, token=TOKEN, extra_routes=routes, open_prefixes=("/webhooks/",)
        )
        with TestClient(app) as client:
            response = client.post("/webhooks/deploy")
            assert response.status_code == 200 and response.text == "hook deploy"
            assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
            assert client.get("/other", follow_redirects=False).status_code == 303
            assert client.get("/api/executions").status_code == 401
            assert client.get("/webhooksX", follow_redirects=False).status_code == 303


class TestTokenFile:
    def test_reads_a_0600_file(self, tmp_path: Path) -> None:
        """The first line of an owner-only file is the token."""
        path = tmp_path / "token"
        path.write_text(TOKEN + "\n")
        path.chmod(0o600)
        assert read_token_file(path) == TOKEN

    def test_refuses_a_file_others_can_read(self, tmp_path: Path) -> None:
        """A group- or world-readable token file is refused, naming its mode."""
        path = tmp_path / "token"
        path.write_text(TOKEN)
        path.chmod(0o644)
        with pytest.raises(TokenFileError, match="0644; it must be 0600"):
            read_token_file(path)

    def test_refuses_missing_and_short(self, tmp_path: Path) -> None:
        """A missing file or a too short token is refused."""
        with pytest.raises(TokenFileError, match="cannot read"):
            read_token_file(tmp_path / "none")
        path = tmp_path / "short"
        path.write_text("abc")
        os.chmod(path, 0o600)
        with pytest.raises(TokenFileError, match="at least 16"):
            read_token_file(path)


class TestListen:
    def test_parse_listen(self) -> None:
        """HOST:PORT, IPv6 in brackets, port 0; anything else is refused."""
        assert str(parse_listen("127.0.0.1:8080")) == "127.0.0.1:8080"
        assert parse_listen("[::1]:0").host == "::1"
        assert str(parse_listen("[::1]:0")) == "[::1]:0"
        for bad in ("8080", "host:", "host:99999", ":80", "host:-1"):
            with pytest.raises(ValueError, match="expected HOST:PORT"):
                parse_listen(bad)

    def test_loopback_needs_no_token_anything_else_does(self) -> None:
        """127.0.0.1, ::1 and localhost are open; 0.0.0.0 or a name needs --token-file."""
        assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
        check_listen(parse_listen("127.0.0.1:0"), token=None)
        for address in ("0.0.0.0:8080", "[::]:8080", "example.com:80", "192.168.1.4:80"):
            with pytest.raises(RefusedListen) as caught:
                check_listen(parse_listen(address), token=None)
            assert str(caught.value) == f"refusing to listen on {address} without --token-file"
            check_listen(parse_listen(address), token=TOKEN)

"""The token rules, as an operator meets them: refusal without a token file, the login
form, the session cookie, Bearer access to the API."""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from e2e import WORKFLOW
from playwright.sync_api import Browser, expect

if TYPE_CHECKING:
    from conftest import Examples, Served

pytestmark = pytest.mark.integration

TOKEN = "browser-test-token-5d1c0f3a9b7e"


def _status(url: str, token: str | None = None) -> int:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


class TestTokenRules:
    def test_non_loopback_without_token_file_is_refused(self, examples: Examples) -> None:
        """`workflow ui --listen 0.0.0.0:0` alone: the contract's error, exit 1."""
        done = subprocess.run(
            [WORKFLOW, "--db", str(examples.db), "ui", "--listen", "0.0.0.0:0"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 1
        assert done.stderr == "Error: refusing to listen on 0.0.0.0:0 without --token-file\n"

    def test_login_then_session_cookie_and_bearer(
        self,
        browser: Browser,
        examples: Examples,
        tmp_path: Path,
        start_console: Callable[..., Served],
    ) -> None:
        """Pages lead to /login; the token opens a Strict HttpOnly session; the API wants
        the Bearer token; SIGTERM stops the console with exit 0."""
        token_file = tmp_path / "console.token"
        token_file.write_text(TOKEN + "\n")
        token_file.chmod(0o600)
        served = start_console(
            examples.db, "--listen", "0.0.0.0:0", "--token-file", str(token_file)
        )
        context = browser.new_context()
        try:
            port = served.base.rsplit(":", 1)[1]
            base = f"http://127.0.0.1:{port}"
            page = context.new_page()
            page.goto(base + "/")
            expect(page).to_have_url(base + "/login")
            page.fill("input[name=token]", "wrong-token-wrong-token")
            page.click("form.login button")
            expect(page.locator("p.error")).to_have_text("Invalid token")
            page.fill("input[name=token]", TOKEN)
            page.click("form.login button")
            expect(page).to_have_url(base + "/")
            listed = len(examples.ids) + examples.children
            expect(page.locator("tr.execution")).to_have_count(listed)
            (cookie,) = context.cookies()
            assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
            assert TOKEN not in cookie["value"]
            assert _status(base + "/api/executions") == 401
            assert _status(base + "/api/executions", TOKEN) == 200
            assert _status(base + "/api/executions", TOKEN + "x") == 401
            assert _status(base + "/healthz") == 200
        finally:
            context.close()
        served.process.terminate()
        assert served.process.wait(timeout=10) == 0

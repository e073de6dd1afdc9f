"""The public API of autokestra_obs_web is pinned: changing it is a deliberate act."""

from __future__ import annotations

import autokestra_obs_web


class TestPublicApi:
    def test_all_is_sorted_and_pinned(self) -> None:
        """__all__ is sorted, every name resolves, and the list is the one documented."""
        names = autokestra_obs_web.__all__
        assert names == sorted(names)
        assert names == [
            "CONTENT_SECURITY_POLICY",
            "Console",
            "DEFAULT_LISTEN",
            "InvalidListen",
            "ListenAddress",
            "RefusedListen",
            "SESSION_COOKIE",
            "TokenFileError",
            "WebServer",
            "bind",
            "bound_address",
            "check_listen",
            "console_of",
            "create_app",
            "is_loopback",
            "new_token",
            "parse_listen",
            "read_token_file",
            "serve",
        ]
        for name in names:
            assert getattr(autokestra_obs_web, name) is not None

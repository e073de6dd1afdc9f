"""The public surface of autokestra_obs_audit is a deliberate list."""

from __future__ import annotations

import autokestra_obs_audit


class TestPublicApi:
    def test_all_is_pinned_and_sorted(self) -> None:
        """__all__ lists exactly the public names, sorted."""
        assert autokestra_obs_audit.__all__ == [
            "AuditError",
            "AuditLogger",
            "ChainVerdict",
            "InvalidAuditMetadata",
            "NotInTransaction",
            "validate_metadata",
            "verify_chain",
        ]
        assert sorted(autokestra_obs_audit.__all__) == autokestra_obs_audit.__all__
        for name in autokestra_obs_audit.__all__:
            assert hasattr(autokestra_obs_audit, name)

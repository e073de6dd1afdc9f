"""The retention and size-watch part of autokestra_obs_store's public API, pinned."""

from __future__ import annotations

import autokestra_obs_store

OPS_NAMES = {
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_RETENTION_DAYS",
    "PurgeReport",
    "RETENTION_ENV",
    "RetentionConfigError",
    "RetentionPolicy",
    "SizeWarning",
    "check_sizes",
    "purge",
}


class TestOpsApi:
    def test_ops_names_exported(self) -> None:
        """Every retention name is in the sorted __all__ and resolves."""
        names = autokestra_obs_store.__all__
        assert names == sorted(names)
        assert set(names) >= OPS_NAMES
        for name in OPS_NAMES:
            assert getattr(autokestra_obs_store, name) is not None

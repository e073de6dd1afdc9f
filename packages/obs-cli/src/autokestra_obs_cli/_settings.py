"""Operations settings (retention window, size warning) from the one resolved configuration.

The engine's ``load_config`` owns precedence (defaults < config file < ``AUTOKESTRA_*`` <
``--db``) and :meth:`AppContext.engine_config` runs it once per command; these helpers only
pick a value and turn its errors into the CLI's one-line ``Error:``.

    days = configured_retention_days(app)      # AUTOKESTRA_LOG_RETENTION_DAYS, file, or 30
"""

from __future__ import annotations

from autokestra_obs_store import RetentionConfigError, RetentionPolicy

from ._context import AppContext
from ._errors import CliError


def configured_retention_days(app: AppContext) -> int:
    """The retention window: ``AUTOKESTRA_LOG_RETENTION_DAYS``, else the file, else 30 days.

    Raises:
        CliError: the setting is invalid (one line naming it).
    """
    try:
        return RetentionPolicy(app.engine_config().retention_days).days
    except RetentionConfigError as exc:
        raise CliError(str(exc)) from exc


def configured_size_warning(app: AppContext) -> int:
    """The table size warning threshold: ``logging.table_size_warning``, else 1 GiB."""
    return app.engine_config().table_size_warning_bytes

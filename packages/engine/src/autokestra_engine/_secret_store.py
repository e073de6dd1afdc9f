"""Secret values: ``AUTOKESTRA_SECRET_<NAME>`` variables and a 0600 ``KEY=VALUE`` file.

The store only hands values out by name; its ``repr`` never shows one. The environment wins
over the file for the same name. A secrets file that others can read is refused.

    store = SecretStore.load(config, os.environ)
    token = store.get("API_TOKEN")
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

from autokestra_obs_schema import AutokestraError

from ._config import EngineConfig

ENV_PREFIX = "AUTOKESTRA_SECRET_"
#: Secret names: what an environment variable name may be.
SECRET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Values shorter than this are redacted everywhere they occur, which mangles logs: warn.
MIN_SAFE_LENGTH = 4


class SecretsError(AutokestraError):
    """The secrets file is unsafe (mode not 0600), unreadable or malformed."""


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def parse_secrets_file(path: Path) -> dict[str, str]:
    """Read a ``KEY=VALUE`` secrets file that only its owner can read or write.

    Blank lines and ``#`` comments are skipped; ``export KEY=VALUE`` is accepted; a value in
    matching single or double quotes loses them (no escapes are interpreted).

    Raises:
        SecretsError: missing file, group/other permission bits set, or a malformed line.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise SecretsError(f"cannot open secrets file {path}: {exc.strerror or exc}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SecretsError(f"secrets file {path} is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise SecretsError(
                f"secrets file {path} has mode {mode:04o}; it must be 0600 (run: chmod 600 {path})"
            )
        with os.fdopen(fd, "r", encoding="utf-8", closefd=False) as handle:
            text = handle.read()
    finally:
        os.close(fd)
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not SECRET_NAME.match(name):
            # Never echo the line: it may hold a secret value.
            raise SecretsError(f"secrets file {path} line {number}: expected NAME=VALUE")
        values[name] = _unquote(value.strip())
    return values


class SecretStore:
    """The secrets an engine process may hand to templates, by name."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values: dict[str, str] = dict(values or {})

    def __repr__(self) -> str:
        return f"SecretStore(names={sorted(self._values)!r})"

    @classmethod
    def load(cls, config: EngineConfig, env: Mapping[str, str]) -> SecretStore:
        """Collect secrets from ``config.secrets_file`` (if set) and ``AUTOKESTRA_SECRET_*``.

        Args:
            config: the engine config (its ``secrets_file``).
            env: the environment; ``AUTOKESTRA_SECRET_<NAME>`` wins over the file.

        Raises:
            SecretsError: the configured secrets file is unsafe or malformed.
        """
        values: dict[str, str] = {}
        if config.secrets_file is not None:
            values.update(parse_secrets_file(config.secrets_file))
        for key, value in env.items():
            if key.startswith(ENV_PREFIX) and len(key) > len(ENV_PREFIX):
                values[key[len(ENV_PREFIX) :]] = value
        return cls(values)

    def get(self, name: str) -> str:
        """The value of secret ``name``.

        Raises:
            KeyError: no such secret.
        """
        return self._values[name]

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def names(self) -> list[str]:
        """Every secret name, sorted."""
        return sorted(self._values)

    def short_names(self, names: Iterable[str] | None = None) -> list[str]:
        """Names (among ``names``, default all) whose value is shorter than 4 characters.

        Such a value is redacted wherever it appears, also inside unrelated words, so the
        runtime warns about it at run start.
        """
        wanted = self._values if names is None else names
        values = self._values
        return sorted(n for n in wanted if n in values and len(values[n]) < MIN_SAFE_LENGTH)

"""SecretStore: environment and 0600 file sources, refusal of unsafe files, no leaks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from autokestra_engine import EngineConfig, SecretsError, SecretStore
from autokestra_engine._secret_store import parse_secrets_file


def secrets_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "secrets.env"
    path.write_text(text)
    path.chmod(mode)
    return path


class TestEnvironment:
    def test_prefixed_variables_become_secrets(self) -> None:
        """AUTOKESTRA_SECRET_<NAME> provides secret NAME; other variables are ignored."""
        store = SecretStore.load(
            EngineConfig(),
            {"AUTOKESTRA_SECRET_API_TOKEN": "abc-123", "HOME": "/root", "AUTOKESTRA_SECRET_": "x"},
        )
        assert store.names() == ["API_TOKEN"]
        assert store.get("API_TOKEN") == "abc-123"

    def test_unknown_name_raises_key_error(self) -> None:
        """get() of an unknown name raises KeyError."""
        with pytest.raises(KeyError):
            SecretStore().get("NOPE")

    def test_repr_shows_names_only(self) -> None:
        """repr() lists names, never values."""
        store = SecretStore({"TOKEN": "very-secret-value"})
        assert "very-secret-value" not in repr(store)
        assert "TOKEN" in repr(store)

    def test_short_values_are_flagged(self) -> None:
        """Values under 4 characters are listed by short_names for the run-start WARN."""
        store = SecretStore({"PIN": "123", "OK": "long-enough"})
        assert store.short_names() == ["PIN"]
        assert store.short_names(["OK"]) == []


class TestFile:
    def test_file_is_parsed(self, tmp_path: Path) -> None:
        """KEY=VALUE lines, comments, blank lines, export prefixes and quotes are understood."""
        path = secrets_file(
            tmp_path,
            "# comment\n\nA=1234\nexport B = two words\nC=\"quoted=value\"\nD='x'\nE=\n",
        )
        assert parse_secrets_file(path) == {
            "A": "1234",
            "B": "two words",
            "C": "quoted=value",
            "D": "x",
            "E": "",
        }

    def test_environment_wins_over_file(self, tmp_path: Path) -> None:
        """The same name in the environment overrides the file."""
        path = secrets_file(tmp_path, "TOKEN=from-file\nOTHER=file-only\n")
        store = SecretStore.load(
            EngineConfig(secrets_file=path), {"AUTOKESTRA_SECRET_TOKEN": "from-env"}
        )
        assert store.get("TOKEN") == "from-env"
        assert store.get("OTHER") == "file-only"

    @pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o666])
    def test_readable_by_others_is_refused(self, tmp_path: Path, mode: int) -> None:
        """A secrets file with any group or other permission bit is refused with the fix."""
        path = secrets_file(tmp_path, "A=b\n", mode)
        with pytest.raises(SecretsError, match=f"mode {mode:04o}; it must be 0600"):
            SecretStore.load(EngineConfig(secrets_file=path), {})

    def test_owner_read_only_is_accepted(self, tmp_path: Path) -> None:
        """Mode 0400 is stricter than 0600 and accepted."""
        path = secrets_file(tmp_path, "A=bcde\n", 0o400)
        assert parse_secrets_file(path) == {"A": "bcde"}

    def test_malformed_line_does_not_echo_its_value(self, tmp_path: Path) -> None:
        """A bad line is reported by number, without its content (it may be a secret)."""
        path = secrets_file(tmp_path, "A=1\nthis-is-not-valid sup3rsecret\n")
        with pytest.raises(SecretsError) as info:
            parse_secrets_file(path)
        assert "line 2" in str(info.value)
        assert "sup3rsecret" not in str(info.value)

    def test_missing_file_is_an_error(self, tmp_path: Path) -> None:
        """A configured secrets file that does not exist is an error, not silently empty."""
        with pytest.raises(SecretsError, match="cannot open"):
            parse_secrets_file(tmp_path / "nope.env")

    def test_symlink_is_refused(self, tmp_path: Path) -> None:
        """The secrets file is opened without following a symlink."""
        target = secrets_file(tmp_path, "A=bcde\n")
        link = tmp_path / "link.env"
        os.symlink(target, link)
        with pytest.raises(SecretsError):
            parse_secrets_file(link)

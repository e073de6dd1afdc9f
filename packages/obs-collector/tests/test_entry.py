"""LogLevel parsing and the LogEntry record."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autokestra_obs_collector import LogEntry
from autokestra_obs_schema import LogLevel


class TestLogLevel:
    @pytest.mark.parametrize("text", ["debug", "INFO", " Warn ", "eRRoR"])
    def test_parse_is_case_insensitive(self, text: str) -> None:
        """Level names parse whatever their case and surrounding blanks."""
        assert LogLevel.parse(text).value == text.strip().upper()

    @pytest.mark.parametrize("text", ["WARNING", "", "fatal", "INFO,WARN"])
    def test_parse_refuses_unknown_names_clearly(self, text: str) -> None:
        """Anything else raises the one documented message."""
        with pytest.raises(
            ValueError, match=r"^Invalid log level\. Must be one of: DEBUG, INFO, WARN, ERROR$"
        ):
            LogLevel.parse(text)

    @given(st.text(max_size=10))
    def test_parse_accepts_exactly_the_four_names(self, text: str) -> None:
        """parse succeeds iff the stripped, upper-cased text is one of the four names."""
        valid = text.strip().upper() in {"DEBUG", "INFO", "WARN", "ERROR"}
        try:
            LogLevel.parse(text)
        except ValueError:
            assert not valid
        else:
            assert valid

    def test_levels_are_strings_in_severity_order(self) -> None:
        """Levels compare equal to their names and rank DEBUG < INFO < WARN < ERROR."""
        assert LogLevel.WARN == "WARN"
        ranks = [level.severity for level in LogLevel]
        assert ranks == sorted(ranks)
        assert [level.value for level in LogLevel] == ["DEBUG", "INFO", "WARN", "ERROR"]


class TestLogEntry:
    def test_is_frozen(self) -> None:
        """A LogEntry cannot be changed after creation."""
        entry = LogEntry("e", None, None, LogLevel.INFO, "worker", "m", None, 1)
        with pytest.raises(dataclasses.FrozenInstanceError):
            entry.message = "changed"  # type: ignore[misc]  # the refusal is under test

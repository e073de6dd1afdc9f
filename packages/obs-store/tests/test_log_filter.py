"""Filter parsers: levels, durations and --since values, with CLI.md's exact messages."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autokestra_obs_schema import INVALID_LEVEL_MESSAGE, LogLevel
from autokestra_obs_store import (
    INVALID_TIME_MESSAGE,
    InvalidFilter,
    parse_duration,
    parse_levels,
    parse_since,
)
from autokestra_obs_store._log_filter import like_contains

NOW = 1_790_000_000_000

#: --since values CLI.md calls invalid: zero, negative, overflowing, fractional, bare
#: numbers, unknown units, bad order, timestamps without a zone, garbage.
BAD_SINCE = [
    "",
    " ",
    "0",
    "0s",
    "0m",
    "0h0m",
    "-5m",
    "+5m",
    "5",
    "1.5h",
    "5 m",
    " 5m",
    "5m ",
    "5M",
    "5min",
    "5mins",
    "5w",
    "5y",
    "m",
    "ms",
    "h5",
    "5m1h",
    "5m5m",
    "1s1m",
    "99999999999999d",
    "36501d",
    "1e3s",
    "\uff15m",
    "5m\x00",
    "yesterday",
    "now",
    "2026-11-25",
    "2026-11-25T18:00:00",
    "2026-11-25 18:00:00",
    "2026-13-25T18:00:00Z",
    "2026-11-25T25:00:00Z",
    "2026-11-25T18:00:00Zjunk",
    "T18:00:00Z",
    "18:00:00Z",
    "2026-11-25T18:00:00 Z",
    "2026-11-25T18:00:00+0100",
    "2026-11-25T18Z",
    "2026-11-25T18:00:00.Z",
    "2026-11-25T18:00:00.1234567890Z",
    "2026-11-25\t18:00:00Z",
    "2026-11-25T18:00:00\uff3a",
    "5m'; DROP TABLE execution_logs; --",
]


class TestParseLevels:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("ERROR", {"ERROR"}),
            ("error,warn", {"ERROR", "WARN"}),
            ("Debug, Info", {"DEBUG", "INFO"}),
            ("INFO,info", {"INFO"}),
        ],
    )
    def test_accepts_case_insensitive_lists(self, text: str, expected: set[str]) -> None:
        """Comma-separated, case-insensitive level names become a set."""
        assert parse_levels(text) == expected

    @pytest.mark.parametrize("text", ["", ",", "ERROR,", "TRACE", "warning", "ERR", "INFO;WARN"])
    def test_rejects_unknown_levels_with_the_cli_message(self, text: str) -> None:
        """Anything but the four level names gives CLI.md's message."""
        with pytest.raises(InvalidFilter) as info:
            parse_levels(text)
        assert str(info.value) == INVALID_LEVEL_MESSAGE

    @given(st.lists(st.sampled_from([level.value for level in LogLevel]), min_size=1), st.data())
    def test_any_list_of_known_levels_parses(self, levels: list[str], data: st.DataObject) -> None:
        """Any non-empty list of known levels, in any case, parses to its set."""
        cased = [
            "".join(c.lower() if data.draw(st.booleans()) else c for c in level) for level in levels
        ]
        assert parse_levels(",".join(cased)) == set(levels)

    @given(st.text(max_size=20))
    def test_arbitrary_text_parses_or_raises_invalid_filter(self, text: str) -> None:
        """Arbitrary text either parses to known levels or raises InvalidFilter, nothing else."""
        try:
            parsed = parse_levels(text)
        except InvalidFilter as exc:
            assert str(exc) == INVALID_LEVEL_MESSAGE
        else:
            assert parsed and parsed <= set(LogLevel)


class TestParseSince:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("30s", NOW - 30_000),
            ("5m", NOW - 300_000),
            ("2h", NOW - 7_200_000),
            ("1d", NOW - 86_400_000),
            ("1h30m", NOW - 5_400_000),
            ("250ms", NOW - 250),
            ("2026-11-25T18:00:00Z", 1_795_629_600_000),
            ("2026-11-25T19:00:00+01:00", 1_795_629_600_000),
            ("2026-11-25T18:00:00.123Z", 1_795_629_600_123),
            # RFC 3339 lets T and Z be lowercase; seconds may be left out.
            ("2026-11-25t18:00:00z", 1_795_629_600_000),
            ("2026-11-25T18:00Z", 1_795_629_600_000),
            ("2026-11-25T13:00:00.5-05:00", 1_795_629_600_500),
        ],
    )
    def test_accepts_durations_and_zoned_timestamps(self, text: str, expected: int) -> None:
        """Durations count back from now; timestamps with a zone are absolute."""
        assert parse_since(text, now=NOW) == expected

    @pytest.mark.parametrize("text", BAD_SINCE)
    def test_rejects_bad_values_with_the_cli_message(self, text: str) -> None:
        """Each invalid value gives CLI.md's "Invalid time format" message."""
        with pytest.raises(InvalidFilter) as info:
            parse_since(text, now=NOW)
        assert str(info.value) == INVALID_TIME_MESSAGE

    def test_the_table_is_large_enough(self) -> None:
        """At least 30 bad values are checked (issue 6)."""
        assert len(BAD_SINCE) >= 30

    @given(st.text(max_size=30))
    def test_arbitrary_text_never_raises_anything_else(self, text: str) -> None:
        """Any text parses to an int or raises InvalidFilter with the CLI message."""
        try:
            value = parse_since(text, now=NOW)
        except InvalidFilter as exc:
            assert str(exc) == INVALID_TIME_MESSAGE
        else:
            assert isinstance(value, int)

    @given(
        st.lists(
            st.tuples(
                st.integers(min_value=0, max_value=99), st.sampled_from(["d", "h", "m", "s"])
            ),
            min_size=1,
            max_size=4,
            unique_by=lambda part: part[1],
        )
    )
    def test_combined_durations_sum_their_parts(self, parts: list[tuple[int, str]]) -> None:
        """A combination in descending unit order is the sum of its parts."""
        unit_ms = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1_000}
        ordered = sorted(parts, key=lambda part: -unit_ms[part[1]])
        text = "".join(f"{n}{unit}" for n, unit in ordered)
        total = sum(n * unit_ms[unit] for n, unit in ordered)
        if total == 0:
            with pytest.raises(InvalidFilter):
                parse_duration(text)
        else:
            assert parse_duration(text) == total
            assert parse_since(text, now=NOW) == NOW - total


class TestLikePattern:
    @pytest.mark.parametrize(
        ("text", "pattern"),
        [("abc", "%abc%"), ("50%", "%50\\%%"), ("a_b", "%a\\_b%"), ("C:\\x", "%C:\\\\x%")],
    )
    def test_metacharacters_are_escaped(self, text: str, pattern: str) -> None:
        """LIKE wildcards and the escape character itself are matched literally."""
        assert like_contains(text) == pattern

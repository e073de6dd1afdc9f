"""Fuzzing ``--since`` (Hypothesis, fixed budget, derandomized): durations and timestamps."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from autokestra_obs_store import InvalidFilter, parse_since

FUZZ = settings(max_examples=200, deadline=None, derandomize=True)
NOW = 1_764_096_000_000


class TestSinceFuzz:
    @FUZZ
    @given(st.text(alphabet="0123456789-:TtZz+.dhms ", max_size=32))
    def test_any_text_is_a_cutoff_or_the_cli_error(self, text: str) -> None:
        """Only InvalidFilter ever escapes; a cutoff is an int."""
        try:
            value = parse_since(text, now=NOW)
        except InvalidFilter:
            return
        assert isinstance(value, int)

    @FUZZ
    @given(st.text(max_size=40))
    def test_arbitrary_unicode_is_a_cutoff_or_the_cli_error(self, text: str) -> None:
        """Unicode digits, surrogates or huge numbers never raise anything else."""
        with contextlib.suppress(InvalidFilter):
            parse_since(text, now=NOW)

    @FUZZ
    @given(
        st.datetimes(
            min_value=datetime(1971, 1, 1),  # naive bounds; zone added below
            max_value=datetime(9998, 12, 31),
        ),
        st.integers(-14 * 60, 14 * 60),
        st.booleans(),
    )
    def test_zoned_timestamps_round_trip_to_milliseconds(
        self, moment: datetime, offset_min: int, lower: bool
    ) -> None:
        """An RFC 3339 timestamp with any zone parses to its instant, to the millisecond."""
        moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
        zoned = moment.replace(tzinfo=timezone(timedelta(minutes=offset_min)))
        text = zoned.isoformat(timespec="milliseconds")
        if offset_min == 0:
            text = text.replace("+00:00", "Z")
        if lower:
            text = text.lower()
        expected = int(zoned.astimezone(UTC).timestamp() * 1000)
        assert abs(parse_since(text, now=NOW) - expected) <= 1

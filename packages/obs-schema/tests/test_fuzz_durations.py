"""Fuzzing the one duration grammar (Hypothesis, fixed budget, derandomized)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autokestra_obs_schema import MAX_DURATION_MS, parse_duration_ms

FUZZ = settings(max_examples=200, deadline=None, derandomize=True)
UNITS = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1_000, "ms": 1}


class TestDurationFuzz:
    @FUZZ
    @given(st.text(alphabet="0123456789dhmsx-+. _\u0663\u00b2", max_size=20))
    def test_any_text_parses_in_range_or_is_a_value_error(self, text: str) -> None:
        """Whatever the text: a positive duration of at most 100 years, or ValueError."""
        try:
            value = parse_duration_ms(text)
        except ValueError:
            return
        assert 0 < value <= MAX_DURATION_MS

    @FUZZ
    @given(st.text(max_size=30))
    def test_arbitrary_unicode_never_raises_anything_else(self, text: str) -> None:
        """No unicode input escapes as another exception type."""
        with contextlib.suppress(ValueError):
            parse_duration_ms(text)

    @FUZZ
    @given(
        st.lists(
            st.tuples(st.integers(0, 10**6), st.sampled_from(list(UNITS))),
            min_size=1,
            max_size=5,
            unique_by=lambda part: part[1],
        )
    )
    def test_well_formed_durations_sum_their_parts(self, parts: list[tuple[int, str]]) -> None:
        """Parts in descending unit order parse to their sum (when positive and in range)."""
        order = list(UNITS)
        parts.sort(key=lambda part: order.index(part[1]))
        text = "".join(f"{n}{unit}" for n, unit in parts)
        total = sum(n * UNITS[unit] for n, unit in parts)
        if 0 < total <= MAX_DURATION_MS:
            assert parse_duration_ms(text) == total
        else:
            with pytest.raises(ValueError):
                parse_duration_ms(text)

    @pytest.mark.parametrize("text", ["\u0663s", "1\u00b2s", "+5m", "5m ", " 5m", "5.0s", "1m1h"])
    def test_lookalikes_are_refused(self, text: str) -> None:
        """Non-ASCII digits, signs, blanks, fractions and out-of-order units are refused."""
        with pytest.raises(ValueError):
            parse_duration_ms(text)

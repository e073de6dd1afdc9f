"""Shared value formats: timestamps, durations, the audit digest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autokestra_obs_schema import (
    MAX_DURATION_MS,
    audit_digest,
    canonical_metadata,
    iso_from_ms,
    ms_from_iso,
    parse_duration_ms,
)


class TestTimestamps:
    def test_iso_has_milliseconds_and_z(self) -> None:
        """Unix ms render as ISO-8601 UTC with three decimals and a Z."""
        assert iso_from_ms(1_764_096_721_123) == "2025-11-25T18:52:01.123Z"
        assert iso_from_ms(0) == "1970-01-01T00:00:00.000Z"

    @given(st.integers(min_value=-62_135_596_800_000, max_value=253_402_300_799_999))
    def test_same_text_as_datetime(self, ms: int) -> None:
        """The fast path renders exactly what datetime does, years 1 to 9999, before 1970 too."""
        moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
        assert iso_from_ms(ms) == moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"

    @pytest.mark.parametrize("ms", [-62_135_596_800_001, 253_402_300_800_000])
    def test_outside_years_1_to_9999_is_refused(self, ms: int) -> None:
        with pytest.raises(OverflowError):
            iso_from_ms(ms)

    @given(st.integers(min_value=0, max_value=4_102_444_800_000))
    def test_round_trip(self, ms: int) -> None:
        """Parsing the rendered form gives back the same millisecond."""
        assert ms_from_iso(iso_from_ms(ms)) == ms

    def test_offsets_are_honoured(self) -> None:
        """A +01:00 timestamp is an hour before the same wall time in UTC."""
        assert ms_from_iso("2026-11-25T19:00:00+01:00") == ms_from_iso("2026-11-25T18:00:00Z")

    @pytest.mark.parametrize("text", ["2026-11-25T18:00:00", "2026-11-25", "yesterday", ""])
    def test_zone_is_required(self, text: str) -> None:
        """A timestamp without a zone (or not a timestamp) is refused."""
        with pytest.raises(ValueError):
            ms_from_iso(text)


class TestDurations:
    @pytest.mark.parametrize(
        ("text", "ms"),
        [
            ("250ms", 250),
            ("30s", 30_000),
            ("5m", 300_000),
            ("2h", 7_200_000),
            ("1d", 86_400_000),
            ("1h30m", 5_400_000),
            ("90s", 90_000),
            ("1d2h3m4s5ms", 93_784_005),
            ("05m", 300_000),
        ],
    )
    def test_valid(self, text: str, ms: int) -> None:
        """The documented forms parse to milliseconds."""
        assert parse_duration_ms(text) == ms

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "5",
            "0s",
            "0m0s",
            "-5m",
            "+5m",
            "1.5h",
            "5 m",
            " 5m",
            "5m ",
            "5M",
            "5min",
            "5w",
            "m",
            "1m1m",
            "30m1h",
            "1s1m",
            "99999999999999d",
            "36501d",
            "5m-",
            "1h 30m",
            "\uff11m",
            "5m\n",
            "\t5m",
            "0x10s",
            "1e3s",
            "5mm",
            "ms",
            "h1",
            "\u0663s",
        ],
    )
    def test_invalid(self, text: str) -> None:
        """Zero, negative, fractional, unknown-unit, overflowing and garbage forms fail."""
        with pytest.raises(ValueError):
            parse_duration_ms(text)

    def test_limit_is_inclusive(self) -> None:
        """Exactly 100 years is accepted, one millisecond more is not."""
        assert parse_duration_ms("36500d") == MAX_DURATION_MS
        with pytest.raises(ValueError):
            parse_duration_ms("36500d1ms")

    @given(st.lists(st.integers(min_value=0, max_value=999), min_size=5, max_size=5).filter(any))
    def test_parts_add_up(self, parts: list[int]) -> None:
        """Any combination of units in order sums to the expected milliseconds."""
        units = ["d", "h", "m", "s", "ms"]
        scale = [86_400_000, 3_600_000, 60_000, 1_000, 1]
        text = "".join(f"{n}{u}" for n, u in zip(parts, units, strict=True) if n)
        expected = sum(n * k for n, k in zip(parts, scale, strict=True))
        assert parse_duration_ms(text) == expected

    @given(st.text(max_size=12))
    def test_never_crashes(self, text: str) -> None:
        """Arbitrary text either parses to a positive bounded value or raises ValueError."""
        try:
            value = parse_duration_ms(text)
        except ValueError:
            return
        assert 0 < value <= MAX_DURATION_MS


class TestAuditDigest:
    def test_digest_depends_on_every_field(self) -> None:
        """Changing any input changes the link."""
        base = ("p", "e", "CREATED", 1, '{"a":1}')
        digest = audit_digest(*base)
        for i in range(5):
            changed = list(base)
            changed[i] = 2 if i == 3 else "other"
            assert audit_digest(*changed) != digest  # type: ignore[arg-type]  # varied types

    def test_canonical_metadata_is_order_independent(self) -> None:
        """Key order does not change the canonical text; non-ASCII is escaped."""
        assert canonical_metadata({"b": 1, "a": "é"}) == canonical_metadata({"a": "é", "b": 1})
        assert canonical_metadata({"a": "é"}) == '{"a":"\\u00e9"}'

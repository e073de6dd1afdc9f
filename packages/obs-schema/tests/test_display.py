"""Escaping untrusted text and human formatting."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autokestra_obs_schema import escape_control, format_bytes, format_duration_ms

_RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


class TestEscapeControl:
    @pytest.mark.parametrize(
        ("raw", "shown"),
        [
            ("\x1b[31mred", "\\x1b[31mred"),
            ("a\rb", "a\\x0db"),
            ("nul\x00", "nul\\x00"),
            ("bs\x08", "bs\\x08"),
            ("del\x7f", "del\\x7f"),
            ("csi\x9b2J", "csi\\x9b2J"),
            ("rlo\u202eevil", "rlo\\u202eevil"),
            ("iso\u2066x\u2069", "iso\\u2066x\\u2069"),
            ("tab\tok", "tab\tok"),
            ("line\nnext", "line\nnext"),
            ("back\\slash", "back\\slash"),
            ("[bold]markup[/bold]", "[bold]markup[/bold]"),
        ],
    )
    def test_cases(self, raw: str, shown: str) -> None:
        """Each control is shown visibly; tab, newline and backslash stay as they are."""
        assert escape_control(raw) == shown

    def test_newlines_can_be_escaped_for_single_line_cells(self) -> None:
        """keep_newlines=False shows a newline as \\x0a."""
        assert escape_control("a\nb", keep_newlines=False) == "a\\x0ab"

    @given(st.text())
    def test_no_raw_control_survives(self, text: str) -> None:
        """Whatever the input, the output has no raw control character but newline/tab."""
        assert _RAW_CONTROL.search(escape_control(text)) is None


class TestFormat:
    @pytest.mark.parametrize(
        ("ms", "text"),
        [
            (None, "-"),
            (0, "0ms"),
            (500, "500ms"),
            (999, "999ms"),
            (1000, "1s"),
            (2500, "2.5s"),
            (59_999, "59.9s"),
            (60_000, "1m"),
            (90_000, "1m 30s"),
            (3_600_000, "1h"),
            (7_500_000, "2h 5m"),
            (86_400_000, "1d"),
            (90_000_000, "1d 1h"),
        ],
    )
    def test_durations(self, ms: int | None, text: str) -> None:
        """Durations read like CLI.md's examples."""
        assert format_duration_ms(ms) == text

    @pytest.mark.parametrize(
        ("size", "text"), [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1_572_864, "1.5 MiB")]
    )
    def test_bytes(self, size: int, text: str) -> None:
        """Sizes use binary units."""
        assert format_bytes(size) == text

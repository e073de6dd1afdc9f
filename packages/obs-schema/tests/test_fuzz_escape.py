"""Fuzzing the one escaper (Hypothesis, fixed budget, derandomized).

CLI.md: C0 controls except newline and tab, DEL and C1 are shown as ``\\xHH``; bidi controls
as ``\\uHHHH``; a backslash is left as is. Properties: nothing unsafe survives, escaping is
idempotent (so an error escaped twice reads the same), safe text is unchanged, and with
``keep_newlines=False`` the result is one line.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from autokestra_obs_schema import escape_control

BUDGET = settings(max_examples=500, derandomize=True, deadline=None)
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_hostile = st.text(
    alphabet=st.one_of(
        st.characters(),
        st.sampled_from(["\x1b", "\x07", "\x9b", "\r", "\n", "\t", "\\", "\u202e", "\u2066"]),
    ),
    max_size=80,
)


class TestEscapeFuzz:
    @BUDGET
    @given(_hostile)
    def test_nothing_unsafe_survives(self, text: str) -> None:
        """No control or bidi character is left in the output."""
        assert UNSAFE.search(escape_control(text)) is None
        assert "\n" not in escape_control(text, keep_newlines=False)

    @BUDGET
    @given(_hostile)
    def test_idempotent(self, text: str) -> None:
        """Escaping escaped text changes nothing (the root group escapes every error)."""
        once = escape_control(text, keep_newlines=False)
        assert escape_control(once, keep_newlines=False) == once

    @BUDGET
    @given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cf")), max_size=80))
    def test_safe_text_unchanged(self, text: str) -> None:
        """Text without controls or format characters is printed as it is."""
        assert escape_control(text) == text

    @BUDGET
    @given(_hostile)
    def test_reversible_count(self, text: str) -> None:
        """Each unsafe character becomes exactly one visible escape."""
        escaped = escape_control(text)
        unsafe = len(UNSAFE.findall(text))
        visible = len(re.findall(r"\\x[0-9a-f]{2}|\\u[0-9a-f]{4}", escaped))
        assert visible >= unsafe

"""The one transition table of executions and task runs."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autokestra_engine import TRANSITIONS, IllegalTransition, check_transition
from autokestra_obs_schema import TERMINAL_STATES, State


class TestTransitionTable:
    def test_every_state_has_a_row(self) -> None:
        """The table names every state, so no state is silently a dead end."""
        assert set(TRANSITIONS) == set(State)

    def test_terminal_states_are_final(self) -> None:
        """Nothing leaves SUCCESS, FAILED or CANCELLED."""
        for terminal, target in itertools.product(TERMINAL_STATES, State):
            if terminal is target:
                continue
            with pytest.raises(IllegalTransition):
                check_transition(terminal, target)

    def test_replay_is_a_no_op(self) -> None:
        """Asking for the state already reached returns False instead of raising."""
        for state in State:
            assert check_transition(state, state) is False

    @pytest.mark.parametrize(
        ("current", "target"),
        [
            ("PENDING", "RUNNING"),
            ("PENDING", "CANCELLED"),
            ("PENDING", "FAILED"),
            ("RUNNING", "WAITING"),
            ("WAITING", "RUNNING"),
            ("WAITING", "CANCELLED"),
            ("RUNNING", "SUCCESS"),
            ("RUNNING", "FAILED"),
            ("RUNNING", "CANCELLED"),
        ],
    )
    def test_allowed(self, current: str, target: str) -> None:
        """The lifecycle steps of a task run with retries are all allowed."""
        assert check_transition(current, target) is True

    @pytest.mark.parametrize(
        ("current", "target"),
        [("PENDING", "SUCCESS"), ("PENDING", "WAITING"), ("WAITING", "SUCCESS")],
    )
    def test_illegal(self, current: str, target: str) -> None:
        """Skipping RUNNING is refused: success needs an attempt that ran."""
        with pytest.raises(IllegalTransition, match=f"{current} -> {target}"):
            check_transition(current, target, subject="task t")

    def test_error_names_subject(self) -> None:
        """The error says what was moving, for the operator reading it."""
        with pytest.raises(IllegalTransition) as info:
            check_transition(State.SUCCESS, State.RUNNING, subject="execution e1")
        assert "execution e1" in str(info.value)
        assert info.value.current is State.SUCCESS

    def test_unknown_state_name(self) -> None:
        """A state name that is not in the enum is a ValueError, not a silent no-op."""
        with pytest.raises(ValueError):
            check_transition("PENDING", "DONE")

    def test_terminal_property(self) -> None:
        """State.terminal matches the terminal set."""
        assert {s for s in State if s.terminal} == TERMINAL_STATES


class TestTransitionProperties:
    @given(st.lists(st.sampled_from(list(State)), max_size=30))
    def test_any_sequence_respects_the_table(self, targets: list[State]) -> None:
        """Applying any sequence never leaves a terminal state and only takes table edges."""
        current = State.PENDING
        for target in targets:
            try:
                applied = check_transition(current, target)
            except IllegalTransition:
                assert target not in TRANSITIONS[current]
                assert target is not current
                continue
            if applied:
                assert not current.terminal
                assert target in TRANSITIONS[current]
                current = target
            else:
                assert target is current

"""Model records: retry delays, task lookup, action identity."""

from __future__ import annotations

from pathlib import Path

import pytest

from autokestra_engine import ActionSpec, RetryPolicy, TaskSpec, Trigger, Workflow


class TestRetryPolicy:
    def test_fixed_backoff_is_constant(self) -> None:
        """Fixed backoff waits delay_ms after every failed attempt."""
        policy = RetryPolicy(max=3, backoff="fixed", delay_ms=700)
        assert [policy.delay_for(n) for n in (1, 2, 3)] == [700, 700, 700]

    def test_exponential_backoff_doubles_up_to_the_cap(self) -> None:
        """Exponential backoff doubles per attempt and never exceeds max_delay_ms."""
        policy = RetryPolicy(max=6, backoff="exponential", delay_ms=1000, max_delay_ms=5000)
        assert [policy.delay_for(n) for n in range(1, 6)] == [1000, 2000, 4000, 5000, 5000]

    def test_huge_attempt_numbers_are_capped(self) -> None:
        """A large attempt number gives max_delay_ms, not an overflow or a huge number."""
        policy = RetryPolicy(backoff="exponential", delay_ms=1, max_delay_ms=60_000)
        assert policy.delay_for(10_000) == 60_000

    def test_defaults(self) -> None:
        """No retries, fixed 1 s backoff, 1 min cap by default."""
        assert RetryPolicy() == RetryPolicy(
            max=0, backoff="fixed", delay_ms=1000, max_delay_ms=60_000
        )


class TestRecords:
    def test_task_lookup(self) -> None:
        """Workflow.task finds a task by id and raises KeyError otherwise."""
        task = TaskSpec(id="a", type="core/log.emit")
        workflow = Workflow("w", "", True, Trigger(), {}, None, (task,), "")
        assert workflow.task("a") is task
        with pytest.raises(KeyError):
            workflow.task("b")

    def test_action_type_and_source(self) -> None:
        """An action's type and log source derive from namespace, plugin and action."""
        action = ActionSpec("acme", "probe", "run", "1.0", Path("/p"), ("x",))
        assert action.type == "acme/probe.run"
        assert action.source == "plugin:acme/probe.run"

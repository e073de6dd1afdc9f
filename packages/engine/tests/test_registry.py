"""The workflow registry: apply, list, delete, cron next fires and fire claims."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from autokestra_engine import (
    InputSpec,
    RegistryError,
    TaskSpec,
    Trigger,
    Workflow,
    WorkflowNotRegistered,
    WorkflowRegistry,
    get_workflow,
    list_workflows,
    next_fire_ms,
)
from autokestra_obs_schema import Writer, ms_from_iso, open_writer

T0 = ms_from_iso("2026-11-25T10:00:30Z")


def make(
    workflow_id: str = "nightly",
    *,
    trigger: Trigger | None = None,
    enabled: bool = True,
    inputs: dict[str, InputSpec] | None = None,
) -> Workflow:
    """A one-task workflow with the given trigger."""
    return Workflow(
        id=workflow_id,
        description="",
        enabled=enabled,
        trigger=trigger or Trigger("cron", "*/5 * * * *"),
        inputs=inputs or {},
        timeout_ms=None,
        tasks=(TaskSpec(id="a", type="core/log.emit", inputs={"message": "hi"}),),
        source=f"id: {workflow_id}\n",
        source_path="/tmp/x.yaml",
    )


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[Writer]:
    """A migrated database."""
    w = open_writer(tmp_path / "a.db")
    yield w
    w.close()


class TestNextFire:
    def test_five_field_schedule_in_utc(self) -> None:
        """*/5 * * * * after 10:00:30 UTC fires at 10:05:00 UTC."""
        assert next_fire_ms("*/5 * * * *", T0) == ms_from_iso("2026-11-25T10:05:00Z")

    def test_six_fields_have_seconds_last(self) -> None:
        """A sixth field is seconds: every second fires one second later."""
        assert next_fire_ms("* * * * * *", T0) == T0 + 1000

    @pytest.mark.parametrize("bad", ["", "* * *", "61 * * * *", "every day", "* * * * * * *"])
    def test_invalid_schedule(self, bad: str) -> None:
        """A malformed schedule is a RegistryError with an example."""
        with pytest.raises(RegistryError, match=r"\*/5 \* \* \* \*"):
            next_fire_ms(bad, T0)


class TestApply:
    def test_apply_creates_then_updates(self, writer: Writer) -> None:
        """The first apply creates, the second updates the same row."""
        record, created = WorkflowRegistry(writer).apply(make(), now=T0)
        assert created
        assert record.next_fire_at == ms_from_iso("2026-11-25T10:05:00Z")
        assert record.trigger_type == "cron"
        again, created_again = WorkflowRegistry(writer).apply(make(), now=T0 + 60_000)
        assert not created_again
        assert again.created_at == T0
        assert again.updated_at == T0 + 60_000
        assert again.next_fire_at == record.next_fire_at  # re-apply does not postpone
        assert [r.workflow_id for r in list_workflows(writer.connection)] == ["nightly"]

    def test_disabled_pauses_and_reenable_schedules_from_now(self, writer: Writer) -> None:
        """enabled: false clears the next fire; re-enabling computes it from now."""
        registry = WorkflowRegistry(writer)
        registry.apply(make(), now=T0)
        paused, _ = registry.apply(make(enabled=False), now=T0)
        assert not paused.enabled
        assert paused.next_fire_at is None
        assert registry.due(T0 + 10**9) == []
        later = T0 + 3_600_000
        resumed, _ = registry.apply(make(), now=later)
        assert resumed.next_fire_at == ms_from_iso("2026-11-25T11:05:00Z")

    def test_manual_workflow_has_no_fire(self, writer: Writer) -> None:
        """A manual workflow is registered with no schedule and never due."""
        record, _ = WorkflowRegistry(writer).apply(make(trigger=Trigger("manual")), now=T0)
        assert (record.schedule, record.next_fire_at) == (None, None)

    def test_cron_with_required_input_without_default_is_refused(self, writer: Writer) -> None:
        """A cron fire cannot give inputs: required ones need defaults."""
        spec = InputSpec(type="string", required=True)
        with pytest.raises(RegistryError, match="required inputs without a default: name"):
            WorkflowRegistry(writer).apply(make(inputs={"name": spec}), now=T0)
        assert list_workflows(writer.connection) == []


class TestDeleteAndGet:
    def test_delete(self, writer: Writer) -> None:
        """A deleted workflow is gone; deleting it again says not found."""
        registry = WorkflowRegistry(writer)
        registry.apply(make(), now=T0)
        registry.delete("nightly")
        with pytest.raises(WorkflowNotRegistered, match="Workflow not found: nightly"):
            registry.delete("nightly")
        with pytest.raises(WorkflowNotRegistered):
            get_workflow(writer.connection, "nightly")


class TestFireClaims:
    def test_due_and_claim_once(self, writer: Writer) -> None:
        """A due fire is claimed once; a second claim of the same fire loses."""
        registry = WorkflowRegistry(writer)
        registry.apply(make(trigger=Trigger("cron", "* * * * * *")), now=T0)
        (due,) = registry.due(T0 + 1000)
        with writer.transaction() as conn:
            upcoming = registry.claim_fire(conn, due, T0 + 1000)
        assert upcoming == T0 + 2000
        with writer.transaction() as conn:
            assert registry.claim_fire(conn, due, T0 + 1000) is None
        record = get_workflow(writer.connection, "nightly")
        assert (record.last_fired_at, record.next_fire_at) == (T0 + 1000, T0 + 2000)

    def test_missed_fires_are_not_replayed(self, writer: Writer) -> None:
        """After a day without a server the next fire is after now, not a backlog."""
        registry = WorkflowRegistry(writer)
        registry.apply(make(), now=T0)
        day_later = T0 + 86_400_000
        (due,) = registry.due(day_later)
        with writer.transaction() as conn:
            upcoming = registry.claim_fire(conn, due, day_later)
        assert upcoming == ms_from_iso("2026-11-26T10:05:00Z")
        assert registry.due(day_later) == []

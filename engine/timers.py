"""Timer rules the engine adds to SpiffWorkflow's.

Missed cycle slots are coalesced: when a cycle timer (e.g. a monthly 催办 ``R/P30D``) was not
driven for several periods — the server was down, or the clock was moved far ahead — it fires once,
and its schedule then resumes at the first slot still in the future. Replaying every missed slot
would send officials a burst of identical reminders about the same overdue task.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.timer import CycleTimerEventDefinition
from SpiffWorkflow.util.task import TaskState

from engine.clock import as_utc
from engine.store import all_tasks


def coalesce_missed_cycles(workflow: BpmnWorkflow, now: datetime) -> int:
    """Move every waiting cycle timer's next slot past ``now``; return how many slots were skipped."""
    skipped = 0
    for task in all_tasks(workflow):
        if task._state != TaskState.WAITING:
            continue
        if not isinstance(getattr(task.task_spec, "event_definition", None), CycleTimerEventDefinition):
            continue
        value = task.internal_data.get("event_value")
        if not isinstance(value, dict) or value.get("cycles") == 0 or not value.get("duration"):
            continue
        due = as_utc(datetime.fromisoformat(value["next"]))
        step = timedelta(seconds=value["duration"])
        while due <= now and value["cycles"] != 0:
            due += step
            skipped += 1
            if value["cycles"] > 0:
                value["cycles"] -= 1
        value["next"] = due.isoformat()
    return skipped

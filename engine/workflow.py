"""The workflow class the engine runs: SpiffWorkflow's BpmnWorkflow, without its whole-tree walks.

SpiffWorkflow answers "is it finished?", "which tasks wait?" and "is there an engine step to run?"
by walking the task tree from its root through every finished task. Every command asks all three
(the last two after each task it completes), so a case of 200 steps paid for its length again and
again. Here each question is first answered by a scan of the task dict, which costs next to nothing;
SpiffWorkflow's own method still runs, in its own order, whenever there is something to do.

These scans, and the engine's other loops over every task of a case (store, execution, timers,
serializer), read a task's ``_state``: SpiffWorkflow 3.2 (pinned) defines ``Task.state`` as a property
returning ``_state``, and calling it cost 2,179 Python calls per completion of a 200-step case.
tests/engine/test_state_store.py fails should a new SpiffWorkflow change that.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState


class LiveWorkflow(BpmnWorkflow):
    def is_completed(self) -> bool:
        if not self.completed:
            # Newest first: tasks are added as the case moves on, so a running case's unfinished tasks are
            # found at the end, after every step it has finished.
            self.completed = not any(t._state & TaskState.NOT_FINISHED_MASK for t in reversed(self.tasks.values()))
        return self.completed

    def update_waiting_tasks(self) -> None:
        # With no WAITING task in this workflow's tree, SpiffWorkflow's walk would update nothing.
        if any(t._state == TaskState.WAITING for t in self.tasks.values()):
            super().update_waiting_tasks()

    def do_engine_steps(self, will_complete_task: Any = None, did_complete_task: Any = None) -> None:
        # SpiffWorkflow's loop: rounds of running the READY engine tasks while a round runs something, then
        # the timers. A round with no active subprocess and no READY engine task runs nothing, so the scan
        # is asked first: SpiffWorkflow's own walk of the tree found nothing on the last round of every command.
        while self.get_active_subprocesses() or has_ready_engine_task(self):
            if not self._do_engine_steps(will_complete_task, did_complete_task):
                break
        self.refresh_timers()


def task_properties(task: Any) -> dict[str, str]:
    """The spiffworkflow:properties of a task's spec (returnField, returnValue, ...); none for engine tasks."""
    return task.task_spec.extensions.get("properties", {}) if hasattr(task.task_spec, "extensions") else {}


def has_ready_engine_task(workflow: BpmnWorkflow) -> bool:
    """Whether a gateway, script, service or event is READY to run, in the workflow or a subprocess."""
    workflows = [workflow, *workflow.subprocesses.values()]
    return any(t._state == TaskState.READY and not t.task_spec.manual for w in workflows for t in w.tasks.values())

"""Running a workflow until it waits: the one loop shared by live commands and by replay."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.util.task import TaskState

from engine.clock import Clock, using_clock
from engine.errors import WorkflowFailed
from engine.scripting import ScriptEngine
from engine.store import all_tasks, ready_user_tasks
from engine.workflow import has_ready_engine_task

MAX_ENGINE_ROUNDS = 20


def run_until_waiting(
    workflow: BpmnWorkflow, clock: Clock, script_engine: ScriptEngine, action: Callable[[], None]
) -> list[str]:
    """Run ``action``, then every engine step and due timer, until only people or time can move it.

    Returns the BPMN ids of the steps completed, in order. Raises WorkflowFailed if any step fails.
    """
    workflow.script_engine = script_engine
    # Keyed by id(): hashing the tasks' UUIDs is what made this slow in long cases. The dict keeps the
    # tasks alive, so no new task can reuse the id of one of them.
    before = {id(t): t for t in all_tasks(workflow) if t._state & TaskState.FINISHED_MASK}
    try:
        with using_clock(clock):
            action()
            for _ in range(MAX_ENGINE_ROUNDS):
                # A timer that falls due during do_engine_steps only becomes READY at its end.
                workflow.refresh_timers()
                workflow.do_engine_steps()
                if not has_ready_engine_task(workflow):
                    break
    except SpiffWorkflowException as exc:
        task = getattr(exc, "task", None)
        where = f" in step {task.task_spec.bpmn_id}" if task is not None else ""
        raise WorkflowFailed(f"{exc}{where}") from exc
    completed = []
    for task in all_tasks(workflow):
        if task._state == TaskState.ERROR:
            raise WorkflowFailed(f"step {task.task_spec.bpmn_id} failed")
        if task._state == TaskState.COMPLETED and id(task) not in before and task.task_spec.bpmn_id:
            completed.append(task.task_spec.bpmn_id)
    return completed


def complete_user_task(task: Any, data: dict[str, Any]) -> None:
    """Store form data the way the task's spec wants it (``variableName``), then run the task."""
    task.task_spec.add_data_from_form(task, data)
    task.run()


def ready_index(workflow: BpmnWorkflow, task_id: uuid.UUID) -> int:
    """The position of a ready task among the ready tasks of the same step (multi-instance siblings).

    Task ids are random, so a replay finds "the same" task by step and this position instead.
    """
    task = workflow.get_task_from_id(task_id)
    siblings = [t.id for t in ready_user_tasks(workflow) if t.task_spec.bpmn_id == task.task_spec.bpmn_id]
    return siblings.index(task_id)


def task_at(workflow: BpmnWorkflow, bpmn_id: str, index: int) -> Any:
    siblings = [t for t in ready_user_tasks(workflow) if t.task_spec.bpmn_id == bpmn_id]
    if index >= len(siblings):
        raise WorkflowFailed(f"no ready step {bpmn_id} #{index} to replay")
    return siblings[index]

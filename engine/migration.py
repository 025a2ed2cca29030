"""Moving running cases to a newer version of their process: explicit, checked, and logged.

Running cases stay on the version they started with. A designer may move chosen cases to a newer
version when that is safe: no step that the new version changed or removed has already been done or
is in progress — otherwise the case would carry a history the new model cannot explain (e.g. skip
a step every case must now pass). SpiffWorkflow aligns the task trees; open and waiting steps are
re-predicted from the new model.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from SpiffWorkflow.bpmn.util.diff import SpecDiff, diff_workflow, filter_tasks, migrate_workflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy.orm import Session

from engine.access import Actor
from engine.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from engine.history import append_event
from engine.models import Instance, ProcessVersion

DESIGNER_ROLES = ("designer",)


@dataclass
class VersionDiff:
    added: list[str]
    removed: list[str]
    changed: list[str]


@dataclass
class MigrationPlan:
    instance_id: str
    from_version: int
    to_version: int
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    safe: bool = True
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _check_designer(actor: Actor) -> None:
    if not any(actor.has_role(role) for role in DESIGNER_ROLES):
        raise PermissionDenied(f"{actor.username} may not migrate cases")


def _bpmn_ids(specs: Any) -> list[str]:
    return sorted({getattr(s, "bpmn_id", None) or s.name for s in specs if getattr(s, "bpmn_id", None)})


def diff_versions(engine: Any, session: Session, from_version_id: int, to_version_id: int) -> VersionDiff:
    """What changed between two versions of a process, by BPMN element id."""
    old = engine.store.version(session, from_version_id)
    new = engine.store.version(session, to_version_id)
    if old.process_id != new.process_id:
        raise InvalidInput("versions of different processes", {"to_version": "只能比较同一流程的版本"})
    diff = SpecDiff(engine.store.serializer.registry, old.spec, new.spec)
    return VersionDiff(_bpmn_ids(diff.added), _bpmn_ids(diff.removed), _bpmn_ids(diff.changed))


def _target(session: Session, instance: Instance, target_version_id: int) -> ProcessVersion:
    target = session.get(ProcessVersion, target_version_id)
    if target is None or target.process_id != instance.process_id:
        raise NotFound(f"version {target_version_id} of {instance.process_id} not found")
    return target


def _plan(engine: Any, session: Session, instance: Instance, workflow: Any, target: ProcessVersion):  # noqa: ANN202
    current = engine.store.version(session, instance.process_version_id)
    new = engine.store.version(session, target.id)
    top, subprocesses = diff_workflow(engine.store.serializer.registry, workflow, new.spec, new.subprocess_specs)
    spec_diff = SpecDiff(engine.store.serializer.registry, current.spec, new.spec)
    plan = MigrationPlan(
        str(instance.id),
        current.version,
        new.version,
        _bpmn_ids(spec_diff.added),
        _bpmn_ids(spec_diff.removed),
        _bpmn_ids(spec_diff.changed),
    )
    if instance.status != "running":
        plan.reasons.append(f"the case is {instance.status}")
    if target.id == instance.process_version_id:
        plan.reasons.append("the case is already on this version")
    for diff in [top, *subprocesses.values()]:
        if diff is None:
            plan.reasons.append("a called process of the case has no counterpart in the new version")
            continue
        done = filter_tasks(diff.changed + diff.removed, state=TaskState.COMPLETED | TaskState.STARTED)
        for task in done:
            plan.reasons.append(
                f"step {task.task_spec.bpmn_id} was changed or removed but is already "
                f"{TaskState.get_name(task.state).lower()}"
            )
    plan.safe = not plan.reasons
    return plan, top, subprocesses, new


def plan_migration(
    engine: Any, session: Session, actor: Actor, instance_id: uuid.UUID, target_version_id: int
) -> MigrationPlan:
    """What moving the case would change, and whether it is safe (with the reasons if not)."""
    _check_designer(actor)
    instance = session.get(Instance, instance_id)
    if instance is None:
        raise NotFound(f"instance {instance_id} not found")
    workflow = engine.store.load_copy(session, instance)
    return _plan(engine, session, instance, workflow, _target(session, instance, target_version_id))[0]


def migrate_instances(
    engine: Any, session: Session, actor: Actor, instance_ids: list[uuid.UUID], target_version_id: int
) -> list[MigrationPlan]:
    """Move the cases to the target version, all or nothing; Conflict naming the first unsafe case."""
    _check_designer(actor)
    plans = []
    for instance_id in instance_ids:
        instance = session.get(Instance, instance_id)
        if instance is None:
            raise NotFound(f"instance {instance_id} not found")
        workflow = engine.store.load(session, instance)
        target = _target(session, instance, target_version_id)
        plan, top, subprocesses, new = _plan(engine, session, instance, workflow, target)
        if not plan.safe:
            raise Conflict(f"case {instance_id} cannot be migrated: {'; '.join(plan.reasons)}", plan.to_dict())
        apply_migration(workflow, top, subprocesses, new)
        instance.process_version_id = target.id
        engine.store.save(session, instance, workflow, engine.now())
        append_event(
            session,
            instance,
            at=engine.now(),
            actor=actor.username,
            command="migrate",
            payload={
                "from_version": plan.from_version,
                "to_version": plan.to_version,
                "to_version_id": target.id,
                "added": plan.added,
                "removed": plan.removed,
                "changed": plan.changed,
            },
        )
        engine.flush_command(session)
        engine.store.keep_after_commit(session, instance, workflow)
        plans.append(plan)
    return plans


def apply_migration(workflow: Any, top: Any, subprocesses: dict[Any, Any], new: Any) -> None:
    """Re-point the workflow (and its subprocesses) at the new version's specs."""
    migrate_workflow(top, workflow, new.spec)
    for subprocess_id, diff in subprocesses.items():
        subprocess = workflow.subprocesses.get(subprocess_id)
        if subprocess is not None and diff is not None:
            migrate_workflow(diff, subprocess, new.subprocess_specs[subprocess.spec.name])
    workflow.subprocess_specs = new.subprocess_specs

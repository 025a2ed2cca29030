"""终止: ending a running case early, with a reason, by 省科协 (province_office) or an administrator.

The workflow is cancelled (SpiffWorkflow's ``cancel`` also cancels the call-activity subprocesses inside
it), its open tasks and timers go, and cases it started (``parent_id``) that still run are terminated
with it, each with its own ``terminate`` event. Replay reproduces the event by cancelling too.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.access import Actor, check_may_read
from engine.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from engine.history import append_event
from engine.models import Instance
from engine.roles import PROVINCE_CODE

if TYPE_CHECKING:
    from engine.runtime import Engine

TERMINATED = "terminated"
REASON_MAX_LENGTH = 500


def terminating_role(actor: Actor) -> tuple[str, str] | None:
    """The (role, org) an actor terminates cases as, or None if it may not."""
    if actor.holds("province_office", PROVINCE_CODE):
        return "province_office", PROVINCE_CODE
    admin_org = next((org for role, org in actor.assignments if role == "admin"), None)
    return ("admin", admin_org) if admin_org is not None else None


def may_terminate(actor: Actor) -> bool:
    return terminating_role(actor) is not None


def terminate_instance(
    engine: Engine, session: Session, actor: Actor, instance_id: uuid.UUID, reason: str
) -> tuple[Instance, BpmnWorkflow]:
    """End a running case now; the reason is required and recorded in its history.

    Returns the case and its cancelled workflow, for the façade to present."""
    instance = session.get(Instance, instance_id)
    if instance is None:
        raise NotFound(f"instance {instance_id} not found")
    role = terminating_role(actor)
    if role is None:
        check_may_read(session, actor, instance)  # outside one's scope the case does not exist
        raise PermissionDenied(f"{actor.username} may not terminate cases (省科协 or admin only)")
    reason = reason.strip() if isinstance(reason, str) else ""
    if not reason:
        raise InvalidInput("a reason is required to terminate a case", {"reason": "终止须填写理由"})
    if len(reason) > REASON_MAX_LENGTH:
        raise InvalidInput("the reason is too long", {"reason": f"终止理由不超过{REASON_MAX_LENGTH}字"})
    if instance.status != "running":
        raise Conflict(f"case {instance_id} is {instance.status}, only a running case can be terminated")
    return instance, _terminate(engine, session, actor, role, instance, reason, by_parent=None)


def _terminate(
    engine: Engine,
    session: Session,
    actor: Actor,
    role: tuple[str, str],
    instance: Instance,
    reason: str,
    by_parent: uuid.UUID | None,
) -> BpmnWorkflow:
    workflow = engine.store.load(session, instance)
    cancelled = workflow.cancel()
    now = engine.now()
    engine.store.save(session, instance, workflow, now)  # closes every open task: nothing is ready any more
    instance.status = TERMINATED
    instance.outcome = "终止"
    instance.completed_at = now
    instance.next_timer_at = None
    payload = {"reason": reason, "cancelled": sorted({t.task_spec.bpmn_id for t in cancelled if t.task_spec.bpmn_id})}
    if by_parent is not None:
        payload["terminated_with"] = str(by_parent)
    append_event(
        session,
        instance,
        at=now,
        actor=actor.username,
        role=role[0],
        org_code=role[1],
        command="terminate",
        payload=payload,
    )
    engine.flush_command(session)
    engine.store.keep_after_commit(session, instance, workflow)
    children = session.scalars(
        select(Instance).where(Instance.parent_id == instance.id, Instance.status == "running")
    ).all()
    for child in children:
        _terminate(engine, session, actor, role, child, reason, by_parent=instance.id)
    return workflow

"""Who may see and do what: role assignments matched against a task's role and org unit.

These checks run inside every engine command and query, so no page or API route can skip them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from engine.case_rows import CaseRow
from engine.errors import NotFound, PermissionDenied
from engine.models import HistoryEvent, Instance, OpenTask, RoleAssignment, User
from engine.roles import LANE_ROLES, PROVINCE_CODE, ROLES

CASE_READERS_EVERYWHERE = frozenset({"auditor", "province_office", "province_org_dept"})


@dataclass(frozen=True)
class Actor:
    username: str
    display_name: str
    assignments: frozenset[tuple[str, str]]  # (role key, org code)

    def holds(self, role: str, org_code: str) -> bool:
        return (role, org_code) in self.assignments

    def has_role(self, role: str) -> bool:
        return any(r == role for r, _ in self.assignments)

    def orgs_for(self, *scopes: str) -> set[str]:
        return {org for role, org in self.assignments if ROLES[role].scope in scopes}

    def lane_assignments(self) -> list[tuple[str, str]]:
        """The (role, org) pairs tasks can be offered to: all but the global roles (admin, auditor, …)."""
        return [(role, org) for role, org in self.assignments if role in LANE_ROLES]


SYSTEM = Actor("system", "系统", frozenset())


# One statement for the user and all their assignments, built once: it runs at the start of every command.
_ACTOR_ROWS = (
    select(User.display_name, User.active, RoleAssignment.role, RoleAssignment.org_code)
    .outerjoin(RoleAssignment, RoleAssignment.user_id == User.id)
    .where(User.username == bindparam("username"))
)


def load_actor(session: Session, username: str) -> Actor:
    rows = session.connection().execute(_ACTOR_ROWS, {"username": username}).all()
    if not rows or not rows[0].active:
        raise NotFound(f"no active user {username!r}")
    assignments = frozenset((r.role, r.org_code) for r in rows if r.role is not None)
    return Actor(username, rows[0].display_name, assignments)


def scope_org_for(role: str, instance: Instance | CaseRow, task_data: dict) -> str:
    """The org unit a task in ``role``'s lane belongs to, for this case."""
    scope = ROLES[role].scope
    if scope == "city":
        return instance.city_code or ""
    if scope == "county":
        return instance.county_code or ""
    if scope == "province":
        return PROVINCE_CODE
    return str(task_data.get("society_code", ""))


def may_read_instance(session: Session, actor: Actor, instance: Instance) -> bool:
    if any(actor.has_role(role) for role in CASE_READERS_EVERYWHERE):
        return True
    if instance.city_code in actor.orgs_for("city") or instance.county_code in actor.orgs_for("county"):
        return True
    societies = actor.orgs_for("society")
    if not societies:
        return False
    offered = select(OpenTask.id).where(OpenTask.instance_id == instance.id, OpenTask.org_code.in_(societies))
    took_part = select(HistoryEvent.id).where(
        HistoryEvent.instance_id == instance.id, HistoryEvent.org_code.in_(societies)
    )
    return session.scalar(offered.limit(1)) is not None or session.scalar(took_part.limit(1)) is not None


def check_may_read(session: Session, actor: Actor, instance: Instance) -> None:
    # Outside one's scope a case does not exist: the same answer as a wrong id, so ids can't be probed.
    if not may_read_instance(session, actor, instance):
        raise NotFound(f"instance {instance.id} not found")


def check_may_act(actor: Actor, task: OpenTask) -> None:
    if not actor.holds(task.role, task.org_code):
        raise PermissionDenied(f"{actor.username} does not hold role {task.role} for org {task.org_code}")
    if task.claimed_by and task.claimed_by != actor.username:
        raise PermissionDenied(f"task {task.id} is claimed by {task.claimed_by}")

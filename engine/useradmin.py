"""User administration (role ``admin``): add, disable, enable, grant, revoke, set a password.

Every change appends an event to the administrators' chain (``admin_event``), hashed like a case's
history: each hash covers the event's stored fields and the previous hash, so `audit verify` detects an
edited, deleted, inserted or reordered change, and the global checkpoint (engine/checkpoints.py) covers
its length. A disabled user can neither sign in nor use an API token (both check ``User.active``), and
disabling revokes the user's tokens, so enabling the user again does not bring them back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, String, Text, select, type_coerce, update
from sqlalchemy.orm import Session

from engine.access import Actor
from engine.chain import walk_chain
from engine.clock import as_utc
from engine.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from engine.history import event_hash, time_text
from engine.models import AdminEvent, ApiToken, OrgUnit, RoleAssignment, User, canonical_json
from engine.passwords import hash_password
from engine.roles import ROLES

ADMIN = "admin"
USERNAME = re.compile(r"^[a-z][a-z0-9_.-]{1,63}$")
MIN_PASSWORD_LENGTH = 8


def require_admin(actor: Actor) -> None:
    if not actor.has_role(ADMIN):
        raise PermissionDenied(f"{actor.username} is not an administrator")


def admin_event_content(seq: int, at: datetime | str, actor: str, command: str, target: str, payload: str) -> tuple:
    """The hashed fields of an admin event, as strings (the payload as its stored canonical text)."""
    return (str(seq), time_text(at), actor, command, target, payload)


def append_admin_event(
    session: Session, at: datetime, actor: Actor, command: str, target: str, payload: dict[str, Any]
) -> AdminEvent:
    # seq is unique: of two concurrent changes one fails at flush instead of forking the chain.
    at = as_utc(at)  # SQLite keeps the wall time only: store it in UTC, as it is hashed
    last = session.execute(select(AdminEvent.seq, AdminEvent.hash).order_by(AdminEvent.seq.desc()).limit(1)).first()
    seq, prev_hash = (last.seq + 1, last.hash) if last else (1, None)
    event = AdminEvent(
        seq=seq, at=at, actor=actor.username, command=command, target=target, payload=payload, prev_hash=prev_hash
    )
    content = admin_event_content(seq, event.at, actor.username, command, target, canonical_json(payload))
    event.hash = event_hash(prev_hash, content)
    session.add(event)
    session.flush()
    return event


@dataclass
class AdminChainStatus:
    events: int
    head: str | None
    break_seq: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


def _raw_admin_events() -> Select:
    table = AdminEvent.__table__.c
    return select(
        table.seq,
        type_coerce(table.at, String),
        table.actor,
        table.command,
        table.target,
        type_coerce(table.payload, Text),
        table.prev_hash,
        table.hash,
    ).order_by(table.seq, table.id)


def verify_admin_chain(session: Session) -> AdminChainStatus:
    """Check the administrators' chain from its first event; the head is the newest hash."""

    def content(row: Any) -> tuple[str, ...]:
        seq, at, actor, command, target, payload, _prev, _hash = row
        return admin_event_content(seq, at, actor, command, target, payload)

    walk = walk_chain(session.execute(_raw_admin_events()).tuples(), content, seq_at=0, prev_at=6, hash_at=7)
    if walk.broken:
        return AdminChainStatus(walk.count, walk.head, walk.broken.seq, walk.broken.reason)
    return AdminChainStatus(walk.count, walk.head)


# -- the changes -----------------------------------------------------------------------------------


def _user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user {username!r}")
    return user


def _check_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput("the password is too short", {"password": f"密码至少{MIN_PASSWORD_LENGTH}位"})


def _check_role(session: Session, role: str, org_code: str) -> None:
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}", {"role": f"未知角色 {role}"})
    if session.get(OrgUnit, org_code) is None:
        raise InvalidInput(f"unknown org unit {org_code!r}", {"org_code": f"未知单位代码 {org_code}"})


def add_user(
    session: Session,
    actor: Actor,
    now: datetime,
    username: str,
    display_name: str,
    password: str,
    roles: Sequence[tuple[str, str]] = (),
    email: str | None = None,
) -> User:
    require_admin(actor)
    username = (username or "").strip()
    if not USERNAME.match(username):
        raise InvalidInput(
            f"invalid username {username!r}", {"username": "用户名须以小写字母开头，由小写字母、数字、_.- 组成"}
        )
    display_name = (display_name or "").strip()
    if not display_name or len(display_name) > 100:
        raise InvalidInput("a display name is required", {"display_name": "须填写姓名（不超过100字）"})
    _check_password(password)
    for role, org_code in roles:
        _check_role(session, role, org_code)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"user {username!r} already exists")
    user = User(
        username=username,
        display_name=display_name,
        password_hash=hash_password(password),
        active=True,
        created_at=now,
        email=email or None,
    )
    user.roles = [RoleAssignment(role=role, org_code=org_code) for role, org_code in sorted(set(roles))]
    session.add(user)
    payload = {"display_name": display_name, "roles": [list(r) for r in sorted(set(roles))], "email": email or None}
    append_admin_event(session, now, actor, "user_add", username, payload)
    return user


def set_active(session: Session, actor: Actor, now: datetime, username: str, active: bool) -> User:
    require_admin(actor)
    user = _user(session, username)
    if username == actor.username and not active:
        raise InvalidInput("administrators cannot disable themselves", {"username": "不能停用自己的账号"})
    if user.active == active:
        raise Conflict(f"user {username!r} is already {'enabled' if active else 'disabled'}")
    user.active = active
    if active:
        append_admin_event(session, now, actor, "user_enable", username, {})
        return user
    # Disabling ends the user's API tokens for good: enabling the account again must not revive them.
    revoked = session.execute(
        update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked.is_(False)).values(revoked=True)
    ).rowcount
    append_admin_event(session, now, actor, "user_disable", username, {"tokens_revoked": revoked})
    return user


def grant_role(session: Session, actor: Actor, now: datetime, username: str, role: str, org_code: str) -> User:
    require_admin(actor)
    user = _user(session, username)
    _check_role(session, role, org_code)
    if any(a.role == role and a.org_code == org_code for a in user.roles):
        raise Conflict(f"{username} already holds {role} for {org_code}")
    user.roles.append(RoleAssignment(role=role, org_code=org_code))
    append_admin_event(session, now, actor, "role_grant", username, {"role": role, "org_code": org_code})
    return user


def revoke_role(session: Session, actor: Actor, now: datetime, username: str, role: str, org_code: str) -> User:
    require_admin(actor)
    user = _user(session, username)
    held = next((a for a in user.roles if a.role == role and a.org_code == org_code), None)
    if held is None:
        raise NotFound(f"{username} does not hold {role} for {org_code}")
    if username == actor.username and role == ADMIN:
        raise InvalidInput("administrators cannot revoke their own admin role", {"role": "不能撤销自己的管理员角色"})
    user.roles.remove(held)
    append_admin_event(session, now, actor, "role_revoke", username, {"role": role, "org_code": org_code})
    return user


def set_password(session: Session, actor: Actor, now: datetime, username: str, password: str) -> User:
    """A new password (its hash only; the event records that it changed, never the password)."""
    require_admin(actor)
    user = _user(session, username)
    _check_password(password)
    user.password_hash = hash_password(password)  # also ends the user's signed-in sessions
    append_admin_event(session, now, actor, "user_password", username, {})
    return user


def admin_events(session: Session, actor: Actor, limit: int = 200) -> list[AdminEvent]:
    """The newest administrators' changes, for admins and auditors."""
    if not (actor.has_role(ADMIN) or actor.has_role("auditor")):
        raise PermissionDenied(f"{actor.username} may not read the administrators' log")
    return list(session.scalars(select(AdminEvent).order_by(AdminEvent.seq.desc()).limit(limit)))

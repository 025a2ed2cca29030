"""The notification centre of one user: unread count, pages of notifications, 已读, e-mail preferences.

Notifications are written by the processes (``engine.programme.notify``) and by the engine; this module
only reads them for their owner and records what the owner did. Every function is scoped to ``username``:
nobody sees or marks another user's notifications.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from engine.errors import InvalidInput, NotFound
from engine.models import Notification, NotificationPreference, OpenTask, User

PAGE_SIZE = 20


@dataclass(frozen=True)
class NotificationView:
    id: int
    kind: str  # 新任务 | 退回 | 催办 | 督办 | 通知 | 决定
    message: str
    instance_id: uuid.UUID | None  # the case to open, if any
    created_at: datetime
    read_at: datetime | None
    open_task_id: uuid.UUID | None = None  # the task it is about, while that task is still open

    @property
    def unread(self) -> bool:
        return self.read_at is None


@dataclass(frozen=True)
class NotificationPage:
    items: list[NotificationView]
    page: int
    pages: int
    total: int
    unread: int


def _kinds() -> tuple[str, ...]:
    # programme will call the mailer (which imports this module) from notify; import its kinds lazily.
    from engine.programme import NOTIFICATION_KINDS

    return NOTIFICATION_KINDS


# Every page's header runs it: built once, its SQL cache key is computed once too.
_UNREAD = (
    select(func.count())
    .select_from(Notification)
    .where(Notification.username == bindparam("username"), Notification.read_at.is_(None))
)


def unread_count(session: Session, username: str) -> int:
    """For the header badge: one indexed count (username, read_at)."""
    return session.connection().execute(_UNREAD, {"username": username}).scalar_one()


def list_notifications(
    session: Session, username: str, page: int = 1, *, unread_only: bool = False, per_page: int = PAGE_SIZE
) -> NotificationPage:
    """Page ``page`` (from 1) of the user's notifications, newest first."""
    if page < 1 or per_page < 1:
        raise InvalidInput("page and per_page start at 1", {"page": "≥ 1"})
    mine = Notification.username == username
    where = [mine, Notification.read_at.is_(None)] if unread_only else [mine]
    total = session.scalar(select(func.count()).select_from(Notification).where(*where))
    rows = session.execute(
        select(Notification, OpenTask.id)
        .outerjoin(OpenTask, OpenTask.id == Notification.task_id)
        .where(*where)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
    )
    items = [
        NotificationView(n.id, n.kind, n.message, n.instance_id, n.created_at, n.read_at, open_task_id)
        for n, open_task_id in rows
    ]
    pages = max(1, math.ceil(total / per_page))
    return NotificationPage(items, page, pages, total, unread_count(session, username))


def mark_read(
    session: Session, username: str, ids: list[int] | None = None, now: datetime | None = None
) -> int:
    """Mark the user's notifications ``ids`` (all unread ones when None) as read; returns how many changed.

    Ids of other users' notifications are ignored rather than reported, so ids cannot be probed.
    """
    where = [Notification.username == username, Notification.read_at.is_(None)]
    if ids is not None:
        if not ids:
            return 0
        where.append(Notification.id.in_([int(i) for i in ids]))
    result = session.execute(
        update(Notification).where(*where).values(read_at=now or datetime.now(UTC)).execution_options(
            synchronize_session=False
        )
    )
    return result.rowcount or 0


def set_preference(session: Session, username: str, kind: str, email: bool) -> None:
    """Choose, for one kind of notification, in-app only (``email=False``) or in-app and e-mail."""
    if kind not in _kinds():
        raise InvalidInput(f"unknown notification kind {kind!r}", {"kind": f"one of {', '.join(_kinds())}"})
    if session.scalar(select(User.id).where(User.username == username)) is None:
        raise NotFound(f"no user {username!r}")
    row = session.scalar(
        select(NotificationPreference).where(
            NotificationPreference.username == username, NotificationPreference.kind == kind
        )
    )
    if row is None:
        session.add(NotificationPreference(username=username, kind=kind, email=bool(email)))
    else:
        row.email = bool(email)
    session.flush()


def preferences(session: Session, username: str) -> dict[str, bool]:
    """Every notification kind -> whether it also goes by e-mail (in-app only unless the user chose e-mail)."""
    query = select(NotificationPreference.kind, NotificationPreference.email).where(
        NotificationPreference.username == username
    )
    chosen = {kind: email for kind, email in session.execute(query)}
    return {kind: bool(chosen.get(kind, False)) for kind in _kinds()}

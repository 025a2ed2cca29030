"""Notification e-mail through a real SMTP server on 127.0.0.1 (aiosmtpd), and the notification centre.

Runs on SQLite and PostgreSQL: preferences decide what is mailed, a rolled-back notification mails
nothing, a failing server is retried later without duplicates, two deliverers at once send each mail
once, and a deliverer that died holding a claim is taken over only after its lease.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine import AppEngine, Settings, build_engine
from engine.clock import FixedClock
from engine.db import read_session, write_session
from engine.errors import InvalidInput, NotFound
from engine.mailer import (
    LEASE,
    _claim,
    _finish,
    deliver_outbox,
    list_notifications,
    mark_read,
    outbox_counts,
    parse_smtp_url,
    preferences,
    queue_mail_for,
    set_preference,
    unread_count,
)
from engine.models import Notification, OutboxMail, User
from tests.support.pgcluster import free_port

ADDRESSES = {"shenyang_sa": "sa@shenyang.example", "xinmin_office": "office@xinmin.example"}


class Inbox:
    """An aiosmtpd handler that keeps every accepted message, and can refuse the next few with a 451."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        with self.lock:
            if self.refuse:
                self.refuse -= 1
                return "451 4.3.0 Try again later"
            self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[str, Inbox]]:
    """A real SMTP server on loopback; yields its URL and what it received."""
    inbox = Inbox()
    port = free_port("127.0.0.1")
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}", inbox
    finally:
        controller.stop()


@pytest.fixture
def mail_users(engine: AppEngine) -> AppEngine:
    """Give two demo users an e-mail address."""
    with write_session(engine.sessions) as session:
        for username, address in ADDRESSES.items():
            session.execute(update(User).where(User.username == username).values(email=address))
    return engine


def notify(session: Session, now: datetime, username: str, kind: str, message: str) -> Notification:
    """What engine.programme.notify does for one user: the notification, then its mail in the same transaction."""
    notification = Notification(username=username, kind=kind, message=message, instance_id=None, created_at=now)
    session.add(notification)
    session.flush()
    queue_mail_for(session, notification)
    return notification


def statuses(engine: AppEngine) -> list[tuple[str, int]]:
    with read_session(engine.sessions) as session:
        return list(session.execute(select(OutboxMail.status, OutboxMail.attempts).order_by(OutboxMail.id)).tuples())


def test_preferences_decide_what_is_mailed(mail_users: AppEngine, smtp: tuple[str, Inbox]) -> None:
    engine, (url, inbox) = mail_users, smtp
    now = engine.now()
    with write_session(engine.sessions) as session:
        chosen = {"新任务": False, "退回": False, "催办": False, "督办": False, "通知": False, "决定": False}
        assert preferences(session, "shenyang_sa") == chosen
        set_preference(session, "shenyang_sa", "督办", True)
        set_preference(session, "shenyang_sa", "决定", True)
        set_preference(session, "shenyang_sa", "决定", False)  # changed its mind
        set_preference(session, "xinmin_party", "督办", True)  # chose e-mail but has no address
        with pytest.raises(InvalidInput):
            set_preference(session, "shenyang_sa", "广告", True)
        with pytest.raises(NotFound):
            set_preference(session, "nobody", "督办", True)
        assert preferences(session, "shenyang_sa") == {**chosen, "督办": True}
        notify(session, now, "shenyang_sa", "督办", "新民市示范区第1个创建年度自评报告逾期15日仍未报送，请督促办理。")
        notify(session, now, "shenyang_sa", "通知", "in-app only")
        notify(session, now, "shenyang_sa", "决定", "in-app only as well")
        notify(session, now, "xinmin_party", "督办", "no address, no mail")
    with pytest.raises(RuntimeError), write_session(engine.sessions) as session:
        notify(session, now, "shenyang_sa", "督办", "this command failed")
        raise RuntimeError("rolled back: neither the notification nor its mail exists")
    assert statuses(engine) == [("pending", 0)]
    assert deliver_outbox(engine.sessions, url, now) == 1
    assert deliver_outbox(engine.sessions, url, now + timedelta(hours=1)) == 0
    [message] = inbox.messages
    assert message["To"] == ADDRESSES["shenyang_sa"]
    assert message["Subject"].startswith("【督办】新民市示范区第1个创建年度自评报告逾期15日")
    assert "请督促办理" in message.get_content()
    assert message["Message-ID"].startswith("<outbox-")
    with read_session(engine.sessions) as session:
        assert outbox_counts(session) == {"sent": 1}
        mail = session.scalar(select(OutboxMail))
        assert (mail.status, mail.attempts, mail.last_error) == ("sent", 1, None)


def test_a_failing_server_is_retried_later_without_duplicates(mail_users: AppEngine, smtp: tuple[str, Inbox]) -> None:
    engine, (url, inbox) = mail_users, smtp
    now = engine.now()
    with write_session(engine.sessions) as session:
        set_preference(session, "xinmin_office", "催办", True)
        notify(session, now, "xinmin_office", "催办", "年度自评报告已逾期，请尽快报送。")
    down = f"smtp://127.0.0.1:{free_port('127.0.0.1')}"  # nothing listens there
    assert deliver_outbox(engine.sessions, down, now) == 0
    with read_session(engine.sessions) as session:
        mail = session.scalar(select(OutboxMail))
        assert (mail.status, mail.attempts) == ("pending", 1) and "connect" in mail.last_error
    assert deliver_outbox(engine.sessions, url, now + timedelta(seconds=30)) == 0  # backing off: not due yet
    assert statuses(engine) == [("pending", 1)]
    inbox.refuse = 1
    assert deliver_outbox(engine.sessions, url, now + timedelta(minutes=1)) == 0  # the server answers 451
    with read_session(engine.sessions) as session:
        mail = session.scalar(select(OutboxMail))
        assert (mail.status, mail.attempts) == ("pending", 2) and "451" in mail.last_error
        assert mail.next_attempt_at.replace(tzinfo=None) == (now + timedelta(minutes=3)).replace(tzinfo=None)
    assert deliver_outbox(engine.sessions, url, now + timedelta(minutes=3)) == 1
    assert deliver_outbox(engine.sessions, url, now + timedelta(days=1)) == 0
    assert len(inbox.messages) == 1
    assert statuses(engine) == [("sent", 3)]


def test_two_deliverers_at_once_send_each_mail_once(
    mail_users: AppEngine, smtp: tuple[str, Inbox], database_url: str, clock: FixedClock
) -> None:
    engine, (url, inbox) = mail_users, smtp
    now = engine.now()
    with write_session(engine.sessions) as session:
        set_preference(session, "shenyang_sa", "通知", True)
        for index in range(30):
            notify(session, now, "shenyang_sa", "通知", f"第{index}号通知")
    other = build_engine(Settings(database_url=database_url), clock)
    sent: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def deliver(worker: AppEngine) -> None:
        try:
            barrier.wait()
            while (count := deliver_outbox(worker.sessions, url, now, limit=4)) > 0:
                sent.append(count)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=deliver, args=(worker,)) for worker in (engine, other)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
    finally:
        other.db.dispose()
    assert errors == [] and sum(sent) == 30
    ids = [message["Message-ID"] for message in inbox.messages]
    assert len(ids) == 30 and len(set(ids)) == 30
    assert sorted(m.get_content().split("\n")[0] for m in inbox.messages) == sorted(f"第{i}号通知" for i in range(30))
    assert set(statuses(engine)) == {("sent", 1)}


def test_a_dead_deliverers_claim_is_taken_over_only_after_its_lease(
    mail_users: AppEngine, smtp: tuple[str, Inbox]
) -> None:
    engine, (url, inbox) = mail_users, smtp
    now = engine.now()
    with write_session(engine.sessions) as session:
        set_preference(session, "shenyang_sa", "决定", True)
        notify(session, now, "shenyang_sa", "决定", "新民市创建示范区（县）已批复。")
    [dead] = _claim(engine.sessions, now, 10)  # a deliverer claims the mail, then dies
    assert deliver_outbox(engine.sessions, url, now + LEASE - timedelta(seconds=1)) == 0  # still its claim
    assert inbox.messages == []
    assert deliver_outbox(engine.sessions, url, now + LEASE) == 1  # the lease ran out: taken over, sent once
    _finish(engine.sessions, dead, now + LEASE, "late report of the dead deliverer")  # ignored: not its claim
    assert statuses(engine) == [("sent", 2)]
    assert len(inbox.messages) == 1


def test_the_smtp_url_format() -> None:
    plain = parse_smtp_url("smtp://mail.example:2525")
    assert (plain.host, plain.port, plain.user, plain.implicit_tls) == ("mail.example", 2525, None, False)
    login = parse_smtp_url("smtps://bot%40example:p%3Ass@mail.example")
    assert (login.port, login.user, login.password, login.implicit_tls) == (465, "bot@example", "p:ss", True)
    for wrong in ("mail.example:25", "http://mail.example", "smtp://"):
        with pytest.raises(InvalidInput):
            parse_smtp_url(wrong)


def test_the_notification_centre_shows_and_marks_only_the_users_own(engine: AppEngine) -> None:
    start = engine.now()
    with write_session(engine.sessions) as session:
        mine = [notify(session, start + timedelta(minutes=i), "shenyang_sa", "通知", f"消息{i}").id for i in range(25)]
        theirs = notify(session, start, "dalian_sa", "催办", "别人的消息").id
    with write_session(engine.sessions) as session:
        assert unread_count(session, "shenyang_sa") == 25
        first = list_notifications(session, "shenyang_sa", 1)
        assert (first.total, first.pages, first.unread, len(first.items)) == (25, 2, 25, 20)
        assert first.items[0].message == "消息24" and first.items[0].unread  # newest first
        assert [n.message for n in list_notifications(session, "shenyang_sa", 2).items][-1] == "消息0"
        assert mark_read(session, "shenyang_sa", [mine[0], mine[1], theirs], now=start) == 2
        assert mark_read(session, "shenyang_sa", [], now=start) == 0
        assert unread_count(session, "shenyang_sa") == 23 and unread_count(session, "dalian_sa") == 1
        assert list_notifications(session, "shenyang_sa", 1, unread_only=True).total == 23
        assert mark_read(session, "shenyang_sa", now=start) == 23
        assert unread_count(session, "shenyang_sa") == 0
        with pytest.raises(InvalidInput):
            list_notifications(session, "shenyang_sa", 0)
        assert isinstance(list_notifications(session, "nobody", 1).items, list)

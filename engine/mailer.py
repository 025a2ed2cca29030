"""E-mail for notifications: an outbox filled in the notifying transaction, delivered after it commits.

A command queues the mail of its notifications with ``task_notifications.QUEUE_MAILS`` (one set-based
statement); ``queue_mail_for`` does it for one notification. Either adds an ``OutboxMail`` row next to the
``Notification`` when the user chose e-mail for that kind and has an address, so a rolled-back command
sends nothing. ``deliver_outbox`` (run by the worker) sends the committed rows in three steps:

1. Claim, in a short write transaction: due ``pending`` rows, and ``sending`` rows whose lease ran out,
   become ``sending`` with ``next_attempt_at`` = now + lease (for a ``sending`` row that column is the
   lease's end). PostgreSQL claims with ``FOR UPDATE SKIP LOCKED``; SQLite serialises write transactions
   (``BEGIN IMMEDIATE``). Either way two deliverers never claim the same row.
2. Send with smtplib outside any transaction, so a slow server holds no lock.
3. Mark each mail right after its send, in its own transaction, and only while the claim is still ours
   (status ``sending`` and the same lease end): ``sent``, or back to ``pending`` with the error and an
   exponential back-off.

Delivery is at-least-once, deliberately: SMTP has no two-phase commit, so a deliverer that dies between
the server accepting a mail and step 3 leaves a ``sending`` row, which is sent again once its lease
expires. The alternative, at-most-once (never retry a ``sending`` row), would silently lose every mail
whose deliverer died before sending, which is the likelier crash. The window is one message wide (each
mail is marked at once), the lease is far longer than a send (a live deliverer is never overtaken, and
stops sending when half its lease has passed), and a resent mail carries the same Message-ID, so mail
clients can recognise the duplicate.
"""

from __future__ import annotations

import contextlib
import os
import smtplib
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from urllib.parse import unquote, urlsplit

from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import as_utc
from engine.db import write_session
from engine.errors import InvalidInput
from engine.models import Notification, NotificationPreference, OutboxMail, User
from engine.notifications import list_notifications, mark_read, preferences, set_preference, unread_count

SMTP_URL_ENV = "DEMOZONE_SMTP_URL"
SENDER_ENV = "DEMOZONE_MAIL_FROM"
DEFAULT_SENDER = "noreply@demozone.invalid"
LEASE = timedelta(minutes=15)
BATCH = 20
SEND_TIMEOUT_S = 30  # BATCH × timeout stays within half the lease
BACKOFF_FIRST = timedelta(minutes=1)
BACKOFF_MAX = timedelta(hours=6)
MAX_ATTEMPTS = 12  # about two days of retries; then the row is "failed" and kept for inspection
__all__ = [
    "deliver_outbox",
    "list_notifications",
    "mark_read",
    "outbox_counts",
    "parse_smtp_url",
    "preferences",
    "queue_mail_for",
    "set_preference",
    "smtp_url_from_env",
    "unread_count",
]
MAIL_FOOTER = "（本邮件由创新驱动助力示范区（县）工作平台自动发送，请登录平台查看和办理，请勿直接回复。）"


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    user: str | None
    password: str | None
    implicit_tls: bool


def parse_smtp_url(url: str) -> SmtpSettings:
    """``smtp://host:port``, ``smtp://user:pass@host:port`` (STARTTLS when offered), or ``smtps://…``."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise InvalidInput(f"{SMTP_URL_ENV} must look like smtp://host:port, not {url!r}")
    port = parts.port or (465 if parts.scheme == "smtps" else 25)
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return SmtpSettings(parts.hostname, port, user, password, parts.scheme == "smtps")


def smtp_url_from_env() -> str | None:
    """The configured SMTP server, or None when e-mail is off."""
    return os.environ.get(SMTP_URL_ENV) or None


def queue_mail_for(session: Session, notification: Notification) -> OutboxMail | None:
    """Queue an e-mail for ``notification`` in the caller's transaction, if its user wants one for its kind."""
    wanted = session.scalar(
        select(NotificationPreference.email).where(
            NotificationPreference.username == notification.username, NotificationPreference.kind == notification.kind
        )
    )
    if not wanted:
        return None
    address = session.scalar(select(User.email).where(User.username == notification.username, User.active.is_(True)))
    if not address:
        return None
    if notification.id is None:
        session.flush()  # the outbox row refers to the notification
    queued = session.scalar(select(OutboxMail).where(OutboxMail.notification_id == notification.id))
    if queued is not None:
        return queued
    first_line = notification.message.splitlines()[0] if notification.message else ""
    mail = OutboxMail(
        notification_id=notification.id,
        recipient=address,
        subject=f"【{notification.kind}】{first_line[:80]}",
        body=f"{notification.message}\n\n{MAIL_FOOTER}\n",
        status="pending",
        attempts=0,
        next_attempt_at=notification.created_at,
    )
    session.add(mail)
    return mail


def backoff(attempts: int) -> timedelta:
    """1, 2, 4, 8 … minutes after the n-th failed attempt, at most six hours."""
    return min(BACKOFF_FIRST * 2 ** max(attempts - 1, 0), BACKOFF_MAX)


@dataclass(frozen=True)
class _Claimed:
    id: int
    notification_id: int | None
    recipient: str
    subject: str
    body: str
    attempts: int
    lease_end: datetime


def _claim(session_factory: sessionmaker, now: datetime, limit: int) -> list[_Claimed]:
    lease_end = now + LEASE
    with write_session(session_factory) as session:
        due = (
            select(OutboxMail)
            .where(OutboxMail.status.in_(("pending", "sending")), OutboxMail.next_attempt_at <= now)
            .order_by(OutboxMail.next_attempt_at, OutboxMail.id)
            .limit(limit)
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite ignores it and serialises writers instead
        )
        claimed = []
        for mail in session.scalars(due):
            mail.status, mail.next_attempt_at = "sending", lease_end
            mail.attempts += 1  # counted at the claim, so a deliverer that dies still uses up an attempt
            fields = (mail.id, mail.notification_id, mail.recipient, mail.subject, mail.body, mail.attempts)
            claimed.append(_Claimed(*fields, lease_end))
    return claimed


def _message(mail: _Claimed, sender: str, now: datetime) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.recipient
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(as_utc(now))
    # The same Message-ID on every attempt: a copy resent after a crash is recognisable as the same mail.
    message["Message-ID"] = f"<outbox-{mail.id}-{mail.notification_id or 0}@demozone>"
    message.set_content(mail.body)
    return message


def _connect(settings: SmtpSettings) -> smtplib.SMTP:
    if settings.implicit_tls:
        client: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.port, timeout=SEND_TIMEOUT_S)
    else:
        client = smtplib.SMTP(settings.host, settings.port, timeout=SEND_TIMEOUT_S)
        client.ehlo()
        if settings.user and client.has_extn("starttls"):
            client.starttls()
            client.ehlo()
    if settings.user:
        client.login(settings.user, settings.password or "")
    return client


def _finish(session_factory: sessionmaker, mail: _Claimed, now: datetime, error: str | None) -> None:
    """Record the outcome, but only if the claim is still ours (a lease taken over is left alone)."""
    ours = and_(OutboxMail.id == mail.id, OutboxMail.status == "sending", OutboxMail.next_attempt_at == mail.lease_end)
    if error is None:
        values = {"status": "sent", "sent_at": now, "last_error": None}
    else:
        status = "failed" if mail.attempts >= MAX_ATTEMPTS else "pending"
        values = {"status": status, "next_attempt_at": now + backoff(mail.attempts), "last_error": error[:2000]}
    with write_session(session_factory) as session:
        session.execute(update(OutboxMail).where(ours).values(**values))


def deliver_outbox(
    session_factory: sessionmaker,
    smtp_url: str,
    now: datetime,
    *,
    sender: str | None = None,
    limit: int = BATCH,
) -> int:
    """Send the due mails through ``smtp_url``; returns how many the server accepted.

    Safe to run in several processes at once: each mail is claimed by one deliverer. A failure leaves the
    mail for a later run (``backoff``); nothing here raises for a mail server that is down.
    """
    settings = parse_smtp_url(smtp_url)
    claimed = _claim(session_factory, now, limit)
    if not claimed:
        return 0
    sender = sender or os.environ.get(SENDER_ENV) or DEFAULT_SENDER
    started = time.monotonic()
    sent = 0
    try:
        client = _connect(settings)
    except (OSError, smtplib.SMTPException) as exc:
        for mail in claimed:
            _finish(session_factory, mail, now, f"connect: {exc!r}")
        return 0
    try:
        for mail in claimed:
            if time.monotonic() - started > LEASE.total_seconds() / 2:
                break  # the rest stay claimed and are picked up when their lease ends, never sent twice
            try:
                client.send_message(_message(mail, sender, now))
            except (OSError, smtplib.SMTPException) as exc:
                _finish(session_factory, mail, now, repr(exc))
                continue
            _finish(session_factory, mail, now, None)
            sent += 1
    finally:
        with contextlib.suppress(OSError, smtplib.SMTPException):  # accepted mails stay accepted
            client.quit()
    return sent


def outbox_counts(session: Session) -> dict[str, int]:
    """How many mails are in each state (pending, sending, sent, failed), for an admin page or a health check."""
    return dict(session.execute(select(OutboxMail.status, func.count()).group_by(OutboxMail.status)).all())

"""The timer job, the sweep of documents still to render (and, with DEMOZONE_SMTP_URL set, the mail job):
APScheduler runs them every few seconds, in `demozone worker` or beside the server. A daily job writes
an audit checkpoint.

The job goes through the engine's command path (``fire_due_timers``), one transaction per pass, so
it is safe to run in several processes: on PostgreSQL due cases are claimed with
``FOR UPDATE SKIP LOCKED``; on SQLite write transactions are serialized.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from engine import AppEngine
from engine.checkpoints import write_checkpoint
from engine.db import write_session
from engine.document_rendering import render_pending
from engine.mailer import deliver_outbox, smtp_url_from_env

log = logging.getLogger(__name__)
JOB_ID = "demozone:fire-due-timers"
MAIL_JOB_ID = "demozone:deliver-mail"
ANCHOR_JOB_ID = "demozone:audit-anchor"
DOCUMENTS_JOB_ID = "demozone:render-documents"
ANCHOR_INTERVAL_HOURS = 24
BATCH_SIZE = 200


def fire_due_timers_once(engine: AppEngine) -> int:
    """One pass: fire due timers in batches until none is due; return the number of cases moved."""
    moved = 0
    while True:
        with write_session(engine.sessions) as session:
            fired = engine.fire_due_timers(session, limit=BATCH_SIZE)
        moved += len(fired)
        if len(fired) < BATCH_SIZE:
            return moved


def _job(engine: AppEngine) -> None:
    try:
        moved = fire_due_timers_once(engine)
    except Exception:  # a failed pass is retried at the next interval; never kill the scheduler
        log.exception("timer pass failed")
        return
    if moved:
        log.info("timers fired in %d case(s)", moved)


def build_scheduler(engine: AppEngine, interval_seconds: float = 10, blocking: bool = False) -> BaseScheduler:
    """A scheduler with the timer job, the document sweep, the daily anchor and (with SMTP) the mail job.

    The frequent jobs also run at once on start: timers missed while nothing ran fire on the first pass.
    """
    scheduler = BlockingScheduler() if blocking else BackgroundScheduler(daemon=True)

    def every(job: Callable[..., None], job_id: str, *args: object, now: bool = True, **interval: float) -> None:
        scheduler.add_job(
            job,
            "interval",
            args=[engine, *args],
            id=job_id,
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            **({"next_run_time": datetime.now(UTC)} if now else {}),
            **interval,
        )

    every(_job, JOB_ID, seconds=interval_seconds)
    every(render_left_documents, DOCUMENTS_JOB_ID, seconds=interval_seconds)
    every(write_daily_anchor, ANCHOR_JOB_ID, now=False, hours=ANCHOR_INTERVAL_HOURS)
    smtp_url = smtp_url_from_env()
    if smtp_url:
        every(_deliver_mail, MAIL_JOB_ID, smtp_url, seconds=interval_seconds)
    return scheduler


def render_left_documents(engine: AppEngine) -> None:
    """Render documents whose issuing process died before rendering them (normally there are none)."""
    try:
        rendered = render_pending(engine.sessions, limit=BATCH_SIZE)
    except Exception:  # the documents stay pending; the next pass retries
        log.exception("document rendering pass failed")
        return
    if rendered:
        log.info("%d pending document(s) rendered", rendered)


def write_daily_anchor(engine: AppEngine) -> None:
    """The daily checkpoint of the whole log (engine/checkpoints.py); its hash goes to the log for publishing."""
    try:
        with write_session(engine.sessions) as session:
            checkpoint = write_checkpoint(session, engine.now(), "scheduler")
            log.info("audit checkpoint #%d written, anchor hash %s", checkpoint.seq, checkpoint.hash)
    except Exception:  # e.g. two workers anchoring at once: one loses on the unique seq; tomorrow's run follows
        log.exception("audit checkpoint not written")


def _deliver_mail(engine: AppEngine, smtp_url: str) -> None:
    try:
        sent = deliver_outbox(engine.sessions, smtp_url, engine.now())
    except Exception:  # the outbox keeps the mail; the next pass retries
        log.exception("mail delivery pass failed")
        return
    if sent:
        log.info("%d notification e-mail(s) sent", sent)

"""One database session per request, on ``g``; writes run in ``write()`` (commit or roll back).

A request reads in a plain transaction. ``write()`` ends it and opens the write transaction (SQLite:
``BEGIN IMMEDIATE``, which takes the single writer's lock), so what a request does around its write —
checking the sign-in, parsing the form, rendering the page — never holds the lock while other writers
queue for it, and no read snapshot is ever upgraded to a write (SQLite refuses that once another writer
has committed). An API command is the one exception: it checks its token inside its write transaction,
one indexed statement (``web.api._command``). The session is closed when the request ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from engine import AppEngine
from engine.access import Actor
from engine.db import begin_write, is_writing


def get_engine() -> AppEngine:
    return current_app.extensions["demozone.engine"]


def get_session() -> Session:
    """The request's session, opened on first use."""
    session = g.get("_db_session")
    if session is None:
        session = g._db_session = get_engine().sessions()
    return session


@contextmanager
def write() -> Iterator[Session]:
    """A write transaction on the request's session: commits on success, rolls back on any error.

    Inside another ``write()`` it joins that transaction. Rows read before it are expired, so the
    write works on the database as it is once the writer's lock is held.
    """
    session = get_session()
    if session.in_transaction() and not is_writing(session):
        if session.new or session.dirty or session.deleted:
            raise RuntimeError("a change was made outside write(): it would be written without the writer's lock")
        session.commit()  # nothing to write: this only ends the read snapshot
        session.expire_all()
    joined = session.in_transaction()
    if not joined:
        begin_write(session)
    try:
        yield session
        if not joined:
            session.commit()
    except BaseException:
        if not joined:
            session.rollback()
        raise


@contextmanager
def write_on_task(actor: Actor, task_id: uuid.UUID) -> Iterator[Session]:
    """``write()`` for ``actor``'s command on an open task: the task's case is deserialized first, in the
    read transaction, so the writer's lock is not held for that (the command uses it if the case is
    unchanged)."""
    get_engine().warm_case_of_task(get_session(), actor, task_id)
    with write() as session:
        yield session


def _close_session(_exc: BaseException | None = None) -> None:
    session = g.pop("_db_session", None)
    if session is not None:
        session.close()  # rolls back whatever was not committed


def init_app(app: Flask) -> None:
    app.teardown_appcontext(_close_session)
